"""The NLU's names (clinic/nlu_labels.py) are Rasa's own where Rasa has them,
and the answer a response selector chose is read the same way everywhere."""

from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT_RESPONSE_KEY, RESPONSE_IDENTIFIER_DELIMITER, RESPONSE_SELECTOR

from clinic import nlu_labels
from clinic.answers import MUSCLE, answer_and_confidence, label_kind, muscle_label


def test_the_names_rasa_defines_are_rasas():
    assert nlu_labels.FALLBACK == DEFAULT_NLU_FALLBACK_INTENT_NAME
    assert nlu_labels.RESPONSE_SELECTOR_KEY == RESPONSE_SELECTOR
    assert nlu_labels.ANSWER_KEY == INTENT_RESPONSE_KEY


def test_the_chosen_answer_is_the_selectors_own_or_the_default_one():
    chosen = {"response": {"intent_response_key": "faq/safety", "confidence": 0.8}}
    parse = {"intent": {"name": "faq", "confidence": 0.9}, "response_selector": {"faq": chosen}}
    assert nlu_labels.chosen_answer(parse, "faq") == ("faq/safety", 0.8)
    assert answer_and_confidence(parse) == ("faq/safety", 0.8)
    # stock Rasa: one selector for every retrieval intent
    stock = {"intent": {"name": "faq", "confidence": 0.9}, "response_selector": {"default": chosen}}
    assert nlu_labels.chosen_answer(stock, "faq") == ("faq/safety", 0.8)
    # none chosen: the fallback
    assert nlu_labels.chosen_answer({"intent": {"name": "faq"}}, "faq") == (None, 0.0)
    assert answer_and_confidence({"intent": {"name": "faq", "confidence": 0.9}}) == (nlu_labels.FALLBACK, 0.9)


def test_a_labels_kind_is_the_part_before_rasas_delimiter():
    assert muscle_label("hamstrings") == f"{MUSCLE}{RESPONSE_IDENTIFIER_DELIMITER}hamstrings"
    assert label_kind(muscle_label("hamstrings")) == MUSCLE
    assert label_kind("faq/safety") == nlu_labels.FAQ
    assert label_kind("not_covered/prices") == nlu_labels.NOT_COVERED
    # an intent's own answer has no kind
    assert label_kind("book_appointment") is None
