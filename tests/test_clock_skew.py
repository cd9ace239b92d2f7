"""Servers whose clocks disagree by a minute, one conversation alternating
between them (the scaled profile: PostgreSQL and Redis shared).

Every event is timed by the clock of the server that wrote it. Rasa found a
conversation's current session by those times, so a server running behind
the one that started the session wrote turns the others no longer saw:
the disclaimer shown twice, a follow-up's topic lost. Here each server's
clock is set off with libfaketime (Debian's faketime package, installed by
scripts/ensure_test_packages.sh): one a minute ahead of the server it
alternates with, one a minute behind. Sessions are started by both kinds of
server (a new one every TURNS_PER_SESSION visitor messages)."""

import os
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from clinic.facts import clinic_facts, fill
from clinic.tracker_store import TURNS_PER_SESSION
from conftest import ROOT, Assistant, texts
from services import REDIS_URL, postgres_up, redis_up, require, scratch_database

FAKETIME_LIBRARY = os.environ.get("FAKETIME_LIBRARY", "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEW_SECONDS = 60  # the clock difference the servers must tolerate
# Questions whose answers add the disclaimer (once per conversation); the
# soreness one is followed by "how long does that last?" on the other server.
QUESTIONS = ["what is dry needling", "is dry needling safe", "how many sessions will I need", "what causes sciatica"]
SORENESS, FOLLOW_UP = "will I be sore after a session?", "how long does that last?"


def _response_text(name: str) -> str:
    return fill(yaml.safe_load((ROOT / "domain.yml").read_text())["responses"][name][0]["text"])


@pytest.fixture(scope="module")
def servers(tmp_path_factory, trained_model) -> Dict[str, Assistant]:
    """Three servers on one database and lock store: on time, a minute
    ahead and a minute behind."""
    require(postgres_up(), "PostgreSQL")
    require(redis_up(), "Redis")
    assert Path(FAKETIME_LIBRARY).exists(), "libfaketime is missing: scripts/ensure_test_packages.sh installs it"
    with scratch_database("clinic_clock_test") as database_url:
        shared = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "RASA_ENDPOINTS": "endpoints.scaled.yml"}
        clocks = {"on_time": {}, "ahead": {"FAKETIME": f"+{SKEW_SECONDS}s"}, "behind": {"FAKETIME": f"-{SKEW_SECONDS}s"}}
        servers = {
            name: Assistant(
                tmp_path_factory.mktemp(f"clock_{name}"), f"clock-{name}",
                env={**shared, **({"LD_PRELOAD": FAKETIME_LIBRARY, **clock} if clock else {})},
            )
            for name, clock in clocks.items()
        }
        try:
            for assistant in servers.values():
                assistant.start()
            yield servers
        finally:
            for assistant in servers.values():
                assistant.stop()


def _talk(first: Assistant, second: Assistant, visitor: str, messages: List[str]) -> List[str]:
    """Sends the messages alternately to `first` and `second`, as one
    conversation (the id `first` issued); returns each reply's text."""
    replies = []
    for index, text in enumerate(messages):
        replies.append(texts((first if index % 2 == 0 else second).say(visitor, text)))
        second.conversations[visitor] = first.conversations[visitor]
    return replies


def _read_on(server: Assistant, first: Assistant, visitor: str) -> List[dict]:
    """The conversation's events as `server` reads them."""
    server.conversations[visitor] = first.conversations[visitor]
    return server.tracker(visitor)["events"]


def _messages() -> List[str]:
    """A greeting on the first server, then questions: the first answer
    (and the disclaimer) comes from the second server, every session is
    started on the first (even turns: visitor messages 1, 11 and 21), and
    the soreness question is asked on the second and followed up on the
    first. So everything the second server writes must be read back by
    the first, whichever runs ahead."""
    questions = [f"{QUESTIONS[i % len(QUESTIONS)]} ({i})" for i in range(1, 2 * TURNS_PER_SESSION + 1)]
    return ["hi", *questions, SORENESS, FOLLOW_UP]


def test_the_servers_clocks_really_differ(servers):
    """The premise: events the skewed servers write are timed a minute off."""
    visitor = "clock-premise"
    _talk(servers["ahead"], servers["behind"], visitor, ["what is dry needling", "what is sciatica"])
    events = _read_on(servers["on_time"], servers["ahead"], visitor)
    times = [e["timestamp"] for e in events if e["event"] == "user"]
    assert times[0] - times[1] > 1.5 * SKEW_SECONDS


@pytest.mark.parametrize("starter,other", [("ahead", "on_time"), ("on_time", "behind")])
def test_a_conversation_alternating_between_servers_keeps_its_session_whatever_their_clocks(servers, starter, other):
    """Sessions started by the server whose clock is ahead (one skewed
    forward, then one on time with the other skewed back): the other's
    turns are timed before the session began, and still belong to it."""
    visitor, messages = f"clock-{starter}-{other}", _messages()
    replies = _talk(servers[starter], servers[other], visitor, messages)

    disclaimer = fill(clinic_facts()["disclaimer_short"])
    assert sum(disclaimer in reply for reply in replies) == 1
    # the follow-up knew the topic the other server's answer set
    assert _response_text("utter_clarify") not in replies[-1]
    assert "24-48 hours" in replies[-1]
    for server in servers.values():
        events = _read_on(server, servers[starter], visitor)
        assert [e["text"] for e in events if e["event"] == "user"] == messages
        assert sum(e["event"] == "session_started" for e in events) == 3
