"""Treats a weakly chosen FAQ answer as not understood.

The classifier can be sure a message is an FAQ while the ResponseSelector is
unsure which answer fits: the `faq` intent scores 1.0 and the chosen answer
0.2 (Rasa issue #9751). FallbackClassifier only looks at the intent, so this
component turns such a message into `nlu_fallback` (the visitor is told, and
the message is kept for staff) instead of giving a likely wrong answer.
"""

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

RESPONSE_SELECTOR_KEY = "response_selector"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class AnswerConfidenceGate(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"threshold": 0.35}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.threshold = config["threshold"]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "AnswerConfidenceGate":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            selector = (message.get(RESPONSE_SELECTOR_KEY) or {}).get(intent.get("name"))
            if not selector:
                continue
            confidence = (selector.get("response") or {}).get("confidence") or 0.0
            if confidence >= self.threshold:
                continue
            fallback = {"name": DEFAULT_NLU_FALLBACK_INTENT_NAME, "confidence": 1.0 - confidence}
            message.set(INTENT, fallback, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY,
                [fallback] + (message.get(INTENT_RANKING_KEY) or []),
                add_to_output=True,
            )
        return messages
