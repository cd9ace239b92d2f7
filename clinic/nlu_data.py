"""Reads the examples of Rasa NLU YAML files (data/nlu/, the written held-out set)."""

from pathlib import Path
from typing import List, Tuple

import yaml


# libyaml's safe loader when PyYAML was built with it: several times faster,
# and the data is read again on every staff edit.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> dict:
    """A YAML file's content; {} when it is empty."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}


def block_examples(examples: str) -> List[str]:
    """The texts of an `examples: |` block ("- text" lines), in order."""
    return [line.strip()[2:].strip() for line in str(examples or "").splitlines() if line.strip().startswith("- ")]


def content_examples(content: dict) -> List[Tuple[str, str]]:
    """(text, intent) of every example in a loaded Rasa NLU YAML file, in order."""
    return [
        (text, block["intent"])
        for block in content.get("nlu") or []
        if "intent" in block
        for text in block_examples(block["examples"])
    ]


def nlu_examples(path: Path) -> List[Tuple[str, str]]:
    """(text, intent) of every example in a Rasa NLU YAML file, in order."""
    return content_examples(load_yaml(path))
