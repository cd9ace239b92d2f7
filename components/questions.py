"""Several questions in one message, and the question inside a long message.

Visitors write "What is dry needling and how many sessions do people need?",
or three sentences about their back before the question itself. Rasa
classifies a message as one whole. These two components let the pipeline
classify the questions in it too, with the same trained models:

- `QuestionSplitter` (first in the pipeline) cuts the text into sentences,
  and a sentence into clauses where "and", "also" or "plus" starts a new
  question ("... and how many sessions ..."). Each part is added to the
  batch the pipeline processes, so every classifier and selector predicts it
  as if it were a message of its own.
- `QuestionMerger` (after the classifiers, before the red-flag check) takes
  the parts out of the batch again and decides what the message asks:
  - any part, or the whole, understood as an emergency: the emergency,
    whatever else the message asks (the red-flag patterns run after this);
  - two or more parts that are questions (a question mark, or a question's
    first words) and have different confident answers: `questions`, in the
    order asked, at most MAX_QUESTIONS; the message's own prediction
    becomes the first one's, so Rasa's rules answer it first and
    `action_answer_other_questions` answers the rest;
  - one question among sentences of context: its prediction, when it is
    confident and the whole message's is not, or the two disagree and the
    question's is the more confident.
  Parts never reach the tracker; `questions` is part of the parse data.

At training time neither does anything.
"""

import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.answers import FALLBACK, answer_and_confidence

RESPONSE_SELECTOR_KEY = "response_selector"  # Rasa's key (rasa.nlu.selectors)
QUESTIONS_KEY = "questions"
PARTS_KEY = "question_parts"
MAX_QUESTIONS = 3
# More parts than this are not looked at (a pasted essay is one message).
MAX_PARTS = 6
# How sure a part's intent and answer must be to count as a question asked,
# and, with several questions, as one of them.
MIN_CONFIDENCE = 0.5
MULTI_MIN_CONFIDENCE = 0.5
# A part shorter than this ("in muscles??") is not a question of its own.
MIN_QUESTION_WORDS = 3

_SENTENCE_END = re.compile(r"(?<=[?!.])\s+|\n+")
# A clause that starts a new question: "..., and how many ...", "... also is it ..."
_QUESTION_START = (
    r"(?:how|what|whats|what's|which|who|whos|who's|where|when|why|is|are|can|could|do|does|did|"
    r"will|would|should|shall|may|any|if|r|u|you|tell|explain)\b"
)
_CLAUSE_SPLIT = re.compile(r"(?:,\s*|\s+)(?:and(?:\s+also)?|also|plus|&)\s+(?=" + _QUESTION_START + ")", re.IGNORECASE)
_LOOKS_LIKE_QUESTION = re.compile(r"\?\s*$|^\W*(?:(?:and|also|plus|so|but|oh|ok)\W+)*" + _QUESTION_START, re.IGNORECASE)
# Intents that answer a question (the rest are greetings, thanks, emergencies...).
ANSWER_INTENTS = {"faq", "not_covered", "ask_muscle", "book_appointment", "ask_personal_advice"}
EMERGENCY_INTENT = "report_emergency"


def split_parts(text: Text) -> List[Text]:
    """The sentences and question clauses of a text, in order."""
    parts: List[Text] = []
    for sentence in _SENTENCE_END.split(text or ""):
        for clause in _CLAUSE_SPLIT.split(sentence):
            clause = clause.strip(" ,;-")
            if len(re.findall(r"\w+", clause)) >= 2:
                parts.append(clause)
    return parts[:MAX_PARTS]


def looks_like_question(text: Text) -> bool:
    return bool(_LOOKS_LIKE_QUESTION.search(text.strip()))


def answer_of(message: Message) -> Optional[Dict[Text, Any]]:
    """{"intent", "answer", "confidence"} of a confidently understood
    question, None otherwise; `answer` is its label (clinic/answers.py)."""
    intent = (message.get(INTENT) or {}).get("name")
    if intent not in ANSWER_INTENTS:
        return None
    answer, confidence = answer_and_confidence(message.as_dict())
    if answer == FALLBACK or confidence < MIN_CONFIDENCE:
        return None
    return {"intent": intent, "answer": answer, "confidence": round(confidence, 4)}


def _intent(message: Message) -> Optional[Text]:
    """The intent, when it is at least MIN_CONFIDENCE sure."""
    intent = message.get(INTENT) or {}
    return intent.get("name") if (intent.get("confidence") or 0.0) >= MIN_CONFIDENCE else None


def _adopt(message: Message, part: Message) -> None:
    """The message's prediction becomes the part's."""
    for key in (INTENT, INTENT_RANKING_KEY, RESPONSE_SELECTOR_KEY):
        if part.get(key) is not None:
            message.set(key, part.get(key), add_to_output=True)


class _InferenceOnly(GraphComponent):
    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "_InferenceOnly":
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class QuestionSplitter(_InferenceOnly):
    def process(self, messages: List[Message]) -> List[Message]:
        batch = list(messages)
        for message in messages:
            parts = split_parts(message.get(TEXT) or "")
            if len(parts) < 2:
                continue
            part_messages = [Message(data={TEXT: part}) for part in parts]
            message.set(PARTS_KEY, part_messages)
            batch.extend(part_messages)
        return batch


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class QuestionMerger(_InferenceOnly):
    def process(self, messages: List[Message]) -> List[Message]:
        parts = {id(part) for message in messages for part in message.get(PARTS_KEY) or []}
        whole_messages = [message for message in messages if id(message) not in parts]
        for message in whole_messages:
            part_messages = message.get(PARTS_KEY) or []
            if part_messages:
                self._merge(message, part_messages)
                message.set(PARTS_KEY, None)
        return whole_messages

    @staticmethod
    def _merge(message: Message, part_messages: List[Message]) -> None:
        if (message.get(INTENT) or {}).get("name") == EMERGENCY_INTENT:
            return
        for part in part_messages:
            if _intent(part) == EMERGENCY_INTENT:
                _adopt(message, part)
                return
        questions = [part for part in part_messages if looks_like_question(part.get(TEXT))]
        answered = []
        for part in questions:
            found = answer_of(part)
            if found and found["answer"] not in {a["answer"] for _, a in answered}:
                answered.append((part, found))
        several = [
            (part, found) for part, found in answered
            if found["confidence"] >= MULTI_MIN_CONFIDENCE and len(re.findall(r"\w+", part.get(TEXT))) >= MIN_QUESTION_WORDS
        ]
        if len(several) >= 2:
            several = several[:MAX_QUESTIONS]
            _adopt(message, several[0][0])
            message.set(
                QUESTIONS_KEY,
                [{"text": part.get(TEXT), **found} for part, found in several],
                add_to_output=True,
            )
            return
        if not answered:
            return
        # One question among context, or the whole message not understood:
        # answer the question asked.
        part, found = max(answered, key=lambda pair: pair[1]["confidence"])
        whole = answer_of(message)
        if whole is None or (
            len(questions) == 1 and whole["answer"] != found["answer"] and found["confidence"] > whole["confidence"]
        ):
            _adopt(message, part)
