"""The deterministic pattern nets: red-flag symptoms that need 911, not an
FAQ answer, and questions only a clinician can answer for the visitor's
own case.

The patterns live in data/nlu/ as Rasa regex entries (data/nlu/red_flags.yml,
the `own_case_` ones in data/nlu/safety.yml), so they travel with the
training data into the model; this module matches them.
"""

import re
from functools import lru_cache
from typing import Dict, Iterable, List, Tuple

import yaml

from clinic import DATA_DIR

RED_FLAGS_FILE = DATA_DIR / "nlu" / "red_flags.yml"
OWN_CASE_FILE = DATA_DIR / "nlu" / "safety.yml"
SPELLING_FILE = DATA_DIR / "spacy" / "spelling.yml"
PATTERN_PREFIX = "red_flag_"
OWN_CASE_PREFIX = "own_case_"
EMERGENCY_INTENT = "report_emergency"
OWN_CASE_INTENT = "ask_personal_advice"

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


@lru_cache(maxsize=1)
def _spellings() -> Dict[str, str]:
    content = yaml.safe_load(SPELLING_FILE.read_text(encoding="utf-8")) or {}
    return {str(wrong).lower(): str(right).lower() for wrong, right in (content.get("corrections") or {}).items()}


def normalize(text: str) -> str:
    """Lower case, straight apostrophes, single spaces, texting shorthand and
    typos spelled out (data/spacy/spelling.yml): what patterns expect."""
    words = (text or "").translate(_QUOTES).lower().split()
    spellings = _spellings()
    return " ".join(spellings.get(word, word) for word in words)


def load_patterns(path=RED_FLAGS_FILE, prefix: str = PATTERN_PREFIX) -> Dict[str, List[str]]:
    """Pattern name -> its regular expressions, for the names starting with
    `prefix`, read from the YAML file."""
    content = yaml.safe_load(open(path, encoding="utf-8"))
    return {
        item["regex"]: [
            line.strip()[2:] for line in item["examples"].splitlines() if line.strip()
        ]
        for item in content["nlu"]
        if item.get("regex", "").startswith(prefix)
    }


class RedFlagMatcher:
    """Finds which of a net's patterns (red flags, own-case questions) a message matches."""

    def __init__(self, patterns: Iterable[Tuple[str, str]]) -> None:
        self._patterns = [(name, re.compile(regex)) for name, regex in patterns]

    @classmethod
    def from_file(cls, path=RED_FLAGS_FILE, prefix: str = PATTERN_PREFIX) -> "RedFlagMatcher":
        return cls(
            (name, regex)
            for name, regexes in load_patterns(path, prefix).items()
            for regex in regexes
        )

    def find(self, text: str) -> List[str]:
        """Names of the red flags in the text, in pattern order, no repeats."""
        text = normalize(text)
        found: List[str] = []
        for name, pattern in self._patterns:
            if name not in found and pattern.search(text):
                found.append(name)
        return found
