"""The scaled profile under faults: the action server killed and hung
(SIGKILL, SIGSTOP), PostgreSQL and Redis restarted under traffic, a Rasa
server paused past its lock's lease and one killed mid-conversation. Every
conversation's tracker must still hold exactly the turns the visitor was
answered for, in order. The servers are tests/test_scaled.py's too
(tests/scaled_fixtures.py).
Each test prints what it measured (pytest -s shows it)."""

import os
import signal
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest
import requests

from clinic.facts import clinic_facts
from clinic.lock_store import DEFAULT_LEASE_SECONDS as LEASE_SECONDS
from conftest import Assistant, texts
from scaled_fixtures import (
    QUESTIONS, REPLY_WITHIN, answered, apology, post, sender, user_turns, wait_for_action_server, wait_for_turns,
)
from services import start_postgres, start_redis, stop_postgres, stop_redis


def test_action_server_down_or_hung_gets_an_apology_with_the_phone_then_answers_resume(scaled):
    visitor, sent, report = sender("actions"), [], []
    booking = clinic_facts()["booking_details"]

    def say(text: str, replica: int) -> str:
        status, body, seconds = post(scaled, replica, visitor, text)
        assert status == 200 and body, (text, status, body)
        assert seconds < REPLY_WITHIN, (text, seconds)
        sent.append(text)
        report.append(f"{seconds:.2f}s")
        return texts(body)

    # Both servers warm first: a cold server's first turn can take longer
    # than scripts/serve.py takes to start the killed action server again.
    assert booking in say("how do I book an appointment?", 0)
    assert booking in say("how do I book an appointment with you?", 1)

    os.kill(scaled.action_server_pid(), signal.SIGKILL)  # down: connection refused
    reply = say("how can I book a visit?", 1)
    assert reply == apology() and clinic_facts()["clinic_phone"] in reply
    wait_for_action_server(scaled)  # scripts/serve.py starts it again
    assert booking in say("I want to book an appointment", 0)

    hung = scaled.action_server_pid()
    os.kill(hung, signal.SIGSTOP)  # hung: it accepts connections and never answers
    try:
        assert say("can I make an appointment?", 1) == apology()
        # two custom actions in one turn (muscle, then the disclaimer)
        assert say("what does the piriformis do", 0)
    finally:
        os.kill(hung, signal.SIGCONT)
    assert booking in say("how do I book?", 1)
    assert wait_for_turns(scaled, visitor, sent) == sent
    print(f"\naction server killed, then hung: replies in {', '.join(report)}; all {len(sent)} turns kept")


class Traffic:
    """Visitors talking to both servers while a test breaks something."""

    def __init__(self, assistant: Assistant, visitors: int = 4):
        self.assistant = assistant
        self.visitors = [sender("traffic") for _ in range(visitors)]
        self.results: List[Tuple[float, str, str, int, Optional[object], float]] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._talk, args=(who, n)) for n, who in enumerate(self.visitors)]

    def _talk(self, who: str, offset: int) -> None:
        count = 0
        while not self.stopping.is_set():
            text = f"{QUESTIONS[count % len(QUESTIONS)]} #{count}"
            try:
                status, body, seconds = post(self.assistant, (count + offset) % 2, who, text, timeout=30)
            except requests.RequestException as error:
                status, body, seconds = -1, repr(error), 30.0
            self.results.append((time.monotonic(), who, text, status, body, seconds))
            count += 1
            time.sleep(0.1)

    def __enter__(self) -> "Traffic":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)

    def check(self, recovered_at: float) -> Dict[str, int]:
        """Clean errors only, recovery, and exactly the answered turns kept."""
        statuses = [status for *_, status, _, _ in self.results]
        assert set(statuses) <= {200, 503}, [r for r in self.results if r[3] not in (200, 503)]
        for *_, status, body, _ in self.results:
            if status == 503:
                assert body["message"] == apology()  # says what to do, no stack trace
        assert max(seconds for *_, seconds in self.results) < 10  # never a hang
        after = [r for r in self.results if r[0] > recovered_at + 5]
        assert after and all(answered(r[3], r[4]) for r in after), after
        assert {self._replica_of(r) for r in after} == {0, 1}  # both servers recovered
        for who in self.visitors:
            kept = user_turns(self.assistant, who)
            answered_texts = [r[2] for r in self.results if r[1] == who and answered(r[3], r[4])]
            assert len(kept) == len(set(kept))  # nothing twice
            assert [t for t in kept if t in answered_texts] == answered_texts  # nothing answered is lost
        return {
            "messages": len(statuses),
            "answered": sum(answered(r[3], r[4]) for r in self.results),
            "503": statuses.count(503),
        }

    def _replica_of(self, result) -> int:
        who, text = result[1], result[2]
        count = int(text.rsplit("#", 1)[1])
        return (count + self.visitors.index(who)) % 2


