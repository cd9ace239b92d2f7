"""The running assistant's outer edges: Rasa's HTTP API only with the token,
request bodies limited in size, and the REST webhook fuzzed with arbitrary
JSON and text (hypothesis): never a 500, and it keeps answering."""

import inspect
import json
import re
import uuid

import pytest
import rasa.server
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic import DATA_DIR, conversation_ids
from clinic.facts import fill
from chat_client import ChatVisitor
from conftest import texts


# A REST conversation id as the server issues them.
CONVERSATION = conversation_ids.issue(conversation_ids.REST)


def admin_routes():
    """Every route of Rasa's HTTP API that Rasa itself puts behind the token."""
    source = inspect.getsource(rasa.server.create_app)
    found = re.findall(r'@app\.(get|post|put|delete)\("([^"]+)"\)\s*\n\s*@requires_auth', source)
    return [(method.upper(), path.replace("<conversation_id:path>", CONVERSATION)) for method, path in found]


ADMIN_ROUTES = admin_routes()
# With the token, these are called for real (the rest would retrain, unload
# or replace the shared assistant's model, or run a test suite).
ALLOWED_CALLS = {
    ("GET", "/status"): None,
    ("GET", "/domain"): None,
    ("GET", f"/conversations/{CONVERSATION}/tracker"): None,
    ("GET", f"/conversations/{CONVERSATION}/story"): None,
    ("POST", f"/conversations/{CONVERSATION}/tracker/events"): {"event": "action", "name": "action_listen"},
    ("POST", f"/conversations/{CONVERSATION}/messages"): {"text": "hello", "sender": "user"},
    ("POST", f"/conversations/{CONVERSATION}/predict"): None,
    ("POST", "/model/parse"): {"text": "what is dry needling"},
}


def test_the_api_list_is_rasas_whole_admin_api():
    paths = {path for _, path in ADMIN_ROUTES}
    assert len(ADMIN_ROUTES) >= 17 and {"/status", "/model", "/domain", f"/conversations/{CONVERSATION}/tracker"} <= paths


@pytest.mark.parametrize("method,path", ADMIN_ROUTES)
def test_every_admin_endpoint_refuses_a_request_without_the_right_token(assistant, method, path):
    url = assistant.url + path
    assert requests.request(method, url, json={}, timeout=30).status_code in (401, 403)
    wrong = requests.request(method, url, params={"token": "not-" + assistant.token}, json={}, timeout=30)
    assert wrong.status_code in (401, 403)


@pytest.mark.parametrize("method,path", list(ALLOWED_CALLS))
def test_with_the_token_the_admin_api_works(assistant, method, path):
    assistant.say(CONVERSATION, "hello")  # a conversation to read
    response = requests.request(
        method, assistant.url + path, params={"token": assistant.token}, json=ALLOWED_CALLS[(method, path)],
        headers={"Accept": "application/json"}, timeout=60,
    )
    assert response.status_code == 200, response.text


def test_a_body_over_the_size_limit_is_refused_with_413(assistant):
    # a short message in a big body: refused by the size limit, not the message check
    body = {"sender": "big-" + uuid.uuid4().hex[:8], "message": "hello", "padding": "a" * (2 * 1024 * 1024)}
    response = requests.post(f"{assistant.url}/webhooks/rest/webhook", json=body, timeout=30)
    assert response.status_code == 413
    assert assistant.say("size-check-" + uuid.uuid4().hex[:8], "hello")  # still answering


def test_no_browser_origin_is_allowed_unless_configured(assistant):
    response = requests.post(
        f"{assistant.url}/webhooks/rest/webhook",
        json={"sender": "cors-" + uuid.uuid4().hex[:8], "message": "hello"},
        headers={"Origin": "https://elsewhere.example"},
        timeout=30,
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=10,
)
WEBHOOK_BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"sender": st.one_of(st.text(min_size=1, max_size=40), JSON), "message": st.one_of(st.text(max_size=400), JSON)},
        optional={"metadata": JSON, "input_channel": st.text(max_size=12)},
    ),
    st.builds(lambda text: {"sender": "fuzz-" + uuid.uuid4().hex[:8], "message": text}, st.text(min_size=1, max_size=400)),
)


@settings(max_examples=70, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=WEBHOOK_BODIES)
def test_fuzzed_json_never_gets_a_500_and_every_reply_has_text(assistant, body):
    response = requests.post(
        f"{assistant.url}/webhooks/rest/webhook", data=json.dumps(body), headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code in (200, 400, 413), (response.status_code, response.text)
    if response.status_code == 200:
        reply = response.json()
        assert reply and all(message.get("text") for message in reply), reply
    else:
        assert response.json()["message"]


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_fuzzed_bytes_never_get_a_500(assistant, raw):
    response = requests.post(
        f"{assistant.url}/webhooks/rest/webhook", data=raw, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code in (200, 400, 413), (response.status_code, response.text)


@pytest.fixture(scope="module")
def fuzzing_socket(assistant):
    """One website-chat tab that the property test below sends anything through."""
    with ChatVisitor(assistant.url) as visitor:
        visitor.start()
        yield visitor


SOCKET_PAYLOADS = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"message": st.one_of(st.text(max_size=300), JSON)},
        optional={"session_id": st.one_of(st.text(max_size=40), JSON), "metadata": JSON},
    ),
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=SOCKET_PAYLOADS)
def test_fuzzed_socket_messages_never_drop_the_connection(fuzzing_socket, payload):
    """Property test over the Socket.IO channel's input, session ids
    included (lone surrogates too): the server keeps the socket."""
    fuzzing_socket.client.emit("user_uttered", payload)
    fuzzing_socket.client.sleep(0.05)
    assert fuzzing_socket.client.connected


def test_after_the_fuzzing_the_website_chat_still_answers(assistant, fuzzing_socket):
    with ChatVisitor(assistant.url) as visitor:
        visitor.start()
        assert any("sciatic nerve" in (message.get("text") or "") for message in visitor.say("what is sciatica"))


def test_after_the_fuzzing_the_assistant_still_answers_correctly(assistant):
    responses = yaml.safe_load((DATA_DIR / "nlu" / "faq_what_is_sciatica.yml").read_text())["responses"]
    reply = assistant.say("after-fuzz-" + uuid.uuid4().hex[:8], "what is sciatica")
    assert texts(reply).startswith(fill(responses["utter_faq/what_is_sciatica"][0]["text"]))
