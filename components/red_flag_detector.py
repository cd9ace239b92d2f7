"""Routes any message naming a red-flag symptom to `report_emergency`.

It runs after the classifiers, on every message, so an emergency can never
slip through a low-confidence or wrong prediction: the patterns in
data/nlu/red_flags.yml decide, whatever the model thought.
"""

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
import rasa.shared.utils.io

from clinic.red_flags import EMERGENCY_INTENT, PATTERN_PREFIX, RedFlagMatcher

PATTERNS_FILE = "red_flag_patterns.json"
RED_FLAGS_KEY = "red_flags"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class RedFlagDetector(GraphComponent, IntentClassifier):
    """Overrides the predicted intent when a red-flag pattern matches."""

    def __init__(
        self,
        model_storage: ModelStorage,
        resource: Resource,
        patterns: Optional[List[List[Text]]] = None,
    ) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self._patterns = patterns or []
        self._matcher = RedFlagMatcher(tuple(p) for p in self._patterns)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RedFlagDetector":
        return cls(model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Keeps the red-flag regexes of the training data inside the model."""
        self._patterns = [
            [feature["name"], feature["pattern"]]
            for feature in training_data.regex_features
            if feature["name"].startswith(PATTERN_PREFIX)
        ]
        with self._model_storage.write_to(self._resource) as directory:
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                directory / PATTERNS_FILE, self._patterns
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "RedFlagDetector":
        with model_storage.read_from(resource) as directory:
            patterns = rasa.shared.utils.io.read_json_file(directory / PATTERNS_FILE)
        return cls(model_storage, resource, patterns)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            red_flags = self._matcher.find(message.get(TEXT) or "")
            if not red_flags:
                continue
            intent = {"name": EMERGENCY_INTENT, "confidence": 1.0}
            ranking = [
                entry
                for entry in message.get(INTENT_RANKING_KEY) or []
                if entry.get("name") != EMERGENCY_INTENT
            ]
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent] + ranking, add_to_output=True)
            message.set(RED_FLAGS_KEY, red_flags, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
