"""The deterministic red-flag check: symptoms that need 911, not an FAQ answer.

The patterns live in data/nlu/red_flags.yml as Rasa regex entries, so they
travel with the training data into the model; this module matches them.
"""

import re
from typing import Dict, Iterable, List, Tuple

import yaml

from clinic import DATA_DIR

RED_FLAGS_FILE = DATA_DIR / "nlu" / "red_flags.yml"
PATTERN_PREFIX = "red_flag_"
EMERGENCY_INTENT = "report_emergency"

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def normalize(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: what patterns expect."""
    return " ".join((text or "").translate(_QUOTES).lower().split())


def load_patterns(path=RED_FLAGS_FILE) -> Dict[str, List[str]]:
    """Red-flag name -> its regular expressions, read from the YAML file."""
    content = yaml.safe_load(open(path, encoding="utf-8"))
    return {
        item["regex"]: [
            line.strip()[2:] for line in item["examples"].splitlines() if line.strip()
        ]
        for item in content["nlu"]
        if item.get("regex", "").startswith(PATTERN_PREFIX)
    }


class RedFlagMatcher:
    """Finds which red flags a message names."""

    def __init__(self, patterns: Iterable[Tuple[str, str]]) -> None:
        self._patterns = [(name, re.compile(regex)) for name, regex in patterns]

    @classmethod
    def from_file(cls, path=RED_FLAGS_FILE) -> "RedFlagMatcher":
        return cls(
            (name, regex)
            for name, regexes in load_patterns(path).items()
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
