"""A retraining candidate: models/candidates/<id>/ and its job.json.

The folder holds the training inputs as they were when Retrain was pressed
(snapshot/), the trained model (model.tar.gz, never the live
models/clinic.tar.gz), the streamed log (train.log) and job.json with the
progress and the gate's result.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

TRAINING_INPUTS = ("data", "domain.yml", "config.yml")
MODEL_NAME = "model"
MAX_LOG_LINES = 3000


def timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(root: Path) -> str:
    """Of the training inputs, to tell whether data changed since a candidate."""
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix in (".yml", ".yaml") and file.exists():
                digest.update(str(file.relative_to(root)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Job:
    id: str
    directory: Path
    started_by: str
    started_at: str = field(default_factory=timestamp)
    finished_at: Optional[str] = None
    # training | gating | passed | blocked | failed | interrupted
    status: str = "training"
    stage: str = "Starting"
    progress: float = 0.0
    data_fingerprint: str = ""
    model_id: Optional[str] = None
    error: Optional[str] = None
    checks: List[Dict] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)
    log: List[str] = field(default_factory=list, repr=False)

    @property
    def model(self) -> Path:
        return self.directory / f"{MODEL_NAME}.tar.gz"

    @property
    def snapshot(self) -> Path:
        return self.directory / "snapshot"

    @property
    def running(self) -> bool:
        return self.status in ("training", "gating")

    @property
    def publishable(self) -> bool:
        return self.status == "passed" and self.model.exists()

    def state(self, since: int = 0) -> Dict:
        return {
            "id": self.id, "status": self.status, "stage": self.stage,
            "progress": round(self.progress, 1), "started_at": self.started_at,
            "finished_at": self.finished_at, "started_by": self.started_by,
            "model_id": self.model_id, "error": self.error, "checks": self.checks,
            "seconds": self.seconds, "publishable": self.publishable,
            "log": self.log[since:], "log_length": len(self.log),
        }

    def save(self) -> None:
        state = self.state()
        state.pop("log")
        state["data_fingerprint"] = self.data_fingerprint
        temporary = self.directory / "job.json.tmp"
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.directory / "job.json")

    @classmethod
    def load(cls, directory: Path) -> Optional["Job"]:
        try:
            state = json.loads((directory / "job.json").read_text())
        except (OSError, ValueError):
            return None
        job = cls(
            state["id"], directory, state.get("started_by", "?"), state.get("started_at", ""),
            state.get("finished_at"), state.get("status", "failed"), state.get("stage", ""),
            state.get("progress", 0.0), state.get("data_fingerprint", ""), state.get("model_id"),
            state.get("error"), state.get("checks", []), state.get("seconds", {}),
        )
        log_file = directory / "train.log"
        if log_file.exists():
            job.log = log_file.read_text(errors="replace").splitlines()[-MAX_LOG_LINES:]
        return job
