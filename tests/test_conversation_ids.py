"""Conversation ids issued by the server: what they are, and that the REST
webhook and the website chat take only their own channel's, so nobody reaches
a conversation by naming or guessing its id. And input that cannot be stored
(a lone surrogate) gets a 400, never a stopped server."""

import json

import pytest
import requests

from chat_client import ChatVisitor
from clinic import conversation_ids
from clinic.conversation_ids import REST, WEB
from clinic.facts import clinic_facts
from conftest import texts

WEBHOOK = "/webhooks/rest/webhook"


# ---- the ids ---------------------------------------------------------------------------


def test_issued_ids_are_random_and_belong_to_one_channel():
    ids = {conversation_ids.issue(REST) for _ in range(2000)}
    assert len(ids) == 2000
    for issued in list(ids)[:50]:
        assert conversation_ids.is_issued(issued, REST)
        assert not conversation_ids.is_issued(issued, WEB)
        assert not conversation_ids.is_issued(issued.replace("rest-", "web-"), WEB)
    web = conversation_ids.issue(WEB)
    assert conversation_ids.is_issued(web, WEB) and not conversation_ids.is_issued(web, REST)


@pytest.mark.parametrize(
    "presented",
    [None, 42, ["rest-x"], {}, "", "+12125550100", "visitor-1", "rest-", "a\udc00",
     "rest-" + "0" * 48, "REST-" + "0" * 48],
)
def test_anything_not_issued_is_recognised_as_such(presented):
    assert not conversation_ids.is_issued(presented, REST)
    assert not conversation_ids.is_issued(presented, WEB)


def test_a_tampered_id_is_not_issued():
    issued = conversation_ids.issue(REST)
    for position in (5, 20, len(issued) - 1):
        flipped = "1" if issued[position] != "1" else "2"
        assert not conversation_ids.is_issued(issued[:position] + flipped + issued[position + 1:], REST)


def test_a_server_without_the_secret_refuses_to_issue(monkeypatch):
    monkeypatch.setenv(conversation_ids.SECRET_VARIABLE, "too short")
    conversation_ids.reset()
    try:
        with pytest.raises(conversation_ids.MissingSecret):
            conversation_ids.check_configured()
    finally:
        monkeypatch.undo()
        conversation_ids.reset()


# ---- the REST webhook ------------------------------------------------------------------


def post(assistant, body) -> requests.Response:
    return requests.post(f"{assistant.url}{WEBHOOK}", json=body, timeout=30)


def test_rest_issues_an_id_and_continues_with_it(assistant):
    first = post(assistant, {"message": "what is sciatica"})
    assert first.status_code == 200
    issued = first.headers["X-Conversation-Id"]
    assert conversation_ids.is_issued(issued, REST)
    assert {m["recipient_id"] for m in first.json()} == {issued}
    second = post(assistant, {"sender": issued, "message": "is dry needling safe"})
    assert second.headers["X-Conversation-Id"] == issued
    events = assistant.tracker(issued)["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["what is sciatica", "is dry needling safe"]


@pytest.mark.parametrize("kind", ["made up", "another channel's", "another server's"])
def test_rest_starts_a_new_conversation_for_an_id_it_did_not_issue(assistant, kind):
    victim = post(assistant, {"message": "what is sciatica"}).headers["X-Conversation-Id"]
    presented = {
        "made up": "visitor-1",
        "another channel's": victim.replace("rest-", "web-"),
        "another server's": "rest-" + "ab" * 24,
    }[kind]
    response = post(assistant, {"sender": presented, "message": "please forget me"})
    assert response.status_code == 200
    assert response.headers["X-Conversation-Id"] not in (presented, victim)
    events = assistant.tracker(victim)["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["what is sciatica"]


# ---- the website chat ------------------------------------------------------------------


@pytest.mark.parametrize("presented", [None, "visitor-1", "+12125550100", "rest"])
def test_a_socket_gets_a_new_conversation_for_an_id_not_issued_to_the_chat(assistant, presented):
    if presented == "rest":  # a REST conversation's id
        presented = post(assistant, {"message": "hello"}).headers["X-Conversation-Id"]
    with ChatVisitor(assistant.url) as visitor:
        confirmed = visitor.start(session_id=presented)
        assert confirmed != presented and conversation_ids.is_issued(confirmed, WEB)
        assert texts(visitor.say("what is sciatica"))


def test_a_socket_continues_its_own_conversation_and_only_that(assistant):
    with ChatVisitor(assistant.url) as first:
        session_id = first.start()
        first.say("what is sciatica")
    with ChatVisitor(assistant.url) as again:
        assert again.start(session_id=session_id) == session_id  # a reload keeps it
    with ChatVisitor(assistant.url) as other:
        other.start()
        refused = other.say("hello", session_id=session_id)
        assert refused[0]["error"] is True
        assert refused[0]["text"] == clinic_facts()["chat_unknown_conversation"]  # data/clinic.yml's sentence
    events = assistant.tracker(session_id)["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["what is sciatica"]


# ---- text that cannot be stored ------------------------------------------------------------


LONE_SURROGATES = ["\udc00", "a\udc00", "\ud83d", "hi \udfff there", "\ud800\ud800"]


def _raw_json(value: dict) -> bytes:
    # json.dumps escapes the surrogate as "\udc00", as a client would send it
    return json.dumps(value).encode("ascii")


@pytest.mark.parametrize("bad", LONE_SURROGATES)
@pytest.mark.parametrize("field", ["message", "sender", "metadata"])
def test_a_lone_surrogate_gets_a_400_or_a_new_conversation_and_the_server_stays_up(assistant, bad, field):
    offset = assistant.log_path.stat().st_size
    body = {"message": "hi"}
    if field == "metadata":
        body["metadata"] = {"shown": bad}
    else:
        body[field] = bad
    response = requests.post(
        f"{assistant.url}{WEBHOOK}", data=_raw_json(body), headers={"Content-Type": "application/json"}, timeout=30
    )
    if field == "sender":  # not an issued id: a conversation of its own
        assert response.status_code == 200 and conversation_ids.is_issued(response.headers["X-Conversation-Id"], REST)
    else:
        assert response.status_code == 400 and "surrogate" in response.json()["message"]
    assert texts(assistant.say("after-surrogate", "what is sciatica"))
    with open(assistant.log_path, encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        assert "A server stopped" not in log.read()


def test_a_lone_surrogate_on_the_socket_gets_a_clear_answer(assistant):
    with ChatVisitor(assistant.url) as visitor:
        visitor.start()
        reply = visitor.say("my leg \udc00 hurts")
        assert reply[0]["error"] is True and "surrogate" in reply[0]["text"]
        assert texts(visitor.say("what is sciatica"))
