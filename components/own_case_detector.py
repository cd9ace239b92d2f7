"""Sends questions only a clinician can answer to `ask_personal_advice`.

The posts say nothing about dry needling for someone who is pregnant, takes
a blood thinner, has a pacemaker or another condition; such a visitor gets
the "I can't assess your own case" notice with the clinic's phone, not the
general safety answer the classifier picks from the rest of the message
("i take eliquis, is dry needling any different for someone like me?" read
as dry needling versus acupuncture). The `own_case_` patterns of
data/nlu/safety.yml decide it: a message naming such a state and asking
whether dry needling suits the visitor. It runs after the classifiers and
the red-flag check, on the message and each of its parts: an emergency still
wins.
"""

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

from clinic.nlu_labels import EMERGENCY
from clinic.red_flags import OWN_CASE_INTENT, OWN_CASE_PREFIX
from components.pattern_detector import PatternDetector

OWN_CASE_KEY = "own_case"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class OwnCaseDetector(PatternDetector):
    PATTERN_PREFIX = OWN_CASE_PREFIX

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if (message.get(INTENT) or {}).get("name") == EMERGENCY:
                continue
            found = self.matches(message)
            if not found:
                continue
            own_case = {"name": OWN_CASE_INTENT, "confidence": 1.0}
            others = [{**entry, "confidence": 0.0} for entry in message.get(INTENT_RANKING_KEY) or []
                      if entry.get("name") != OWN_CASE_INTENT]
            message.set(INTENT, own_case, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [own_case] + others, add_to_output=True)
            message.set(OWN_CASE_KEY, found, add_to_output=True)
        return messages
