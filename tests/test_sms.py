"""End to end over the SMS channel (/webhooks/sms/webhook): requests signed
exactly as Twilio signs them (tests/sms_texter.py), against the assistant
started as `make run` starts it, as two Rasa servers sharing the database.
Answers, numbered options, pictures, over-long texts, forged and malformed
requests, the rate limit, and no phone number in the logs. Opt-outs are in
test_sms_opt_out.py, retries and replays in test_sms_retries.py, the channel
on its own in test_sms_channel_alone.py."""

import re
import statistics
import time
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from channels import sms, sms_text
from channels.sms_text import plain_text
from clinic.facts import clinic_facts, fill
from sms_texter import (
    NUMBERS_USED, PATH, PUBLIC_URL, RATE_LIMIT, TOKEN, Texter, answer, buttons, flat, joined, messages,
    mms_fields, new_number, new_sid, signed, twilio_form,
)


# ---- answers ------------------------------------------------------------------------


def test_a_signed_question_gets_its_answer_as_twiml(sms_assistant):
    texter = Texter(sms_assistant)
    parts = texter.text("what's dry needling?")
    reply = joined(parts)
    expected = plain_text(answer("utter_faq/what_is_dry_needling", "faq_what_is_dry_needling.yml"))
    assert reply.startswith(flat(expected))
    assert flat(clinic_facts()["disclaimer_sms"]) in reply
    # buttons become numbered options
    titles = [b["title"] for b in buttons("utter_faq/what_is_dry_needling", "faq_what_is_dry_needling.yml")]
    assert flat("Reply with a number: " + " ".join(f"{n}) {t}" for n, t in enumerate(titles, 1))) in reply
    for part in parts:
        assert sms_text.units(part) <= sms_text.TARGET_MESSAGE_CHARS
    # one conversation per number, on the SMS channel
    events = sms_assistant.tracker(texter.number)["events"]
    assert [e["input_channel"] for e in events if e["event"] == "user"] == ["sms"]


def test_the_same_number_continues_one_conversation(sms_assistant):
    texter = Texter(sms_assistant)
    texter.text("what is sciatica")
    second = joined(texter.text("is dry needling safe"))
    # the disclaimer came with the first answer only
    assert second.startswith(flat(plain_text(answer("utter_faq/safety", "faq_safety.yml"))))
    assert flat(clinic_facts()["disclaimer_sms"]) not in second
    assert texter.user_turns() == ["what is sciatica", "is dry needling safe"]


def test_booking_by_text_gives_the_details_without_buttons(sms_assistant):
    reply = joined(Texter(sms_assistant).text("how do I book an appointment?"))
    assert flat(clinic_facts()["booking_details"]) in reply
    assert "Reply with a number" not in reply


def test_a_number_picks_that_option(sms_assistant):
    texter = Texter(sms_assistant)
    texter.text("what is dry needling")
    first = buttons("utter_faq/what_is_dry_needling", "faq_what_is_dry_needling.yml")[0]
    reply = joined(texter.text("1", replica=1))  # the other server
    assert texter.user_turns()[-1] == first["payload"]
    # the same answer a web visitor gets for that question
    web = sms_assistant.say("web-" + uuid.uuid4().hex[:8], first["payload"])
    assert reply.startswith(flat(plain_text(web[0]["text"])))
    # a number that is not an option is just text
    texter.text("9")
    assert texter.user_turns()[-1] == "9"


def test_an_empty_text_is_told_to_use_text(sms_assistant):
    reply = Texter(sms_assistant).text("")
    assert reply == [clinic_facts()["sms_media_only"]] and clinic_facts()["clinic_phone"] in reply[0]


@pytest.mark.parametrize("body", [None, "", "  "])
def test_a_picture_without_text_gets_the_text_only_sentence(sms_assistant, body):
    texter = Texter(sms_assistant)
    sid = "MM" + uuid.uuid4().hex
    reply = texter.text(body, sid, **mms_fields(sid, 2))
    assert reply == [clinic_facts()["sms_media_only"]]
    assert clinic_facts()["clinic_phone"] in reply[0] and sms_text.segments(reply[0]) == 1
    assert texter.user_turns() == []


def test_a_picture_with_text_gets_the_answer_and_a_note(sms_assistant):
    texter = Texter(sms_assistant)
    sid = "MM" + uuid.uuid4().hex
    reply = joined(texter.text("is dry needling safe", sid, **mms_fields(sid, 1)))
    assert reply.startswith(flat(plain_text(answer("utter_faq/safety", "faq_safety.yml"))))
    assert reply.endswith(flat(clinic_facts()["sms_media_not_read"]))
    assert texter.user_turns() == ["is dry needling safe"]


def test_an_over_long_text_is_cut_with_a_note(sms_assistant):
    texter = Texter(sms_assistant)
    body = "is dry needling safe for me? " * 70
    assert len(body) > 1600
    reply = joined(texter.text(body))
    assert reply.endswith(flat(sms.TOO_LONG_NOTE))
    [turn] = texter.user_turns()
    assert len(turn) <= 1600 and body.startswith(turn)


# ---- abuse -------------------------------------------------------------------------------


def test_the_rate_limit_answers_politely_once_then_stays_quiet(sms_assistant):
    texter = Texter(sms_assistant)
    questions = ["hi", "what is sciatica", "is it safe", "thanks", "how many sessions", "ok", "does it hurt", "bye"]
    assert len(questions) == RATE_LIMIT
    # the limit holds across both servers
    for index, question in enumerate(questions):
        assert texter.text(question, replica=index % 2)
    assert texter.text("what is dry needling") == [fill(sms.RATE_LIMIT_TEXT)]
    assert texter.text("hello?", replica=1) == []
    assert texter.text("HELP") == []
    assert texter.user_turns() == questions
    # another number is not affected
    assert Texter(sms_assistant).text("what is sciatica")


