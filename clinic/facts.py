"""The clinic's facts and fact-built messages, from data/clinic.yml."""

import re
from functools import lru_cache
from typing import Dict

import yaml

from clinic import DATA_DIR

FACTS_FILE = DATA_DIR / "clinic.yml"
PLACEHOLDER = re.compile(r"{(\w+)}")


@lru_cache(maxsize=1)
def clinic_facts() -> Dict[str, str]:
    """Every entry as a string, keyed by the placeholder name responses use;
    placeholders inside entries (the messages) are already filled."""
    raw = yaml.safe_load(FACTS_FILE.read_text(encoding="utf-8"))
    facts = {key: str(value) for key, value in raw.items()}
    return {key: _fill(value, facts) for key, value in facts.items()}


def _fill(text: str, facts: Dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: facts.get(m.group(1), m.group(0)), text)


def fill(text: str) -> str:
    """Puts the clinic's facts into a text that uses {placeholders}."""
    return _fill(text, clinic_facts())
