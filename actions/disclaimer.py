"""The medical disclaimer, drawn from the clinic's own: on request, whenever
a visitor asks about their own case, and once per conversation with the
first health answer."""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.channels import has_buttons
from clinic.facts import clinic_facts

SHOWN_SLOT = "disclaimer_shown"
# Answers about the clinic itself rather than health.
NON_HEALTH_ANSWERS = {"faq/practitioner"}


def answered_topic(tracker: Tracker) -> str:
    message = tracker.latest_message
    intent = (message.get("intent") or {}).get("name")
    selector = (message.get("response_selector") or {}).get(intent) or {}
    return (selector.get("response") or {}).get("intent_response_key") or ""


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
            dispatcher.utter_message(text=facts["own_case_notice"])
            dispatcher.utter_message(text=full)
        elif intent == "ask_disclaimer":
            dispatcher.utter_message(text=full)
        elif tracker.get_slot(SHOWN_SLOT) or answered_topic(tracker) in NON_HEALTH_ANSWERS:
            return []
        else:
            short = facts["disclaimer_short"] if has_buttons(tracker) else facts["disclaimer_sms"]
            dispatcher.utter_message(text=short)
        return [SlotSet(SHOWN_SLOT, True)]
