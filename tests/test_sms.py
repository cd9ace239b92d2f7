"""End to end over the SMS channel (/webhooks/sms/webhook): requests signed
exactly as Twilio signs them, against the assistant started as `make run`
starts it, as two Rasa servers sharing the database. Forged requests,
answers, numbered options, pictures, opt-out keywords and OptOutType,
retries (one after its server was killed), replays, the rate limit, the
signed URL's connection overrides, and no phone number in the logs."""

import contextlib
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from datetime import timedelta
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import requests
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from channels import sms, sms_state, sms_text
from chat_client import ChatVisitor
from channels.sms_text import plain_text
from clinic import DATA_DIR, store
from clinic.facts import clinic_facts, fill
from conftest import ROOT, Assistant, free_port, process_id
from services import postgres_up, require, scratch_database

PATH = "/webhooks/sms/webhook"
# The URL Twilio calls (behind a proxy), which is what it signs.
PUBLIC_URL = "https://sms.clinic.test/webhooks/sms/webhook"
TOKEN = secrets.token_hex(16)
RATE_LIMIT = 8
CLINIC_NUMBER = "+19178304440"
NUMBERS_USED: List[str] = []


def new_number() -> str:
    """A fresh fictional number (555-01xx) for each test's texter."""
    while True:
        number = f"+1{random.randint(201, 989)}55501{random.randint(0, 99):02d}"
        if number not in NUMBERS_USED:
            NUMBERS_USED.append(number)
            return number


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def twilio_form(number: str, body: Optional[str], sid: str, **fields: str) -> Dict[str, str]:
    """The fields Twilio posts for an incoming SMS (no Body when None)."""
    form = {
        "ToCountry": "US", "ToState": "NY", "SmsMessageSid": sid, "NumMedia": "0",
        "ToCity": "NEW YORK", "FromZip": "", "SmsSid": sid, "FromState": "NY",
        "SmsStatus": "received", "FromCity": "NEW YORK", "Body": body, "FromCountry": "US",
        "To": CLINIC_NUMBER, "MessagingServiceSid": "", "ToZip": "", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": number, "ApiVersion": "2010-04-01",
        **fields,
    }
    return {name: value for name, value in form.items() if value is not None}


def mms_fields(sid: str, count: int) -> Dict[str, str]:
    """What Twilio adds for pictures or files (an MMS's MessageSid starts with MM)."""
    fields = {"NumMedia": str(count)}
    for index in range(count):
        fields[f"MediaContentType{index}"] = "image/jpeg"
        fields[f"MediaUrl{index}"] = (
            f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Messages/{sid}/Media/ME{uuid.uuid4().hex}"
        )
    return fields


def answer(response_name: str, path: str) -> str:
    responses = yaml.safe_load((DATA_DIR / "nlu" / path).read_text())["responses"]
    return fill(responses[response_name][0]["text"])


def buttons(response_name: str, path: str) -> List[dict]:
    responses = yaml.safe_load((DATA_DIR / "nlu" / path).read_text())["responses"]
    return responses[response_name][0]["buttons"]


def flat(text: str) -> str:
    return " ".join(text.split())


class Texter:
    """Sends texts to the channel the way Twilio does."""

    def __init__(self, assistant: Assistant, number: Optional[str] = None):
        self.assistant = assistant
        self.number = number or new_number()

    def post(self, form: Dict[str, str], signature: Optional[str], replica: int = 0) -> requests.Response:
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        url = self.assistant.replica_url(replica) + PATH
        return requests.post(url, data=form, headers=headers, timeout=30)

    def send(
        self, body: Optional[str], sid: Optional[str] = None, replica: int = 0, **fields: str
    ) -> requests.Response:
        response = self.signed_post(twilio_form(self.number, body, sid or new_sid(), **fields), replica)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/xml")
        return response

    def signed_post(self, form: Dict[str, str], replica: int = 0) -> requests.Response:
        return self.post(form, RequestValidator(TOKEN).compute_signature(PUBLIC_URL, form), replica)

    def text(self, body: Optional[str], sid: Optional[str] = None, replica: int = 0, **fields: str) -> List[str]:
        """The messages sent back, in order."""
        return messages(self.send(body, sid, replica, **fields))

    def opted_out(self) -> bool:
        with database(self.assistant).connect() as connection:
            return bool(connection.execute(
                sa.text("SELECT count(*) FROM sms_opt_outs WHERE sender_id = :n"), {"n": self.number}
            ).scalar())

    def user_turns(self) -> List[str]:
        events = self.assistant.tracker(self.number)["events"]
        return [e["text"] for e in events if e["event"] == "user"]


