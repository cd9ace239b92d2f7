"""The clinic's facts and fact-built messages, from data/clinic.yml."""

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import yaml

from clinic import DATA_DIR

FACTS_FILE = DATA_DIR / "clinic.yml"
PLACEHOLDER = re.compile(r"{(\w+)}")


def read_facts(path: Path = FACTS_FILE) -> Dict[str, str]:
    """Every entry of a clinic file (data/clinic.yml, or a copy's) as a
    string, keyed by the placeholder name responses use; placeholders inside
    entries (the messages) are already filled."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    facts = {key: str(value) for key, value in raw.items()}
    return {key: fill(value, facts) for key, value in facts.items()}


@lru_cache(maxsize=1)
def clinic_facts() -> Dict[str, str]:
    """This project's facts (read_facts of data/clinic.yml), read once."""
    return read_facts(FACTS_FILE)


def fill(text: str, facts: Optional[Dict[str, str]] = None) -> str:
    """Puts the clinic's facts (this project's, or `facts`) into a text that
    uses {placeholders}; an unknown placeholder stays as written."""
    facts = clinic_facts() if facts is None else facts
    return PLACEHOLDER.sub(lambda m: facts.get(m.group(1), m.group(0)), text)
