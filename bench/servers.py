"""Starts an assistant for the benchmark the way `make run` does
(scripts/serve.py), on free loopback ports, times it to its first answer,
and stops it.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import requests

from bench import ROOT
from bench.profile import Sampling
from bench.resources import cpu_seconds, process_tree_rss, serve_children
from clinic.harness import stop_process_group

STARTUP_TIMEOUT_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Served:
    """One assistant: scripts/serve.py with its action server and Rasa server(s)."""

    def __init__(
        self, label: str, model: Path, var_dir: Path, log_path: Path,
        endpoints: Path = ROOT / "endpoints.yml", credentials: Path = ROOT / "credentials.yml",
        replicas: int = 1, env: Optional[Dict[str, str]] = None,
    ):
        self.label = label
        self.model = model
        self.var_dir = var_dir
        self.log_path = log_path
        self.endpoints = endpoints
        self.credentials = credentials
        self.replicas = replicas
        self.port = _free_port()
        while not all(_is_free(self.port + i) for i in range(replicas)):
            self.port = _free_port()
        self.action_port = _free_port()
        self.token = secrets.token_urlsafe(24)
        self.env = {**os.environ, **(env or {}), "RASA_API_TOKEN": self.token}
        # its own database unless given one, and nothing else started (no staff console)
        if "DATABASE_URL" not in (env or {}):
            self.env["DATABASE_URL"] = f"sqlite:///{var_dir / 'clinic.db'}"
        self.env.pop("STAFF_PASSWORD", None)
        self.process: Optional[subprocess.Popen] = None

    @property
    def urls(self) -> List[str]:
        return [f"http://127.0.0.1:{self.port + i}" for i in range(self.replicas)]

    @property
    def webhooks(self) -> List[str]:
        return [f"{url}/webhooks/rest/webhook" for url in self.urls]

    def start(self, question: str, profile: Optional[Path] = None) -> float:
        """Starts it; the seconds from launch until every Rasa server has answered
        `question`. With `profile`, the first Rasa server's start is sampled into it."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable, str(ROOT / "scripts" / "serve.py"),
                "--port", str(self.port), "--replicas", str(self.replicas),
                "--action-port", str(self.action_port), "--var-dir", str(self.var_dir),
                "--model", str(self.model), "--endpoints", str(self.endpoints),
                "--credentials", str(self.credentials),
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        sampling = None
        try:
            if profile:
                sampling = Sampling(self._first_rasa_server(), profile).__enter__()
            for index, webhook in enumerate(self.webhooks):
                self._wait_for_answer(webhook, f"bench-start-{index}-{secrets.token_hex(4)}", question, started)
            return time.monotonic() - started
        except BaseException:
            self.stop()
            raise
        finally:
            if sampling:
                sampling.__exit__()

    def rasa_servers(self) -> List[int]:
        return serve_children(self.process.pid)["rasa"]

    def _first_rasa_server(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            servers = self.rasa_servers()
            if servers:
                return servers[0]
            time.sleep(0.02)
        raise RuntimeError(f"{self.label}: no Rasa server started, see {self.log_path}")

    def _wait_for_answer(self, webhook: str, sender: str, question: str, started: float) -> None:
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited while starting, see {self.log_path}")
            if time.monotonic() - started > STARTUP_TIMEOUT_SECONDS:
                raise RuntimeError(f"{self.label} did not answer within {STARTUP_TIMEOUT_SECONDS} s, see {self.log_path}")
            try:
                reply = requests.post(webhook, json={"sender": sender, "message": question}, timeout=30)
                if reply.status_code == 200 and reply.json():
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)

    def memory(self) -> Dict[str, List[int]]:
        """Resident memory (bytes) of each Rasa server and of the action server, children included."""
        children = serve_children(self.process.pid)
        return {kind: [process_tree_rss(pid) for pid in pids] for kind, pids in children.items()}

    def cpu_seconds(self) -> Dict[str, float]:
        """CPU time used so far by the Rasa servers together, and by the action server."""
        children = serve_children(self.process.pid)
        return {kind: sum(cpu_seconds(pid) for pid in pids) for kind, pids in children.items()}

    def stop(self) -> None:
        stop_process_group(self.process, grace_seconds=30)
        self.process = None
