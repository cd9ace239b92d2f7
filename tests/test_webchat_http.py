"""The website chat's HTTP side on a running server: the page and widget
script with the clinic's facts, their headers and compression, and clear 4xx
answers from the history and feedback endpoints."""

import gzip
import time

import pytest
import requests
import socketio

from chat_client import ChatVisitor, web_conversation
from clinic import conversation_ids
from clinic.facts import clinic_facts

# An id this server would issue to a website visitor, never used.
UNUSED = conversation_ids.issue(conversation_ids.WEB)


def test_page_names_the_clinic_and_locks_itself_down(assistant):
    response = requests.get(f"{assistant.url}/chat", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert f"<h1 class=\"chat-title\">{clinic_facts()['clinic_name']}</h1>" in response.text
    assert clinic_facts()["disclaimer_short"] in response.text
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'self'" in policy
    # Without CHAT_ALLOWED_ORIGINS no other site may frame it.
    assert policy.split("frame-ancestors")[1].split(";")[0].strip() == "'self'"


def test_widget_script_names_the_clinic_and_is_compressed(assistant):
    response = requests.get(f"{assistant.url}/chat/widget.js", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert '"' + clinic_facts()["clinic_name"] + '"' in response.text
    assert "{{" not in response.text
    assert response.headers["Content-Encoding"] == "gzip"  # requests asks for it; decoded here


def test_assets_are_served_compressed_and_revalidated(assistant):
    url = f"{assistant.url}/chat/assets/socket.io.esm.min.js"
    raw = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
    body = raw.raw.read()
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"/*!\n * Socket.IO v4.")
    again = requests.get(url, headers={"If-None-Match": raw.headers["ETag"]}, timeout=30)
    assert again.status_code == 304


def test_only_known_assets_are_served(assistant):
    for name in ("../chat.html", "package.json", "..%2F..%2Fcredentials.yml", "nope.js"):
        response = requests.get(f"{assistant.url}/chat/assets/{name}", timeout=30)
        assert response.status_code == 404, name


def test_page_with_trailing_slash_works_too(assistant):
    response = requests.get(f"{assistant.url}/chat/", timeout=30)
    assert response.status_code == 200 and 'src="/chat/assets/chat.js"' in response.text


@pytest.mark.parametrize("params", [{}, {"session_id": ""}])
def test_history_needs_a_session_id(assistant, params):
    response = requests.get(f"{assistant.url}/chat/history", params=params, timeout=30)
    assert response.status_code == 400
    assert "session_id" in response.json()["message"]


def test_history_of_an_unused_conversation_is_empty(assistant):
    response = requests.get(f"{assistant.url}/chat/history", params={"session_id": UNUSED}, timeout=30)
    assert response.status_code == 200 and response.json() == {"messages": []}


def test_history_replays_a_conversation_as_text_with_buttons(assistant):
    sender = web_conversation(assistant.url, ["how do I book an appointment?"])
    messages = requests.get(f"{assistant.url}/chat/history", params={"session_id": sender}, timeout=30).json()["messages"]
    assert messages[0] == {"from": "user", "text": "how do I book an appointment?", "time": messages[0]["time"]}
    booking = next(m for m in messages if m["text"] == clinic_facts()["booking_details"])
    assert {"title": "Book online", "payload": clinic_facts()["booking_url"], "url": clinic_facts()["booking_url"]} in booking["buttons"]


@pytest.mark.parametrize(
    "body,status",
    [
        ("not json", 400),
        ([1, 2], 400),
        ({"answer": "x", "helpful": True}, 400),
        ({"session_id": "", "answer": "x", "helpful": True}, 400),
        ({"session_id": UNUSED, "helpful": True}, 400),
        ({"session_id": UNUSED, "answer": "  ", "helpful": True}, 400),
        ({"session_id": UNUSED, "answer": "x" * 9000, "helpful": True}, 400),
        ({"session_id": UNUSED, "answer": "x", "helpful": "yes"}, 400),
        ({"session_id": UNUSED, "answer": "x"}, 400),
        ({"session_id": UNUSED, "answer": "a\udc00", "helpful": True}, 400),
        # an id the server did not issue to the website chat
        ({"session_id": "s", "answer": "x", "helpful": True}, 403),
        # a conversation that never had that answer
        ({"session_id": UNUSED, "answer": "x", "helpful": False}, 404),
    ],
)
def test_feedback_bad_input_gets_a_clear_4xx(assistant, body, status):
    if isinstance(body, str):
        response = requests.post(f"{assistant.url}/chat/feedback", data=body, timeout=30,
                                 headers={"Content-Type": "application/json"})
    else:
        response = requests.post(f"{assistant.url}/chat/feedback", json=body, timeout=30)
    assert response.status_code == status
    assert response.json()["message"]


def test_feedback_on_an_answer_the_conversation_did_not_have_is_refused(assistant):
    sender = web_conversation(assistant.url, ["how do I book an appointment?"])
    body = {"session_id": sender, "answer": "Dry needling cures everything.", "helpful": True}
    response = requests.post(f"{assistant.url}/chat/feedback", json=body, timeout=30)
    assert response.status_code == 404
    body["answer"] = clinic_facts()["booking_details"]
    assert requests.post(f"{assistant.url}/chat/feedback", json=body, timeout=30).status_code == 201
    # One vote per answer: a second one is acknowledged, not stored again.
    again = requests.post(f"{assistant.url}/chat/feedback", json={**body, "helpful": False}, timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "already recorded"


# ---- which pages may open the chat's socket -------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_socket_refuses_other_origins_and_says_so_in_the_log(assistant, transport):
    offset = assistant.log_path.stat().st_size
    elsewhere = f"http://elsewhere-{transport}.example"
    with ChatVisitor(assistant.url, origin=elsewhere, transports=[transport]) as visitor:
        with pytest.raises(socketio.exceptions.ConnectionError):
            visitor.start(timeout=3)
    with ChatVisitor(assistant.url, origin=assistant.url, transports=[transport]) as visitor:
        assert visitor.start()  # the chat page's own origin
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(assistant.log_path, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            if f"refused from origin {elsewhere!r}" in log.read():
                return
        time.sleep(0.2)
    pytest.fail("the refused origin was not logged")
