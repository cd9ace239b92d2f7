"""Reads the examples of Rasa NLU YAML files (data/nlu/, the written held-out set)."""

from pathlib import Path
from typing import List, Tuple

import yaml


# libyaml's safe loader when PyYAML was built with it: several times faster,
# and the data is read again on every staff edit.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def nlu_examples(path: Path) -> List[Tuple[str, str]]:
    """(text, intent) of every example in a Rasa NLU YAML file, in order."""
    content = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}
    pairs = []
    for block in content.get("nlu") or []:
        if "intent" not in block:
            continue
        for line in block["examples"].splitlines():
            if line.strip().startswith("- "):
                pairs.append((line.strip()[2:].strip(), block["intent"]))
    return pairs
