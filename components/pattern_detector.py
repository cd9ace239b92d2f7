"""The part every deterministic pattern net shares: Rasa regex entries of the
training data, named with one prefix, kept inside the model and matched
against each message (clinic/red_flags.py: lower case, texting shorthand
spelled out). Subclasses decide what a match means."""

from typing import Any, Dict, List, Optional, Text

import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.red_flags import RedFlagMatcher

PATTERNS_FILE = "patterns.json"


class PatternDetector(GraphComponent, IntentClassifier):
    # the regex entries of data/nlu/ whose name starts with this
    PATTERN_PREFIX = ""

    def __init__(
        self,
        model_storage: ModelStorage,
        resource: Resource,
        patterns: Optional[List[List[Text]]] = None,
        config: Optional[Dict[Text, Any]] = None,
    ) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self._patterns = patterns or []
        self._matcher = RedFlagMatcher(tuple(p) for p in self._patterns)
        self._config = {**self.get_default_config(), **(config or {})}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "PatternDetector":
        return cls(model_storage, resource, config=config)

    def train(self, training_data: TrainingData) -> Resource:
        """Keeps the training data's regexes of this net inside the model."""
        self._patterns = [
            [feature["name"], feature["pattern"]]
            for feature in training_data.regex_features
            if feature["name"].startswith(self.PATTERN_PREFIX)
        ]
        with self._model_storage.write_to(self._resource) as directory:
            rasa.shared.utils.io.dump_obj_as_json_to_file(directory / PATTERNS_FILE, self._patterns)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "PatternDetector":
        with model_storage.read_from(resource) as directory:
            patterns = rasa.shared.utils.io.read_json_file(directory / PATTERNS_FILE)
        return cls(model_storage, resource, patterns, config)

    def matches(self, message: Message) -> List[Text]:
        """Names of this net's patterns that match the message's text."""
        return self._matcher.find(message.get(TEXT) or "")

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
