"""Opt-out, opt-in and help keywords over the SMS channel, Twilio's
OptOutType, and an SMS conversation reachable only through the signed
webhook: against the assistant as two Rasa servers sharing the database."""

from typing import List

import pytest
import requests
import sqlalchemy as sa
from chat_client import ChatVisitor

from channels import sms, sms_text
from channels.sms_text import plain_text
from clinic.facts import clinic_facts, fill
from sms_texter import Texter, answer, database, flat, joined


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
