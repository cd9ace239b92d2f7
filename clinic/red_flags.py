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


# What a visitor says they do not have: "no fever", "no bladder or bowel
# problems", "not an emergency", "I'm not pregnant or on blood thinners". A
# match is denied when one of these words stands right before it, or before
# a short list that ends in it (NegEx's idea, Chapman et al. 2001, with the
# window narrowed to a list so that a denial never reaches further): "no
# control of my bladder" is the symptom itself and still matches, as does
# any pattern whose match starts with its own negation ("can't pee").
_DENIAL = (
    r"\b(?:no|not|never|without|nor|neither|zero|none of|free of|denies|deny|nothing(?: \w+)? like|"
    r"(?:do|does|did)(?:n'?t| not) have|(?:have|has)(?:n'?t| not) (?:had|got)|(?:is|are|was|were)n'?t|(?:i'?m|am) not)\s+"
    r"(?:{filler}){{0,2}}(?:[\w'-]+(?:\s+[\w'-]+)?(?:\s*,\s*(?:or\s+|and\s+|nor\s+)?|\s+(?:or|nor)\s+)(?:{filler}){{0,2}}){{0,3}}$"
).format(filler=(
    r"(?:any|a|an|real|actual|on|taking|my|his|her|the|signs? of|symptoms? of|history of"
    r"|issues? with|problems? with|trouble with|loss of)\s+"
))
_DENIED = re.compile(_DENIAL)


def denied(text: str, start: int) -> bool:
    """Whether what starts at `start` in the (normalized) text is denied."""
    return _DENIED.search(text, 0, start) is not None


def _flag_start(match: "re.Match") -> int:
    """Where the symptom or condition of a match starts: its group `flag`
    where the pattern names one (a pattern of lookaheads matches at the
    start of the text), else the match's start."""
    if "flag" in match.re.groupindex and match.start("flag") >= 0:
        return match.start("flag")
    return match.start()


class RedFlagMatcher:
    """Finds which of a net's patterns (red flags, own-case questions) a message matches.

    A match the visitor denies ("no fever") does not count (`denied`); the
    same pattern matching elsewhere in the message still does."""

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
            if name not in found and any(not denied(text, _flag_start(match)) for match in pattern.finditer(text)):
                found.append(name)
        return found
