"""Decides which messages are emergencies: `report_emergency`, 911 first.

It runs after the classifiers and before FallbackClassifier, on every
message and on each of its parts
(components/questions.py), so a red flag anywhere wins over everything:

- the deterministic net: the patterns in data/nlu/red_flags.yml (symptoms
  in lay words, texting shorthand spelled out); any match is an emergency,
  whatever the model thought;
- meaning: the classifier's own `report_emergency`, when it is at least
  `meaning_threshold` sure. Below that it is not trusted: the classifier
  learned that emergencies are long first-person descriptions of pain, and
  gave up to 0.94 to "is dry needling worth trying? I've got nothing left to
  lose" and "did the needling make my sciatica worse? the pain is a bit
  stronger" (real emergencies without a pattern: 0.998 and up). Below it,
  `report_emergency` is taken out of the ranking and the other intents'
  confidences renormalised, so the question is answered (or, when still
  unsure, admitted by FallbackClassifier after this) rather than the
  visitor sent to the emergency room for it.
"""

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

from clinic.nlu_labels import EMERGENCY
from clinic.red_flags import PATTERN_PREFIX
from components.pattern_detector import PatternDetector

MEANING_FLAG = "meaning"
RED_FLAGS_KEY = "red_flags"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class RedFlagDetector(PatternDetector):
    """Overrides the predicted intent when a red-flag pattern matches."""

    PATTERN_PREFIX = PATTERN_PREFIX

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # How sure the classifier must be of `report_emergency` on its own.
        return {"meaning_threshold": 0.98}

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            red_flags = self.matches(message)
            ranking = message.get(INTENT_RANKING_KEY) or []
            meaning = next((e.get("confidence") or 0.0 for e in ranking if e.get("name") == EMERGENCY), 0.0)
            if not red_flags and meaning >= self._config["meaning_threshold"]:
                red_flags = [MEANING_FLAG]
            others = [entry for entry in ranking if entry.get("name") != EMERGENCY]
            if red_flags:
                emergency = {"name": EMERGENCY, "confidence": 1.0}
                # the others no longer count (FallbackClassifier would see two close intents)
                others = [{**entry, "confidence": 0.0} for entry in others]
                message.set(INTENT, emergency, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [emergency] + others, add_to_output=True)
                message.set(RED_FLAGS_KEY, red_flags, add_to_output=True)
            elif meaning > 0.0 and others:
                self._without_emergency(message, others, 1.0 - meaning)
        return messages

    @staticmethod
    def _without_emergency(message: Message, others: List[Dict[Text, Any]], rest: float) -> None:
        """The prediction as if `report_emergency` were not among the intents:
        the others' confidences renormalised, FallbackClassifier decides next."""
        ranking = [{**entry, "confidence": min(1.0, (entry.get("confidence") or 0.0) / rest)} for entry in others]
        intent = message.get(INTENT) or {}
        if intent.get("name") == EMERGENCY:
            intent = ranking[0]
        else:
            intent = next((entry for entry in ranking if entry.get("name") == intent.get("name")), ranking[0])
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
