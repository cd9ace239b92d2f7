"""The nine muscles of the clinic's posts and the names visitors call them by."""

import difflib
from functools import lru_cache
from typing import Dict, List, Optional

import yaml

from clinic import DATA_DIR

MUSCLES_FILE = DATA_DIR / "spacy" / "muscles.yml"


@lru_cache(maxsize=1)
def _load() -> dict:
    return yaml.safe_load(MUSCLES_FILE.read_text(encoding="utf-8"))


def answer_ids() -> List[str]:
    """Every id with its own answer: the nine muscles, then the groups."""
    content = _load()
    return list(content["muscles"]) + list(content.get("groups") or {})


def group_ids() -> List[str]:
    """The ids that stand for several muscles ("glutes", "erector_spinae")."""
    return list(_load().get("groups") or {})


@lru_cache(maxsize=1)
def load_muscle_names() -> Dict[str, str]:
    """Every known name (lower case) -> the id of its answer."""
    content = _load()
    names: Dict[str, str] = {}
    for section in ("muscles", "groups"):
        for answer_id, answer_names in (content.get(section) or {}).items():
            for name in answer_names:
                names[name.lower()] = answer_id
    return names


def muscle_id_for(mention: Optional[str]) -> Optional[str]:
    """The answer id a mention refers to; a close misspelling counts too."""
    if not mention:
        return None
    names = load_muscle_names()
    mention = " ".join(mention.lower().split())
    if mention in names:
        return names[mention]
    close = difflib.get_close_matches(mention, list(names), n=1, cutoff=0.75)
    return names[close[0]] if close else None