def messages(response: requests.Response) -> List[str]:
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Response"
    assert all(child.tag == "Message" for child in root)
    return [child.text or "" for child in root]


def joined(parts: List[str]) -> str:
    """The messages read in order, without their "(1/2) " labels."""
    return flat(" ".join(re.sub(r"^\(\d+/\d+\) ", "", part) for part in parts))


@pytest.fixture(scope="module")
def sms_assistant(tmp_path_factory, trained_model) -> Assistant:
    """The assistant with the SMS channel on, as two Rasa servers sharing
    the database (Twilio may call either). Debug logging, so that every line
    mentioning a conversation is written, and checked for numbers."""
    running = Assistant(
        tmp_path_factory.mktemp("sms-var"),
        "sms",
        replicas=2,
        env={
            "TWILIO_AUTH_TOKEN": TOKEN,
            "SMS_WEBHOOK_URL": PUBLIC_URL,
            "SMS_RATE_LIMIT": str(RATE_LIMIT),
            "SMS_RATE_WINDOW": "600",
            "LOG_LEVEL": "DEBUG",
            "LOG_LEVEL_LIBRARIES": "INFO",
        },
    )
    running.log_offset = running.log_path.stat().st_size if running.log_path.exists() else 0
    running.start()
    try:
        yield running
    finally:
        running.stop()


def database(assistant: Assistant) -> sa.engine.Engine:
    url = assistant.env.get("DATABASE_URL") or f"sqlite:///{assistant.var_dir / 'clinic.db'}"
    return sa.create_engine(url)


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


def test_help_gets_a_short_description_and_the_clinic_number(sms_assistant):
    texter = Texter(sms_assistant)
    for word in ("HELP", "info"):
        reply = texter.text(word)
        assert reply == [fill(sms.HELP_TEXT)]
        assert clinic_facts()["clinic_phone"] in reply[0] and sms_text.segments(reply[0]) <= 2
    assert texter.user_turns() == []


def test_stop_silences_the_number_until_start(sms_assistant):
    texter = Texter(sms_assistant)
    assert texter.text("Stop") == [fill(sms.STOP_TEXT)]
    assert texter.text("what is dry needling?", replica=1) == []  # on every server
    with database(sms_assistant).connect() as connection:
        stored = connection.execute(sa.text("SELECT sender_id FROM sms_opt_outs")).scalars().all()
    assert texter.number in stored
    assert texter.text("what is dry needling?") == []
    assert texter.text("hello?") == []
    assert texter.user_turns() == []
    # HELP is still answered, and START resumes
    assert texter.text("help") == [fill(sms.HELP_TEXT)]
    assert texter.text("START") == [fill(sms.START_TEXT)]
    reply = joined(texter.text("what is sciatica"))
    assert reply.startswith(flat(plain_text(answer("utter_faq/what_is_sciatica", "faq_what_is_sciatica.yml"))))
    assert texter.user_turns() == ["what is sciatica"]


# Twilio's default opt-out keywords (REVOKE and OPTOUT since May 2025), as
# people type them: any case, spaces and punctuation; "opt out" is the FCC's.
OPT_OUT_WORDS = [
    "STOP", "stop", "Stop.", "STOPALL", "Stop all", "STOP ALL", "UNSUBSCRIBE", "Unsubscribe!", "cancel",
    "End", "quit.", "REVOKE", "revoke", "OPTOUT", "Opt out", "opt-out", "OPT-OUT!", "Ｓｔｏｐ",
]
OPT_IN_WORDS = ["START", "start", "Start!", "UNSTOP", "unstop", "Un-stop"]


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
def test_every_opt_out_word_works(sms_assistant, word):
    texter = Texter(sms_assistant)
    assert texter.text(word) == [fill(sms.STOP_TEXT)]
    assert texter.opted_out()
    assert texter.text("is dry needling safe") == []
    assert texter.text(OPT_IN_WORDS[OPT_OUT_WORDS.index(word) % len(OPT_IN_WORDS)]) == [fill(sms.START_TEXT)]
    assert not texter.opted_out()
    assert texter.user_turns() == []


