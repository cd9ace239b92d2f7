"""The held-out sets (tests/held_out/): conversations the model never
trained on, scored by what the visitor gets from the running assistant
(clinic.evaluation), against the floors in clinic/quality.py."""

import json

import pytest

from clinic import quality
from clinic.evaluation import SETS, evaluate
from conftest import OUTPUT


@pytest.fixture(scope="module", params=sorted(SETS))
def held_out(request, assistant):
    score = evaluate(assistant.url, assistant.token, SETS[request.param])
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"held_out_{request.param}.json").write_text(json.dumps(score.as_dict(), indent=2))
    return request.param, score


def _misses(score) -> str:
    return "\n".join(f"{e['expected']} -> {e['got']}: {e['context']} {e['text']}" for e in score.errors)


def test_accuracy_reaches_the_floor(held_out):
    name, score = held_out
    assert score.total >= quality.MIN_HELD_OUT_ITEMS
    assert quality.accuracy_shortfalls(name, score.as_dict()) == [], _misses(score)


def test_every_emergency_is_sent_to_911(held_out):
    _, score = held_out
    assert score.red_flag_recall >= quality.MIN_RED_FLAG_RECALL, _misses(score)


def test_no_other_message_is_sent_to_911(held_out):
    _, score = held_out
    assert score.false_alarms <= quality.MAX_FALSE_ALARMS, _misses(score)
