"""Scores the assistant on held-out sets by what a visitor gets: the replies.

Each item is a short conversation with a running assistant, over its REST
webhook as a visitor sends it: its `context` messages first, then its
`text`. The replies to `text` are read back from the conversation's tracker
(Rasa's HTTP API), each bot message labelled with the answer it is
(clinic/answers.py: the response it was made from, or the label an action
gave it), leaving out what only goes with an answer (the disclaimer, an
offer). An item is right when those labels are its `expect`, in order and
each once; for an emergency, when the first reply is the emergency answer.

Two sets (tests/held_out/):
- real_questions.yml: reworded real public questions (sources in
  sources.yml), with several questions at once, follow-ups, red flags in
  lay words, false alarms, Spanish;
- written.yml: shorter phrasings written for the first version (Rasa NLU
  format: each example expects its intent as the one answer; `ask_muscle`
  is right for any muscle's answer).

    python -m clinic.evaluation URL [SET ...]     # URL of a running assistant

The held-out tests, the benchmark and the staff console's gate all use this.
"""

import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import requests
import yaml

from clinic import PROJECT_ROOT
from clinic.answers import ACCOMPANYING, MUSCLE, label_kind, response_label
from clinic.nlu_data import SAFE_LOADER, nlu_examples
from clinic.nlu_labels import EMERGENCY, FALLBACK, OUT_OF_SCOPE

HELD_OUT_DIR = PROJECT_ROOT / "tests" / "held_out"
REAL_SET = HELD_OUT_DIR / "real_questions.yml"
SECOND_REAL_SET = HELD_OUT_DIR / "real_questions_2.yml"
WRITTEN_SET = HELD_OUT_DIR / "written.yml"
SETS = {"real": REAL_SET, "real_2": SECOND_REAL_SET, "written": WRITTEN_SET}
WEBHOOK = "/webhooks/rest/webhook"
TIMEOUT = 60


@dataclass
class Item:
    id: str
    text: str
    expect: List[str]
    context: List[str] = field(default_factory=list)
    kinds: List[str] = field(default_factory=list)


def load_items(path: Path) -> List[Item]:
    """A held-out set: `items:` (real_questions.yml) or Rasa NLU examples."""
    content = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    if "items" in content:
        return [
            Item(str(item["id"]), item["text"], list(item["expect"]), list(item.get("context") or []),
                 list(item.get("kinds") or []))
            for item in content["items"]
        ]
    return [Item(f"w{n:03d}", text, [intent]) for n, (text, intent) in enumerate(nlu_examples(path), 1)]


def texts_of(path: Path, context: bool = True) -> List[str]:
    """Every message a set sends; with context=False only the ones scored
    (the earlier messages of a follow-up only set the scene)."""
    return [text for item in load_items(path) for text in (item.context if context else []) + [item.text]]


def reply_labels(events: Sequence[Dict[str, Any]]) -> List[str]:
    """The answers in the bot messages after the last user message (Rasa's
    tracker events as JSON), accompanying messages left out."""
    start = max((i for i, event in enumerate(events) if event.get("event") == "user"), default=-1)
    slots: Dict[str, Any] = {}
    for event in events[: start + 1]:
        if event.get("event") == "slot":
            slots[event.get("name")] = event.get("value")
    labels = []
    for event in events[start + 1:]:
        if event.get("event") == "slot":
            slots[event.get("name")] = event.get("value")
        if event.get("event") != "bot":
            continue
        metadata = event.get("metadata") or {}
        label = metadata.get("answer") or response_label(
            metadata.get("utter_action"), {**slots, **(metadata.get("slots") or {})}
        )
        if label and label not in ACCOMPANYING:
            labels.append(label)
    return labels


def _same(expected: str, got: str) -> bool:
    if expected == got:
        return True
    if expected == "ask_muscle":
        return label_kind(got) == MUSCLE
    return expected == OUT_OF_SCOPE and got == FALLBACK


def is_right(expected: List[str], got: List[str]) -> bool:
    if expected and expected[0] == EMERGENCY:
        return bool(got) and got[0] == EMERGENCY
    return len(expected) == len(got) and all(_same(e, g) for e, g in zip(expected, got))


