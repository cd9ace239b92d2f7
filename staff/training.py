"""Retraining in the background: `rasa train` into a new candidate folder, then the gate.

A candidate is models/candidates/<id>/: the training inputs as they were
when Retrain was pressed (snapshot/), the trained model (model.tar.gz, never
the live models/clinic.tar.gz), the streamed log and job.json with the
progress and the gate's result. One retraining runs at a time.
"""

import fcntl
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

from staff import gate as gate_module
from staff.settings import Settings
from staff.training_data import TrainingData

TRAINING_INPUTS = ("data", "domain.yml", "config.yml")
MODEL_NAME = "model"
KEEP_CANDIDATES = 4
MAX_LOG_LINES = 3000
# Rough share of the training time per component, from a full run here
# (DIET and the FAQ answer selector dominate); a cached component counts done.
COMPONENT_WEIGHTS = {"FastLoadDIETClassifier": [35], "FastLoadResponseSelector": [30, 10]}
STARTUP_WEIGHT, PACKAGING_WEIGHT, OTHER_WEIGHT = 10, 8, 1
EXPECTED_COMPONENTS = 8
TRAINING_SHARE = 70  # percent of the bar; the gate's checks take the rest
GATE_PROGRESS = {"data": 71, "validate": 74, "held_out": 86, "conversations": 100}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Starting to train component '(\w+)'")
FINISHED = re.compile(r"(?:Finished training|Restored) component '(\w+)'")
EPOCHS = re.compile(r"Epochs:\s+(\d+)%")
NOISE = re.compile(
    r"Warning|warnings\.warn|declare_namespace|pkg_resources"
    r"|^\s+(?:from|import|self\.|Base:|VARIABLE|_VERSION|VERSION|REQUIREMENT|cli:|\)\.)|^Implementing implicit"
)


class Busy(RuntimeError):
    pass


def _now() -> str:
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
    started_at: str = field(default_factory=_now)
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


class _TrainingProgress:
    """Turns Rasa's training log into a 0-100 estimate."""

    def __init__(self) -> None:
        self.seen: Dict[str, int] = {}
        self.done = 0.0
        self.current = 0.0
        self.fraction = 0.0
        self.total = STARTUP_WEIGHT + PACKAGING_WEIGHT + sum(sum(w) for w in COMPONENT_WEIGHTS.values()) + (
            EXPECTED_COMPONENTS - sum(len(w) for w in COMPONENT_WEIGHTS.values())
        ) * OTHER_WEIGHT
        self.started = False

    def _weight(self, name: str) -> float:
        weights = COMPONENT_WEIGHTS.get(name, [])
        index = self.seen.get(name, 0)
        return weights[index] if index < len(weights) else OTHER_WEIGHT

    def feed(self, line: str) -> Optional[str]:
        """Updates the estimate; returns the component being trained, if any."""
        if (match := STARTED.search(line)):
            if not self.started:
                self.started, self.done = True, STARTUP_WEIGHT
            self.current, self.fraction = self._weight(match.group(1)), 0.0
            return match.group(1)
        if (match := FINISHED.search(line)):
            if not self.started:
                self.started, self.done = True, STARTUP_WEIGHT
            self.done += self._weight(match.group(1))
            self.seen[match.group(1)] = self.seen.get(match.group(1), 0) + 1
            self.current = self.fraction = 0.0
        elif (match := EPOCHS.search(line)):
            self.fraction = int(match.group(1)) / 100
        return None

    @property
    def percent(self) -> float:
        return min(99.0, 100.0 * (self.done + self.current * self.fraction) / self.total)