def test_yes_opts_in_only_an_opted_out_number_and_help_words_work_in_any_case(sms_assistant):
    texter = Texter(sms_assistant)
    for word in ("HELP", "help?", "Info", "INFO."):
        assert texter.text(word) == [fill(sms.HELP_TEXT)]
    assert texter.text("Opt out") == [fill(sms.STOP_TEXT)]
    assert texter.text("Yes!") == [fill(sms.START_TEXT)]
    assert texter.user_turns() == []
    texter.text("yes")  # now just an answer
    assert texter.user_turns() == ["yes"]


@pytest.mark.parametrize("text", ["please cancel my appointment", "stop the pain", "opt out of what?"])
def test_a_sentence_with_a_keyword_in_it_is_a_question(sms_assistant, text):
    texter = Texter(sms_assistant)
    assert texter.text(text)
    assert not texter.opted_out()
    assert texter.user_turns() == [text]


def test_twilios_opt_out_type_is_done_and_not_answered_twice(sms_assistant):
    """Advanced Opt-Out matched its own keywords (here Spanish) and replied
    itself; OptOutType says what it did."""
    texter = Texter(sms_assistant)
    assert texter.text("BAJA", OptOutType="STOP") == []
    assert texter.opted_out()
    assert texter.text("what is dry needling?") == []
    assert texter.text("AYUDA", OptOutType="HELP") == []
    assert texter.opted_out()
    assert texter.text("ALTA", OptOutType="START") == []
    assert not texter.opted_out()
    # a keyword of ours, marked by Twilio too, is not answered a second time
    assert texter.text("STOP", OptOutType="stop") == []
    assert texter.opted_out()
    assert texter.text("UNSTOP", OptOutType="START") == []
    assert texter.user_turns() == []
    assert texter.text("what is sciatica")
    assert texter.user_turns() == ["what is sciatica"]


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


# ---- retries --------------------------------------------------------------------------


def test_a_retried_message_sid_is_answered_from_the_cache(sms_assistant):
    texter = Texter(sms_assistant)
    sid = new_sid()
    first = texter.send("how many sessions will I need?", sid)
    again = texter.send("how many sessions will I need?", sid, replica=1)  # the other server
    assert messages(first) and again.content == first.content
    assert texter.user_turns() == ["how many sessions will I need?"]


def test_a_retry_arriving_during_the_first_answer_gets_the_same_reply(sms_assistant):
    texter = Texter(sms_assistant)
    sid = new_sid()
    replies: Dict[int, bytes] = {}

    def send(index: int) -> None:
        replies[index] = texter.send("does dry needling hurt?", sid, replica=index % 2).content

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(replies) == 3 and len(set(replies.values())) == 1
    assert ElementTree.fromstring(replies[0]).findall("Message")
    assert texter.user_turns() == ["does dry needling hurt?"]


# ---- replays ------------------------------------------------------------------------------


def forget_me_reply() -> str:
    domain = yaml.safe_load((DATA_DIR.parent / "domain.yml").read_text())["responses"]
    return fill(domain["utter_erasure_result"][-1]["text"])


def test_a_replayed_forget_me_is_refused_and_erases_nothing_newer(sms_assistant):
    texter = Texter(sms_assistant)
    earlier = twilio_form(texter.number, "what is sciatica", new_sid())
    forget = twilio_form(texter.number, "please forget me", new_sid())
    for form in (earlier, forget):
        response = texter.signed_post(form)
        assert response.status_code == 200
    assert joined(messages(response)) == flat(forget_me_reply())
    assert texter.user_turns() == []
    texter.text("is dry needling safe")
    # the same signed requests again, on either server: refused, nothing changes
    for replica, form in enumerate((forget, earlier)):
        replayed = texter.signed_post(form, replica)
        assert replayed.status_code == 409 and "answered before" in replayed.json()["message"]
    assert texter.user_turns() == ["is dry needling safe"]
    # what is kept against replays leads back to no one
    with database(sms_assistant).connect() as connection:
        kept = [tuple(row) for row in connection.execute(sa.text("SELECT * FROM sms_message_sids"))]
    assert sms_state.sid_hash(forget["MessageSid"]) in {row[0] for row in kept}
    assert not [row for row in kept if texter.number in str(row) or forget["MessageSid"] in str(row)]


def prune_a_day_later(assistant: Assistant, number: str) -> None:
    """The one-day prune of stored replies (sms_state), run on this number's
    replies as it will be once they are a day old."""
    table = store.sms_messages
    with database(assistant).begin() as connection:
        connection.execute(
            table.update().where(table.c.sender_id == number)
            .values(received_at=store.now() - sms_state.KEEP_REPLIES - timedelta(minutes=1))
        )
        pruned = connection.execute(
            table.delete().where(table.c.received_at < store.now() - sms_state.KEEP_REPLIES)
        ).rowcount
    assert pruned >= 3


