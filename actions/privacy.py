"""A visitor's "forget me": erase their conversation and everything stored about them."""

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic import store

logger = logging.getLogger(__name__)


class ActionEraseVisitorData(Action):
    def name(self) -> Text:
        # clinic.tracker_store erases the conversation itself when it saves
        # a turn in which this action ran.
        return "action_erase_visitor_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        try:
            await store.run_blocking(store.erase_sender, tracker.sender_id)
        except Exception:
            logger.exception("could not erase a visitor's stored data")
            return [SlotSet("erasure_failed", True)]
        return [SlotSet("erasure_failed", False)]
