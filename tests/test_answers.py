"""actions/answers.py: the rest of a message's questions, the disclaimer and
the offer after Rasa's first answer; and follow-ups resolved from the topic
of the last answer."""

import pytest
from rasa_sdk.events import SlotSet

from actions.answers import ActionAnswerFollowUp, ActionCompleteAnswer
from clinic import store
from clinic.facts import clinic_facts
from test_actions import run, tracker


def questions(*answers):
    return [{"text": f"question about {answer}", "intent": answer.split("/")[0], "answer": answer, "confidence": 0.9}
            for answer in answers]


def with_questions(*answers, **kwargs):
    state = tracker(**kwargs)
    state.latest_message["questions"] = questions(*answers)
    return state


async def test_the_other_questions_are_answered_in_order_then_the_disclaimer(database):
    state = with_questions("faq/what_is_dry_needling", "not_covered/insurance", "faq/how_many_sessions")
    messages, events = await run(ActionCompleteAnswer(), state)
    assert [m.get("response") for m in messages[:2]] == ["utter_not_covered/insurance", "utter_faq/how_many_sessions"]
    assert messages[2]["text"] == clinic_facts()["disclaimer_short"]
    # the last answer asks what to do next: the booking offer, once
    assert messages[3]["text"] == clinic_facts()["booking_offer"]
    assert SlotSet("topic", "faq/how_many_sessions") in events and SlotSet("offered", "booking_details") in events
    # the part the posts do not answer is kept for staff, with its own words
    [row] = store.rows(store.fallbacks)
    assert row["text"] == "question about not_covered/insurance" and row["kind"] == "unknown_topic"


async def test_a_single_question_gets_no_repeat_and_its_topic_remembered():
    messages, events = await run(ActionCompleteAnswer(), tracker(topic="faq/safety", slots={"disclaimer_shown": True}))
    assert messages == []
    assert events == [SlotSet("topic", "faq/safety"), SlotSet("offered", None)]


async def test_the_offer_is_made_once_per_conversation():
    state = tracker(topic="faq/how_quickly", slots={"disclaimer_shown": True})
    state.events.append({"event": "bot", "text": clinic_facts()["booking_offer"], "metadata": {"answer": "offer"}})
    messages, events = await run(ActionCompleteAnswer(), state)
    assert messages == [] and SlotSet("offered", None) in events


async def test_after_the_booking_details_a_yes_gets_them_again():
    """"sure, let's do it" after how to book: how to book, with the form and the phone."""
    state = tracker(intent="book_appointment", slots={"disclaimer_shown": True})
    _, events = await run(ActionCompleteAnswer(), state)
    assert SlotSet("offered", "booking_details") in events
    messages, _ = await run(ActionAnswerFollowUp(), tracker(intent="affirm", slots={"offered": "booking_details"}))
    assert messages[0]["text"] == clinic_facts()["booking_details"]


async def test_several_muscles_named_each_get_their_answer_but_not_the_body_part():
    entities = [{"entity": "muscle", "value": value} for value in ("butt", "QL", "glute med")]
    messages, _ = await run(
        ActionCompleteAnswer(), tracker(intent="ask_muscle", entities=entities, slots={"disclaimer_shown": True})
    )
    # Rasa's rule answered the QL; the glute medius follows, the "butt" does not
    assert [(m["response"], m["slots"]) for m in messages] == [("utter_muscle", {"muscle_id": "gluteus_medius"})]


async def test_a_question_about_the_visitors_own_case_in_a_list_gets_the_notice():
    messages, _ = await run(ActionCompleteAnswer(), with_questions("not_covered/prices", "ask_personal_advice"))
    assert messages[0]["text"] == clinic_facts()["own_case_notice"]


@pytest.mark.parametrize(
    "intent,topic,expected",
    [
        ("ask_duration", "faq/soreness_after", ("faq/soreness_after", "duration")),
        ("ask_duration", "faq/worse_after", ("faq/worse_after", "duration")),
        ("ask_duration", "faq/how_many_sessions", ("not_covered/session_length", None)),
        ("ask_duration", "faq/how_quickly", ("faq/how_quickly", None)),
        ("ask_duration", "faq/practitioner", (None, None)),
        ("ask_duration", "", (None, None)),
        ("ask_more", "faq/what_is_dry_needling", ("faq/what_is_dry_needling", "more")),
        ("ask_more", "muscle/piriformis", ("faq/muscles_involved", "more")),
        ("ask_more", "not_covered/hours", ("not_covered/hours", None)),
        ("ask_more", "", (None, None)),
        ("ask_more", "report_emergency", (None, None)),
    ],
)
def test_follow_ups_are_resolved_from_the_last_topic_or_not_at_all(intent, topic, expected):
    assert ActionAnswerFollowUp.resolve(intent, topic) == expected


async def test_how_long_after_the_soreness_answer_gets_its_duration_variation():
    messages, events = await run(ActionAnswerFollowUp(), tracker(intent="ask_duration", slots={"topic": "faq/soreness_after"}))
    assert messages == [{**messages[0], "response": "utter_faq/soreness_after", "slots": {"detail": "duration"}}]
    assert SlotSet("topic", "faq/soreness_after") in events


async def test_a_follow_up_with_no_topic_asks_which_one_is_meant():
    messages, _ = await run(ActionAnswerFollowUp(), tracker(intent="ask_more"))
    assert [m["response"] for m in messages] == ["utter_clarify"]


@pytest.mark.parametrize("offered,intent,expected", [
    ("booking_details", "affirm", "booking"),
    ("booking_details", "deny", "utter_deny"),
    (None, "affirm", "utter_affirm"),
    (None, "deny", "utter_deny"),
])
async def test_yes_and_no_answer_what_was_offered(offered, intent, expected):
    messages, events = await run(ActionAnswerFollowUp(), tracker(intent=intent, slots={"offered": offered}))
    if expected == "booking":
        assert messages[0]["text"] == clinic_facts()["booking_details"]
    else:
        assert [m["response"] for m in messages] == [expected]
    assert events == [SlotSet("offered", None)]