def test_a_stop_or_start_replayed_after_its_reply_was_pruned_is_refused(sms_assistant):
    texter = Texter(sms_assistant)
    stop, start, stop_again = (twilio_form(texter.number, word, new_sid()) for word in ("STOP", "START", "STOP"))
    for form, reply in ((stop, sms.STOP_TEXT), (start, sms.START_TEXT), (stop_again, sms.STOP_TEXT)):
        response = texter.signed_post(form)
        assert response.status_code == 200 and messages(response) == [fill(reply)]
    prune_a_day_later(sms_assistant, texter.number)
    assert texter.signed_post(start).status_code == 409
    assert texter.opted_out() and texter.text("what is sciatica") == []
    assert texter.text("START") == [fill(sms.START_TEXT)]
    assert texter.signed_post(stop).status_code == 409
    assert not texter.opted_out()
    assert texter.text("what is sciatica") and texter.user_turns() == ["what is sciatica"]


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


def signed(form: Dict[str, str]) -> Dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC_URL, form)}


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


# ---- without a token ---------------------------------------------------------------------


def test_settings_refuse_to_run_unsigned_unless_told_to():
    assert "TWILIO_AUTH_TOKEN" in sms.SmsSettings.from_env({}).problem
    assert "SMS_WEBHOOK_URL" in sms.SmsSettings.from_env({"TWILIO_AUTH_TOKEN": "t"}).problem
    development = sms.SmsSettings.from_env({"SMS_ALLOW_UNSIGNED": "true"})
    assert development.problem is None and development.allow_unsigned
    # a token always wins over the development flag
    signed_too = sms.SmsSettings.from_env(
        {"TWILIO_AUTH_TOKEN": "t", "SMS_WEBHOOK_URL": PUBLIC_URL, "SMS_ALLOW_UNSIGNED": "true"}
    )
    assert signed_too.problem is None and not signed_too.allow_unsigned
    assert (signed_too.rate_limit, signed_too.rate_window) == (20, 600)
    for bad in (
        {"SMS_RATE_LIMIT": "lots"}, {"SMS_RATE_LIMIT": "0"}, {"SMS_RATE_WINDOW": "-5"},
        {"SMS_WEBHOOK_URL": "sms.clinic.test/webhooks/sms/webhook"}, {"SMS_WEBHOOK_URL": "ftp://sms.clinic.test/"},
    ):
        env = {"TWILIO_AUTH_TOKEN": "t", "SMS_WEBHOOK_URL": PUBLIC_URL, **bad}
        assert list(bad)[0] in sms.SmsSettings.from_env(env).problem


# The channel alone on a Sanic server, in its own process, replying with an
# echo instead of the assistant (and never to the text HANG_ON, if set).
CHANNEL_ALONE = """
import asyncio, os, sys
from sanic import Sanic
from channels.sms import SmsInput

async def echo(message):
    if message.text == os.environ.get("HANG_ON"):
        await asyncio.sleep(3600)
    await message.output_channel.send_text_message(message.sender_id, "You said: " + message.text)

app = Sanic("sms_alone")
app.blueprint(SmsInput.from_credentials(None).blueprint(echo), url_prefix="/webhooks/sms")
app.run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False)
"""


@contextlib.contextmanager
def channel_alone(tmp_path: Path, name: str = "channel", **env: str):
    """Yields (base URL, log path) of the channel started with this
    environment (several share tmp_path's database)."""
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMS_"))}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", CHANNEL_ALONE, str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**clean, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}", **env},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                requests.get(url + "/webhooks/sms/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
        yield url, log_path
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(30)


def test_without_a_token_the_channel_refuses_and_says_so(tmp_path):
    with channel_alone(tmp_path) as (url, log_path):
        response = requests.post(url + PATH, data=twilio_form(new_number(), "hello", new_sid()), timeout=30)
        assert response.status_code == 503
        assert "TWILIO_AUTH_TOKEN" in response.json()["message"]
        assert requests.get(url + "/webhooks/sms/", timeout=30).status_code == 503
    assert "SMS channel OFF" in log_path.read_text()


