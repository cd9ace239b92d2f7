"""Works out which of the nine muscles a visitor asked about; the answer is
the matching variation of `utter_muscle` (data/nlu/muscles.yml)."""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic.answers import muscle_ids
from clinic.muscles import muscle_id_for


class ActionExplainMuscle(Action):
    def name(self) -> Text:
        return "action_explain_muscle"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        # A muscle named in this message wins over one remembered from before,
        # and a muscle over a body part ("my butt": the glutes).
        named = muscle_ids(tracker.latest_message)
        if named:
            return [SlotSet("muscle_id", named[0])]
        return [SlotSet("muscle_id", muscle_id_for(tracker.get_slot("muscle")))]
