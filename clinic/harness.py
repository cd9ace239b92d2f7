"""Runs the assistant as `make run` does (scripts/serve.py) for the tests, the
benchmark and the staff gate: on free loopback ports with a folder of its own,
waits until it answers, and stops it. Also the child-process environment,
ports and process handling that scripts/serve.py shares with them.

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
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from clinic import PROJECT_ROOT

SERVE = PROJECT_ROOT / "scripts" / "serve.py"
STARTUP_TIMEOUT = 240
# Rasa phones home, TensorFlow and SQLAlchemy 1.4 warn at length; a value the
# caller's environment already has wins.
QUIET = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}


def subprocess_env(**overrides: str) -> Dict[str, str]:
    """This process's environment for a child that runs the project's code:
    QUIET's defaults, the project root first on PYTHONPATH, then `overrides`
    (`subprocess_env(**QUIET)` for a child that must be quiet whatever the
    environment says: the staff gate's and the bench's `rasa` commands)."""
    env = dict(os.environ)
    for name, value in QUIET.items():
        env.setdefault(name, value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(count: int = 1) -> int:
    """A TCP port nothing listens on at 127.0.0.1; with `count`, the first of
    that many consecutive free ports (replicas take consecutive ports)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + count <= 65536 and all(_is_free(port + i) for i in range(1, count)):
            return port


def answers(url: str, timeout: float = 2) -> bool:
    """Whether a GET of `url` succeeds (2xx or 3xx) within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def poll_until(condition: Callable[[], bool], deadline: float, alive: Callable[[], bool] = lambda: True,
               interval: float = 0.5) -> bool:
    """Calls `condition` every `interval` seconds until it is true (True);
    False once `alive()` is false or `deadline` (time.monotonic()) has passed."""
    while not condition():
        if not alive() or time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def start_process(command: Sequence, env: Dict[str, str], log_path: Path) -> subprocess.Popen:
    """`command` started in the project folder in a session of its own (so
    stop_process_group reaches everything it starts), its output appended
    to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [str(part) for part in command], cwd=PROJECT_ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _stop(processes: Iterable[Optional[subprocess.Popen]], send: Callable[[subprocess.Popen, int], None],
          grace_seconds: float) -> None:
    running = [process for process in processes if process is not None and process.poll() is None]
    for process in running:
        send(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            send(process, signal.SIGKILL)
            process.wait(10)


def stop_processes(processes: Iterable[Optional[subprocess.Popen]], grace_seconds: float = 15) -> None:
    """SIGTERM to each process still running; SIGKILL to those still running
    `grace_seconds` later."""
    _stop(processes, lambda process, signal_number: process.send_signal(signal_number), grace_seconds)


def stop_process_group(process: Optional[subprocess.Popen], grace_seconds: float = 30) -> None:
    """SIGTERM to a process started with start_new_session=True and all it
    started; SIGKILL to what is still running after `grace_seconds`."""
    _stop([process], lambda process, signal_number: os.killpg(process.pid, signal_number), grace_seconds)


class RunningAssistant:
    """scripts/serve.py: the action server and `replicas` Rasa servers on
    consecutive free loopback ports, its output in `log_path`.

    `env` is added to this process's environment. Unless it says otherwise,
    the assistant keeps its database in `var_dir` (nothing it records reaches
    a live one), starts no staff console, and has an API token of its own
    (`token`) when the environment names none. `endpoints` and `credentials`
    are files for serve.py; without them it uses its own defaults."""

    def __init__(self, model: Path, var_dir: Path, log_path: Path, env: Optional[Dict[str, str]] = None,
                 replicas: int = 1, endpoints: Optional[Path] = None, credentials: Optional[Path] = None) -> None:
        self.model, self.var_dir, self.log_path = Path(model), Path(var_dir), Path(log_path)
        self.replicas, self.endpoints, self.credentials = replicas, endpoints, credentials
        self.port = free_port(replicas)
        self.action_port = free_port()
        self.env = subprocess_env(**{"DATABASE_URL": f"sqlite:///{self.var_dir / 'clinic.db'}", **(env or {})})
        if "STAFF_PASSWORD" not in (env or {}):
            self.env.pop("STAFF_PASSWORD", None)
        self.env.setdefault("RASA_API_TOKEN", secrets.token_hex(16))
        self.token = self.env["RASA_API_TOKEN"]
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        """The first Rasa server's base URL."""
        return self.replica_url(0)

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port + index}"

    @property
    def urls(self) -> List[str]:
        """Every Rasa server's base URL."""
        return [self.replica_url(index) for index in range(self.replicas)]

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        """Starts scripts/serve.py without waiting for it."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, SERVE, "--model", self.model, "--port", self.port, "--replicas", self.replicas,
            "--action-port", self.action_port, "--var-dir", self.var_dir,
        ]
        if self.endpoints:
            command += ["--endpoints", self.endpoints]
        if self.credentials:
            command += ["--credentials", self.credentials]
        self.process = start_process(command, self.env, self.log_path)

    def start(self) -> "RunningAssistant":
        """Launches it and waits until every server answers; RuntimeError
        (with it stopped) when it exits or takes over STARTUP_TIMEOUT seconds."""
        self.launch()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for url in self.urls:
            self.wait_for(lambda: answers(url), deadline, "the assistant")
        self.wait_for_actions(deadline)
        return self

    def wait_for_actions(self, deadline: float) -> None:
        """Returns once the action server answers; RuntimeError as wait_for."""
        self.wait_for(lambda: answers(f"{self.action_url}/health"), deadline, "the action server")

    def wait_for(self, condition: Callable[[], bool], deadline: float, what: str, interval: float = 0.5) -> None:
        """Returns once `condition()` is true; stops the assistant and raises
        RuntimeError (naming `what` and the log) when it exits first or
        `deadline` (time.monotonic()) passes."""
        if poll_until(condition, deadline, alive=self.running, interval=interval):
            return
        exited = not self.running()
        self.stop()
        raise RuntimeError(f"{what} {'exited while starting' if exited else 'did not start in time'}; see {self.log_path}")

    def stop(self) -> None:
        stop_process_group(self.process, grace_seconds=30)
        self.process = None

    def __enter__(self) -> "RunningAssistant":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()
