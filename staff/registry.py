"""Which model is live, and the history of published models (the `published_models` table).

Every publish and rollback adds a row naming the model, the candidate it
came from and the row live before it, so a rollback knows where to go.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

from clinic import store
from staff.gate import model_metadata
from staff.settings import Settings


@dataclass
class Published:
    id: int
    published_at: datetime
    published_by: str
    model_id: str
    model_path: str
    candidate: Optional[str]
    # "publish", "rollback", or "running" (the model the servers started with)
    kind: str
    previous_id: Optional[int]


def _row(row) -> Published:
    moment = row.published_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return Published(
        row.id, moment, row.published_by, row.model_id, row.model_path,
        row.candidate, row.kind, row.previous_id,
    )


class ModelRegistry:
    """The published models of one project, newest first."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._metadata_cache: Dict[tuple, Dict] = {}

    def history(self, limit: int = 20) -> List[Published]:
        table = store.published_models
        with store.engine().connect() as connection:
            return [_row(r) for r in connection.execute(table.select().order_by(table.c.id.desc()).limit(limit))]

    def live(self) -> Optional[Published]:
        rows = self.history(1)
        return rows[0] if rows else None

    def get(self, published_id: Optional[int]) -> Optional[Published]:
        if published_id is None:
            return None
        table = store.published_models
        with store.engine().connect() as connection:
            row = connection.execute(table.select().where(table.c.id == published_id)).first()
        return _row(row) if row else None

    def previous(self) -> Optional[Published]:
        """Where a rollback goes: the model live before the current one."""
        live = self.live()
        return self.get(live.previous_id) if live else None

    def protected_candidates(self) -> List[str]:
        """Candidates whose model must be kept: live, or a rollback away."""
        keep = []
        published = self.live()
        for _ in range(3):
            if published is None:
                break
            if published.candidate:
                keep.append(published.candidate)
            published = self.get(published.previous_id)
        return keep

    def add(self, actor: str, model_id: str, path: Path, candidate: Optional[str], kind: str,
            previous_id: Optional[int]) -> Published:
        """Records that `model_id` (the archive at `path`) went live; returns the new row."""
        table = store.published_models
        with store.engine().begin() as connection:
            new_id = connection.execute(
                table.insert().values(
                    published_at=store.now(), published_by=actor, model_id=model_id,
                    model_path=str(path), candidate=candidate, kind=kind, previous_id=previous_id,
                )
            ).inserted_primary_key[0]
        return self.get(new_id)

    def metadata(self, path: Path) -> Dict:
        """A model archive's metadata (model_id, ...), read once per file version; {} when unreadable."""
        try:
            stat = path.stat()
        except OSError:
            return {}
        key = (str(path), stat.st_size, stat.st_mtime)
        if key not in self._metadata_cache:
            self._metadata_cache[key] = model_metadata(path)
        return self._metadata_cache[key]

    def model_id_of(self, path: Path) -> Optional[str]:
        return self.metadata(path).get("model_id")

    def live_model_file(self) -> Optional[Path]:
        """The file of the model the servers run now, for the gate's comparison."""
        live = self.live()
        if live and Path(live.model_path).exists():
            return Path(live.model_path)
        return self.settings.live_model_file if self.settings.live_model_file.exists() else None
