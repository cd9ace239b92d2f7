"""Keeps what the assistant could not answer for clinic staff to review:
messages it did not understand confidently, and questions the clinic's
posts do not answer. The visitor has already had their reply."""

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from clinic import store
from clinic.nlu_labels import ANSWER_KEY, NOT_COVERED, RESPONSE_SELECTOR_KEY

logger = logging.getLogger(__name__)
TOP_PREDICTIONS = 3


def predictions(message: Dict[Text, Any]) -> List[Dict[Text, Any]]:
    """The top intents and answers with their confidences."""
    found = [
        {"name": item.get("name"), "confidence": round(item.get("confidence") or 0.0, 4)}
        for item in (message.get("intent_ranking") or [])[:TOP_PREDICTIONS]
    ]
    for selector in (message.get(RESPONSE_SELECTOR_KEY) or {}).values():
        if isinstance(selector, dict):
            found += [
                {"name": item.get(ANSWER_KEY), "confidence": round(item.get("confidence") or 0.0, 4)}
                for item in (selector.get("ranking") or [])[:TOP_PREDICTIONS]
            ]
    return found


class ActionRecordForReview(Action):
    def name(self) -> Text:
        return "action_record_for_review"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        message = tracker.latest_message
        intent = (message.get("intent") or {}).get("name")
        kind = "unknown_topic" if intent == NOT_COVERED else "low_confidence"
        try:
            await store.run_blocking(
                store.record_fallback,
                tracker.sender_id,
                tracker.get_latest_input_channel(),
                message.get("text") or "",
                kind,
                predictions(message),
            )
        except Exception:  # a database outage must not break the conversation
            logger.exception("could not record a %s message for review", kind)
        return []
