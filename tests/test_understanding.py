"""What visitors get for the kinds of message the assistant must understand,
over the REST webhook of the running assistant: the questions, long messages,
several questions at once, follow-ups, emergencies in plain words and their
false alarms, Spanish. Each reply is labelled as clinic.evaluation labels it."""

import pytest

from clinic.evaluation import Visitor, erasure_confirmations
from clinic.facts import clinic_facts
from conftest import texts


def conversation(assistant, *messages):
    """The labels of the reply to each message, and the last reply's texts."""
    import requests

    visitor = Visitor(requests.Session(), assistant.url, assistant.token)
    labels = []
    for message in messages:
        visitor.say(message)
        labels.append(visitor.labels(erasure_confirmations()))
    return labels, texts(visitor.last_reply)


@pytest.mark.parametrize("message", [
    "can sciatica get worse after treatment?",
    "Can dry needling make my sciatica worse?",
])
def test_the_clinics_headline_question_gets_the_posts_answer(assistant, message):
    [labels], reply = conversation(assistant, message)
    assert labels == ["faq/worse_after"]
    assert not reply.startswith("Yes") and "24-48 hours" in reply


@pytest.mark.parametrize("message", [
    "I feel worse after my session, is that normal?",
    "the pain in my leg has been bad for months, can dry needling help?",
    "my muscle twitched a lot during the needling, is that bad?",
    "there's a small bruise where the needle went in",
])
def test_normal_after_effects_and_old_pain_never_get_911(assistant, message):
    [labels], reply = conversation(assistant, message)
    assert "report_emergency" not in labels and labels
    assert "911" not in reply


@pytest.mark.parametrize("message", [
    "tonight he can't properly feel his feet and things feel strange when he goes to the bathroom",
    "when I lie down my whole bottom area goes cold and numb and I'm having a hard time peeing",
    "/greet@1 I lost bladder control after needling",
    "my foot keeps dragging and I can't lift my toes",
    "my leg is getting weaker by the day",
    "fever and bad back pain since yesterday",
    "I slipped on the ice yesterday and now the pain shoots down both legs",
    "i cnt feel anything when i wipe",
    "My partner has had sciatica for years and we wanted to book. Since this morning he can't hold his pee. "
    "Do you have openings this week?",
])
def test_emergencies_in_plain_words_get_911_first(assistant, message):
    [labels], reply = conversation(assistant, message)
    assert labels[:1] == ["report_emergency"]
    assert reply.startswith("Please call 911 or go to the nearest emergency room")


@pytest.mark.parametrize("message", [
    "no fever or anything, just achy after the needling today",
    "not an emergency but my glute is bruised and achy after yesterday's needling, normal?",
    "no numbness down there and no bladder problems, just sore glutes since my session, how long will it last?",
])
def test_red_flags_the_visitor_denies_never_get_911(assistant, message):
    [labels], reply = conversation(assistant, message)
    assert labels and "report_emergency" not in labels and "911" not in reply


@pytest.mark.parametrize("pushback", [
    "its not that bad honestly, i just want to book a dry needling appt",
    "can I wait till tomorrow and come see you instead?",
])
def test_after_911_pushback_gets_911_again_before_anything_else(assistant, pushback):
    labels, reply = conversation(assistant, "i can't hold my pee since last night and my leg is numb", pushback)
    assert labels == [["report_emergency"], ["report_emergency"]]
    assert "911" in reply and clinic_facts()["booking_url"] not in reply


@pytest.mark.parametrize("message", [
    "no siento nada entre las piernas y no puedo orinar, ayuda",
    "tengo ciática y no puedo controlar la orina desde ayer",
])
def test_an_emergency_in_spanish_gets_911_first_in_spanish(assistant, message):
    [labels], reply = conversation(assistant, message)
    assert labels[:1] == ["report_emergency"]
    assert reply.startswith("Llame al 911")


