"""How to book: the new-patient offer, the online form, call or text."""

import re
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.channels import has_buttons
from clinic.facts import clinic_facts


def booking_buttons() -> List[Dict[str, str]]:
    """Link buttons: the form, and the phone as tap-to-call / tap-to-text."""
    facts = clinic_facts()
    phone = "+1" + re.sub(r"\D", "", facts["clinic_phone"])[-10:]
    return [
        {"title": facts["booking_button_form"], "url": facts["booking_url"], "payload": facts["booking_url"]},
        {"title": facts["booking_button_call"], "url": f"tel:{phone}", "payload": f"tel:{phone}"},
        {"title": facts["booking_button_text"], "url": f"sms:{phone}", "payload": f"sms:{phone}"},
    ]


def utter_booking_details(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    text = clinic_facts()["booking_details"]
    buttons = booking_buttons() if has_buttons(tracker) else None
    dispatcher.utter_message(text=text, buttons=buttons, answer="book_appointment")


class ActionBookingDetails(Action):
    def name(self) -> Text:
        return "action_booking_details"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        utter_booking_details(dispatcher, tracker)
        return []
