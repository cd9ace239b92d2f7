"""A second opinion on which answer a message asks for, from meaning alone.

DIET and the ResponseSelectors learn from word and character counts as well
as the sentence encoder, and on long first-person messages they spread
themselves thin: "can sciatica get worse after treatment?" got the right
answer at 0.17, "could dry needling do anything for him?" the benefits.
A linear classifier on the encoder's sentence vector alone (scikit-learn's
LogisticRegression, one class per answer label of clinic/answers.py) is
steadier on such messages and weaker on short, specific ones; averaged
with DIET and the selectors' own answer probabilities (each answer's
probability: its intent's times the selector's), the two together beat
either alone.

The component sets the message's intent (and, for a retrieval intent, the
selector's chosen answer) to the averaged best label's, the intent as sure
as all its labels together and the answer as sure as its share of them, so
Rasa's rules, FallbackClassifier (is it an FAQ at all?) and the
AnswerConfidenceGate (which FAQ?) work on it as before. An emergency already decided by
the red-flag check is left alone, and no other message becomes one here:
emergencies are that check's to decide. The classifier's weights are stored
as JSON in the model (no pickle).
"""

from typing import Any, Dict, List, Optional, Text

import numpy as np
import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.nlu_labels import ANSWER_KEY, EMERGENCY, RESPONSE_SELECTOR_KEY, RETRIEVAL_INTENTS

WEIGHTS_FILE = "answer_classifier.json"


def sentence_vector(message: Message) -> Optional[np.ndarray]:
    """The message's dense sentence features (the encoder's), L2-normalised."""
    _, sentence = message.get_dense_features(TEXT)
    if sentence is None:
        return None
    vector = np.asarray(sentence.features, dtype=np.float64).reshape(-1)
    norm = np.linalg.norm(vector)
    return vector / norm if norm else None


def label_of(example: Message) -> Optional[Text]:
    """The answer label a training example teaches ("faq/safety", "greet")."""
    return example.get(INTENT_RESPONSE_KEY) or example.get(INTENT)


def model_probabilities(message: Message) -> Dict[Text, float]:
    """DIET's and the selectors' probability of each answer label."""
    probabilities: Dict[Text, float] = {}
    selectors = message.get(RESPONSE_SELECTOR_KEY) or {}
    for entry in message.get(INTENT_RANKING_KEY) or []:
        name, confidence = entry.get("name"), float(entry.get("confidence") or 0.0)
        if name in RETRIEVAL_INTENTS:
            for answer in (selectors.get(name) or {}).get("ranking") or []:
                key = answer.get(ANSWER_KEY)
                probabilities[key] = probabilities.get(key, 0.0) + confidence * float(answer.get("confidence") or 0.0)
        elif name:
            probabilities[name] = probabilities.get(name, 0.0) + confidence
    return probabilities


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class EmbeddingAnswerClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # C: scikit-learn's inverse regularisation; weight: the classifier's
        # share of the average (the rest is DIET and the selectors').
        return {"C": 10.0, "weight": 0.5}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        weights: Optional[Dict[Text, Any]] = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._classes: List[Text] = []
        self._coef = self._intercept = None
        if weights:
            self._classes = weights["classes"]
            self._coef = np.asarray(weights["coef"])
            self._intercept = np.asarray(weights["intercept"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "EmbeddingAnswerClassifier":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.linear_model import LogisticRegression

        vectors, labels = [], []
        for example in training_data.intent_examples:
            vector, label = sentence_vector(example), label_of(example)
            if vector is not None and label:
                vectors.append(vector)
                labels.append(label)
        classifier = LogisticRegression(C=self._config["C"], max_iter=2000)
        classifier.fit(np.vstack(vectors), labels)
        weights = {
            "classes": [str(label) for label in classifier.classes_],
            "coef": classifier.coef_.tolist(),
            "intercept": classifier.intercept_.tolist(),
        }
        with self._model_storage.write_to(self._resource) as directory:
            rasa.shared.utils.io.dump_obj_as_json_to_file(directory / WEIGHTS_FILE, weights)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "EmbeddingAnswerClassifier":
        with model_storage.read_from(resource) as directory:
            weights = rasa.shared.utils.io.read_json_file(directory / WEIGHTS_FILE)
        return cls(config, model_storage, resource, weights)

    def probabilities(self, message: Message) -> Dict[Text, float]:
        """The classifier's probability of each answer label ({} without a vector)."""
        vector = sentence_vector(message)
        if vector is None or self._coef is None:
            return {}
        scores = self._coef @ vector + self._intercept
        scores = np.exp(scores - scores.max())
        return dict(zip(self._classes, (scores / scores.sum()).tolist()))

    def process(self, messages: List[Message]) -> List[Message]:
        weight = self._config["weight"]
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get("name") == EMERGENCY and (intent.get("confidence") or 0.0) >= 1.0:
                continue  # decided by the red-flag check
            ours, theirs = self.probabilities(message), model_probabilities(message)
            if not ours:
                continue
            # emergencies are the red-flag check's to decide, never a vote's
            labels = (set(ours) | set(theirs)) - {EMERGENCY}
            averaged = {label: weight * ours.get(label, 0.0) + (1 - weight) * theirs.get(label, 0.0) for label in labels}
            self._choose(message, max(averaged, key=averaged.get), averaged)
        return messages

    @staticmethod
    def _choose(message: Message, label: Text, averaged: Dict[Text, float]) -> None:
        """The intent is the best label's, as sure as all its labels together
        (is it an FAQ at all?); the answer as sure as its share of them (which
        FAQ?): FallbackClassifier and the AnswerConfidenceGate judge each."""
        def intent_of(name: Text) -> Text:
            return name.split("/", 1)[0]

        by_intent: Dict[Text, float] = {}
        for name, value in averaged.items():
            by_intent[intent_of(name)] = by_intent.get(intent_of(name), 0.0) + value
        base = intent_of(label)
        ranking = [{"name": name, "confidence": value} for name, value in sorted(by_intent.items(), key=lambda kv: -kv[1])]
        message.set(INTENT, {"name": base, "confidence": by_intent[base]}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking[:10], add_to_output=True)
        if "/" in label:
            share = averaged[label] / by_intent[base] if by_intent[base] else 0.0
            selectors = dict(message.get(RESPONSE_SELECTOR_KEY) or {})
            selector = dict(selectors.get(base) or {})
            response = dict(selector.get("response") or {})
            response.update({ANSWER_KEY: label, "confidence": share, "utter_action": f"utter_{label}"})
            response.pop("responses", None)
            selector["response"] = response
            selectors[base] = selector
            message.set(RESPONSE_SELECTOR_KEY, selectors, add_to_output=True)
