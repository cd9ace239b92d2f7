"""The deterministic red-flag check, and the pipeline component built on it."""

import pytest

from clinic.red_flags import RedFlagMatcher, load_patterns, normalize

EMERGENCIES = [
    ("I lost bladder control after needling, is that normal?", "red_flag_bladder_bowel"),
    ("i peed myself and cant stop it", "red_flag_bladder_bowel"),
    ("I can’t tell when I need to pee anymore", "red_flag_bladder_bowel"),
    ("my groin has gone numb", "red_flag_saddle_numbness"),
    ("numbness in the saddle area since yesterday", "red_flag_saddle_numbness"),
    ("couldnt feel the toilet paper when wiping", "red_flag_saddle_numbness"),
    ("my left leg suddenly went weak", "red_flag_leg_weakness"),
    ("the weakness in my leg is getting worse every day", "red_flag_leg_weakness"),
    ("I have foot drop now", "red_flag_leg_weakness"),
    ("sciatica in both legs", "red_flag_both_legs"),
    ("pain shooting down both of my legs", "red_flag_both_legs"),
    ("the sciatica started after I fell off a ladder", "red_flag_trauma"),
    ("got rear-ended last week and now sciatica", "red_flag_trauma"),
    ("back pain with a fever", "red_flag_fever"),
    ("i have chest pain", "red_flag_chest_breathing"),
    ("hard to breathe after the needles in my back", "red_flag_chest_breathing"),
    ("THIS IS AN EMERGENCY", "red_flag_crisis"),
]

NOT_EMERGENCIES = [
    "what is dry needling",
    "can dry needling help numbness and tingling in my leg",
    "is muscle weakness a symptom of sciatica",
    "does a slipped disc cause sciatica",
    "my foot falls asleep when I sit, is that sciatica",
    "I fell asleep on the couch and woke up sore",
    "how many sessions do I need",
    "is it normal to be sore after dry needling",
    "how much does it cost",
    "the pain goes down my left leg",
    "book an appointment",
]


@pytest.fixture(scope="module")
def matcher() -> RedFlagMatcher:
    return RedFlagMatcher.from_file()


@pytest.mark.parametrize("text,flag", EMERGENCIES)
def test_every_kind_of_red_flag_is_found(matcher, text, flag):
    assert flag in matcher.find(text)


@pytest.mark.parametrize("text", NOT_EMERGENCIES)
def test_ordinary_questions_are_not_emergencies(matcher, text):
    assert matcher.find(text) == []


def test_every_red_flag_kind_of_the_issue_has_patterns():
    assert set(load_patterns()) >= {
        "red_flag_bladder_bowel", "red_flag_saddle_numbness", "red_flag_leg_weakness",
        "red_flag_both_legs", "red_flag_trauma", "red_flag_fever",
        "red_flag_chest_breathing", "red_flag_crisis",
    }


def test_normalize_straightens_quotes_and_case():
    assert normalize("  I CAN’T   feel ") == "i can't feel"


def test_every_emergency_training_example_matches_a_pattern(matcher):
    """The classifier learns from these; the patterns must not depend on it."""
    from clinic import DATA_DIR
    from clinic.nlu_data import nlu_examples

    examples = [text for text, label in nlu_examples(DATA_DIR / "nlu" / "safety.yml") if label == "report_emergency"]
    assert len(examples) >= 40
    assert [text for text in examples if not matcher.find(text)] == []


def test_detector_overrides_a_confident_faq_prediction():
    """The component puts report_emergency first, whatever was predicted."""
    from rasa.shared.nlu.training_data.message import Message

    from components.red_flag_detector import RedFlagDetector

    patterns = [[name, regex] for name, regexes in load_patterns().items() for regex in regexes]
    detector = RedFlagDetector(model_storage=None, resource=None, patterns=patterns)
    faq = {"name": "faq", "confidence": 0.99}
    mixed = Message(data={"text": "I lost bladder control after needling, is that normal?", "intent": faq, "intent_ranking": [faq]})
    plain = Message(data={"text": "is it normal to be sore after needling?", "intent": faq, "intent_ranking": [faq]})
    detector.process([mixed, plain])
    assert mixed.get("intent") == {"name": "report_emergency", "confidence": 1.0}
    assert [i["name"] for i in mixed.get("intent_ranking")] == ["report_emergency", "faq"]
    assert mixed.get("red_flags") == ["red_flag_bladder_bowel"]
    assert plain.get("intent") == faq
