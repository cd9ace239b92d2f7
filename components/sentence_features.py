"""Keeps only the sentence-level features of the visitor's text for the classifiers.

DIET and the ResponseSelectors run with no transformer layer and no entity
recognition (config.yml), so their answer depends on the sentence-level
features alone: Rasa puts the sentence feature after the tokens and, with no
transformer, reads it back unchanged (rasa/utils/tensorflow/rasa_layers.py).
Yet every token's features still went through their layers at every
training step, padded to the longest message in the batch. Replacing them
here by one placeholder position (a single zero: Rasa's sequence layer
insists on some token-level input) gives the same predictions for a
fraction of the training time.
Nothing after this component reads token features: the muscle entities come
from spaCy, the red-flag check from the text.
"""

from typing import Any, Dict, List, Text

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


PLACEHOLDER_ORIGIN = "SentenceFeaturesOnly"


def drop_token_features(message: Message) -> None:
    """The text's token-level features replaced by one zero (1 position x 1 dimension)."""
    kept = [
        features for features in message.features
        if not (features.attribute == TEXT and features.type == FEATURE_TYPE_SEQUENCE)
    ]
    if len(kept) < len(message.features):
        kept.append(Features(np.zeros((1, 1), dtype=np.float32), FEATURE_TYPE_SEQUENCE, TEXT, PLACEHOLDER_ORIGIN))
    message.features = kept


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SentenceFeaturesOnly(GraphComponent):
    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceFeaturesOnly":
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            drop_token_features(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            drop_token_features(message)
        return messages