@dataclass
class Score:
    total: int
    accuracy: float
    macro_f1: float
    red_flag_recall: float
    # non-emergency messages sent to 911
    false_alarms: int
    out_of_scope_precision: float
    out_of_scope_recall: float
    by_kind: Dict[str, float] = field(default_factory=dict)
    errors: List[Dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def score(results: Iterable[Tuple[Item, List[str]]]) -> Score:
    results = list(results)

    def ratio(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else 1.0

    right = [is_right(item.expect, got) for item, got in results]
    # F1 per first expected answer, over what the first reply was
    firsts = [
        (item.expect[0], item.expect[0] if ok else (got[0] if got else "no reply"))
        for (item, got), ok in zip(results, right)
    ]
    labels = sorted({expected for expected, _ in firsts})
    true_pos = Counter(e for e, p in firsts if e == p)
    predicted = Counter(p for _, p in firsts)
    expected_count = Counter(e for e, _ in firsts)

    def f1(label: str) -> float:
        precision = ratio(true_pos[label], predicted[label]) if predicted[label] else 0.0
        recall = ratio(true_pos[label], expected_count[label])
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    emergencies = [ok for (item, _), ok in zip(results, right) if item.expect[0] == EMERGENCY]
    false_alarms = sum(1 for item, got in results if item.expect[0] != EMERGENCY and EMERGENCY in got)
    said_out_of_scope = [item.expect[0] for item, got in results if got[:1] == [OUT_OF_SCOPE]]
    out_of_scope = [ok for (item, _), ok in zip(results, right) if item.expect[0] == OUT_OF_SCOPE]
    kinds = sorted({kind for item, _ in results for kind in item.kinds})
    by_kind = {
        kind: round(ratio(sum(ok for (item, _), ok in zip(results, right) if kind in item.kinds),
                          sum(1 for item, _ in results if kind in item.kinds)), 4)
        for kind in kinds
    }
    return Score(
        total=len(results),
        accuracy=ratio(sum(right), len(results)),
        macro_f1=sum(f1(label) for label in labels) / len(labels) if labels else 0.0,
        red_flag_recall=ratio(sum(emergencies), len(emergencies)),
        false_alarms=false_alarms,
        out_of_scope_precision=ratio(said_out_of_scope.count(OUT_OF_SCOPE), len(said_out_of_scope)),
        out_of_scope_recall=ratio(sum(out_of_scope), len(out_of_scope)),
        by_kind=by_kind,
        errors=[
            {"id": item.id, "context": item.context, "text": item.text, "expected": item.expect, "got": got}
            for (item, got), ok in zip(results, right)
            if not ok
        ],
    )


def erasure_confirmations() -> List[str]:
    """The texts confirming "forget me" (after which no tracker is left to read)."""
    from clinic.facts import fill

    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return [fill(variation["text"]) for variation in domain["responses"]["utter_erasure_result"]]


class Visitor:
    """Talks to a running assistant over REST, as a new visitor."""

    def __init__(self, session: requests.Session, base_url: str, token: str) -> None:
        self.session, self.base_url, self.token = session, base_url.rstrip("/"), token
        # This assistant issues ids (a first message with any other one
        # starts a new conversation, whose id comes back); stock Rasa's REST
        # channel takes the client's own.
        self.conversation_id = uuid.uuid4().hex
        self.last_reply: List[Dict[str, Any]] = []

    def say(self, text: str) -> None:
        body = {"sender": self.conversation_id, "message": text}
        reply = self.session.post(self.base_url + WEBHOOK, json=body, timeout=TIMEOUT)
        reply.raise_for_status()
        self.conversation_id = reply.headers.get("X-Conversation-Id") or self.conversation_id
        self.last_reply = reply.json()

    def labels(self, erased: List[str]) -> List[str]:
        """The labels of the last reply; an erased conversation has no tracker
        left, so its reply is recognised by its text."""
        events = self.events()
        started_over = not any(event.get("event") == "user" for event in events)
        if started_over and any(message.get("text") in erased for message in self.last_reply):
            return ["request_data_erasure"]
        return reply_labels(events)

    def events(self) -> List[Dict[str, Any]]:
        reply = self.session.get(
            f"{self.base_url}/conversations/{self.conversation_id}/tracker",
            params={"token": self.token}, timeout=TIMEOUT,
        )
        reply.raise_for_status()
        return reply.json().get("events") or []


# Conversations at once: a server runs a few turns at a time (channels/turn_guard.py).
WORKERS = 4


def run(base_url: str, token: str, items: Sequence[Item], workers: int = WORKERS) -> List[Tuple[Item, List[str]]]:
    """Each item as a new visitor's conversation: (item, the reply's labels), in order."""
    erased = erasure_confirmations()
    local = threading.local()

    def converse(item: Item) -> Tuple[Item, List[str]]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        visitor = Visitor(local.session, base_url, token)
        for text in item.context + [item.text]:
            visitor.say(text)
        return item, visitor.labels(erased)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(converse, items))


def evaluate(base_url: str, token: str, path: Path) -> Score:
    return score(run(base_url, token, load_items(path)))


def main(argv: List[str]) -> int:
    if len(argv) < 1:
        print(__doc__, file=sys.stderr)
        return 2
    token = os.environ.get("RASA_API_TOKEN") or (PROJECT_ROOT / "var" / "api_token").read_text().strip()
    paths = [Path(p) for p in argv[1:]] or list(SETS.values())
    started = time.monotonic()
    scores = {str(path): evaluate(argv[0], token, path).as_dict() for path in paths}
    scores["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(scores, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