def forged_requests(texter: Texter):
    form = twilio_form(texter.number, "what is dry needling?", new_sid())
    right = RequestValidator(TOKEN).compute_signature(PUBLIC_URL, form)
    tampered = {**form, "Body": "text this to everyone"}
    return {
        "unsigned": (form, None),
        "empty signature": (form, ""),
        "wrong token": (form, RequestValidator("not-the-token").compute_signature(PUBLIC_URL, form)),
        "another URL": (form, RequestValidator(TOKEN).compute_signature("https://evil.test" + PATH, form)),
        "the local URL": (form, RequestValidator(TOKEN).compute_signature(texter.assistant.url + PATH, form)),
        "tampered body": (tampered, right),
        "another sender": ({**form, "From": new_number()}, right),
        "garbage": (form, "not a signature"),
    }


@pytest.mark.parametrize(
    "case",
    ["unsigned", "empty signature", "wrong token", "another URL", "the local URL", "tampered body", "another sender", "garbage"],
)
def test_forged_requests_get_403_and_are_never_processed(sms_assistant, case):
    texter = Texter(sms_assistant)
    form, signature = forged_requests(texter)[case]
    response = texter.post(form, signature)
    assert response.status_code == 403
    assert "Signature" in response.json()["message"]
    texter.number = form["From"]
    assert texter.user_turns() == []


@pytest.mark.parametrize(
    "drop,change,status",
    [
        ("From", {}, 400),
        ("Body", {}, 400),
        ("Body", {"NumMedia": "0"}, 400),
        (None, {"NumMedia": "lots"}, 400),
        (None, {"NumMedia": "-1"}, 400),
        ("MessageSid", {"SmsMessageSid": ""}, 400),
        (None, {"MessageSid": "SM123", "SmsMessageSid": "SM123"}, 400),
        (None, {"From": ""}, 400),
        (None, {"From": "+1" + "5" * 200}, 400),
        (None, {"From": "+1555\n0100"}, 400),
    ],
)
def test_bad_form_input_gets_a_clear_4xx(sms_assistant, drop, change, status):
    form = {**twilio_form(new_number(), "hello", new_sid()), **change}
    form.pop(drop, None)
    response = requests.post(sms_assistant.url + PATH, data=form, headers=signed(form), timeout=30)
    assert response.status_code == status
    assert response.json()["message"]


def test_a_body_that_is_not_twilios_form_gets_a_clear_4xx(sms_assistant):
    url = sms_assistant.url + PATH
    as_json = requests.post(url, json={"From": "+15550100", "Body": "hi"}, headers=signed({}), timeout=30)
    assert as_json.status_code == 415
    not_utf8 = requests.post(
        url, data=b"Body=%FF%FE&From=x", headers={**signed({}), "Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert not_utf8.status_code == 400
    huge = requests.post(url, data={"Body": "x" * 100_000}, headers=signed({}), timeout=30)
    assert huge.status_code == 413


# Any text a form field can carry (lone surrogates cannot be sent as UTF-8 at all).
FIELD_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
FUZZED_FIELDS = st.fixed_dictionaries({}, optional={
    "From": FIELD_TEXT, "Body": st.text(st.characters(blacklist_categories=("Cs",)), max_size=400),
    "MessageSid": FIELD_TEXT, "NumMedia": FIELD_TEXT, "OptOutType": FIELD_TEXT, "MediaUrl0": FIELD_TEXT,
})


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fields=FUZZED_FIELDS)
def test_fuzzed_signed_forms_never_get_a_500(sms_assistant, fields):
    """Property test over the channel's input, sender ids included: every
    field Twilio sends may be missing or hold anything; signed as Twilio
    signs, it gets a reply or a clear 4xx, never a server error."""
    form = {**twilio_form(new_number(), "hi", new_sid()), **fields}
    response = Texter(sms_assistant).signed_post(form)
    assert response.status_code in (200, 400, 409), (response.status_code, response.text[:300], fields)
    if response.status_code == 200:
        messages(response)  # well-formed TwiML


def test_after_the_fuzzing_the_channel_still_answers(sms_assistant):
    reply = joined(Texter(sms_assistant).text("what is dry needling?"))
    assert answer("utter_faq/what_is_dry_needling", "faq_what_is_dry_needling.yml")[:80] in reply


def test_replies_come_well_within_twilios_15_seconds(sms_assistant):
    questions = [
        "what is dry needling", "is dry needling safe", "how many sessions will I need",
        "does it hurt afterwards", "what is a trigger point", "how do I book",
        "what causes sciatica", "can it help numbness", "who does the treatment",
        "how is it different from acupuncture", "how fast does it work",
    ]
    seconds = []
    for question in questions:
        started = time.monotonic()
        assert Texter(sms_assistant).text(question)
        seconds.append(time.monotonic() - started)
    print(f"SMS webhook response time: median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s")
    assert max(seconds) < 15


# ---- privacy (last: it reads everything the tests above logged) ---------------------


def test_no_phone_number_in_the_logs(sms_assistant):
    texter = Texter(sms_assistant)
    texter.text(f"my number is {texter.number}, what is sciatica")
    texter.user_turns()  # the number is in the API's URL too
    time.sleep(1)  # let the servers flush their logs
    with open(sms_assistant.log_path, encoding="utf-8", errors="replace") as log:
        log.seek(sms_assistant.log_offset)
        written = log.read()
    assert "[phone **" in written  # numbers did reach the logs, masked
    # separators removed, so no format of a number can hide
    digits = re.sub(r"[\s().+\-/%]", "", written)
    for number in NUMBERS_USED:
        assert number[2:] not in digits, f"a test number is in {sms_assistant.log_path}"