def test_the_development_flag_runs_it_unsigned_with_a_warning(tmp_path):
    with channel_alone(tmp_path, SMS_ALLOW_UNSIGNED="true") as (url, log_path):
        form = twilio_form(new_number(), "hello & <goodbye>", new_sid())
        response = requests.post(url + PATH, data=form, timeout=30)
        assert response.status_code == 200
    assert [m.text for m in ElementTree.fromstring(response.content)] == ["You said: hello & <goodbye>"]
    assert b"hello &amp; &lt;goodbye&gt;" in response.content
    assert "accepts UNSIGNED requests" in log_path.read_text()


SIGNED_ENV = {"TWILIO_AUTH_TOKEN": TOKEN, "SMS_WEBHOOK_URL": PUBLIC_URL}


def test_connection_overrides_in_the_webhook_url_are_signed_with_or_without_them(tmp_path):
    """Twilio reads the fragment (#rc=...) and never sends it; a signature
    over the URL with it or without it is Twilio's, any other is not."""
    configured = PUBLIC_URL + "#rc=3&rp=ct,rt&tt=15000"
    with channel_alone(tmp_path, TWILIO_AUTH_TOKEN=TOKEN, SMS_WEBHOOK_URL=configured) as (url, _):

        def post(signed_url: str, token: str = TOKEN) -> requests.Response:
            form = twilio_form(new_number(), "hello", new_sid())
            signature = RequestValidator(token).compute_signature(signed_url, form)
            return requests.post(url + PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)

        for signed_url in (configured, PUBLIC_URL):
            response = post(signed_url)
            assert response.status_code == 200, response.text
            assert messages(response) == ["You said: hello"]
        for forged in (PUBLIC_URL + "#rc=5", configured.replace("sms.clinic.test", "evil.test")):
            assert post(forged).status_code == 403
        assert post(PUBLIC_URL, token="not-the-token").status_code == 403


@contextlib.contextmanager
def shared_database(tmp_path: Path, kind: str):
    """The database two channels share: SQLite (the default profile) or
    PostgreSQL (the scaled one)."""
    if kind == "SQLite":
        yield f"sqlite:///{tmp_path / 'clinic.db'}"
        return
    require(postgres_up(), "PostgreSQL")
    with scratch_database("sms") as url:
        yield url


@pytest.mark.parametrize("kind", ["SQLite", "PostgreSQL"])
def test_a_retry_after_its_server_died_is_answered_by_the_other(tmp_path, kind):
    """The channel alone on two servers sharing the database: the first
    hangs in the turn and is killed, Twilio's retry goes to the other."""
    with shared_database(tmp_path, kind) as url, \
            channel_alone(tmp_path, "dying", HANG_ON="hello?", DATABASE_URL=url, **SIGNED_ENV) as (dying, _), \
            channel_alone(tmp_path, "living", DATABASE_URL=url, **SIGNED_ENV) as (living, _):
        form = twilio_form(new_number(), "hello?", new_sid())
        headers = signed(form)

        def deliver() -> None:
            with contextlib.suppress(requests.RequestException):  # dies with its server
                requests.post(dying + PATH, data=form, headers=headers, timeout=30)

        delivery = threading.Thread(target=deliver)
        delivery.start()
        time.sleep(1.5)
        os.kill(process_id(sys.executable, "-c", CHANNEL_ALONE, dying.rsplit(":", 1)[1]), signal.SIGKILL)
        delivery.join(30)
        started = time.monotonic()
        retry = requests.post(living + PATH, data=form, headers=headers, timeout=30)
        seconds = time.monotonic() - started
        assert retry.status_code == 200 and messages(retry) == ["You said: hello?"]
        assert seconds < sms.REPLY_DEADLINE
        again = requests.post(living + PATH, data=form, headers=headers, timeout=30)
        assert again.content == retry.content
        # a day later, its reply pruned: the same request is a replay
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            table = store.sms_messages
            connection.execute(table.delete().where(table.c.message_sid == form["MessageSid"]))
        engine.dispose()
        assert requests.post(living + PATH, data=form, headers=headers, timeout=30).status_code == 409
    print(f"\nretry after its server died ({kind}): answered by the other in {seconds:.1f} s")


# ---- a server killed mid-turn (last on two servers: the killed one is started again) ----


