"""The medical disclaimer, drawn from the clinic's own: on request, whenever
a visitor asks about their own case, and once per conversation with the
first health answer (`health_disclaimer`, which action_complete_answer uses)."""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.channels import has_buttons
from clinic.answers import DISCLAIMER, MUSCLE, NON_HEALTH_LABELS, label_kind
from clinic.facts import clinic_facts
from clinic.nlu_labels import FAQ

SHOWN_SLOT = "disclaimer_shown"


def is_health_answer(label: str) -> bool:
    """Whether an answer gives health information (what the posts say)."""
    return label_kind(label) in (FAQ, MUSCLE) and label not in NON_HEALTH_LABELS


def health_disclaimer(dispatcher: CollectingDispatcher, tracker: Tracker, labels: List[str]) -> List[EventType]:
    """The short disclaimer, if this turn gave health information and the
    conversation has not had it yet."""
    if tracker.get_slot(SHOWN_SLOT) or not any(is_health_answer(label) for label in labels):
        return []
    facts = clinic_facts()
    dispatcher.utter_message(text=facts["disclaimer_short"] if has_buttons(tracker) else facts["disclaimer_sms"], answer=DISCLAIMER)
    return [SlotSet(SHOWN_SLOT, True)]


class ActionMedicalDisclaimer(Action):
    def name(self) -> Text:
        return "action_medical_disclaimer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        facts = clinic_facts()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        full = facts["disclaimer_full"] if has_buttons(tracker) else facts["disclaimer_sms"]
        if intent == "ask_personal_advice":
            dispatcher.utter_message(text=facts["own_case_notice"], answer="ask_personal_advice")
            dispatcher.utter_message(text=full, answer=DISCLAIMER)
        else:
            dispatcher.utter_message(text=full, answer="ask_disclaimer")
        return [SlotSet(SHOWN_SLOT, True)]
