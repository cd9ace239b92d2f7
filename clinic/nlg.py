"""Response generation that fills the clinic's facts into every response.

Registered in endpoints.yml (`nlg: type: clinic.nlg.ClinicNLG`), so a response
or FAQ answer can say {clinic_phone} and data/clinic.yml stays the one place
where the phone number is written.

An action may also ask for a response as if some slots had other values,
`dispatcher.utter_message(response="utter_muscle", slots={"muscle_id":
"hamstrings"})`: Rasa renders an action's responses before it applies the
action's events, so this is how one action sends several variations of a
conditional response (a muscle's answer, an answer's "more" variation).
"""

from typing import Any, Dict, Optional, Text

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from clinic.facts import clinic_facts
from clinic.tracker_store import ERASURE_FAILED_SLOT, erasure_outcome

ERASURE_RESULT = "utter_erasure_result"
# Said in the visitor's language when the message was Spanish (components/language.py).
IN_THE_VISITORS_LANGUAGE = {"utter_emergency", "utter_emergency_reminder"}
LANGUAGE_SLOT = "language"


class ClinicNLG(TemplatedNaturalLanguageGenerator):
    def __init__(
        self, endpoint_config: Optional[EndpointConfig] = None, domain: Domain = None
    ) -> None:
        super().__init__((domain or Domain.empty()).responses)
        self.facts = clinic_facts()

    async def generate(
        self,
        utter_action: Text,
        tracker: DialogueStateTracker,
        output_channel: Text,
        **kwargs: Any,
    ) -> Optional[Dict[Text, Any]]:
        overrides = kwargs.pop("slots", None)
        if utter_action == ERASURE_RESULT and erasure_outcome(tracker) is False:
            # The erase action failed or never reached the action server (its
            # slot then keeps its initial "not failed"): never confirm that.
            overrides = {**(overrides or {}), ERASURE_FAILED_SLOT: True}
        language = (tracker.latest_message.parse_data or {}).get(LANGUAGE_SLOT) if tracker.latest_message else None
        if utter_action in IN_THE_VISITORS_LANGUAGE and language:
            overrides = {**(overrides or {}), LANGUAGE_SLOT: language}
        if isinstance(overrides, dict) and overrides:
            tracker = tracker.copy()
            for name, value in overrides.items():
                if name in tracker.slots:
                    tracker.update(SlotSet(name, value))
        return await super().generate(
            utter_action, tracker, output_channel, **{**self.facts, **kwargs}
        )
