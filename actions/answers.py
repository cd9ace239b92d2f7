"""Completing an answer turn, and answering follow-ups in its context.

`action_complete_answer` runs after Rasa's own answer to a message's first
question (its rules: utter_faq, utter_not_covered, utter_muscle, the booking
details): it answers the message's other questions in the order asked
(parse data `questions`, components/questions.py; further muscles named),
adds the medical disclaimer once per conversation, offers the booking
details after the answers that lead to a decision, and remembers what the
turn was about (slot `topic`) for follow-ups.

`action_answer_follow_up` answers "tell me more", "how long does that
last?" and a "yes" or "no" to the offer, from `topic` and `offered`, and asks
which topic is meant when the follow-up cannot be tied to one.
"""

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.booking import utter_booking_details
from actions.disclaimer import health_disclaimer
from clinic import store
from clinic.answers import MUSCLE, OFFER, label_kind, question_labels
from clinic.facts import clinic_facts
from clinic.nlu_labels import FAQ, NOT_COVERED

logger = logging.getLogger(__name__)

TOPIC_SLOT = "topic"
OFFERED_SLOT = "offered"
BOOKING_OFFER = "booking_details"
# After these answers a visitor is deciding whether to come in: offer how to
# book (once per conversation).
OFFER_BOOKING_AFTER = {"faq/how_many_sessions", "faq/how_quickly"}
# "How long does that last?" after these answers: the answer's `duration`
# variation, or another answer.
DURATION_VARIATION = {"faq/soreness_after", "faq/worse_after", "faq/safety"}
DURATION_ANSWERS = {
    "faq/how_many_sessions": "not_covered/session_length",
    "not_covered/session_length": "not_covered/session_length",
    "faq/how_quickly": "faq/how_quickly",
    "faq/pain_relief": "faq/how_quickly",
}
# "Tell me more" after a muscle: how the muscles and the nerve interact.
MORE_ABOUT_MUSCLES = "faq/muscles_involved"


def utter_answer(dispatcher: CollectingDispatcher, tracker: Tracker, label: str, detail: Optional[str] = None) -> None:
    """Sends the answer a label names (clinic.answers), or its `detail`
    variation ("more", "duration") where the answer has one."""
    slots: Dict[str, Any] = {"detail": detail} if detail else {}
    if label_kind(label) == MUSCLE:
        dispatcher.utter_message(response="utter_muscle", slots={"muscle_id": label.split("/", 1)[1]})
    elif "/" in label:
        dispatcher.utter_message(response="utter_" + label, **({"slots": slots} if slots else {}))
    elif label == "book_appointment":
        utter_booking_details(dispatcher, tracker)
    elif label == "ask_personal_advice":
        dispatcher.utter_message(text=clinic_facts()["own_case_notice"], answer=label)
    else:
        logger.warning("no answer is known for %s", label)


def _record_unknown_topic(tracker: Tracker, text: str) -> None:
    try:
        store.record_fallback(tracker.sender_id, tracker.get_latest_input_channel(), text, "unknown_topic", [])
    except Exception:  # a database outage must not break the conversation
        logger.exception("could not record a question the posts do not answer")


def _offered_before(tracker: Tracker) -> bool:
    return any(
        event.get("event") == "bot" and (event.get("metadata") or {}).get("answer") in (OFFER, "book_appointment")
        for event in tracker.events
    )


class ActionCompleteAnswer(Action):
    def name(self) -> Text:
        return "action_complete_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        message = tracker.latest_message
        labels = question_labels(message)
        texts = {question["answer"]: question.get("text") for question in message.get("questions") or []}
        for label in labels[1:]:  # Rasa's rule answered the first
            utter_answer(dispatcher, tracker, label)
            if label_kind(label) == NOT_COVERED:
                await store.run_blocking(_record_unknown_topic, tracker, texts.get(label) or message.get("text") or "")
        events = health_disclaimer(dispatcher, tracker, labels)
        offer = None
        if (
            OFFER_BOOKING_AFTER & set(labels)
            and "book_appointment" not in labels
            and not _offered_before(tracker)
        ):
            dispatcher.utter_message(text=clinic_facts()["booking_offer"], answer=OFFER)
            offer = BOOKING_OFFER
        elif "book_appointment" in labels:
            # "sure, let's do it" after the booking details: how to book, again
            offer = BOOKING_OFFER
        return events + [SlotSet(TOPIC_SLOT, labels[-1]), SlotSet(OFFERED_SLOT, offer)]


class ActionAnswerFollowUp(Action):
    def name(self) -> Text:
        return "action_answer_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        topic = tracker.get_slot(TOPIC_SLOT) or ""
        if intent in ("affirm", "deny"):
            if tracker.get_slot(OFFERED_SLOT) == BOOKING_OFFER and intent == "affirm":
                utter_booking_details(dispatcher, tracker)
            else:
                dispatcher.utter_message(response="utter_" + intent)
            return [SlotSet(OFFERED_SLOT, None)]
        label, detail = self.resolve(intent, topic)
        if label is None:
            dispatcher.utter_message(response="utter_clarify")
            return [SlotSet(OFFERED_SLOT, None)]
        utter_answer(dispatcher, tracker, label, detail)
        if label_kind(label) == NOT_COVERED:
            await store.run_blocking(_record_unknown_topic, tracker, tracker.latest_message.get("text") or "")
        return [SlotSet(TOPIC_SLOT, label), SlotSet(OFFERED_SLOT, None)]

    @staticmethod
    def resolve(intent: Optional[str], topic: str):
        """(answer label, variation) for a follow-up after `topic`; (None,
        None) when it cannot be tied to the topic."""
        if intent == "ask_duration":
            if topic in DURATION_VARIATION:
                return topic, "duration"
            return DURATION_ANSWERS.get(topic), None
        if intent == "ask_more":
            kind = label_kind(topic)
            if kind == FAQ:
                return topic, "more"
            if kind == MUSCLE:
                return MORE_ABOUT_MUSCLES, "more"
            if kind == NOT_COVERED:
                return topic, None
        return None, None
