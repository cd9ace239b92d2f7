"""Recognises messages written in Spanish, which get a short answer in Spanish.

The FAQ is in English only; this is New York, and a visitor who writes in
Spanish should hear, in Spanish, that the clinic can be called or texted
instead (utter_spanish), not an English answer picked from a few look-alike
words ("¿Aceptan seguro? tengo Medicaid" read as an insurance question).
Language identification is lingua's (lingua-language-detector: models of
English and Spanish only, low-accuracy mode: about 11 MB, where the
high-accuracy one costs 90 MB of a server's memory). On its own it took 17
of the 3,526 English training examples for Spanish ("who is theodore
levarda", "thx so much"); asking also for one mark of written Spanish (an
accent, ¿, ñ, or a common Spanish word) leaves none, and finds as many
Spanish examples as the high-accuracy mode. The classifier still learns
`speak_spanish` for what lingua cannot tell from a word or two ("hola"),
and for English requests ("do you speak Spanish?").

An emergency stays an emergency in Spanish (data/nlu/red_flags.yml has
Spanish patterns too): 911 first, said in Spanish (utter_emergency's
variation for the slot `language`, which clinic/nlg.py fills from the
message's `language`).
"""

import re
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.nlu_labels import EMERGENCY

SPANISH_INTENT = "speak_spanish"
# the parse data's language of a Spanish emergency (domain slot `language`)
LANGUAGE_KEY = "language"
# Written Spanish: its marks and most common short words (none of them English).
SPANISH_MARKS = re.compile(
    r"[¿¡ñáéíóú]|\b(que|qué|del|las|los|el|la|es|para|por|con|una|mi|tengo|hola|gracias|puede|pueden|"
    r"cuánto|cuanto|cuál|dónde|donde|sirve|ayuda|dolor|usted|ustedes|estoy|está|tiene|hay|pero|muy|"
    r"también|necesito|quiero)\b",
    re.IGNORECASE,
)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SpanishDetector(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # How sure lingua must be, and how many words it needs: a single
        # "no" or "sí" is left to the classifier.
        return {"min_confidence": 0.85, "min_words": 2}

    def __init__(self, config: Dict[Text, Any]) -> None:
        from lingua import Language, LanguageDetectorBuilder

        self._spanish = Language.SPANISH
        self._detector = (
            LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH).with_low_accuracy_mode().build()
        )
        self._min_confidence = config["min_confidence"]
        self._min_words = config["min_words"]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SpanishDetector":
        return cls({**cls.get_default_config(), **config})

    def is_spanish(self, text: Text) -> bool:
        if len(re.findall(r"\w+", text)) < self._min_words or not SPANISH_MARKS.search(text):
            return False
        return self._detector.compute_language_confidence(text, self._spanish) >= self._min_confidence

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if not self.is_spanish(message.get(TEXT) or ""):
                continue
            if (message.get(INTENT) or {}).get("name") == EMERGENCY:
                # 911 first, in Spanish (clinic/nlg.py reads this)
                message.set(LANGUAGE_KEY, "es", add_to_output=True)
                continue
            intent = {"name": SPANISH_INTENT, "confidence": 1.0}
            ranking = [entry for entry in message.get(INTENT_RANKING_KEY) or [] if entry.get("name") != SPANISH_INTENT]
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent] + ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
