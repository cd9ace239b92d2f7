"""Several questions in one message, and the question inside a long message.

Visitors write "What is dry needling and how many sessions do people need?",
or three sentences about their back before the question itself. Rasa
classifies a message as one whole. These two components let the pipeline
classify the questions in it too, with the same trained models:

- `QuestionSplitter` (first in the pipeline) cuts the text into sentences,
  and a sentence into clauses where "and", "also" or "plus" starts a new
  question ("... and how many sessions ..."). A question joining two things
  with "and" ("can it help with the pain and the numbness?") also gets one
  variant per thing ("can it help with the pain", "can it help with the
  numbness?"). Each part is added to the batch the pipeline processes, so
  every classifier and selector predicts it as if it were a message of its
  own. The cutting is components/question_text.py's.
- `QuestionMerger` (after the classifiers, before the red-flag check) takes
  the parts out of the batch again and decides what the message asks:
  - any part, or the whole, understood as an emergency: the emergency,
    whatever else the message asks (the red-flag patterns run after this);
  - two or more parts that are questions (a question mark, or a question's
    first words) and have different confident answers: `questions`, in the
    order asked, at most MAX_QUESTIONS; the message's own prediction
    becomes the first one's, so Rasa's rules answer it first and
    `action_complete_answer` answers the rest. The two variants of an
    "and" question count as two questions when each is confidently
    understood, differently, and the whole question as one of them. A
    question that refers back to a muscle ("what is the piriformis and why
    does it pinch the nerve?", "... is it always the piriformis?") asks
    about the same thing: the muscle's answer covers it;
  - one question among sentences of context: its prediction, when it is
    confident and the whole message's is not, or the two disagree and the
    question's is the more confident.
  Parts never reach the tracker; `questions` is part of the parse data.

At training time neither does anything.
"""

import re
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.answers import MUSCLE, MUSCLE_INTENT, answer_and_confidence, label_kind
from clinic.nlu_labels import EMERGENCY, FALLBACK, RESPONSE_SELECTOR_KEY, RETRIEVAL_INTENTS
from clinic.red_flags import OWN_CASE_INTENT
from components.question_text import conjunct_variants, looks_like_question, split_parts, starts_as_question

QUESTIONS_KEY = "questions"
PARTS_KEY = "question_parts"
MAX_QUESTIONS = 3
# How sure a part's intent and answer must be to count as a question asked,
# and, with several questions, as one of them.
MIN_CONFIDENCE = 0.5
MULTI_MIN_CONFIDENCE = 0.5
# A part shorter than this ("in muscles??") is not a question of its own,
# unless it starts as one ("how much?").
MIN_QUESTION_WORDS = 3

# Intents that answer a question (the rest are greetings, thanks, emergencies...).
ANSWER_INTENTS = {*RETRIEVAL_INTENTS, MUSCLE_INTENT, "book_appointment", OWN_CASE_INTENT}


# Words that point back to what the previous question was about.
_BACK_REFERENCE = re.compile(r"\b(?:it|its|that|this|they|them|those|these)\b", re.IGNORECASE)
# Besides a muscle's own answers, those about the muscles and what they do to the sciatic nerve.
MUSCLE_FAQS = {"faq/muscles_involved", "faq/sciatica_causes"}
VARIANTS_KEY = "question_variants"


def _is_a_question_of_its_own(text: Text) -> bool:
    """Long enough to be one of several questions: MIN_QUESTION_WORDS, or
    two words that start as a question does ("how much", "how long")."""
    words = len(re.findall(r"\w+", text))
    return words >= MIN_QUESTION_WORDS or (words == 2 and starts_as_question(text.strip()))


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


def _answers_of_question(part: Message) -> List[Tuple[Message, Dict[Text, Any]]]:
    """[(message, its answer)] for a question part: its two variants when
    each is understood, differently, and the whole question as one of them;
    else the part itself (or nothing, when not understood)."""
    found = answer_of(part)
    variants = [(variant, answer_of(variant)) for variant in part.get(VARIANTS_KEY) or []]
    if len(variants) == 2 and all(answer for _, answer in variants):
        answers = [answer["answer"] for _, answer in variants]
        if answers[0] != answers[1] and (found is None or found["answer"] in answers):
            return variants
    return [(part, found)] if found else []


def _is_about_muscles(label: Text) -> bool:
    return label_kind(label) == MUSCLE or label in MUSCLE_FAQS


def _refers_back(part: Message, previous: Dict[Text, Any], found: Dict[Text, Any]) -> bool:
    """Whether a question points back at the previous one's muscle (or list
    of muscles): the previous answer covers it."""
    about_muscles = _is_about_muscles(previous["answer"]) and _is_about_muscles(found["answer"])
    return about_muscles and bool(_BACK_REFERENCE.search(part.get(TEXT) or ""))


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
            variants = {index: conjunct_variants(part) for index, part in enumerate(parts)}
            if len(parts) < 2 and not any(variants.values()):
                continue
            part_messages = []
            for index, part in enumerate(parts):
                part_message = Message(data={TEXT: part})
                if variants[index]:
                    part_message.set(VARIANTS_KEY, [Message(data={TEXT: text}) for text in variants[index]])
                    batch.extend(part_message.get(VARIANTS_KEY))
                part_messages.append(part_message)
            message.set(PARTS_KEY, part_messages)
            batch.extend(part_messages)
        return batch


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class QuestionMerger(_InferenceOnly):
    def process(self, messages: List[Message]) -> List[Message]:
        parts = {
            id(piece)
            for message in messages
            for part in message.get(PARTS_KEY) or []
            for piece in [part, *(part.get(VARIANTS_KEY) or [])]
        }
        whole_messages = [message for message in messages if id(message) not in parts]
        for message in whole_messages:
            part_messages = message.get(PARTS_KEY) or []
            if part_messages:
                self._merge(message, part_messages)
                message.set(PARTS_KEY, None)
        return whole_messages

    @staticmethod
    def _merge(message: Message, part_messages: List[Message]) -> None:
        if (message.get(INTENT) or {}).get("name") == EMERGENCY:
            return
        for part in part_messages:
            if _intent(part) == EMERGENCY:
                _adopt(message, part)
                return
        questions = [part for part in part_messages if looks_like_question(part.get(TEXT))]
        answered, referred_back = [], False
        for part in questions:
            for piece, found in _answers_of_question(part):
                if answered and _refers_back(piece, answered[-1][1], found):
                    referred_back = True
                    continue
                if found["answer"] not in {a["answer"] for _, a in answered}:
                    answered.append((piece, found))
        several = [
            (part, found) for part, found in answered
            if found["confidence"] >= MULTI_MIN_CONFIDENCE and _is_a_question_of_its_own(part.get(TEXT))
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
        if referred_back:  # one question, asked again about the same muscle
            _adopt(message, answered[0][0])
            return
        # One question among context, or the whole message not understood:
        # answer the question asked.
        part, found = max(answered, key=lambda pair: pair[1]["confidence"])
        whole = answer_of(message)
        if whole is None or (
            len(questions) == 1 and whole["answer"] != found["answer"] and found["confidence"] > whole["confidence"]
        ):
            _adopt(message, part)
