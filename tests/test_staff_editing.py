"""The staff console's edits of the training data (staff/training_data.py), on a
copy of the project's files: comments, order and layout survive, and an edit
that would break the data is refused with a reason."""

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from clinic import PROJECT_ROOT
from clinic.evaluation import REAL_SET, load_items
from staff.training_data import MAX_ANSWER_CHARS, MIN_EXAMPLES_PER_ANSWER, EditRefused, TrainingData, example_key
from staff.yaml_round_trip import dump as _dump, round_trip as _round_trip

# A data file as a person writes it: comments everywhere, a deliberate order.
COMMENTED_FAQ = '''version: "3.1"

# The question visitors ask most after their first session.
nlu:
- intent: faq/zz_first_visit_feel
  examples: |
    - how will i feel after the first visit
    - will i be tired after my first dry needling
    - what do people feel after session one
    - is it normal to feel wiped out after the first visit
    - first visit aftereffects
    - how do most people feel the day after the first needling
    - any tips for the evening after my first treatment
    - will i feel different straight after the first session
    - should i rest after my first visit
    - can i work out after my first session
    - how long do first visit effects last
    - what should i expect to feel on day one
    - do people feel relief or soreness first
    - can i drive home after my first treatment
    - what happens to my body after the first visit
# keep the answer below next to its examples

responses:
  # Answer first, then the follow-ups.
  utter_faq/zz_first_visit_feel:
  - text: "Most people feel a little sore or tired, and some feel relief straight away. Call or text {clinic_phone} with questions."
    buttons:
    - title: "Book a visit"  # the clinic's most used button
      payload: "/book_appointment"
# end of file
'''


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the files the editor reads and writes."""
    shutil.copytree(PROJECT_ROOT / "data", tmp_path / "data")
    shutil.copy2(PROJECT_ROOT / "domain.yml", tmp_path / "domain.yml")
    shutil.copytree(PROJECT_ROOT / "tests" / "held_out", tmp_path / "tests" / "held_out")
    (tmp_path / "data" / "nlu" / "faq_zz_first_visit_feel.yml").write_text(COMMENTED_FAQ)
    return tmp_path


@pytest.fixture
def data(project) -> TrainingData:
    return TrainingData(project)


def faq_file(project: Path) -> Path:
    return project / "data" / "nlu" / "faq_zz_first_visit_feel.yml"


def held_out_example(label_prefix: str = "faq/") -> str:
    for item in load_items(REAL_SET):
        if item.expect[0].startswith(label_prefix) and not item.context:
            return item.text
    raise AssertionError("the held-out set has no FAQ example")


def test_every_data_file_the_console_edits_survives_a_round_trip_unchanged():
    for path in sorted((PROJECT_ROOT / "data" / "nlu").glob("*.yml")):
        source = path.read_text(encoding="utf-8")
        assert _dump(_round_trip().load(source)) == source, path


def test_adding_a_phrasing_adds_one_line_and_keeps_every_comment_in_order(data, project):
    before = faq_file(project).read_text()
    change = data.add_phrasing("faq/zz_first_visit_feel", "  will I  feel weird\tafter my first needling? ")
    after = faq_file(project).read_text()
    added = "    - will I feel weird after my first needling?\n"
    # exactly one line more, right after the last example; everything else byte for byte
    assert after == before.replace(
        "    - what happens to my body after the first visit\n",
        "    - what happens to my body after the first visit\n" + added,
    )
    assert change.diff.count("\n+    - ") == 1 and "\n-" not in change.diff.split("@@", 2)[-1]
    assert change.path == "data/nlu/faq_zz_first_visit_feel.yml"


def test_editing_an_answer_changes_only_its_text(data, project):
    before = faq_file(project).read_text()
    new_text = "Most people feel a little sore, some feel relief at once. Call or text {clinic_phone}."
    change = data.edit_answer("faq/zz_first_visit_feel", new_text)
    after = faq_file(project).read_text()
    old_line = (
        '  - text: "Most people feel a little sore or tired, and some feel relief straight away. '
        'Call or text {clinic_phone} with questions."\n'
    )
    assert after == before.replace(old_line, f'  - text: "{new_text}"\n')
    # comments, the button and its trailing comment are still there, in order
    assert after.index("# Answer first") < after.index("- text:") < after.index("# the clinic's most used button")
    assert after.endswith("# end of file\n")
    assert change.detail["before"].startswith("Most people feel a little sore or tired")


def test_answer_edits_that_break_the_rules_are_refused(data, project):
    before = faq_file(project).read_text()
    with pytest.raises(EditRefused, match="Unknown placeholder"):
        data.edit_answer("faq/zz_first_visit_feel", "Call us at {clinic_fax}.")
    with pytest.raises(EditRefused, match=str(MAX_ANSWER_CHARS)):
        data.edit_answer("faq/zz_first_visit_feel", "word " * 150)
    with pytest.raises(EditRefused, match="empty"):
        data.edit_answer("faq/zz_first_visit_feel", "   ")
    with pytest.raises(EditRefused, match="{clinic_phone}"):
        data.edit_answer("faq/zz_first_visit_feel", "Call us at " + data.facts()["clinic_phone"] + ".")
    # placeholders count with the clinic's details filled in
    phone = data.facts()["clinic_phone"]
    text = "x" * (MAX_ANSWER_CHARS - len(phone)) + "{clinic_phone}"
    data.edit_answer("faq/zz_first_visit_feel", text)
    with pytest.raises(EditRefused):
        data.edit_answer("faq/zz_first_visit_feel", "x" + text)
    assert faq_file(project).read_text() != before  # only the valid edit was written


def test_a_phrasing_already_taught_elsewhere_is_refused_as_a_collision(data, project):
    existing = yaml.safe_load((project / "data" / "nlu" / "faq_safety.yml").read_text())
    taught = existing["nlu"][0]["examples"].splitlines()[0][2:]
    before = faq_file(project).read_text()
    with pytest.raises(EditRefused, match="collide"):
        data.add_phrasing("faq/zz_first_visit_feel", taught.upper() + "!")  # case and punctuation aside
    with pytest.raises(EditRefused, match="already a phrasing of this answer"):
        data.add_phrasing("faq/zz_first_visit_feel", "How will I feel after the first visit?")
    assert faq_file(project).read_text() == before


def test_a_held_out_question_is_never_taught(data, project):
    with pytest.raises(EditRefused, match="held-out"):
        data.add_phrasing("faq/zz_first_visit_feel", held_out_example())


def test_personal_details_and_empty_text_are_refused(data):
    for text, reason in [
        ("my number is (917) 555-0199 call me", "phone number"),
        ("email me at jane.doe@example.com", "email"),
        ("   ", "empty"),
        ("x" * 400, "at most"),
    ]:
        with pytest.raises(EditRefused, match=reason):
            data.add_phrasing("faq/zz_first_visit_feel", text)


def test_brackets_cannot_smuggle_an_entity_annotation(data, project):
    data.add_phrasing("faq/zz_first_visit_feel", "does the [piriformis](muscle) get sore after visit one")
    assert "    - does the  piriformis (muscle) get sore after visit one\n" not in faq_file(project).read_text()
    assert "    - does the piriformis (muscle) get sore after visit one\n" in faq_file(project).read_text()


@pytest.mark.parametrize(
    "topic", ["Bad Name", "1st_visit", "a", "x" * 41, "double__underscore", "trailing_", "naïve", "faq/x"]
)
def test_an_invalid_topic_name_is_refused(data, topic):
    with pytest.raises(EditRefused, match="not a valid topic name"):
        data.check_topic(topic)


@pytest.mark.parametrize("topic", ["how_many_sessions", "prices", "greet", "faq", "zz_first_visit_feel"])
def test_a_topic_name_that_collides_is_refused(data, topic):
    # an FAQ, a not-covered topic, a domain intent, a retrieval intent, a file
    with pytest.raises(EditRefused, match="already used"):
        data.check_topic(topic)


def phrasings(count: int):
    return [f"do you sell gift vouchers for option {n}" for n in range(count)]


def test_a_new_answer_gets_its_own_file_and_passes_the_data_checks(data, project):
    assert data.problems() == []
    change = data.new_answer("gift_vouchers", phrasings(MIN_EXAMPLES_PER_ANSWER), "Ask us: {clinic_phone}.", True)
    path = project / "data" / "nlu" / "faq_gift_vouchers.yml"
    content = yaml.safe_load(path.read_text())
    assert content["version"] == "3.1"
    assert content["nlu"][0]["intent"] == "faq/gift_vouchers"
    assert len(content["nlu"][0]["examples"].splitlines()) == MIN_EXAMPLES_PER_ANSWER
    assert content["responses"]["utter_faq/gift_vouchers"][0]["buttons"][0]["payload"] == "/book_appointment"
    assert change.path == "data/nlu/faq_gift_vouchers.yml"
    assert data.problems() == []
    # and the name is now taken
    with pytest.raises(EditRefused, match="already used"):
        data.check_topic("gift_vouchers")


def test_a_new_answer_needs_enough_distinct_phrasings(data, project):
    few = phrasings(MIN_EXAMPLES_PER_ANSWER - 1) + ["Do you sell gift vouchers for option 0?"]  # a repeat
    with pytest.raises(EditRefused, match=f"at least {MIN_EXAMPLES_PER_ANSWER}"):
        data.new_answer("gift_vouchers", few, "Ask us.")
    with pytest.raises(EditRefused, match="collide"):
        data.new_answer("gift_vouchers", phrasings(20) + ["how will i feel after the first visit"], "Ask us.")
    assert not (project / "data" / "nlu" / "faq_gift_vouchers.yml").exists()


def test_the_suggested_topic_comes_from_the_question_and_is_free(data):
    topic = data.suggest_topic("Do you offer gift certificates for the treatments?")
    assert topic == "offer_gift_certificates_treatments"
    assert data.check_topic(topic) == topic
    # once the name is taken, the suggestion is a free variant of it
    assert data.suggest_topic("Do you sell gift vouchers?") == "sell_gift_vouchers"
    data.new_answer("sell_gift_vouchers", phrasings(MIN_EXAMPLES_PER_ANSWER), "Ask us.")
    assert data.suggest_topic("Do you sell gift vouchers?") == "sell_gift_vouchers_2"


def test_the_data_check_names_colliding_answers(data, project):
    path = project / "data" / "nlu" / "faq_zz_first_visit_feel.yml"
    safety = yaml.safe_load((project / "data" / "nlu" / "faq_safety.yml").read_text())
    taught = safety["nlu"][0]["examples"].splitlines()[0][2:]
    # an edit made by hand, outside the console
    path.write_text(path.read_text().replace("    - first visit aftereffects\n", f"    - {taught}\n"))
    problems = data.problems()
    assert any("collide" in problem and example_key(taught) in problem for problem in problems), problems


def test_the_gate_checks_a_training_snapshot_against_the_projects_held_out_set(project, tmp_path):
    from staff.gate import Gate

    # a candidate's snapshot holds only the training inputs, as staff/training.py copies them
    snapshot = tmp_path / "snapshot"
    shutil.copytree(project / "data", snapshot / "data")
    gate = Gate(project, Path(sys.executable).parent, tmp_path / "scores.json")
    assert gate.check_data(snapshot).passed
    leaked = held_out_example()
    path = snapshot / "data" / "nlu" / "faq_zz_first_visit_feel.yml"
    path.write_text(path.read_text().replace("    - first visit aftereffects\n", f"    - {leaked}\n"))
    check = gate.check_data(snapshot)
    assert not check.passed and "held-out" in check.summary