class Retrainer:
    """Starts and remembers retraining jobs for one project."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._current: Optional[Job] = None
        self._process: Optional[subprocess.Popen] = None
        self._machine_lock = None

    @property
    def scores_file(self) -> Path:
        return self.settings.candidates_dir / "held_out_scores.json"

    # ---- the jobs ----

    def jobs(self) -> List[Job]:
        """Newest first; a job left running by a stopped console is 'interrupted'."""
        directory = self.settings.candidates_dir
        found = []
        for path in sorted(directory.glob("*/job.json"), reverse=True) if directory.exists() else []:
            if self._current is not None and path.parent == self._current.directory:
                found.append(self._current)
                continue
            job = Job.load(path.parent)
            if job is not None:
                if job.running:
                    job.status, job.stage = "interrupted", "Interrupted (the console stopped)"
                found.append(job)
        return sorted(found, key=lambda job: job.id, reverse=True)

    def job(self, job_id: str) -> Optional[Job]:
        if self._current is not None and self._current.id == job_id:
            return self._current
        if not re.fullmatch(r"[0-9A-Za-z-]{1,64}", job_id or ""):
            return None
        directory = self.settings.candidates_dir / job_id
        return Job.load(directory) if (directory / "job.json").exists() else None

    def current(self) -> Optional[Job]:
        return self._current if self._current is not None and self._current.running else None

    def start(self, actor: str, protected: Optional[List[str]] = None) -> Job:
        """Starts a retraining in a background thread."""
        job = self.prepare(actor, protected)
        threading.Thread(target=self.run, args=(job,), name=f"retrain-{job.id}", daemon=True).start()
        return job

    def prepare(self, actor: str, protected: Optional[List[str]] = None) -> Job:
        with self._lock:
            if self.current() is not None:
                raise Busy(f"a retraining started by {self._current.started_by} is still running")
            # the console and the command line may both be asked: one retraining on the machine
            self.settings.candidates_dir.mkdir(parents=True, exist_ok=True)
            machine_lock = open(self.settings.candidates_dir / ".retrain.lock", "w")
            try:
                fcntl.flock(machine_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                machine_lock.close()
                raise Busy("another retraining is running (started from the command line or another console)") from None
            self._machine_lock = machine_lock
            self._prune(protected or [])
            job_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
            directory = self.settings.candidates_dir / job_id
            directory.mkdir(parents=True)
            job = Job(job_id, directory, actor)
            self._current = job
        try:
            # the inputs as they are now (under the edit lock, so no half-written
            # file): edits made during training go into the next one
            with TrainingData(self.settings.project_dir)._locked():
                for name in TRAINING_INPUTS:
                    source = self.settings.project_dir / name
                    if source.is_dir():
                        shutil.copytree(source, job.snapshot / name)
                    else:
                        job.snapshot.mkdir(exist_ok=True)
                        shutil.copy2(source, job.snapshot / name)
            job.data_fingerprint = fingerprint(job.snapshot)
        except OSError as error:
            job.status, job.stage, job.error = "failed", "Failed", f"could not copy the training data: {error}"
            job.finished_at = _now()
            self._release_machine_lock()
            raise
        finally:
            job.save()
        return job

    def _log(self, job: Job, line: str, log_file) -> None:
        job.log.append(line)
        if len(job.log) > MAX_LOG_LINES:
            del job.log[: len(job.log) - MAX_LOG_LINES]
        log_file.write(line + "\n")
        log_file.flush()

    def run(self, job: Job, live_model: Optional[Path] = None, echo=None) -> Job:
        """Trains, then gates; in the caller's thread (the CLI) or a background one."""
        started = time.monotonic()
        with open(job.directory / "train.log", "a", encoding="utf-8") as log_file:

            def log(line: str) -> None:
                self._log(job, line, log_file)
                if echo:
                    echo(line)

            try:
                trained = self._train(job, log)
                job.seconds["training"] = round(time.monotonic() - started, 1)
                if not trained:
                    job.status = "failed"
                    job.stage = "Training failed"
                    job.error = job.error or "rasa train failed; see the log."
                    return job
                job.model_id = gate_module.model_metadata(job.model).get("model_id")
                job.status, job.stage, job.progress = "gating", "Checking the new model", TRAINING_SHARE
                job.save()
                gate_started = time.monotonic()
                if live_model is None:
                    from staff.publishing import Publisher

                    live_model = Publisher(self.settings).live_model_file()

                def on_check(checks):
                    job.checks = gate_module.as_dicts(checks)
                    pending = [c for c in checks if c.passed is None]
                    if pending:
                        job.stage = f"Gate: {pending[0].title}"
                        done = [c.name for c in checks if c.passed is not None]
                        job.progress = GATE_PROGRESS[done[-1]] if done else TRAINING_SHARE
                    job.save()

                the_gate = gate_module.Gate(
                    self.settings.project_dir, self.settings.bin_dir, self.scores_file, log=log
                )
                checks = the_gate.run(job.snapshot, job.model, live_model, job.directory / "results", on_check)
                job.checks = gate_module.as_dicts(checks)
                job.seconds["gate"] = round(time.monotonic() - gate_started, 1)
                passed = all(check.passed for check in checks)
                job.status = "passed" if passed else "blocked"
                job.stage = "Ready to publish" if passed else "Blocked by the gate"
                job.progress = 100.0
            except Exception as error:  # the job must end with a reason, whatever broke
                job.status, job.stage, job.error = "failed", "Failed", f"{type(error).__name__}: {error}"
                log(f"failed: {job.error}")
            finally:
                job.seconds["total"] = round(time.monotonic() - started, 1)
                job.finished_at = _now()
                job.save()
                self._release_machine_lock()
        return job

    def _release_machine_lock(self) -> None:
        lock, self._machine_lock = self._machine_lock, None
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def _train(self, job: Job, log) -> bool:
        snapshot = job.snapshot
        command = [
            str(self.settings.bin_dir / "rasa"), "train",
            "--config", str(snapshot / "config.yml"),
            "--domain", str(snapshot / "domain.yml"),
            "--data", str(snapshot / "data"),
            "--out", str(job.directory),
            "--fixed-model-name", MODEL_NAME,
        ]
        log("$ " + " ".join(command))
        progress = _TrainingProgress()
        job.stage = "Training: starting Rasa"
        job.save()
        # cwd: config.yml names the spaCy pipeline relative to the project
        process = subprocess.Popen(
            command, cwd=self.settings.project_dir, env=gate_module.subprocess_env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0,
        )
        self._process = process
        buffer = b""
        last_save = 0.0
        while True:
            chunk = process.stdout.read(4096)
            if not chunk:
                break
            buffer += chunk
            # tqdm redraws its bar with \r: each redraw is a progress update, not a log line
            *pieces, buffer = re.split(rb"[\r\n]", buffer)
            for raw in pieces:
                line = ANSI.sub("", raw.decode("utf-8", errors="replace")).rstrip()
                if not line:
                    continue
                component = progress.feed(line)
                if component:
                    job.stage = f"Training: {component}"
                if EPOCHS.search(line) or line.startswith("Processed"):
                    continue
                if not NOISE.search(line):
                    log(line)
            job.progress = progress.percent * TRAINING_SHARE / 100
            if time.monotonic() - last_save > 2:
                job.save()
                last_save = time.monotonic()
        returncode = process.wait()
        self._process = None
        if returncode != 0 or not job.model.exists():
            job.error = f"rasa train stopped with exit code {returncode}; see the log."
            return False
        job.progress = TRAINING_SHARE
        return True

    def _prune(self, protected: List[str]) -> None:
        """Keeps the newest candidates and every model that is or was just live."""
        jobs = self.jobs()
        keep = {job.id for job in jobs[: KEEP_CANDIDATES - 1]} | set(protected)
        for job in jobs:
            if job.id not in keep and job.model.exists():
                job.model.unlink()
