"""Retraining in the background: `rasa train` into a new candidate folder, then the gate.

A candidate (staff/candidates.py) is trained from a snapshot of the inputs
taken when Retrain was pressed, into its own folder, never over the live
model. One retraining runs at a time on the machine.
"""

import re
import secrets
import shutil
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from filelock import FileLock, Timeout

from clinic.harness import QUIET, subprocess_env
from staff import gate as gate_module
from staff.candidates import MAX_LOG_LINES, MODEL_NAME, TRAINING_INPUTS, Job, fingerprint, timestamp
from staff.registry import ModelRegistry
from staff.settings import Settings
from staff.training_data import TrainingData
from staff.training_progress import ANSI, EPOCHS, NOISE, TrainingProgress

KEEP_CANDIDATES = 4
TRAINING_SHARE = 70  # percent of the bar; the gate's checks take the rest
GATE_PROGRESS = {"data": 71, "validate": 74, "held_out": 86, "conversations": 100}


class Busy(RuntimeError):
    pass


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
        try:
            threading.Thread(target=self.run, args=(job,), name=f"retrain-{job.id}", daemon=True).start()
        except BaseException:
            self._release_machine_lock()
            raise
        return job

    def prepare(self, actor: str, protected: Optional[List[str]] = None) -> Job:
        with self._lock:
            if self.current() is not None:
                raise Busy(f"a retraining started by {self._current.started_by} is still running")
            # the console and the command line may both be asked: one retraining on the machine
            # released by the thread that runs the job: not thread-local
            machine_lock = FileLock(self.settings.candidates_dir / ".retrain.lock", thread_local=False)
            try:
                machine_lock.acquire(blocking=False)
            except Timeout:
                raise Busy("another retraining is running (started from the command line or another console)") from None
            self._machine_lock = machine_lock
            try:
                self._prune(protected or [])
                job_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
                directory = self.settings.candidates_dir / job_id
                directory.mkdir(parents=True)
            except BaseException:
                self._release_machine_lock()
                raise
            job = Job(job_id, directory, actor)
            self._current = job
        try:
            # the inputs as they are now (under the edit lock, so no half-written
            # file): edits made during training go into the next one
            with TrainingData(self.settings.project_dir).locked():
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
            job.finished_at = timestamp()
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
        try:
            log_file = open(job.directory / "train.log", "a", encoding="utf-8")
        except OSError as error:
            job.status, job.stage, job.error = "failed", "Failed", f"could not open the training log: {error}"
            job.finished_at = timestamp()
            job.save()
            self._release_machine_lock()
            return job
        with log_file:

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
                    live_model = ModelRegistry(self.settings).live_model_file()

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
                job.finished_at = timestamp()
                job.save()
                self._release_machine_lock()
        return job

    def _release_machine_lock(self) -> None:
        lock, self._machine_lock = self._machine_lock, None
        if lock is not None:
            lock.release()

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
        progress = TrainingProgress()
        job.stage = "Training: starting Rasa"
        job.save()
        # cwd: config.yml names the spaCy pipeline relative to the project
        process = subprocess.Popen(
            command, cwd=self.settings.project_dir, env=subprocess_env(**QUIET),
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
