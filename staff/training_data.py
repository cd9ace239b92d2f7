"""Reads and edits the Rasa training data under data/nlu/, the way a person would.

Every edit is checked before its file is replaced: the text itself
(staff/phrasing.py, with clinic/quality.py's limits), that a new phrasing is
under no other answer and in no held-out set (clinic/quality.py's
comparison), and the file's layout (staff/yaml_round_trip.py). The publish
gate then runs every rule of clinic/quality.py on the whole data.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import yaml
from filelock import FileLock
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from clinic import quality
from clinic.answers import label_kind
from clinic.evaluation import texts_of
from clinic.facts import fill, read_facts
from clinic.nlu_data import block_examples, load_yaml
from clinic.nlu_labels import FAQ, OUT_OF_SCOPE, RETRIEVAL_INTENTS
from clinic.quality import MAX_ANSWER_CHARS, MIN_EXAMPLES_PER_ANSWER, example_key
from staff.phrasing import (
    SMS_AIM_CHARS, SMS_MAX_CHARS, EditRefused, clean_answer, clean_phrasing, clean_topic, suggested_topic, topic_title,
)
from staff.yaml_round_trip import dump, load_round_trip, new_answer_file, write_checked

# What the console and the command line use of the data, in one import.
__all__ = [
    "Answer", "Change", "EditRefused", "TrainingData", "example_key", "topic_title",
    "MAX_ANSWER_CHARS", "MIN_EXAMPLES_PER_ANSWER", "OUT_OF_SCOPE", "SMS_AIM_CHARS", "SMS_MAX_CHARS",
]


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


class TrainingData:
    """The training data of one project directory (the real one, or a copy in tests)."""

    def __init__(self, project_dir: Path, held_out_dir: Optional[Path] = None):
        self.project_dir = Path(project_dir)
        self.nlu_dir = self.project_dir / "data" / "nlu"
        # the held-out sets (clinic.evaluation.SETS) of this project, or of another one
        self.held_out_dir = Path(held_out_dir or self.project_dir / "tests" / "held_out")
        self.held_out_files = list(quality.held_out_files(self.held_out_dir).values())
        self.lock_file = self.project_dir / "models" / ".staff-edit.lock"

    # ---- reading ----

    def facts(self) -> Dict[str, str]:
        """This project's clinic facts (clinic.facts.read_facts of its data/clinic.yml)."""
        return read_facts(self.project_dir / "data" / "clinic.yml")

    def fill(self, text: str, facts: Optional[Dict[str, str]] = None) -> str:
        """The text with this project's facts filled in; pass `facts` (from
        facts()) to fill many texts with one reading."""
        return fill(text, self.facts() if facts is None else facts)

    def nlu_files(self) -> List[Path]:
        return sorted(self.nlu_dir.glob("*.yml"))

    def answers(self) -> List[Answer]:
        """Every FAQ and not-covered answer, with its phrasings, in file order."""
        found = []
        for path in self.nlu_files():
            content = load_yaml(path)
            responses = content.get("responses") or {}
            for item in content.get("nlu") or []:
                label = item.get("intent", "")
                if label_kind(label) in RETRIEVAL_INTENTS:
                    found.append(
                        Answer(label, path, block_examples(item.get("examples")), responses.get(f"utter_{label}") or [])
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
            for item in load_yaml(path).get("nlu") or []:
                if "intent" in item:
                    for example in block_examples(item.get("examples")):
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
        domain = load_yaml(self.project_dir / "domain.yml")
        return [i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents") or []]

    def problems(self) -> List[str]:
        """What the data rules (clinic.quality.data_problems) find wrong with
        this project's data, in words staff can act on; [] when nothing."""
        return quality.data_problems(self.project_dir, self.held_out_dir)

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
        return clean_answer(text, self.facts())

    def suggest_topic(self, question: str) -> str:
        """A topic name from the question's main words, not yet used."""
        return suggested_topic(question, self._taken_names())

    def _taken_names(self) -> set:
        taken = {answer.topic for answer in self.answers()}
        taken |= set(self.domain_intents()) | set(RETRIEVAL_INTENTS)
        taken |= {path.stem[len("faq_"):] for path in self.nlu_dir.glob("faq_*.yml")}
        return taken

    def check_topic(self, topic: str) -> str:
        return clean_topic(topic, self._taken_names())

    # ---- writing ----

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One edit at a time, across the console and the command line."""
        with FileLock(self.lock_file):
            yield

    def _find_intent_file(self, label: str) -> Path:
        for path in self.nlu_files():
            if any(item.get("intent") == label for item in load_yaml(path).get("nlu") or []):
                return path
        raise EditRefused(f"There is no intent called {label!r} in data/nlu/.")

    def add_phrasing(self, label: str, text: str) -> Change:
        """Adds a visitor's wording to an existing answer (or to out_of_scope)."""
        with self.locked():
            path = self._find_intent_file(label)
            text = self.check_new_phrasing(text, label)
            source, document = load_round_trip(path, self.project_dir)
            expected = yaml.safe_load(source)
            for item in document["nlu"]:
                if item.get("intent") == label:
                    item["examples"] = LiteralScalarString(str(item["examples"]).rstrip("\n") + f"\n- {text}\n")
            for item in expected["nlu"]:
                if item.get("intent") == label:
                    item["examples"] = item["examples"].rstrip("\n") + f"\n- {text}\n"
            diff = write_checked(path, self.project_dir, source, dump(document), expected, changed_lines=1)
        return Change("add_phrasing", label, str(path.relative_to(self.project_dir)), diff, {"phrasing": text})

    def edit_answer(self, label: str, text: str, variation: int = 0) -> Change:
        """Replaces the text of one variation of an answer; buttons stay."""
        with self.locked():
            answer = self.answer(label)
            if not 0 <= variation < len(answer.variations):
                raise EditRefused(f"{label} has no variation {variation}.")
            text = self.check_answer_text(text)
            path = answer.path
            source, document = load_round_trip(path, self.project_dir)
            key = f"utter_{label}"
            before = document["responses"][key][variation]["text"]
            if str(before) == text:
                raise EditRefused("The answer is unchanged.")
            document["responses"][key][variation]["text"] = DoubleQuotedScalarString(text)
            expected = yaml.safe_load(source)
            expected["responses"][key][variation]["text"] = text
            lines = str(before).count("\n") + text.count("\n") + 2
            diff = write_checked(path, self.project_dir, source, dump(document), expected, changed_lines=lines)
        return Change(
            "edit_answer", label, str(path.relative_to(self.project_dir)), diff,
            {"variation": variation, "before": str(before), "after": text},
        )

    def new_answer(self, topic: str, phrasings: List[str], answer_text: str, book_button: bool = False) -> Change:
        """A new FAQ in its own file, data/nlu/faq_<topic>.yml."""
        with self.locked():
            topic = self.check_topic(topic)
            label = f"{FAQ}/{topic}"
            cleaned: Dict[str, str] = {}
            existing, held_out = self.labelled_examples(), self.held_out_keys()
            for phrasing in phrasings:
                if phrasing and phrasing.strip():
                    if example_key(clean_phrasing(phrasing)) in cleaned:
                        continue  # the same question twice in the list counts once
                    text = self.check_new_phrasing(phrasing, label, existing, held_out)
                    cleaned[example_key(text)] = text
            if len(cleaned) < quality.MIN_EXAMPLES_PER_ANSWER:
                raise EditRefused(
                    f"A new answer needs at least {quality.MIN_EXAMPLES_PER_ANSWER} different ways of asking it "
                    f"for the assistant to learn it reliably; there are {len(cleaned)}."
                )
            answer_text = self.check_answer_text(answer_text)
            path = self.nlu_dir / f"faq_{topic}.yml"
            content, expected = new_answer_file(label, list(cleaned.values()), answer_text, book_button)
            if path.exists():
                raise EditRefused(f"{path.name} already exists.")
            diff = write_checked(path, self.project_dir, "", content, expected, changed_lines=None)
        return Change(
            "new_answer", label, str(path.relative_to(self.project_dir)), diff,
            {"phrasings": list(cleaned.values()), "answer": answer_text},
        )
