"""Starts an assistant for the benchmark the way `make run` does
(scripts/serve.py, through clinic.harness), times it to its first answer,
and stops it.
"""

import secrets
import time
from pathlib import Path
from typing import Dict, List, Optional

import requests

from bench import ROOT
from bench.profile import Sampling
from bench.resources import cpu_seconds, process_tree_rss, serve_children
from clinic.harness import RunningAssistant, poll_until

STARTUP_TIMEOUT_SECONDS = 300


class Served(RunningAssistant):
    """One assistant: scripts/serve.py with its action server and Rasa server(s),
    its own token, its own database unless `env` names one, no staff console."""

    def __init__(
        self, label: str, model: Path, var_dir: Path, log_path: Path,
        endpoints: Path = ROOT / "endpoints.yml", credentials: Path = ROOT / "credentials.yml",
        replicas: int = 1, env: Optional[Dict[str, str]] = None,
    ):
        env = {**(env or {}), "RASA_API_TOKEN": secrets.token_urlsafe(24)}
        env.pop("STAFF_PASSWORD", None)
        super().__init__(model, var_dir, log_path, env=env, replicas=replicas, endpoints=endpoints, credentials=credentials)
        self.label = label

    @property
    def webhooks(self) -> List[str]:
        return [f"{url}/webhooks/rest/webhook" for url in self.urls]

    def start(self, question: str, profile: Optional[Path] = None) -> float:
        """Starts it; the seconds from launch until every Rasa server has answered
        `question`. With `profile`, the first Rasa server's start is sampled into it.
        RuntimeError (with it stopped) when it exits or takes over STARTUP_TIMEOUT_SECONDS."""
        started = time.monotonic()
        self.launch()
        sampling = None
        try:
            if profile:
                sampling = Sampling(self._first_rasa_server(), profile).__enter__()
            for index, webhook in enumerate(self.webhooks):
                sender = f"bench-start-{index}-{secrets.token_hex(4)}"
                self.wait_for(lambda: _answered(webhook, sender, question), started + STARTUP_TIMEOUT_SECONDS,
                              self.label, interval=0.2)
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
        if not poll_until(self.rasa_servers, time.monotonic() + 30, interval=0.02):
            raise RuntimeError(f"{self.label}: no Rasa server started, see {self.log_path}")
        return self.rasa_servers()[0]

    def memory(self) -> Dict[str, List[int]]:
        """Resident memory (bytes) of each Rasa server and of the action server, children included."""
        children = serve_children(self.process.pid)
        return {kind: [process_tree_rss(pid) for pid in pids] for kind, pids in children.items()}

    def cpu_seconds(self) -> Dict[str, float]:
        """CPU time used so far by the Rasa servers together, and by the action server."""
        children = serve_children(self.process.pid)
        return {kind: sum(cpu_seconds(pid) for pid in pids) for kind, pids in children.items()}


def _answered(webhook: str, sender: str, question: str) -> bool:
    try:
        reply = requests.post(webhook, json={"sender": sender, "message": question}, timeout=30)
        return reply.status_code == 200 and bool(reply.json())
    except (requests.RequestException, ValueError):
        return False
