"""The training data and answers: complete, within limits, and kept apart
from the held-out set. The rules any Rasa data keeps are clinic/quality.py's
(the staff console's gate checks the same); what is checked here besides is
this clinic's own."""

import re
import subprocess

import pytest

from clinic import DATA_DIR, PROJECT_ROOT, quality
from clinic.evaluation import SETS, texts_of
from clinic.facts import clinic_facts
from clinic.nlu_data import load_yaml, nlu_examples

NLU_FILES = sorted((DATA_DIR / "nlu").glob("*.yml"))
RULE_FILES = sorted((DATA_DIR / "rules").glob("*.yml"))
ISSUE_TOPICS = {
    "what_is_sciatica", "sciatica_causes", "sciatica_symptoms", "traditional_treatments",
    "what_is_dry_needling", "how_it_works", "pain_relief", "muscle_tension", "mobility",
    "circulation_inflammation", "alternative_to_medication_surgery", "numbness_tingling",
    "safety", "combining_treatments", "how_quickly", "neuromuscular_reeducation",
    "dry_needling_vs_acupuncture", "soreness_after", "does_it_help", "how_many_sessions",
    "research_sources", "practitioner",
}
NOT_COVERED_TOPICS = {
    "prices", "insurance", "hours", "location", "session_length", "other_conditions", "policies", "treatment_details",
}


@pytest.fixture(scope="module")
def training_examples():
    return [pair for path in NLU_FILES for pair in nlu_examples(path)]


@pytest.fixture(scope="module")
def responses():
    found = {}
    for path in NLU_FILES + [PROJECT_ROOT / "domain.yml"]:
        found.update(load_yaml(path).get("responses") or {})
    return found


def test_the_data_keeps_every_rule_the_publish_gate_checks():
    assert quality.data_problems(PROJECT_ROOT) == []


def test_every_file_declares_the_format_version():
    assert quality.version_problems({path: load_yaml(path) for path in NLU_FILES + RULE_FILES}) == []


def test_every_topic_of_the_documents_is_a_faq_with_enough_examples(training_examples):
    labels = {label for _, label in training_examples}
    faq_topics = {label.split("/")[1] for label in labels if label.startswith("faq/")}
    assert faq_topics >= ISSUE_TOPICS
    assert {label.split("/")[1] for label in labels if label.startswith("not_covered/")} == NOT_COVERED_TOPICS
    assert quality.example_count_problems(training_examples) == []


def test_every_retrieval_intent_has_its_answer_next_to_its_examples():
    assert quality.answer_placement_problems({path: load_yaml(path) for path in NLU_FILES}) == []


def test_answers_are_short_and_use_only_known_clinic_facts(responses):
    assert quality.answer_problems(responses, clinic_facts()) == []


def test_follow_up_buttons_are_few_and_lead_somewhere(responses, training_examples):
    domain_intents = set(load_yaml(PROJECT_ROOT / "domain.yml")["intents"])
    examples = {quality.example_key(text) for text, _ in training_examples}
    for name, variations in responses.items():
        buttons = variations[0].get("buttons") or []
        assert len(buttons) <= 3, name
        for button in buttons:
            payload = button["payload"]
            if payload.startswith("/"):
                assert payload[1:] in domain_intents, (name, payload)
            else:
                # a typed question, so it must not be a memorised example
                assert quality.example_key(payload) not in examples, (name, payload)


def test_no_example_is_repeated_across_intents(training_examples):
    assert quality.collision_problems(training_examples) == []


@pytest.mark.parametrize("name", sorted(SETS))
def test_held_out_sets_are_large_and_never_trained_on(training_examples, name):
    held_out = texts_of(SETS[name], context=False)
    assert quality.held_out_problems(training_examples, {name: held_out}) == []


def test_clinic_phone_is_written_in_one_file_only():
    phone = clinic_facts()["clinic_phone"]
    digits = re.sub(r"\D", "", phone)[-7:]
    pattern = f"{digits[:3]}.?{digits[3:]}"
    tracked = subprocess.run(
        ["git", "grep", "-lE", pattern, "--", ":!tests", ":!bench"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    ).stdout.split()
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=PROJECT_ROOT, capture_output=True, text=True
    ).stdout.split()
    for path in untracked:
        if not path.startswith(("tests/", "bench/")) and re.search(pattern, (PROJECT_ROOT / path).read_text(errors="ignore")):
            tracked.append(path)
    assert sorted(set(tracked)) == ["data/clinic.yml"]


def test_no_answer_opens_with_yes(responses):
    """A "Yes" answers only the question it was written for; the classifier
    may pick the answer for a question asked the other way round ("can it
    make sciatica worse?"). So answers start with what is so."""
    for name, variations in responses.items():
        for variation in variations:
            assert not re.match(r"\W*yes\b", variation.get("text") or "", re.I), name


def test_after_effects_answers_do_not_send_anyone_to_911(responses):
    """Soreness, a twitch, a bruise are normal: their answers never say 911."""
    for name in ("utter_faq/soreness_after", "utter_faq/worse_after", "utter_faq/safety"):
        for variation in responses[name]:
            assert "911" not in variation["text"] and "emergency room" not in variation["text"], name


def test_every_faq_has_a_longer_version_for_tell_me_more(responses):
    for name, variations in responses.items():
        if name.startswith("utter_faq/"):
            details = {c["value"] for v in variations for c in v.get("condition") or [] if c["name"] == "detail"}
            assert "more" in details, name
