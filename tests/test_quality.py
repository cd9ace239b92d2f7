"""What "good enough" means is written once, in clinic/quality.py: changing
a held-out floor, a target or a data rule there changes it for the tests
(tests/test_held_out.py, tests/test_data.py), the staff console's publish
gate (staff/gate.py) and the benchmark (bench/) alike. The gate's Rasa
commands are the builders' too. Fast: no server, no training."""

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from bench.accuracy import accuracy_verdict
from clinic import PROJECT_ROOT, quality
from clinic.facts import clinic_facts
from clinic.nlu_data import load_yaml
from staff.gate import Gate
from staff.phrasing import EditRefused
from staff.training_data import TrainingData

HELD_OUT_DIR = PROJECT_ROOT / "tests" / "held_out"
MODEL_ID = "candidate-1"


def set_score(accuracy: float) -> dict:
    """A held-out set's score as clinic.evaluation.Score.as_dict() gives it."""
    return {
        "total": 200, "accuracy": accuracy, "macro_f1": accuracy, "red_flag_recall": 1.0, "false_alarms": 0,
        "out_of_scope_precision": 1.0, "out_of_scope_recall": 1.0, "by_kind": {}, "errors": [],
    }


@pytest.fixture
def gate(tmp_path) -> Gate:
    """The gate of this project, with a candidate whose held-out scores are
    already known (the gate keeps them per model id), so nothing is served."""
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({MODEL_ID: {"real": set_score(0.95)}}))
    return Gate(PROJECT_ROOT, tmp_path / "bin", scores)


@pytest.fixture
def model(tmp_path) -> Path:
    """A model archive as far as the gate reads it: its metadata."""
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"model_id": MODEL_ID, "trained_at": 0}))
    path = tmp_path / "candidate.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(metadata, arcname="metadata.json")
    return path


@pytest.fixture
def snapshot(tmp_path) -> Path:
    """The training inputs of a candidate, as staff/training.py copies them."""
    shutil.copytree(PROJECT_ROOT / "data", tmp_path / "snapshot" / "data")
    shutil.copy2(PROJECT_ROOT / "domain.yml", tmp_path / "snapshot" / "domain.yml")
    return tmp_path / "snapshot"


def test_a_held_out_floor_changes_for_the_tests_and_the_gate_alike(monkeypatch, gate, model):
    score = set_score(0.95)
    # what tests/test_held_out.py asserts, and the gate's check of the same score
    assert quality.accuracy_shortfalls("real", score) == []
    assert gate.check_held_out(model, None).passed

    monkeypatch.setitem(quality.ACCURACY_FLOORS, "real", 0.97)
    assert quality.accuracy_shortfalls("real", score) == ["real set: 95.0% right, below 97%"]
    check = gate.check_held_out(model, None)
    assert not check.passed and "below 97%" in check.summary


def test_a_held_out_target_changes_for_the_bench(monkeypatch):
    score = set_score(0.96)
    assert accuracy_verdict("real", score) == "met"
    monkeypatch.setitem(quality.ACCURACY_TARGETS, "real", 0.98)
    assert accuracy_verdict("real", score) == "missed by real set: 96.0% right, below 98%"


def test_the_emergency_rule_changes_for_the_tests_the_gate_and_the_bench_alike(monkeypatch, gate, model):
    score = set_score(0.99)
    score["false_alarms"] = 1
    monkeypatch.setattr(quality, "MAX_FALSE_ALARMS", 1)
    # what tests/test_held_out.py asserts, the gate's check and the bench's verdict
    assert score["false_alarms"] <= quality.MAX_FALSE_ALARMS
    gate.scores_file.write_text(json.dumps({MODEL_ID: {"real": score}}))
    assert gate.check_held_out(model, None).passed
    assert accuracy_verdict("real", score) == "met"

    monkeypatch.setattr(quality, "MAX_FALSE_ALARMS", 0)
    assert not score["false_alarms"] <= quality.MAX_FALSE_ALARMS
    assert not gate.check_held_out(model, None).passed
    assert "1 non-emergency messages sent to 911" in accuracy_verdict("real", score)


