"""Reads and edits the Rasa training data under data/nlu/, the way a person would.

Edits go through ruamel.yaml's round trip, so comments, order, quoting and
blank lines stay as they were and a change reads as one or two lines in a
diff. Every edit is checked three ways before the file is replaced: the
file must come back unchanged from a plain load-and-save (otherwise it is
refused rather than reformatted), the new content must load to exactly the
old content plus the change, and the change must keep what tests/test_data.py
asks of the data (no phrasing under two answers, none from the held-out set,
answers within 600 characters using only known clinic facts).
"""

import difflib
import fcntl
import io
import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from clinic.evaluation import SETS, texts_of
from clinic.facts import PLACEHOLDER
from clinic.nlu_data import SAFE_LOADER

RETRIEVAL_INTENTS = ("faq", "not_covered")
OUT_OF_SCOPE = "out_of_scope"
# tests/test_data.py asks the same of the data.
MAX_ANSWER_CHARS = 600
MIN_EXAMPLES_PER_ANSWER = 15
# SMS (issue 4): aim at one 320-character message, never above 1,600.
SMS_AIM_CHARS = 320
SMS_MAX_CHARS = 1600
MAX_PHRASING_CHARS = 300
TOPIC = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MIN_TOPIC_CHARS, MAX_TOPIC_CHARS = 3, 40
# Personal details must not become training data (it ends up in the repository).
PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[a-z]{2,}", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
STOPWORDS = set(
    """a an the is are was were be been am do does did can could will would should shall
    may might must i me my mine you your yours we our us it its this that these those
    to of for in on at by with from about as and or but if so not no any some there
    what how when where why who whom which whose get got have has had just really
    please pls hi hello hey thanks also very much many too up out into than then
    im i'm ive i've dont don't""".split()
)


class EditRefused(ValueError):
    """A change that would break the data, with a reason staff can act on."""


