"""Names visitors give ("my name is ...", "I'm <Name>") are masked in logs
(clinic/log_privacy.py), while ordinary sentences stay readable."""

import logging

import pytest

from clinic import log_privacy
from clinic.log_privacy import mask


@pytest.mark.parametrize(
    "text,name",
    [
        ("my name is john smith and I have sciatica", "john smith"),
        ("MY NAME IS JOSÉ GARCÍA", "JOSÉ GARCÍA"),
        ("Hi, I'm Dana. Is it safe?", "Dana"),
        ("I’m Dana, thanks", "Dana"),
        ("i am Maria Lopez from queens", "Maria Lopez"),
        ("call me Bob please", "Bob"),
        ("This is Theodore Levarda", "Theodore Levarda"),
        ("My name's Ann", "Ann"),
        ("name: Jo Ann O'Neil", "Jo Ann O'Neil"),
        ("my first name is Lee", "Lee"),
        ("Received user message 'Im Kate'", "Kate"),
        ('{"text": "my name is Sara", "sender": "x"}', "Sara"),
    ],
)
def test_a_name_the_visitor_gives_is_masked(text, name):
    masked = mask(text)
    assert name not in masked and "[name]" in masked


@pytest.mark.parametrize(
    "text",
    [
        "I'm having pain in my leg",
        "I am 45 years old",
        "this is great",
        "what is dry needling",
        "2026-11-20 23:37:04,936 INFO rasa.core.processor started",
    ],
)
def test_sentences_without_a_name_stay_readable(text):
    assert mask(text) == text


def test_names_and_numbers_are_masked_in_an_installed_logger():
    log_privacy.install()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger = logging.getLogger("test_log_privacy_names")
    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning("visitor said %r", "my name is Dana Smith, text me at 917-555-0134")
    finally:
        logger.removeHandler(handler)
    [line] = records
    assert "Dana" not in line and "Smith" not in line and "555-0134" not in line
    assert "[name]" in line and "[phone **34]" in line
