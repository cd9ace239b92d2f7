"""Scores a trained model on a labelled NLU set (the held-out set).

The score is about what the visitor would get, not only the intent: an FAQ
counts as right only if the chosen answer is the right one, a muscle
question only if the muscle is recognised, and an out-of-scope message is
right when it is declined, as out of scope or as not understood (both
answers decline it and point to what the assistant can help with).
The held-out test, the benchmark and the staff console's publish gate all
use this one scorer.

    python -m clinic.evaluation MODEL [NLU_FILE]
"""

import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from clinic import PROJECT_ROOT
from clinic.muscles import muscle_id_for

HELD_OUT_FILE = PROJECT_ROOT / "tests" / "nlu_held_out.yml"
RETRIEVAL_INTENTS = {"faq", "not_covered"}
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
EMERGENCY = "report_emergency"


def load_examples(path: Path = HELD_OUT_FILE) -> List[Tuple[str, str]]:
    """(text, label) pairs from a Rasa NLU YAML file."""
    content = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    pairs = []
    for item in content.get("nlu") or []:
        if "intent" not in item:
            continue
        for line in item["examples"].splitlines():
            if line.strip().startswith("- "):
                pairs.append((line.strip()[2:].strip(), item["intent"]))
    return pairs


def answered_label(parse: dict) -> str:
    """What the assistant would answer to a parsed message, as a label."""
    intent = (parse.get("intent") or {}).get("name") or FALLBACK
    if intent in RETRIEVAL_INTENTS:
        selector = (parse.get("response_selector") or {}).get(intent) or {}
        # a model without a selector per retrieval intent (stock Rasa) has one "default"
        selector = selector or (parse.get("response_selector") or {}).get("default") or {}
        return (selector.get("response") or {}).get("intent_response_key") or FALLBACK
    if intent == "ask_muscle":
        found = any(
            muscle_id_for(entity.get("value"))
            for entity in parse.get("entities") or []
            if entity.get("entity") == "muscle"
        )
        return intent if found else "faq/muscles_involved"
    return intent


@dataclass
class Score:
    total: int
    accuracy: float
    macro_f1: float
    out_of_scope_precision: float
    out_of_scope_recall: float
    red_flag_recall: float
    errors: List[Dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def is_right(expected: str, predicted: str) -> bool:
    return expected == predicted or (expected == OUT_OF_SCOPE and predicted == FALLBACK)


def score(results: List[Tuple[str, str, str]]) -> Score:
    """Scores (text, expected, predicted) triples.

    Out-of-scope recall counts every declined out-of-scope message; its
    precision is about the "I can only help with ..." answer itself: how
    often a message given it really was out of scope."""
    said_out_of_scope = [expected for _, expected, predicted in results if predicted == OUT_OF_SCOPE]
    results = [
        (text, expected, expected if is_right(expected, predicted) else predicted)
        for text, expected, predicted in results
    ]
    labels = sorted({expected for _, expected, _ in results})
    true_pos, predicted_count, expected_count = Counter(), Counter(), Counter()
    for _, expected, predicted in results:
        expected_count[expected] += 1
        predicted_count[predicted] += 1
        if expected == predicted:
            true_pos[expected] += 1

    def f1(label: str) -> float:
        precision = true_pos[label] / predicted_count[label] if predicted_count[label] else 0.0
        recall = true_pos[label] / expected_count[label] if expected_count[label] else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def ratio(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else 1.0

    return Score(
        total=len(results),
        accuracy=ratio(sum(true_pos.values()), len(results)),
        macro_f1=sum(f1(label) for label in labels) / len(labels) if labels else 0.0,
        out_of_scope_precision=ratio(said_out_of_scope.count(OUT_OF_SCOPE), len(said_out_of_scope)),
        out_of_scope_recall=ratio(true_pos[OUT_OF_SCOPE], expected_count[OUT_OF_SCOPE]),
        red_flag_recall=ratio(true_pos[EMERGENCY], expected_count[EMERGENCY]),
        errors=[
            {"text": text, "expected": expected, "predicted": predicted}
            for text, expected, predicted in results
            if expected != predicted
        ],
    )


async def evaluate(model_path: Path, examples: Optional[List[Tuple[str, str]]] = None) -> Score:
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # no per-message debug lines on stdout
    agent = Agent.load(str(model_path))
    results = []
    for text, expected in examples or load_examples():
        parse = await agent.parse_message(text)
        results.append((text, expected, answered_label(parse)))
    return score(results)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    examples = load_examples(Path(sys.argv[2])) if len(sys.argv) == 3 else None
    result = asyncio.run(evaluate(Path(sys.argv[1]), examples))
    print(json.dumps(result.as_dict(), indent=2))
