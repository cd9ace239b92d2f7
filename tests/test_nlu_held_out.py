"""The held-out set (tests/nlu_held_out.yml): phrasings the model never
trained on, scored as what the visitor would get. Fails the build below
the thresholds."""

import asyncio
import json

import pytest

from clinic.evaluation import evaluate
from conftest import OUTPUT

MIN_ACCURACY = 0.90


@pytest.fixture(scope="module")
def held_out_score(trained_model):
    score = asyncio.run(evaluate(trained_model))
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "nlu_held_out.json").write_text(json.dumps(score.as_dict(), indent=2))
    return score


def test_held_out_accuracy_is_at_least_90_percent(held_out_score):
    misses = "\n".join(f"{e['expected']} -> {e['predicted']}: {e['text']}" for e in held_out_score.errors)
    assert held_out_score.accuracy >= MIN_ACCURACY, misses


def test_every_held_out_emergency_is_sent_to_911(held_out_score):
    assert held_out_score.red_flag_recall == 1.0
    assert held_out_score.total >= 150
