"""Long conversations (clinic/tracker_store.py): every TURNS_PER_SESSION
visitor messages the conversation goes on in a new Rasa session, so a turn
reads a bounded tracker, while every slot keeps its value and every event
stays stored in order. How long a turn takes is measured by `make bench`
(bench/long_conversation.py), not here.
"""

import asyncio
import time
from pathlib import Path

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
    UserUtteranceReverted,
)
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.facts import clinic_facts
from clinic.tracker_store import ErasableSQLTrackerStore, TURNS_PER_SESSION
from conftest import ROOT, Assistant

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
TURNS = 3 * TURNS_PER_SESSION + 5


def store_at(path: Path) -> ErasableSQLTrackerStore:
    return ErasableSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(path))


def turn_events(turn: int):
    """One visitor turn as Rasa logs it, setting slots now and then."""
    events = [UserUttered(f"message {turn}", {"name": "greet", "confidence": 1.0}), ActionExecuted("utter_greet"),
              BotUttered(f"answer {turn}")]
    if turn == 2:
        events.append(SlotSet("disclaimer_shown", True))
    if turn % 7 == 0:
        events.append(SlotSet("topic", f"faq/topic_{turn}"))
    if turn == 16:
        events.append(SlotSet("offered", "booking_details"))
    if turn == 17:
        events.append(SlotSet("offered", None))
    return events + [ActionExecuted("action_listen")]


async def talk(store: ErasableSQLTrackerStore, sender: str, turns: int, reference: DialogueStateTracker):
    """`turns` turns the way Rasa's processor runs them (read, update, save);
    `reference` gets the same events in memory, never split. Yields each
    turn's tracker as read at its start."""
    for turn in range(1, turns + 1):
        tracker = await store.retrieve(sender)
        if tracker is None:
            tracker = DialogueStateTracker(sender, DOMAIN.slots)
            for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
                tracker.update(event)
                reference.update(event)
        yield turn, tracker
        for event in turn_events(turn):
            tracker.update(event)
            reference.update(event)
        await store.save(tracker)


def user_texts(tracker: DialogueStateTracker):
    return [event.text for event in tracker.events if isinstance(event, UserUttered)]


def test_a_long_conversation_reads_a_bounded_session_with_every_slot_right(tmp_path):
    async def run():
        store = store_at(tmp_path / "conversations.db")
        reference = DialogueStateTracker("visitor", DOMAIN.slots)
        async for turn, tracker in talk(store, "visitor", TURNS, reference):
            # what a turn reads: its session, at most TURNS_PER_SESSION earlier messages, ending with the last one
            texts = user_texts(tracker)
            assert len(texts) <= TURNS_PER_SESSION, (turn, texts)
            assert texts[-1:] == ([f"message {turn - 1}"] if turn > 1 else [])
            # every slot as if the conversation had never been split
            assert tracker.current_slot_values() == reference.current_slot_values(), turn
        full = await store.retrieve_full_tracker("visitor")
        assert user_texts(full) == [f"message {turn}" for turn in range(1, TURNS + 1)]
        assert [e.text for e in full.events if isinstance(e, BotUttered)] == [f"answer {t}" for t in range(1, TURNS + 1)]
        assert full.current_slot_values() == reference.current_slot_values()
        assert full.get_slot("disclaimer_shown") is True and full.get_slot("topic") == "faq/topic_35"
        # one session per TURNS_PER_SESSION messages, each starting right before its first message
        starts = [i for i, event in enumerate(full.events) if isinstance(event, SessionStarted)]
        assert len(starts) == 1 + (TURNS - 1) // TURNS_PER_SESSION
        for start in starts[1:]:
            first_user = next(e for e in list(full.events)[start:] if isinstance(e, UserUttered))
            assert full.events[start].timestamp == first_user.timestamp

    asyncio.run(run())


def test_rasas_session_expiry_still_sees_the_last_visitor_message(tmp_path):
    """Rasa starts a new session (slots not carried over) once the last
    visitor message is older than session_expiration_time: a continued
    session must still show that message and its time."""

    async def run():
        store = store_at(tmp_path / "conversations.db")
        async for turn, tracker in talk(store, "visitor", TURNS_PER_SESSION + 1, DialogueStateTracker("r", DOMAIN.slots)):
            pass
        latest = await store.retrieve("visitor")
        last = latest.get_last_event_for(UserUttered)
        assert last.text == f"message {TURNS_PER_SESSION + 1}"
        full = await store.retrieve_full_tracker("visitor")
        assert last.timestamp == full.get_last_event_for(UserUttered).timestamp

    asyncio.run(run())


