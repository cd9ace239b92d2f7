"""The scaled profile's servers and helpers, shared by tests/test_scaled.py
and tests/test_scaled_recovery.py: two Rasa servers started as `make
run-scaled` starts them, on this machine's PostgreSQL and Redis (a throwaway
database). Its fixtures reach every test file as a pytest plugin
(tests/conftest.py's pytest_plugins)."""

import time
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import pytest
import requests

from channels.turn_guard import TURN_BUDGET_SECONDS
from clinic import conversation_ids
from clinic.facts import clinic_facts
from clinic.harness import answers, poll_until
from conftest import Assistant, texts
from services import REDIS_URL, ensure_running, postgres_up, redis_up, require, scratch_database

ALLOWED_ORIGIN = "https://www.clinic-site.example"
# Questions with quick, fixed answers; which answer does not matter here.
QUESTIONS = [
    "what is dry needling",
    "what is sciatica",
    "is dry needling safe",
    "how many sessions will I need",
    "does it hurt afterwards",
    "what causes sciatica",
    "how is it different from acupuncture",
    "how soon will I feel better",
]
# The turn guard answers within its budget (channels/turn_guard.py, 4.5 s);
# 1.5 s more for the reply to travel on a busy two-core machine. Waiting
# for what is stuck instead (a dead server's lease, the action server's
# timeout) would take longer than this.
REPLY_WITHIN = TURN_BUDGET_SECONDS + 1.5
# A Rasa server killed by a test is started again by scripts/serve.py within this.
RESTART_WITHIN = 240


# For the whole session, not each file: both files use the same two servers,
# and starting them takes a minute.
@pytest.fixture(scope="session")
def scaled(tmp_path_factory, trained_model) -> Iterator[Assistant]:
    with _scaled_servers(tmp_path_factory) as running:
        yield running



@contextmanager
def _scaled_servers(tmp_path_factory) -> Iterator[Assistant]:
    require(postgres_up(), "PostgreSQL")
    require(redis_up(), "Redis")
    with scratch_database("clinic_scaled_test") as database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "RASA_ENDPOINTS": "endpoints.scaled.yml",
            "CHAT_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        }
        assistant = Assistant(tmp_path_factory.mktemp("scaled"), "scaled", replicas=2, env=env)
        assistant.database_url = database_url
        try:
            yield assistant.start()
        finally:
            assistant.stop()
            ensure_running()


@pytest.fixture(autouse=True)
def services_left_running(scaled):
    """Each test starts with both Rasa servers answering (a test that kills
    one leaves it starting again); whatever a test stops, the next test (and
    everyone else) finds running."""
    for replica in range(scaled.replicas):
        _wait_until_answering(scaled.replica_url(replica), f"Rasa server {replica}", RESTART_WITHIN)
    yield
    ensure_running()


def sender(kind: str) -> str:
    """A REST conversation id as the servers issue them (`kind` says what for)."""
    return conversation_ids.issue(conversation_ids.REST)


def apology() -> str:
    return clinic_facts()["assistant_unavailable"]


def post(assistant: Assistant, replica: int, who: str, text: str, timeout: float = 30) -> Tuple[int, object, float]:
    """(status, JSON body or None, seconds) of one message."""
    started = time.monotonic()
    response = requests.post(
        f"{assistant.replica_url(replica)}/webhooks/rest/webhook",
        json={"sender": who, "message": text},
        timeout=timeout,
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body, time.monotonic() - started


def answered(status: int, body) -> bool:
    """A real answer: the turn ran and was saved (not the apology)."""
    return status == 200 and bool(body) and texts(body) != apology()


def user_turns(assistant: Assistant, who: str, replica: int = 0) -> List[str]:
    return [e["text"] for e in assistant.tracker(who, replica)["events"] if e["event"] == "user"]


def wait_for_turns(assistant: Assistant, who: str, *expected: List[str], timeout: float = 20) -> List[str]:
    """The tracker's user turns once they match one of `expected` (a turn can
    finish in the background after the visitor got the apology)."""
    deadline = time.monotonic() + timeout
    while True:
        found = user_turns(assistant, who)
        if found in expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def wait_for_action_server(assistant: Assistant, timeout: float = 60) -> None:
    _wait_until_answering(f"http://127.0.0.1:{assistant.action_port}/health", "the action server", timeout)


def _wait_until_answering(url: str, what: str, timeout: float) -> None:
    if not poll_until(lambda: answers(url), time.monotonic() + timeout, interval=0.3):
        raise AssertionError(f"{what} was not started again")
