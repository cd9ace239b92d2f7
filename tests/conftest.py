"""Shared fixtures: the trained model, and the assistant's servers started
exactly as `make run` starts them (scripts/serve.py), on free loopback ports."""

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Type

import pytest
import requests

from clinic import conversation_ids, store
from clinic.harness import stop_process_group

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "clinic.tar.gz"
OUTPUT = ROOT / "test-output"
STARTUP_TIMEOUT = 240
# Every assistant the tests start signs conversation ids with this, so a test
# can also make ids of its own (clinic.conversation_ids.issue) where it
# posts to a channel directly.
os.environ.setdefault("CONVERSATION_ID_SECRET", secrets.token_hex(32))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Assistant:
    """A running assistant: action server plus Rasa server(s)."""

    def __init__(self, var_dir: Path, name: str, replicas: int = 1, env: Optional[Dict[str, str]] = None,
                 model: Path = MODEL):
        self.var_dir = var_dir
        self.model = model
        self.name = name
        self.replicas = replicas
        self.port = free_port()
        # replicas take consecutive ports; make sure the next ones are free too
        while replicas > 1 and not all(_is_free(self.port + i) for i in range(replicas)):
            self.port = free_port()
        self.action_port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("RASA_API_TOKEN", "-test-token-" + name)
        self.token = self.env["RASA_API_TOKEN"]
        self.process: Optional[subprocess.Popen] = None
        self.log_path = OUTPUT / "logs" / f"{name}.log"
        # A test's name for a visitor -> the conversation id the server issued.
        self.conversations: Dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port + index}"

    def start(self) -> "Assistant":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [
                sys.executable, str(ROOT / "scripts" / "serve.py"),
                "--port", str(self.port),
                "--replicas", str(self.replicas),
                "--action-port", str(self.action_port),
                "--var-dir", str(self.var_dir),
                "--model", str(self.model),
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for index in range(self.replicas):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"assistant exited early, see {self.log_path}")
                try:
                    if requests.get(self.replica_url(index), timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"assistant did not start, see {self.log_path}")
                time.sleep(0.5)
        self.wait_for_actions(deadline)
        return self

    def wait_for_actions(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.action_port}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        raise RuntimeError(f"action server did not start, see {self.log_path}")

    def stop(self) -> None:
        stop_process_group(self.process, grace_seconds=30)
        self.process = None

    def say(self, sender: str, text: str, replica: int = 0, timeout: float = 30) -> List[dict]:
        """Sends `text` as the visitor the test calls `sender`: the first
        message starts a conversation, whose issued id the later ones send."""
        body = {"message": text}
        if sender in self.conversations:
            body["sender"] = self.conversations[sender]
        elif conversation_ids.is_issued(sender, conversation_ids.REST):
            body["sender"] = sender
        response = requests.post(f"{self.replica_url(replica)}/webhooks/rest/webhook", json=body, timeout=timeout)
        response.raise_for_status()
        self.conversations.setdefault(sender, response.headers["X-Conversation-Id"])
        return response.json()

    def rasa_server_pid(self, replica: int = 0) -> int:
        """The `rasa run` process of one of this assistant's servers."""
        return process_id("--interface", "127.0.0.1", "--port", str(self.port + replica))

    def action_server_pid(self) -> int:
        return process_id("-m", "actions", "--port", str(self.action_port))

    def conversation_id(self, sender: str) -> str:
        """The id the server issued to the visitor the test calls `sender`."""
        return self.conversations.get(sender, sender)

    def tracker(self, sender: str, replica: int = 0) -> dict:
        response = requests.get(
            f"{self.replica_url(replica)}/conversations/{self.conversation_id(sender)}/tracker",
            params={"token": self.token},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()


class Console:
    """`python -m staff serve` against a copy of the project and the test
    assistants (the first one's database and conversations; one API token)."""

    def __init__(self, project: Path, assistants: List[Assistant], log_name: str = "staff-console"):
        assistant = assistants[0]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.project = project
        self.env = {
            **os.environ,
            "STAFF_PROJECT_DIR": str(project),
            "STAFF_PORT": str(self.port),
            "RASA_URL": ",".join(each.url for each in assistants),
            "RASA_API_TOKEN": assistant.token,
            "DATABASE_URL": assistant.env["DATABASE_URL"],
            # where the assistant keeps conversations (its tracker store's SQLite file)
            "CLINIC_VAR_DIR": str(assistant.var_dir),
            "PYTHONPATH": str(ROOT),
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
        self.env.pop("STAFF_PASSWORD", None)
        self.log_path = OUTPUT / "logs" / f"{log_name}.log"
        self.process: Optional[subprocess.Popen] = None

    def cli(self, *args: str, password: Optional[str] = None, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(self.env, **({"STAFF_PASSWORD": password} if password else {}))
        return subprocess.run(
            [sys.executable, "-m", "staff", *args], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def start(self) -> "Console":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "staff", "serve"], cwd=ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited, see {self.log_path}")
            try:
                if requests.get(self.url + "/login", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the console did not start, see {self.log_path}")

    def stop(self) -> None:
        stop_process_group(self.process, grace_seconds=20)

    def session(self, username: str, password: str) -> requests.Session:
        """Signed in through the real form, as a browser would."""
        session = requests.Session()
        page = session.get(self.url + "/login", timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        reply = session.post(
            self.url + "/login", data={"csrf_token": token, "username": username, "password": password},
            allow_redirects=False, timeout=30,
        )
        assert reply.status_code == 303, reply.text[:500]
        return session

    def csrf(self, session: requests.Session, path: str = "/inbox") -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', session.get(self.url + path, timeout=30).text).group(1)


def process_id(*argv: str) -> int:
    """The process whose command line holds these consecutive arguments."""
    wanted = "\0".join(argv)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                continue
    raise LookupError(f"no process with {argv}")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def texts(messages: List[dict]) -> str:
    """All bot texts of a reply, joined, for assertions."""
    return "\n".join(message.get("text") or "" for message in messages)


@pytest.fixture(scope="session")
def trained_model() -> Path:
    assert MODEL.exists(), "no trained model: run `make test`, which trains it first"
    return MODEL


@pytest.fixture(scope="session")
def assistant(tmp_path_factory, trained_model) -> Assistant:
    """One assistant for the whole session (tests use their own sender ids)."""
    running = Assistant(tmp_path_factory.mktemp("var"), "assistant").start()
    yield running
    running.stop()


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium keeps trying to reach Google's services, which this
# machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    """The system Chromium (scripts/ensure_test_packages.sh), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def store_conversation(assistant: Assistant, sender_id: str, turns: List[Tuple[str, str]]) -> None:
    """Writes a conversation of (visitor text, answer) turns straight into the
    assistant's tracker store (endpoints.yml: SQLite in its var folder) under
    exactly `sender_id`: a test's way to have one for any id, including ids
    that no channel and no URL of Rasa's API can name."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    events = [ActionExecuted("action_listen")]
    for text, answer in turns:
        events += [
            UserUttered(text, intent={"name": "faq", "confidence": 0.91}),
            ActionExecuted("utter_faq"),
            BotUttered(answer),
            ActionExecuted("action_listen"),
        ]
    tracker_store = SQLTrackerStore(dialect="sqlite", db=str(assistant.var_dir / "conversations.db"))
    try:
        store.run_to_completion(tracker_store.save(DialogueStateTracker.from_events(sender_id, events)))
    finally:
        tracker_store.engine.dispose()


def serve_site(handler: Type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A web site of the test's own (another origin than the assistant's),
    on a free loopback port, while the generator is open."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# How long a browser test waits for an answer to appear.
ANSWER_TIMEOUT_MS = 45_000


def wait_until(condition: Callable[[], bool], describe: Callable[[], str], timeout_ms: int = ANSWER_TIMEOUT_MS) -> None:
    """Polls `condition` (a page or a server reaching a state) every 0.2 s;
    AssertionError with `describe()` when it is still false after `timeout_ms`."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(describe())
        time.sleep(0.2)
