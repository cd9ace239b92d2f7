"""The inbox: what the assistant could not answer, from the project database.

Three kinds of item: messages not understood confidently and questions the
clinic's posts do not answer (the `fallbacks` table), and answers a visitor
marked not helpful (the `feedback` table). Items whose wording is nearly the
same are grouped, so staff teach once for all of them.
"""

import difflib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, Iterable, List, Optional, Tuple

import sqlalchemy as sa

from clinic import store
from clinic.nlu_labels import FALLBACK, RETRIEVAL_INTENTS
from clinic.quality import example_key

STATUSES = ("new", "taught", "out_of_scope", "dismissed")
KIND_LABELS = {
    "low_confidence": "not understood",
    "unknown_topic": "not in the posts",
    "not_helpful": "marked not helpful",
}
SIMILAR = 0.85
# Rasa's fallback and the retrieval intents themselves say nothing about which answer was close.
NOT_GUESSES = {FALLBACK, *RETRIEVAL_INTENTS}
MAX_ITEMS = 2000


@dataclass
class Item:
    ref: str  # "fallback:12" or "feedback:3"
    created_at: datetime
    sender_id: str
    channel: Optional[str]
    text: str
    kind: str
    status: str
    predictions: List[Dict] = field(default_factory=list)
    answer: Optional[str] = None  # what a visitor marked not helpful


@dataclass
class Group:
    key: str
    items: List[Item] = field(default_factory=list)

    @property
    def latest(self) -> Item:
        return max(self.items, key=lambda item: item.created_at)

    @property
    def text(self) -> str:
        return self.latest.text

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def last_at(self) -> datetime:
        return self.latest.created_at

    @property
    def refs(self) -> str:
        return ",".join(item.ref for item in self.items)

    @property
    def channels(self) -> List[str]:
        return [name for name, _ in Counter(item.channel or "unknown" for item in self.items).most_common()]

    @property
    def kinds(self) -> List[str]:
        return sorted({item.kind for item in self.items})

    @property
    def statuses(self) -> List[str]:
        return sorted({item.status for item in self.items})

    @property
    def predictions(self) -> List[Dict]:
        for item in sorted(self.items, key=lambda i: i.created_at, reverse=True):
            if item.predictions:
                return item.predictions
        return []

    @property
    def guesses(self) -> List[Dict]:
        """The answers and intents it came closest to, best first (no fallback)."""
        best: Dict[str, float] = {}
        for prediction in self.predictions:
            name = prediction["name"]
            if name in NOT_GUESSES:
                continue
            best[name] = max(best.get(name, 0.0), float(prediction.get("confidence") or 0.0))
        return [{"name": n, "confidence": c} for n, c in sorted(best.items(), key=lambda i: -i[1])][:3]

    def as_dict(self) -> Dict:
        return {
            "text": self.text,
            "count": self.count,
            "last_at": self.last_at.isoformat(),
            "kinds": self.kinds,
            "channels": self.channels,
            "status": self.statuses,
            "refs": self.refs,
            "guesses": self.guesses,
        }


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _predictions(raw: Optional[str]) -> List[Dict]:
    try:
        found = json.loads(raw or "[]")
    except ValueError:
        return []
    return [p for p in found if isinstance(p, dict) and p.get("name")]


def _rows_to_items(connection, fallback_query, feedback_query) -> List[Item]:
    items = []
    for row in connection.execute(fallback_query):
        items.append(
            Item(
                f"fallback:{row.id}", _utc(row.created_at), row.sender_id, row.channel,
                row.text, row.kind, row.status, _predictions(row.predictions),
            )
        )
    for row in connection.execute(feedback_query):
        if row.question:
            items.append(
                Item(
                    f"feedback:{row.id}", _utc(row.created_at), row.sender_id, row.channel,
                    row.question, "not_helpful", row.status, answer=row.answer,
                )
            )
    return sorted(items, key=lambda item: item.created_at, reverse=True)


def load_items(status: Optional[str] = "new") -> List[Item]:
    """Newest first; status None means every status."""
    fallbacks, feedback = store.fallbacks, store.feedback
    query_fallbacks = fallbacks.select().order_by(fallbacks.c.created_at.desc()).limit(MAX_ITEMS)
    query_feedback = (
        feedback.select()
        .where(feedback.c.helpful == sa.false())
        .order_by(feedback.c.created_at.desc())
        .limit(MAX_ITEMS)
    )
    if status:
        query_fallbacks = query_fallbacks.where(fallbacks.c.status == status)
        query_feedback = query_feedback.where(feedback.c.status == status)
    with store.engine().connect() as connection:
        return _rows_to_items(connection, query_fallbacks, query_feedback)


def group(items: Iterable[Item]) -> List[Group]:
    """Same wording (case and punctuation aside), or nearly the same, is one group."""
    groups: Dict[str, Group] = {}
    for item in items:
        key = example_key(item.text) or item.text
        if key not in groups:
            for other_key in groups:
                matcher = difflib.SequenceMatcher(None, key, other_key, autojunk=False)
                if matcher.real_quick_ratio() >= SIMILAR and matcher.quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR:
                    key = other_key
                    break
        groups.setdefault(key, Group(key)).items.append(item)
    return list(groups.values())


def inbox(status: Optional[str] = "new", order: str = "newest") -> List[Group]:
    groups = group(load_items(status))
    if order == "frequent":
        return sorted(groups, key=lambda g: (g.count, g.last_at), reverse=True)
    return sorted(groups, key=lambda g: g.last_at, reverse=True)


def parse_refs(refs: str) -> List[Tuple[str, int]]:
    parsed = []
    for ref in (refs or "").split(","):
        source, _, number = ref.strip().partition(":")
        if source in ("fallback", "feedback") and number.isdigit():
            parsed.append((source, int(number)))
    return parsed


def find(refs: str) -> List[Item]:
    """The items named by "fallback:12,feedback:3" (what a form posts back)."""
    parsed = parse_refs(refs)
    fallback_ids = [number for source, number in parsed if source == "fallback"]
    feedback_ids = [number for source, number in parsed if source == "feedback"]
    fallbacks, feedback = store.fallbacks, store.feedback
    with store.engine().connect() as connection:
        return _rows_to_items(
            connection,
            fallbacks.select().where(fallbacks.c.id.in_(fallback_ids)),
            feedback.select().where(feedback.c.id.in_(feedback_ids)).where(feedback.c.helpful == sa.false()),
        )


def item(ref: str) -> Optional[Item]:
    found = find(ref)
    return found[0] if found else None


def set_status(refs: str, status: str) -> int:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    changed = 0
    tables = {"fallback": store.fallbacks, "feedback": store.feedback}
    with store.engine().begin() as connection:
        for source, number in parse_refs(refs):
            table = tables[source]
            changed += connection.execute(
                table.update().where(table.c.id == number).values(status=status)
            ).rowcount
    return changed