def test_a_reverted_first_message_of_a_session_keeps_the_carried_slots(tmp_path):
    """Rasa's fallback reverts the visitor's message (UserUtteranceReverted),
    replaying the session without it: the carried slots must survive that."""

    async def run():
        store = store_at(tmp_path / "conversations.db")
        async for turn, tracker in talk(store, "visitor", TURNS_PER_SESSION, DialogueStateTracker("r", DOMAIN.slots)):
            pass
        tracker = await store.retrieve("visitor")
        for event in (UserUttered("asdf qwer", {"name": "nlu_fallback", "confidence": 1.0}),
                      ActionExecuted("action_default_fallback"), BotUttered("sorry"), UserUtteranceReverted(),
                      ActionExecuted("action_listen")):
            tracker.update(event)
        await store.save(tracker)
        latest = await store.retrieve("visitor")
        assert any(isinstance(e, SessionStarted) for e in latest.events)  # the fallback turn began a new session
        assert latest.get_slot("disclaimer_shown") is True and latest.get_slot("topic") == "faq/topic_7"

    asyncio.run(run())


def test_events_added_without_a_visitor_message_do_not_start_a_session(tmp_path):
    """Rasa's HTTP API can append events (e.g. a slot) to a conversation:
    only a visitor's message begins a new session."""

    async def run():
        store = store_at(tmp_path / "conversations.db")
        async for turn, tracker in talk(store, "visitor", TURNS_PER_SESSION, DialogueStateTracker("r", DOMAIN.slots)):
            pass
        tracker = await store.retrieve("visitor")
        tracker.update(SlotSet("topic", "faq/set_by_staff"))
        await store.save(tracker)
        latest = await store.retrieve("visitor")
        assert len(user_texts(latest)) == TURNS_PER_SESSION and latest.get_slot("topic") == "faq/set_by_staff"

    asyncio.run(run())


def test_forgetting_a_long_conversation_erases_every_session(tmp_path):
    async def run():
        store = store_at(tmp_path / "conversations.db")
        async for turn, tracker in talk(store, "visitor", TURNS, DialogueStateTracker("r", DOMAIN.slots)):
            pass
        await store.delete("visitor")
        assert await store.retrieve_full_tracker("visitor") is None

    asyncio.run(run())


# ---- end to end: the assistant as `make run` starts it --------------------

HEALTH_QUESTIONS = [
    "what is dry needling?", "how many sessions will I need?", "is dry needling safe?",
    "does dry needling hurt?", "what is sciatica?", "how does dry needling help sciatica?",
]


def test_a_long_conversation_over_rest_keeps_its_slots_and_every_message(assistant: Assistant):
    """Over REST: 25 messages (three sessions), the medical disclaimer once
    (its slot carried from session to session), every message kept in order,
    and what a turn reads stays one session long."""
    visitor = f"long-{time.monotonic_ns()}"
    disclaimer = clinic_facts()["disclaimer_short"]
    sent, with_disclaimer = [], []
    for turn in range(2 * TURNS_PER_SESSION + 5):
        text = f"{HEALTH_QUESTIONS[turn % len(HEALTH_QUESTIONS)]} ({turn + 1})"
        reply = assistant.say(visitor, text)
        assert reply and all(message.get("text") for message in reply), (turn, reply)
        sent.append(text)
        with_disclaimer += [turn + 1] * any(message["text"] == disclaimer for message in reply)
    assert with_disclaimer == [1]
    full = assistant.tracker(visitor)
    assert [e["text"] for e in full["events"] if e["event"] == "user"] == sent
    assert full["slots"]["disclaimer_shown"] is True

    async def latest_session():
        return await store_at(assistant.var_dir / "conversations.db").retrieve(assistant.conversation_id(visitor))

    latest = asyncio.run(latest_session())
    assert len(user_texts(latest)) <= TURNS_PER_SESSION
    assert latest.current_slot_values() == full["slots"]
