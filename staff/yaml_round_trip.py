"""Rewrites the project's YAML data files the way a person would.

Edits go through ruamel.yaml's round trip, so comments, order, quoting and
blank lines stay as they were and a change reads as one or two lines in a
diff. A file is only replaced after two checks: it must come back unchanged
from a plain load-and-save (otherwise it is refused rather than
reformatted), and the new content must load to exactly the old content plus
the change.
"""

import difflib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import yaml
from ruamel.yaml import YAML

from clinic.quality import FORMAT_VERSION
from staff.phrasing import EditRefused

BOOK_BUTTON = {"title": "Book a visit", "payload": "/book_appointment"}


def round_trip() -> YAML:
    """ruamel.yaml set to the project's layout: two-space indents, sequences
    flush with their key, long answers on one line."""
    handler = YAML()
    handler.preserve_quotes = True
    handler.width = 4096
    handler.indent(mapping=2, sequence=2, offset=0)
    return handler


def dump(document) -> str:
    """A round-trip document as the text of its file."""
    out = io.StringIO()
    round_trip().dump(document, out)
    return out.getvalue()


def load_round_trip(path: Path, project_dir: Path):
    """(the file's text, its round-trip document); raises EditRefused when
    saving it back would reformat it."""
    source = path.read_text(encoding="utf-8")
    document = round_trip().load(source)
    if dump(document) != source:
        raise EditRefused(
            f"{path.relative_to(project_dir)} is laid out differently from the other data "
            "files, so it cannot be edited here without reformatting it; ask an engineer."
        )
    return source, document


def write_checked(path: Path, project_dir: Path, old: str, new: str, expected: dict, changed_lines: Optional[int]) -> str:
    """Replaces the file (atomically) with `new` after checking it loads to
    `expected` and, unless changed_lines is None, touches no more lines than
    that; returns the unified diff. Raises EditRefused, writing nothing, when
    a check fails."""
    if yaml.safe_load(new) != expected:
        raise EditRefused(f"Editing {path.name} would change more than intended; nothing was written.")
    name = path.relative_to(project_dir)
    diff = "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}")
    )
    if changed_lines is not None:
        touched = [
            line for line in diff.splitlines()[2:]
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        if len(touched) > changed_lines:
            raise EditRefused(f"Editing {path.name} would reformat other lines; nothing was written.")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(new)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return diff


def new_answer_file(label: str, phrasings: List[str], answer_text: str, book_button: bool) -> Tuple[str, dict]:
    """(the text, what it loads to) of a new data file holding one retrieval
    intent ("faq/<topic>"), its phrasings and its answer, laid out as the
    project's files are."""
    lines = [
        f'version: "{FORMAT_VERSION}"',
        "",
        "nlu:",
        f"- intent: {label}",
        "  examples: |",
        *[f"    - {text}" for text in phrasings],
        "",
        "responses:",
        f"  utter_{label}:",
        # a JSON string is a valid YAML double-quoted scalar
        f"  - text: {json.dumps(answer_text, ensure_ascii=False)}",
    ]
    if book_button:
        lines += ["    buttons:", f'    - title: "{BOOK_BUTTON["title"]}"', f'      payload: "{BOOK_BUTTON["payload"]}"']
    expected = {
        "version": FORMAT_VERSION,
        "nlu": [{"intent": label, "examples": "".join(f"- {text}\n" for text in phrasings)}],
        "responses": {f"utter_{label}": [{"text": answer_text, **({"buttons": [BOOK_BUTTON]} if book_button else {})}]},
    }
    return "\n".join(lines) + "\n", expected
