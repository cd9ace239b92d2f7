"""Takes a "/intent" command as an intent only when the assistant itself issued it.

Rasa reads any message that starts with "/" as a command: its
RegexMessageHandler, which runs after every component of the pipeline,
replaces the prediction with the named intent. So a visitor who types "/faq"
got an answer-less turn, "/ask_muscle{"muscle": 42}" broke the muscle
answer, and "/greet@1 I lost bladder control after needling" skipped the
red-flag check and got a greeting.

This component runs first. A message that is exactly the payload of a button
the assistant offers (in the domain's responses, or sent in this
conversation by an action) stays a command. Any other message starting with
"/" loses its leading slashes for the NLU, so it is understood as text, red
flags included; the conversation still stores what the visitor typed.
"""

from typing import Any, Dict, Iterable, List, Optional, Set, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


def _payloads(buttons: Optional[Iterable[Any]]) -> Set[Text]:
    return {
        str(button["payload"]).strip()
        for button in buttons or []
        if isinstance(button, dict) and str(button.get("payload") or "").startswith(INTENT_MESSAGE_PREFIX)
    }


def domain_payloads(domain: Optional[Domain]) -> Set[Text]:
    """The commands of every button in the domain's responses (FAQ answers included)."""
    found: Set[Text] = set()
    for variations in (domain.responses if domain else {}).values():
        for variation in variations:
            found |= _payloads(variation.get("buttons")) | _payloads(variation.get("quick_replies"))
    return found


def conversation_payloads(tracker: Optional[DialogueStateTracker]) -> Set[Text]:
    """The commands of the buttons the assistant sent in this conversation."""
    found: Set[Text] = set()
    for event in tracker.events if tracker else []:
        if isinstance(event, BotUttered):
            found |= _payloads((event.data or {}).get("buttons")) | _payloads((event.data or {}).get("quick_replies"))
    return found


def as_visitor_text(text: Text) -> Text:
    """The text the NLU reads for a command the assistant did not issue."""
    return text.lstrip(INTENT_MESSAGE_PREFIX + " \t\n") or text


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class IssuedPayloadGuard(GraphComponent):
    def __init__(self) -> None:
        self._domain_payloads: Optional[Set[Text]] = None
        self._domain: Optional[Domain] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "IssuedPayloadGuard":
        return cls()

    def process(
        self,
        messages: List[Message],
        domain: Optional[Domain] = None,
        tracker: Optional[DialogueStateTracker] = None,
    ) -> List[Message]:
        if domain is not self._domain:  # the domain only changes with the model
            self._domain, self._domain_payloads = domain, domain_payloads(domain)
        issued: Optional[Set[Text]] = None
        for message in messages:
            text = message.get(TEXT) or ""
            if not text.lstrip().startswith(INTENT_MESSAGE_PREFIX):
                continue
            if issued is None:
                issued = self._domain_payloads | conversation_payloads(tracker)
            if text.strip() not in issued:
                message.set(TEXT, as_visitor_text(text.strip()))
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