@pytest.mark.parametrize("message,expected", [
    ("Quick q's: is it safe, does it hurt, and how long is a session?",
     ["faq/safety", "faq/soreness_after", "not_covered/session_length"]),
    ("1) does it help sciatica 2) how many sessions 3) do you take aetna",
     ["faq/does_it_help", "faq/how_many_sessions", "not_covered/insurance"]),
    ("wat is dry needling, does it hurt, and how much",
     ["faq/what_is_dry_needling", "faq/soreness_after", "not_covered/prices"]),
])
def test_questions_listed_the_way_people_text_them_each_get_their_answer(assistant, message, expected):
    [labels], _ = conversation(assistant, message)
    assert labels == expected


def test_several_questions_get_each_answer_in_the_order_asked(assistant):
    [labels], _ = conversation(assistant, "What is dry needling and how many sessions do people usually need?")
    assert labels == ["faq/what_is_dry_needling", "faq/how_many_sessions"]


def test_a_question_the_posts_do_not_answer_is_admitted_and_the_other_answered(assistant):
    [labels], _ = conversation(assistant, "does dry needling help sciatica? and do you take insurance?")
    assert labels == ["faq/does_it_help", "not_covered/insurance"]


def test_the_question_after_context_is_the_one_answered(assistant):
    [labels], _ = conversation(
        assistant,
        "My partner has had sciatica on and off for years, physio, strong painkillers, an MRI. "
        "Could dry needling do anything for him?",
    )
    assert labels == ["faq/does_it_help"]


def test_first_person_questions_about_the_posts_get_the_answer_and_the_disclaimer(assistant):
    [labels], reply = conversation(assistant, "The pain in my leg has been bad for months, can it help?")
    # whether it helps, or how it relieves pain: the posts' general answer, not a refusal
    assert labels in (["faq/does_it_help"], ["faq/pain_relief"])
    assert clinic_facts()["disclaimer_short"] in reply and clinic_facts()["own_case_notice"] not in reply


def test_how_long_after_the_soreness_answer_is_about_the_soreness(assistant):
    labels, reply = conversation(assistant, "is it normal to be sore after dry needling?", "how long does that usually last?")
    assert labels == [["faq/soreness_after"], ["faq/soreness_after"]]
    assert "24-48 hours" in reply


def test_follow_ups_keep_the_thread(assistant):
    labels, _ = conversation(
        assistant, "does it help sciatica?", "what about if the pain is mostly in my butt?", "and the hamstrings?",
    )
    assert labels[1:] == [["muscle/glutes"], ["muscle/hamstrings"]]
    labels, _ = conversation(assistant, "how many sessions will I need?", "and how long is each one?")
    assert labels[1] == ["not_covered/session_length"]


def test_tell_me_more_gives_more_about_the_last_answer(assistant):
    labels, reply = conversation(assistant, "what is dry needling?", "tell me more")
    assert labels[1] == ["faq/what_is_dry_needling"]
    assert "twitch" in reply  # the longer version


def test_a_follow_up_with_nothing_before_it_is_asked_about(assistant):
    labels, _ = conversation(assistant, "how long does that last?")
    assert labels == [["clarify"]]


def test_yes_to_the_offer_gets_the_booking_details_and_no_declines(assistant):
    labels, _ = conversation(assistant, "how many sessions will I need?", "yes")
    assert labels[1] == ["book_appointment"]
    labels, _ = conversation(assistant, "how many sessions will I need?", "no thanks")
    assert labels[1] == ["deny"]


@pytest.mark.parametrize("message", ["hola, ¿la punción seca sirve para la ciática?", "¿cuánto cuesta una sesión?"])
def test_spanish_gets_the_spanish_notice_with_the_phone(assistant, message):
    [labels], reply = conversation(assistant, message)
    assert labels == ["speak_spanish"]
    assert clinic_facts()["clinic_phone"] in reply and "inglés" in reply


@pytest.mark.parametrize("message,expected", [
    ("Is there a discount on the first visit?", "book_appointment"),
    ("Am I chatting with a real person?", "ask_if_bot"),
    ("What's your cancellation policy?", "not_covered/policies"),
])
def test_the_questions_that_used_to_fail(assistant, message, expected):
    [labels], _ = conversation(assistant, message)
    assert labels == [expected]
