"""Shared fixtures: the trained model, and the assistant's servers started
exactly as `make run` starts them (scripts/serve.py), on free loopback ports."""

import os
import secrets
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Type

import pytest
import requests

from clinic import conversation_ids, store
from clinic.harness import RunningAssistant, poll_until
from clinic.harness import free_port  # noqa: F401 (for the tests)
from console import Console  # noqa: F401 (for the tests)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "clinic.tar.gz"
OUTPUT = ROOT / "test-output"
# Every assistant the tests start signs conversation ids with this, so a test
# can also make ids of its own (clinic.conversation_ids.issue) where it
# posts to a channel directly.
os.environ.setdefault("CONVERSATION_ID_SECRET", secrets.token_hex(32))
# Servers that several test files share, each started once per session.
pytest_plugins = ["scaled_fixtures", "sms_texter", "staff_console_fixtures"]


class Assistant(RunningAssistant):
    """A running assistant (clinic.harness) as the tests start it: its log in
    test-output/logs/<name>.log, an API token naming it, and the conversation
    ids the server issued to the visitors a test names."""

    def __init__(self, var_dir: Path, name: str, replicas: int = 1, env: Optional[Dict[str, str]] = None,
                 model: Path = MODEL):
        token = os.environ.get("RASA_API_TOKEN", "-test-token-" + name)
        super().__init__(model, var_dir, OUTPUT / "logs" / f"{name}.log", env={"RASA_API_TOKEN": token, **(env or {})},
                         replicas=replicas)
        self.name = name
        # A test's name for a visitor -> the conversation id the server issued.
        self.conversations: Dict[str, str] = {}

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

    def signal_mid_turn(self, replica: int, send: Callable[[], None], signal_number: int,
                        settle: float) -> threading.Thread:
        """Starts `send` (a turn on server `replica`) in a thread and, `settle`
        seconds later, sends `signal_number` (SIGKILL, SIGSTOP) to that
        server while the turn surely still runs: the action server is held
        (SIGSTOP) from before the turn until then. Returns the thread, for
        the caller to join; `send` must catch a connection that dies."""
        server, actions = self.rasa_server_pid(replica), self.action_server_pid()
        request = threading.Thread(target=send)
        os.kill(actions, signal.SIGSTOP)
        try:
            request.start()
            time.sleep(settle)
            os.kill(server, signal_number)
        finally:
            os.kill(actions, signal.SIGCONT)
        return request

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


# Per module: while Playwright's sync API runs, its event loop stays this
# thread's running loop, and any other loop (Sanic's test client) refuses to run.
@pytest.fixture(scope="module")
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
    if not poll_until(condition, time.monotonic() + timeout_ms / 1000, interval=0.2):
        raise AssertionError(describe())


@pytest.fixture
def database(tmp_path, monkeypatch):
    """The project's tables (clinic.store) in a SQLite file of the test's own."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'clinic.db'}")
    store.reset_engine()
    yield store
    store.reset_engine()
