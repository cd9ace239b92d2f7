"""Weighs the chosen FAQ answer into how sure the assistant is of a message.

The classifier (DIET) says whether a message is an FAQ at all, the
ResponseSelector which FAQ it is, and FallbackClassifier only looks at the
first. Two cases go wrong that way:

- the classifier is sure it is an FAQ while the selector is unsure which
  answer fits: the `faq` intent scores 1.0 and the chosen answer 0.2 (Rasa
  issue #9751). Below `threshold` the message becomes `nlu_fallback`: the
  visitor is told, and the message is kept for staff, instead of a likely
  wrong answer;
- the selector is sure (at least `sure_answer`) and a retrieval intent is the
  classifier's first choice, but the classifier spreads itself thin over
  long first-person messages ("felt worse the day after my session, is that
  normal": `faq` first at 0.23, the soreness answer at 1.0). The intent then
  counts as that sure, so FallbackClassifier lets the answer through.
"""

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

from clinic.nlu_labels import FALLBACK, RESPONSE_SELECTOR_KEY


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class AnswerConfidenceGate(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"threshold": 0.35, "sure_answer": 0.9}

    def __init__(self, config: Dict[Text, Any]) -> None:
        config = {**self.get_default_config(), **config}
        self.threshold = config["threshold"]
        self.sure_answer = config["sure_answer"]

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
            ranking = message.get(INTENT_RANKING_KEY) or []
            if confidence < self.threshold:
                fallback = {"name": FALLBACK, "confidence": 1.0 - confidence}
                message.set(INTENT, fallback, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [fallback] + ranking, add_to_output=True)
            elif confidence >= self.sure_answer and (intent.get("confidence") or 0.0) < confidence:
                sure = {**intent, "confidence": confidence}
                message.set(INTENT, sure, add_to_output=True)
                message.set(
                    INTENT_RANKING_KEY,
                    [sure] + [entry for entry in ranking if entry.get("name") != sure["name"]],
                    add_to_output=True,
                )
        return messages