@pytest.mark.parametrize("service", ["PostgreSQL", "Redis"])
def test_database_or_lock_store_restarted_under_traffic_fails_cleanly_then_recovers(scaled, service):
    stop, start = (stop_postgres, start_postgres) if service == "PostgreSQL" else (stop_redis, start_redis)
    with Traffic(scaled) as traffic:
        time.sleep(2)
        stop()
        time.sleep(3)
        start()
        recovered_at = time.monotonic()
        time.sleep(10)
    measured = traffic.check(recovered_at)
    assert measured["503"] > 0  # the outage was seen, and answered cleanly
    print(f"\n{service} restarted under traffic: {measured}; nothing answered was lost")


def test_a_server_paused_past_its_lease_does_not_save_its_turn(scaled):
    """A server stopped (SIGSTOP) in the middle of a turn for longer than the
    lock's lease, while the other server answers the same conversation, then
    resumed (SIGCONT): its turn is refused at saving and the lapse logged,
    its visitor gets the apology, and the stored conversation holds every
    answered turn whole, in order, with no reply lacking its question."""
    visitor, acknowledged = sender("paused"), []
    for index in range(2):
        text = f"{QUESTIONS[index]} ({index})"
        assert answered(*post(scaled, index % 2, visitor, text)[:2])
        acknowledged.append(text)
    log_before = scaled.log_path.read_text(errors="replace").count("a turn was not saved")

    in_flight = "is dry needling safe (paused)"
    paused, outcome = scaled.rasa_server_pid(1), {}
    request = scaled.signal_mid_turn(
        1, lambda: outcome.update(result=post(scaled, 1, visitor, in_flight, timeout=90)), signal.SIGSTOP, settle=0.8
    )
    meanwhile = "what causes sciatica (meanwhile)"
    try:
        time.sleep(LEASE_SECONDS + 1)
        assert answered(*post(scaled, 0, visitor, meanwhile)[:2])
    finally:
        os.kill(paused, signal.SIGCONT)
    request.join(90)

    assert not answered(*outcome["result"][:2])
    kept = wait_for_turns(scaled, visitor, acknowledged + [meanwhile], timeout=10)
    assert kept == acknowledged + [meanwhile]
    events = scaled.tracker(visitor)["events"]
    asked = False
    for event in events:  # every reply comes after a question, never orphaned
        if event["event"] == "action" and event.get("name") == "action_listen":
            asked = False
        elif event["event"] == "user":
            asked = True
        elif event["event"] == "bot":
            assert asked, "a reply stored without its visitor message"
    deadline = time.monotonic() + 10
    while scaled.log_path.read_text(errors="replace").count("a turn was not saved") == log_before:
        assert time.monotonic() < deadline, "the refused turn was not logged"
        time.sleep(0.5)
    print(f"\nserver paused {LEASE_SECONDS + 1:.0f} s mid-turn: its turn refused and logged; {len(kept)} turns kept whole")


def test_a_server_killed_mid_conversation_the_other_carries_on_with_nothing_lost(scaled):
    """Last in this file: the killed server is started again in the background."""
    visitor, acknowledged = sender("killed"), []
    for index in range(6):
        text = f"{QUESTIONS[index]} ({index})"
        assert answered(*post(scaled, index % 2, visitor, text)[:2])
        acknowledged.append(text)

    # Killed in the middle of a turn, holding the conversation's lock: the
    # action server is held (SIGSTOP) so the turn is surely still running.
    in_flight = "how do I book an appointment (in flight)"
    outcome = {}
    scaled.signal_mid_turn(
        1, lambda: outcome.update(result=_try_post(scaled, 1, visitor, in_flight)), signal.SIGKILL, settle=0.8
    ).join(30)
    killed_at = time.monotonic()

    # The other server answers every message within the budget: the apology while
    # the dead server's lease on the conversation runs out, then answers.
    after, replies = [], []
    for index in range(6):
        text = f"{QUESTIONS[index]} after ({index})"
        status, body, seconds = post(scaled, 0, visitor, text)
        assert status == 200 and body and seconds < REPLY_WITHIN, (status, body, seconds)
        after.append(text)
        replies.append(answered(status, body))
        if answered(status, body) and index >= 3:
            break
    answering_again = time.monotonic() - killed_at
    assert replies[-1]
    expected_without = acknowledged + after
    expected_with = acknowledged + [in_flight] + after
    kept = wait_for_turns(scaled, visitor, expected_without, expected_with)
    # nothing answered lost, nothing twice; the killed turn kept at most once
    assert not outcome.get("result")
    assert kept in (expected_without, expected_with), kept
    print(
        f"\nserver killed mid-turn: {len(acknowledged)} turns before and {len(after)} after kept in order "
        f"({replies.count(False)} answered with the apology while the lock's lease ran out; answers again "
        f"{answering_again:.1f} s after the kill); the killed turn {'was' if in_flight in kept else 'was not'} saved"
    )


def _try_post(assistant: Assistant, replica: int, who: str, text: str) -> bool:
    try:
        status, body, _ = post(assistant, replica, who, text, timeout=30)
        return answered(status, body)
    except requests.RequestException:
        return False
