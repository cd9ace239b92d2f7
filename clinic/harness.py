"""Starts the assistant as `make run` does (scripts/serve.py), on free
loopback ports with a folder of its own, waits until it answers, and stops it.

    with RunningAssistant(model, var_dir, log_path) as assistant:
        clinic.evaluation.evaluate(assistant.url, assistant.token, path)
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, Optional

from clinic import PROJECT_ROOT

SERVE = PROJECT_ROOT / "scripts" / "serve.py"
STARTUP_TIMEOUT = 240


def free_port() -> int:
    """A TCP port nothing listens on, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: Optional[subprocess.Popen], grace_seconds: float = 30) -> None:
    """SIGTERM to a process started with start_new_session=True and all it
    started; SIGKILL to what is still running after `grace_seconds`."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


class RunningAssistant:
    """One assistant (Rasa server and action server), started and stopped.

    Raises RuntimeError when it does not answer within STARTUP_TIMEOUT
    seconds; its output is in `log_path`."""

    def __init__(self, model: Path, var_dir: Path, log_path: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.model, self.var_dir, self.log_path = Path(model), Path(var_dir), Path(log_path)
        self.port, self.action_port = free_port(), free_port()
        # its own database, unless told otherwise: nothing it records reaches a live one
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{self.var_dir / 'clinic.db'}", **(env or {})}
        self.env.setdefault("RASA_API_TOKEN", secrets.token_hex(16))
        self.token = self.env["RASA_API_TOKEN"]
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RunningAssistant":
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SERVE), "--model", str(self.model), "--port", str(self.port),
                 "--action-port", str(self.action_port), "--var-dir", str(self.var_dir)],
                cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (_answers(self.url) and _answers(f"http://127.0.0.1:{self.action_port}/health")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the assistant did not start; see {self.log_path}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        stop_process_group(self.process, grace_seconds=30)
        self.process = None

    def __enter__(self) -> "RunningAssistant":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()