def test_a_retry_after_its_server_was_killed_mid_turn_is_answered(sms_assistant):
    """Twilio retries a text whose first delivery died with its server: the
    other server runs the turn once the dead one stops renewing its claim."""
    texter = Texter(sms_assistant)
    sid, question = new_sid(), "what is dry needling"
    victim = sms_assistant.rasa_server_pid(1)
    actions = sms_assistant.action_server_pid()
    first: Dict[str, object] = {}

    def deliver() -> None:
        try:
            first["reply"] = texter.text(question, sid, replica=1)
        except Exception as error:  # the connection dies with the server
            first["error"] = error

    delivery = threading.Thread(target=deliver)
    os.kill(actions, signal.SIGSTOP)  # holds the turn, so it surely runs when the server dies
    try:
        delivery.start()
        time.sleep(1.5)
        os.kill(victim, signal.SIGKILL)
        delivery.join(30)
    finally:
        os.kill(actions, signal.SIGCONT)
    assert "error" in first, first

    started = time.monotonic()
    retry = texter.text(question, sid)
    seconds = time.monotonic() - started
    expected = flat(plain_text(answer("utter_faq/what_is_dry_needling", "faq_what_is_dry_needling.yml")))
    # the answer; on a machine too busy for the turn's budget, the apology
    # with the clinic's phone or "too slow" (the turn still runs): never nothing
    too_busy = {flat(clinic_facts()["assistant_unavailable"]), flat(sms.SLOW_TEXT)}
    reply = joined(retry)
    assert reply.startswith(expected) or reply in too_busy, reply
    assert seconds < 15
    # the turn ran again, once, on the live server; later retries get its reply
    deadline = time.monotonic() + 20
    while texter.user_turns().count(question) < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert texter.user_turns().count(question) == 1
    again = joined(texter.text(question, sid))
    assert again == reply or again.startswith(expected)
    print(f"\nretry after its server was killed mid-turn, answered in {seconds:.1f} s: {reply[:50]}...")

    # scripts/serve.py starts the killed server again; wait for it
    deadline = time.monotonic() + 240
    while True:
        try:
            if requests.get(sms_assistant.replica_url(1), timeout=2).ok:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the killed server was not started again"
        time.sleep(1)


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


# ---- an SMS conversation is reachable only through the signed webhook ----------------


def _sms_conversation_with_opt_out(sms_assistant) -> Texter:
    """A number that asked a health question, then texted STOP."""
    texter = Texter(sms_assistant)
    texter.text("is it normal to be sore after dry needling?")
    assert texter.text("STOP") == [fill(sms.STOP_TEXT)]
    return texter


def _unchanged(sms_assistant, texter: Texter, turns: List[str]) -> None:
    assert texter.user_turns() == turns
    with database(sms_assistant).connect() as connection:
        opted_out = connection.execute(
            sa.text("SELECT count(*) FROM sms_opt_outs WHERE sender_id = :n"), {"n": texter.number}
        ).scalar()
    assert opted_out == 1
    assert texter.text("what is dry needling?") == []  # still opted out


@pytest.mark.parametrize("spelling", ["{n}", " {n}", "{n} ", "tel:{n}"])
def test_rest_cannot_read_erase_or_write_an_sms_conversation(sms_assistant, spelling):
    texter = _sms_conversation_with_opt_out(sms_assistant)
    turns = texter.user_turns()
    for text in ("please forget me", "delete my data", "what did I ask before?"):
        response = requests.post(
            f"{sms_assistant.url}/webhooks/rest/webhook",
            json={"sender": spelling.format(n=texter.number), "message": text},
            timeout=30,
        )
        assert response.status_code == 200
        issued = response.headers["X-Conversation-Id"]
        assert issued.startswith("rest-") and texter.number not in issued
        assert {m["recipient_id"] for m in response.json()} == {issued}
    _unchanged(sms_assistant, texter, turns)


def test_the_website_chat_cannot_read_vote_on_or_join_an_sms_conversation(sms_assistant):
    texter = _sms_conversation_with_opt_out(sms_assistant)
    turns = texter.user_turns()
    history = requests.get(f"{sms_assistant.url}/chat/history", params={"session_id": texter.number}, timeout=30)
    assert history.status_code == 403 and texter.number not in history.text
    vote = requests.post(
        f"{sms_assistant.url}/chat/feedback",
        json={"session_id": texter.number, "answer": answer("utter_faq/soreness_after", "faq_soreness_after.yml"),
              "helpful": False},
        timeout=30,
    )
    assert vote.status_code == 403

    with ChatVisitor(sms_assistant.url) as visitor:
        confirmed = visitor.start(session_id=texter.number)
        assert confirmed != texter.number and confirmed.startswith("web-")
        visitor.say("please forget me")
        # naming the number in a message does not reach it either
        refused = visitor.say("what did I ask?", session_id=texter.number)
        assert refused[0].get("error") is True
    _unchanged(sms_assistant, texter, turns)