def test_a_data_rule_changes_for_the_tests_the_gate_and_the_staff_editor_alike(monkeypatch, gate, snapshot):
    responses = {}
    for path in sorted((PROJECT_ROOT / "data" / "nlu").glob("*.yml")) + [PROJECT_ROOT / "domain.yml"]:
        responses.update(load_yaml(path).get("responses") or {})
    editor = TrainingData(snapshot, held_out_dir=HELD_OUT_DIR)
    answer = "x" * 150
    # what tests/test_data.py asserts, the gate's data check, a staff edit
    assert quality.answer_problems(responses, clinic_facts()) == []
    assert gate.check_data(snapshot).passed
    assert editor.check_answer_text(answer) == answer

    monkeypatch.setattr(quality, "MAX_ANSWER_CHARS", 100)
    assert quality.answer_problems(responses, clinic_facts()) != []
    check = gate.check_data(snapshot)
    assert not check.passed and "(at most 100)" in check.summary
    with pytest.raises(EditRefused, match="keep it to 100"):
        editor.check_answer_text(answer)


def test_the_example_count_changes_for_the_tests_and_the_gate_alike(monkeypatch, gate, snapshot):
    examples = [("how many sessions", "faq/how_many_sessions")] * 3
    assert gate.check_data(snapshot).passed
    monkeypatch.setattr(quality, "MIN_EXAMPLES_PER_ANSWER", 3)
    assert quality.example_count_problems(examples) == []
    monkeypatch.setattr(quality, "MIN_EXAMPLES_PER_ANSWER", 4)
    assert quality.example_count_problems(examples) == ["faq/how_many_sessions has only 3 phrasings (at least 4)."]
    monkeypatch.setattr(quality, "MIN_EXAMPLES_PER_ANSWER", 10_000)
    assert "phrasings (at least 10000)" in gate.check_data(snapshot).summary


def test_each_data_rule_names_what_is_wrong():
    contents = {Path("faq_x.yml"): {"version": "3.0", "nlu": [{"intent": "faq/x", "examples": "- a\n"}]}}
    assert quality.version_problems(contents) == ['faq_x.yml does not start with version: "3.1".']
    assert quality.answer_placement_problems(contents) == ["faq/x has no answer (utter_faq/x) in faq_x.yml."]
    assert quality.collision_problems([("Is it safe?", "faq/safety"), ("is it safe", "faq/x")]) == [
        "Two answers now collide: “is it safe” is taught as faq/safety and faq/x."
    ]
    assert quality.held_out_problems([("Is it safe?", "faq/safety")], {"real": ["is it SAFE"]}) == [
        f"The held-out set real has only 1 messages (at least {quality.MIN_HELD_OUT_ITEMS}).",
        "“is it safe” is taught, but it is also in the held-out set real.",
    ]
    assert quality.answer_problems({"utter_x": [{"text": "Call {clinic_fax}."}]}, clinic_facts()) == [
        "utter_x uses unknown placeholders ['clinic_fax']."
    ]


def test_a_missing_held_out_set_fails_the_data_check(snapshot, tmp_path):
    problems = quality.data_problems(snapshot, tmp_path / "no_held_out")
    assert "The held-out set written.yml is missing." in problems


def test_the_gate_runs_the_commands_make_test_runs(tmp_path, snapshot):
    # the gate's rasa: records its arguments, succeeds, writes no report
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rasa").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "rasa").chmod(0o755)
    ran = []
    gate = Gate(PROJECT_ROOT, bin_dir, tmp_path / "scores.json", log=ran.append)
    model, out = tmp_path / "candidate.tar.gz", tmp_path / "results"

    assert gate.check_validate(snapshot).passed
    gate.check_conversations(model, out)
    rasa = bin_dir / "rasa"
    assert ran == [
        "$ " + " ".join(quality.validate_command(
            snapshot / "config.yml", snapshot / "domain.yml", snapshot / "data", rasa=rasa)),
        "$ " + " ".join(quality.conversation_test_command(model, quality.CONVERSATION_TESTS, out, rasa=rasa)),
    ]
    assert quality.validate_command("c", "d", "data")[0] == str(quality.RASA)
    # `make validate` (part of `make test`) runs the same builder
    assert "$(PY) -m clinic.quality validate" in (PROJECT_ROOT / "Makefile").read_text()
