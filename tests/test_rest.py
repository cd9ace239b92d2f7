"""End to end over the REST webhook, with both servers started as `make run`
starts them: answers, booking, emergencies, bad input, and a restart."""


import pytest
import requests
import yaml

from clinic import DATA_DIR, conversation_ids
from clinic.facts import clinic_facts, fill
from conftest import Assistant, texts


def answer(response_name: str, path: str) -> str:
    """The answer text as written in data/, with the clinic's facts filled in."""
    responses = yaml.safe_load((DATA_DIR / "nlu" / path).read_text())["responses"]
    return fill(responses[response_name][0]["text"])


def sender() -> str:
    """A conversation id as the server issues them."""
    return conversation_ids.issue(conversation_ids.REST)


def test_faq_gets_its_answer_then_the_disclaimer_once(assistant):
    visitor = sender()
    reply = assistant.say(visitor, "what's dry needling?")
    assert reply[0]["text"] == answer("utter_faq/what_is_dry_needling", "faq_what_is_dry_needling.yml")
    assert [b["title"] for b in reply[0]["buttons"]]  # follow-up questions
    assert reply[1]["text"] == clinic_facts()["disclaimer_short"]
    second = assistant.say(visitor, "is dry needling safe?")
    assert texts(second) == answer("utter_faq/safety", "faq_safety.yml")


def test_booking_details_name_the_offer_form_and_phone(assistant):
    reply = texts(assistant.say(sender(), "how do I book an appointment?"))
    facts = clinic_facts()
    assert "$100 off" in reply and facts["booking_url"] in reply and facts["clinic_phone"] in reply


def test_emergency_goes_to_911_before_and_instead_of_the_faq(assistant):
    reply = assistant.say(sender(), "I lost bladder control after needling, is that normal?")
    assert reply[0]["text"].startswith("Please call 911 or go to the nearest emergency room")
    assert answer("utter_faq/soreness_after", "faq_soreness_after.yml") not in texts(reply)


def test_unknown_topic_is_admitted_and_points_to_the_clinic(assistant):
    reply = texts(assistant.say(sender(), "how much does a session cost?"))
    assert reply.startswith("I don't have")
    assert clinic_facts()["clinic_phone"] in reply


@pytest.mark.parametrize(
    "body,status",
    [
        ({"sender": "x"}, 400),
        ({"sender": "x", "message": ""}, 400),
        ({"sender": "x", "message": "   "}, 400),
        ({"sender": 42, "message": "hello"}, 400),
        ({"sender": ["x"], "message": "hello"}, 400),
        ({"sender": "x", "message": ["not", "text"]}, 400),
        ({"sender": "x", "message": "a" * 20000}, 413),
        (["a", "list"], 400),
        ("just a string", 400),
    ],
)
def test_bad_input_gets_a_clear_4xx(assistant, body, status):
    response = requests.post(f"{assistant.url}/webhooks/rest/webhook", json=body, timeout=30)
    assert response.status_code == status
    assert response.json()["message"]  # says what is wrong


def test_body_that_is_not_json_gets_400(assistant):
    response = requests.post(
        f"{assistant.url}/webhooks/rest/webhook", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "message",
    ["😊🙏💉", "<script>alert('x')</script>", "<img src=x onerror=alert(1)>", "' OR 1=1; --", "\u202e\u0000?"],
)
def test_odd_messages_get_a_reply_and_the_server_keeps_answering(assistant, message):
    visitor = sender()
    reply = assistant.say(visitor, message)
    assert reply and all(m.get("text") for m in reply)
    assert assistant.say(visitor, "what is sciatica")[0]["text"] == answer("utter_faq/what_is_sciatica", "faq_what_is_sciatica.yml")


def test_client_cannot_pose_as_the_sms_channel(assistant):
    visitor = sender()
    body = {"sender": visitor, "message": "is this medical advice?", "input_channel": "sms"}
    reply = requests.post(f"{assistant.url}/webhooks/rest/webhook", json=body, timeout=30).json()
    assert clinic_facts()["disclaimer_full"] in texts(reply)
    events = assistant.tracker(visitor)["events"]
    assert {e["input_channel"] for e in events if e["event"] == "user"} == {"rest"}


def test_metadata_the_assistant_does_not_use_is_never_stored(assistant):
    """A client's metadata is cut to the key the assistant reads (`shown`):
    a large blob sent with every message must not be kept with its events."""
    import json

    blob = "x" * 200_000
    visitor = None
    for text in ("what's dry needling?", "is it safe?", "how many sessions?"):
        body = {"message": text, "metadata": {"blob": blob, "shown": text}}
        if visitor:
            body["sender"] = visitor
        reply = requests.post(f"{assistant.url}/webhooks/rest/webhook", json=body, timeout=30)
        assert reply.status_code == 200 and reply.json()
        visitor = reply.headers["X-Conversation-Id"]
    tracker = requests.get(
        f"{assistant.url}/conversations/{visitor}/tracker", params={"token": assistant.token}, timeout=30,
    ).json()
    stored = json.dumps(tracker)
    assert "xxxxxxxxxx" not in stored and len(stored) < 100_000
    user_metadata = [event.get("metadata") or {} for event in tracker["events"] if event["event"] == "user"]
    # Rasa adds which assistant and model answered
    assert len(user_metadata) == 3 and all(set(m) <= {"shown", "assistant_id", "model_id"} for m in user_metadata)
    assert [m.get("shown") for m in user_metadata] == ["what's dry needling?", "is it safe?", "how many sessions?"]


def test_conversation_survives_a_restart(tmp_path, trained_model):
    """Stop everything mid-conversation, start again: nothing is lost."""
    assistant = Assistant(tmp_path / "var", "restart").start()
    visitor = sender()
    try:
        assistant.say(visitor, "what is sciatica")
        assistant.say(visitor, "is dry needling safe")
        assistant.stop()
        assistant.start()
        reply = assistant.say(visitor, "how many sessions will I need")
        # the disclaimer was shown before the restart, so not again (the offer to book follows)
        assert [m["text"] for m in reply] == [
            answer("utter_faq/how_many_sessions", "faq_how_many_sessions.yml"), clinic_facts()["booking_offer"],
        ]
        user_turns = [e["text"] for e in assistant.tracker(visitor)["events"] if e["event"] == "user"]
        assert user_turns == ["what is sciatica", "is dry needling safe", "how many sessions will I need"]
    finally:
        assistant.stop()


def test_gibberish_is_declined_and_points_to_what_it_can_do(assistant):
    reply = texts(assistant.say(sender(), "asdkjh qwpoeiru zxmcnv"))
    domain = yaml.safe_load((DATA_DIR.parent / "domain.yml").read_text())["responses"]
    declines = {fill(domain[name][0]["text"]) for name in ("utter_default", "utter_out_of_scope")}
    assert reply in declines