def example_key(text: str) -> str:
    """How tests/test_data.py compares phrasings: case and punctuation ignored."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def clean_phrasing(text: str) -> str:
    """One line of visitor text, safe inside a Rasa examples block."""
    # Square brackets would be read as an entity annotation by Rasa.
    text = CONTROL.sub(" ", text or "").replace("[", " ").replace("]", " ")
    text = " ".join(text.split())
    if text.startswith("- "):
        text = text[2:].strip()
    if not text:
        raise EditRefused("The phrasing is empty.")
    if len(text) > MAX_PHRASING_CHARS:
        raise EditRefused(
            f"The phrasing is {len(text)} characters long; keep it to the question itself "
            f"(at most {MAX_PHRASING_CHARS})."
        )
    if PHONE.search(text) or EMAIL.search(text):
        raise EditRefused(
            "The phrasing contains what looks like a phone number or email address. "
            "Remove personal details before teaching it."
        )
    return text


def topic_title(label: str) -> str:
    topic = label.split("/", 1)[-1]
    return topic.replace("_", " ").capitalize()


@dataclass
class Answer:
    label: str  # "faq/how_many_sessions"
    path: Path
    examples: List[str]
    variations: List[Dict] = field(default_factory=list)

    @property
    def intent(self) -> str:
        return self.label.split("/", 1)[0]

    @property
    def topic(self) -> str:
        return self.label.split("/", 1)[-1]

    @property
    def title(self) -> str:
        return topic_title(self.label)

    @property
    def text(self) -> str:
        return self.variations[0]["text"] if self.variations else ""


@dataclass
class Change:
    """What an edit did, for the audit log and the person who made it."""

    action: str
    target: str
    path: str
    diff: str
    detail: Dict = field(default_factory=dict)


def _round_trip() -> YAML:
    # The project's layout: two-space indents, sequences flush with their key,
    # long answers on one line.
    handler = YAML()
    handler.preserve_quotes = True
    handler.width = 4096
    handler.indent(mapping=2, sequence=2, offset=0)
    return handler


def _dump(document) -> str:
    out = io.StringIO()
    _round_trip().dump(document, out)
    return out.getvalue()


def _examples(block) -> List[str]:
    return [
        line.strip()[2:].strip()
        for line in str(block or "").splitlines()
        if line.strip().startswith("- ")
    ]


class TrainingData:
    """The training data of one project directory (the real one, or a copy in tests)."""

    def __init__(self, project_dir: Path, held_out_dir: Optional[Path] = None):
        self.project_dir = Path(project_dir)
        self.nlu_dir = self.project_dir / "data" / "nlu"
        # the held-out sets (clinic.evaluation.SETS) of this project, or of another one
        self.held_out_files = [
            (held_out_dir or self.project_dir / "tests" / "held_out") / path.name for path in SETS.values()
        ]
        self.lock_file = self.project_dir / "models" / ".staff-edit.lock"

    # ---- reading ----

    def facts(self) -> Dict[str, str]:
        raw = yaml.safe_load((self.project_dir / "data" / "clinic.yml").read_text(encoding="utf-8"))
        facts = {key: str(value) for key, value in raw.items()}
        return {key: self._fill(value, facts) for key, value in facts.items()}

    @staticmethod
    def _fill(text: str, facts: Dict[str, str]) -> str:
        return PLACEHOLDER.sub(lambda m: facts.get(m.group(1), m.group(0)), text)

    def fill(self, text: str) -> str:
        return self._fill(text, self.facts())

    def nlu_files(self) -> List[Path]:
        return sorted(self.nlu_dir.glob("*.yml"))

    def _load(self, path: Path) -> dict:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}

    def answers(self) -> List[Answer]:
        """Every FAQ and not-covered answer, with its phrasings, in file order."""
        found = []
        for path in self.nlu_files():
            content = self._load(path)
            responses = content.get("responses") or {}
            for item in content.get("nlu") or []:
                label = item.get("intent", "")
                if label.split("/", 1)[0] in RETRIEVAL_INTENTS and "/" in label:
                    found.append(
                        Answer(label, path, _examples(item.get("examples")), responses.get(f"utter_{label}") or [])
                    )
        return sorted(found, key=lambda answer: (RETRIEVAL_INTENTS.index(answer.intent), answer.label))

    def answer(self, label: str) -> Answer:
        for candidate in self.answers():
            if candidate.label == label:
                return candidate
        raise EditRefused(f"There is no answer called {label!r}.")

    def labelled_examples(self) -> Dict[str, Tuple[str, Path]]:
        """Every trained phrasing (normalised) -> (its intent, its file)."""
        found = {}
        for path in self.nlu_files():
            for item in self._load(path).get("nlu") or []:
                if "intent" in item:
                    for example in _examples(item.get("examples")):
                        found.setdefault(example_key(example), (item["intent"], path))
        return found

    def held_out_keys(self) -> Dict[str, str]:
        """Every message of the held-out sets -> the set's file name."""
        found = {}
        for path in self.held_out_files:
            if path.exists():
                for text in texts_of(path, context=False):
                    found.setdefault(example_key(text), path.name)
        return found

    def domain_intents(self) -> List[str]:
        domain = self._load(self.project_dir / "domain.yml")
        return [i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents") or []]

    # ---- checks shared by every edit ----

    def check_new_phrasing(
        self, text: str, label: str, existing: Optional[Dict] = None, held_out: Optional[Dict] = None
    ) -> str:
        text = clean_phrasing(text)
        key = example_key(text)
        if not key:
            raise EditRefused("The phrasing has no words in it.")
        existing = self.labelled_examples() if existing is None else existing
        held_out = self.held_out_keys() if held_out is None else held_out
        if key in existing:
            where, path = existing[key]
            if where == label:
                raise EditRefused(f"“{text}” is already a phrasing of this answer.")
            raise EditRefused(
                f"“{text}” is already taught as {where} (in {path.relative_to(self.project_dir)}); "
                "the same phrasing under two answers would make them collide."
            )
        if key in held_out:
            raise EditRefused(
                f"“{text}” is word for word in the held-out test set that checks the assistant, "
                "so it cannot also be taught. Teach it in other words."
            )
        return text

    def check_answer_text(self, text: str) -> str:
        text = (text or "").replace("\r\n", "\n").strip()
        if not text:
            raise EditRefused("The answer is empty.")
        if PHONE.search(text):
            raise EditRefused(
                "Write {clinic_phone} instead of a phone number: the number is kept in one place "
                "(data/clinic.yml) and filled into every answer."
            )
        facts = self.facts()
        unknown = sorted(set(PLACEHOLDER.findall(text)) - set(facts))
        if unknown:
            raise EditRefused(
                "Unknown placeholder(s) " + ", ".join("{" + name + "}" for name in unknown)
                + ". Known ones: " + ", ".join("{" + name + "}" for name in sorted(facts)) + "."
            )
        length = len(self._fill(text, facts))
        if length > MAX_ANSWER_CHARS:
            raise EditRefused(
                f"The answer is {length} characters with the clinic's details filled in; "
                f"keep it to {MAX_ANSWER_CHARS} (a text message aims at {SMS_AIM_CHARS})."
            )
        return text

    def suggest_topic(self, question: str) -> str:
        """A topic name from the question's main words, not yet used."""
        words = [w for w in re.findall(r"[a-z0-9]+", (question or "").lower()) if w not in STOPWORDS]
        base = "_".join(words[:4])[:MAX_TOPIC_CHARS].strip("_") or "new_question"
        if not base[0].isalpha():
            base = "q_" + base
        taken = self._taken_names()
        topic, number = base, 2
        while topic in taken:
            topic = f"{base[:MAX_TOPIC_CHARS - 3]}_{number}"
            number += 1
        return topic

    def _taken_names(self) -> set:
        taken = {answer.topic for answer in self.answers()}
        taken |= set(self.domain_intents()) | set(RETRIEVAL_INTENTS)
        taken |= {path.stem[len("faq_"):] for path in self.nlu_dir.glob("faq_*.yml")}
        return taken

    def check_topic(self, topic: str) -> str:
        topic = (topic or "").strip()
        if not (MIN_TOPIC_CHARS <= len(topic) <= MAX_TOPIC_CHARS) or not TOPIC.match(topic):
            raise EditRefused(
                f"“{topic}” is not a valid topic name: use {MIN_TOPIC_CHARS}-{MAX_TOPIC_CHARS} "
                "lowercase letters and digits in words joined by underscores, like how_long_it_lasts."
            )
        if topic in self._taken_names():
            raise EditRefused(f"The topic name “{topic}” is already used; choose another.")
        return topic

    # ---- writing ----

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One edit at a time, across the console and the command line."""
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load_round_trip(self, path: Path):
        source = path.read_text(encoding="utf-8")
        document = _round_trip().load(source)
        if _dump(document) != source:
            raise EditRefused(
                f"{path.relative_to(self.project_dir)} is laid out differently from the other data "
                "files, so it cannot be edited here without reformatting it; ask an engineer."
            )
        return source, document

    def _write(self, path: Path, old: str, new: str, expected: dict, changed_lines: Optional[int]) -> str:
        """Replaces the file after checking the change is what was meant."""
        if yaml.safe_load(new) != expected:
            raise EditRefused(f"Editing {path.name} would change more than intended; nothing was written.")
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True),
                fromfile=f"a/{path.relative_to(self.project_dir)}", tofile=f"b/{path.relative_to(self.project_dir)}",
            )
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

    def _find_intent_file(self, label: str) -> Path:
        for path in self.nlu_files():
            if any(item.get("intent") == label for item in self._load(path).get("nlu") or []):
                return path
        raise EditRefused(f"There is no intent called {label!r} in data/nlu/.")

    def add_phrasing(self, label: str, text: str) -> Change:
        """Adds a visitor's wording to an existing answer (or to out_of_scope)."""
        with self._locked():
            path = self._find_intent_file(label)
            text = self.check_new_phrasing(text, label)
            source, document = self._load_round_trip(path)
            expected = yaml.safe_load(source)
            for item in document["nlu"]:
                if item.get("intent") == label:
                    item["examples"] = LiteralScalarString(str(item["examples"]).rstrip("\n") + f"\n- {text}\n")
            for item in expected["nlu"]:
                if item.get("intent") == label:
                    item["examples"] = item["examples"].rstrip("\n") + f"\n- {text}\n"
            diff = self._write(path, source, _dump(document), expected, changed_lines=1)
        return Change("add_phrasing", label, str(path.relative_to(self.project_dir)), diff, {"phrasing": text})

    def edit_answer(self, label: str, text: str, variation: int = 0) -> Change:
        """Replaces the text of one variation of an answer; buttons stay."""
        with self._locked():
            answer = self.answer(label)
            if not 0 <= variation < len(answer.variations):
                raise EditRefused(f"{label} has no variation {variation}.")
            text = self.check_answer_text(text)
            path = answer.path
            source, document = self._load_round_trip(path)
            key = f"utter_{label}"
            before = document["responses"][key][variation]["text"]
            if str(before) == text:
                raise EditRefused("The answer is unchanged.")
            document["responses"][key][variation]["text"] = DoubleQuotedScalarString(text)
            expected = yaml.safe_load(source)
            expected["responses"][key][variation]["text"] = text
            lines = str(before).count("\n") + text.count("\n") + 2
            diff = self._write(path, source, _dump(document), expected, changed_lines=lines)
        return Change(
            "edit_answer", label, str(path.relative_to(self.project_dir)), diff,
            {"variation": variation, "before": str(before), "after": text},
        )

    def new_answer(self, topic: str, phrasings: List[str], answer_text: str, book_button: bool = False) -> Change:
        """A new FAQ in its own file, data/nlu/faq_<topic>.yml."""
        with self._locked():
            topic = self.check_topic(topic)
            label = f"faq/{topic}"
            cleaned: Dict[str, str] = {}
            existing, held_out = self.labelled_examples(), self.held_out_keys()
            for phrasing in phrasings:
                if phrasing and phrasing.strip():
                    if example_key(clean_phrasing(phrasing)) in cleaned:
                        continue  # the same question twice in the list counts once
                    text = self.check_new_phrasing(phrasing, label, existing, held_out)
                    cleaned[example_key(text)] = text
            if len(cleaned) < MIN_EXAMPLES_PER_ANSWER:
                raise EditRefused(
                    f"A new answer needs at least {MIN_EXAMPLES_PER_ANSWER} different ways of asking it "
                    f"for the assistant to learn it reliably; there are {len(cleaned)}."
                )
            answer_text = self.check_answer_text(answer_text)
            path = self.nlu_dir / f"faq_{topic}.yml"
            lines = [
                'version: "3.1"',
                "",
                "nlu:",
                f"- intent: {label}",
                "  examples: |",
                *[f"    - {text}" for text in cleaned.values()],
                "",
                "responses:",
                f"  utter_{label}:",
                # a JSON string is a valid YAML double-quoted scalar
                f"  - text: {json.dumps(answer_text, ensure_ascii=False)}",
            ]
            if book_button:
                lines += ["    buttons:", '    - title: "Book a visit"', '      payload: "/book_appointment"']
            content = "\n".join(lines) + "\n"
            expected = {
                "version": "3.1",
                "nlu": [{"intent": label, "examples": "".join(f"- {t}\n" for t in cleaned.values())}],
                "responses": {
                    f"utter_{label}": [
                        {"text": answer_text,
                         **({"buttons": [{"title": "Book a visit", "payload": "/book_appointment"}]} if book_button else {})}
                    ]
                },
            }
            if path.exists():
                raise EditRefused(f"{path.name} already exists.")
            diff = self._write(path, "", content, expected, changed_lines=None)
        return Change(
            "new_answer", label, str(path.relative_to(self.project_dir)), diff,
            {"phrasings": list(cleaned.values()), "answer": answer_text},
        )

    # ---- the gate's data check ----

    def problems(self) -> List[str]:
        """What tests/test_data.py would fail on, in words staff can act on."""
        problems = []
        labels: Dict[str, set] = {}
        counts: Dict[str, int] = {}
        for path in self.nlu_files():
            content = self._load(path)
            if content.get("version") != "3.1":
                problems.append(f"{path.name} does not start with version: \"3.1\".")
            for item in content.get("nlu") or []:
                if "intent" not in item:
                    continue
                for example in _examples(item.get("examples")):
                    labels.setdefault(example_key(example), set()).add(item["intent"])
                    counts[item["intent"]] = counts.get(item["intent"], 0) + 1
        for key, found in sorted(labels.items()):
            if len(found) > 1:
                problems.append(f"Two answers now collide: “{key}” is taught as " + " and ".join(sorted(found)) + ".")
        held_out = self.held_out_keys()
        for key in sorted(set(labels) & set(held_out)):
            problems.append(f"“{key}” is taught, but it is also in the held-out test set.")
        for label, count in sorted(counts.items()):
            if "/" in label and count < MIN_EXAMPLES_PER_ANSWER:
                problems.append(f"{label} has only {count} phrasings (at least {MIN_EXAMPLES_PER_ANSWER}).")
        facts = self.facts()
        for answer in self.answers():
            if not answer.variations:
                problems.append(f"{answer.label} has no answer (utter_{answer.label}).")
            for variation in answer.variations:
                text = str(variation.get("text", ""))
                unknown = set(PLACEHOLDER.findall(text)) - set(facts)
                if unknown:
                    problems.append(f"{answer.label} uses unknown placeholders {sorted(unknown)}.")
                elif len(self._fill(text, facts)) > MAX_ANSWER_CHARS:
                    problems.append(f"{answer.label} is longer than {MAX_ANSWER_CHARS} characters.")
        return problems
