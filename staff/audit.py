"""The audit log: who changed what, and when, in the console or from the command line."""

import json
from typing import Any, Dict, List, Optional

from clinic import store


def record(actor: str, action: str, target: Optional[str] = None, **detail: Any) -> None:
    with store.engine().begin() as connection:
        connection.execute(
            store.staff_audit.insert().values(
                at=store.now(),
                actor=actor,
                action=action,
                target=target,
                detail=json.dumps(detail, ensure_ascii=False, default=str),
            )
        )


def recent(limit: int = 200) -> List[Dict[str, Any]]:
    table = store.staff_audit
    with store.engine().connect() as connection:
        rows = connection.execute(table.select().order_by(table.c.id.desc()).limit(limit))
        entries = []
        for row in rows:
            entry = dict(row._mapping)
            entry["detail"] = json.loads(entry["detail"] or "{}")
            entries.append(entry)
    return entries


def record_change(actor: str, change: Any, **detail: Any) -> None:
    """An edit of the training data (a staff.training_data.Change): its file and diff, with what changed."""
    record(actor, change.action, change.target, file=change.path, diff=change.diff, **detail, **change.detail)
