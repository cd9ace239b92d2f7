"""What the assistant answers, as a label: one vocabulary for the NLU's
predictions, the actions, the evaluation and the staff console.

A label names an answer, not an intent: "faq/soreness_after",
"not_covered/prices", "muscle/hamstrings", or an intent whose answer is a
fixed response ("book_appointment", "report_emergency", "greet"...).
"""

from typing import Any, Dict, List, Optional, Tuple

from clinic.muscles import group_ids, muscle_id_for
from clinic.nlu_labels import EMERGENCY, FALLBACK, RETRIEVAL_INTENTS, chosen_answer

MUSCLE_INTENT = "ask_muscle"
# A label "<kind>/<key>" names a retrieval intent's answer (clinic.nlu_labels:
# "faq", "not_covered") or a muscle's, which utter_muscle gives.
MUSCLE = "muscle"
# A muscle question naming no muscle the posts explain gets their list.
NO_MUSCLE_NAMED = "faq/muscles_involved"
# Answers that are not health information (no medical disclaimer with them).
NON_HEALTH_LABELS = {"faq/practitioner", "book_appointment"}
# Messages that go with an answer rather than being one.
DISCLAIMER = "disclaimer"
OFFER = "offer"
ACCOMPANYING = {DISCLAIMER, OFFER}


def label_kind(label: str) -> Optional[str]:
    """The kind of answer a label names: "faq" for "faq/safety", MUSCLE for
    "muscle/hamstrings"; None for an intent's own answer ("book_appointment")."""
    return label.split("/", 1)[0] if "/" in label else None


def muscle_label(muscle_id: str) -> str:
    """The label of a muscle's answer: "hamstrings" -> "muscle/hamstrings"."""
    return f"{MUSCLE}/{muscle_id}"


def muscle_ids(parse: Dict[str, Any]) -> List[str]:
    """The answer ids of the muscles a parsed message names, no repeats: the
    muscles named in order, then the groups ("my butt" is the glutes), so
    "deep ache in my butt, is it the piriformis?" is about the piriformis."""
    found: List[str] = []
    for entity in parse.get("entities") or []:
        if entity.get("entity") == "muscle":
            muscle_id = muscle_id_for(entity.get("value"))
            if muscle_id and muscle_id not in found:
                found.append(muscle_id)
    groups = set(group_ids())
    return [m for m in found if m not in groups] + [m for m in found if m in groups]


def answer_and_confidence(parse: Dict[str, Any]) -> Tuple[str, float]:
    """(label, confidence) of what the assistant answers to a parsed message.
    For a retrieval intent the confidence is the lower of the intent's and
    the chosen answer's."""
    intent = parse.get("intent") or {}
    name = intent.get("name") or FALLBACK
    confidence = float(intent.get("confidence") or 0.0)
    if name in RETRIEVAL_INTENTS:
        label, answer_confidence = chosen_answer(parse, name)
        if not label:
            return FALLBACK, confidence
        return label, min(confidence, answer_confidence)
    if name == MUSCLE_INTENT:
        muscles = muscle_ids(parse)
        return (muscle_label(muscles[0]) if muscles else NO_MUSCLE_NAMED), confidence
    return name, confidence


def answer_label(parse: Dict[str, Any]) -> str:
    """What the assistant answers to a parsed message, as a label."""
    return answer_and_confidence(parse)[0]


def question_labels(parse: Dict[str, Any]) -> List[str]:
    """Every answer a parsed message asks for, in order: its questions
    (components/questions.py) and the further muscles it names."""
    questions = parse.get("questions") or []
    labels = [question["answer"] for question in questions] or [answer_label(parse)]
    if label_kind(labels[0]) == MUSCLE:
        # "the QL and the glute medius": each muscle named, not the body parts around them
        groups = set(group_ids())
        labels += [muscle_label(muscle) for muscle in muscle_ids(parse)[1:] if muscle not in groups]
    unique: List[str] = []
    for label in labels:
        if label not in unique:
            unique.append(label)
    return unique


def response_label(response: Optional[str], slots: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """The label of a bot message from the response it was made from
    ("utter_faq/safety" -> "faq/safety"); DISCLAIMER or OFFER for messages
    that go with an answer; None when unknown."""
    if not response:
        return None
    if response.startswith("utter_") and "/" in response:
        return response[len("utter_"):]
    if response == "utter_muscle":
        muscle = (slots or {}).get("muscle_id")
        return muscle_label(muscle) if muscle else NO_MUSCLE_NAMED
    return RESPONSE_LABELS.get(response, response[len("utter_"):] if response.startswith("utter_") else None)


# Responses whose name is not "utter_<label>".
RESPONSE_LABELS = {
    "utter_emergency": EMERGENCY,
    "utter_emergency_reminder": EMERGENCY,
    "utter_erasure_result": "request_data_erasure",
    "utter_default": FALLBACK,
    "utter_spanish": "speak_spanish",
    "utter_help": "ask_help",
    "utter_offer_booking": OFFER,
}
