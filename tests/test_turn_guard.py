"""How many turns a server runs at once, and a conversation's messages
waiting for its previous turn without a place (channels/turn_guard.py).

The handler here stands in for Rasa's: it holds the event loop for a moment
(as Rasa's NLU does) and awaits an "action server" call (as Rasa's custom
actions do), so the test can count the turns in progress and see that every
waiting call is resumed quickly; ConversationLocks adds Rasa's lock store
(one turn of a conversation at a time). End to end, the benchmark's 32
visitors at once and its flood (`make bench`) exercise the same path with
the real assistant, and tests/test_chat_limits.py floods it too.
"""

import asyncio
import concurrent.futures
import functools
import time

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from channels import turn_guard

VISITORS = 4 * turn_guard.MAX_TURNS_IN_PROGRESS


def in_own_loop(test):
    """Runs the test on a new event loop in a thread of its own: the guard
    counts turns per loop, so nothing else in the test session may share it."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, test(*args, **kwargs)).result(timeout=120)

    return run


class Handler:
    def __init__(self, action_seconds: float = 0.05, parse_seconds: float = 0.03):
        self.action_seconds = action_seconds
        self.parse_seconds = parse_seconds
        self.in_progress = 0
        self.most_in_progress = 0
        self.slowest_resume = 0.0

    async def __call__(self, message: UserMessage) -> None:
        self.in_progress += 1
        self.most_in_progress = max(self.most_in_progress, self.in_progress)
        try:
            time.sleep(self.parse_seconds)  # NLU: CPU on the event loop
            asked = time.monotonic()
            await asyncio.sleep(self.action_seconds)  # the action server answers
            self.slowest_resume = max(self.slowest_resume, time.monotonic() - asked - self.action_seconds)
            await message.output_channel.send_text_message(message.sender_id, f"answer to {message.text}")
        finally:
            self.in_progress -= 1


async def visit(handler: Handler, number: int) -> CollectingOutputChannel:
    output = CollectingOutputChannel()
    await turn_guard.run_turn(handler, UserMessage(f"question {number}", output, f"visitor-{number}"))
    return output


@in_own_loop
async def test_no_more_turns_run_at_once_than_the_limit_and_every_visitor_is_answered():
    handler = Handler()
    outputs = await asyncio.gather(*(visit(handler, number) for number in range(VISITORS)))
    assert handler.most_in_progress == turn_guard.MAX_TURNS_IN_PROGRESS
    assert [o.messages[0]["text"] for o in outputs] == [f"answer to question {n}" for n in range(VISITORS)]
    # a waiting action call is resumed after at most the other running turns' parsing,
    # not after every queued visitor's (which would be VISITORS * 0.03 s = 0.48 s)
    assert handler.slowest_resume < (turn_guard.MAX_TURNS_IN_PROGRESS + 1) * handler.parse_seconds


@in_own_loop
async def test_a_turn_that_outlives_the_budget_keeps_its_place_until_it_ends(monkeypatch):
    monkeypatch.setattr(turn_guard, "TURN_BUDGET_SECONDS", 0.1)
    slow = Handler(action_seconds=0.6, parse_seconds=0)
    outputs = await asyncio.gather(*(visit(slow, n) for n in range(turn_guard.MAX_TURNS_IN_PROGRESS)))
    # past the budget, each visitor got the apology while the turns go on
    assert all(o.messages[0]["text"] == turn_guard.apology() for o in outputs)
    assert slow.in_progress == turn_guard.MAX_TURNS_IN_PROGRESS
    # the next visitor starts only when one of them has ended
    quick = Handler(action_seconds=0, parse_seconds=0)
    started = time.monotonic()
    await visit(quick, 99)
    assert time.monotonic() - started >= 0.3
    await asyncio.sleep(0.7)
    assert slow.in_progress == 0


@in_own_loop
async def test_a_visitor_who_leaves_while_waiting_gives_no_place_away():
    handler = Handler(action_seconds=0.3, parse_seconds=0)
    running = [asyncio.ensure_future(visit(handler, n)) for n in range(turn_guard.MAX_TURNS_IN_PROGRESS)]
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(visit(handler, 50))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.gather(*running)
    # every place is free again: a full round runs at once
    await asyncio.gather(*(visit(handler, n) for n in range(turn_guard.MAX_TURNS_IN_PROGRESS)))
    assert handler.most_in_progress == turn_guard.MAX_TURNS_IN_PROGRESS
    assert turn_guard._turn_places()._value == turn_guard.MAX_TURNS_IN_PROGRESS


class ConversationLocks:
    """Rasa's lock store in the handler: one turn of a conversation at a time."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.locks = {}
        self.places_free = []  # the guard's free places, seen at each turn's start

    async def __call__(self, message: UserMessage) -> None:
        lock = self.locks.setdefault(message.sender_id, asyncio.Lock())
        async with lock:
            self.places_free.append(turn_guard._turn_places()._value)
            await self.handler(message)


async def flood_and_visit(handler, burst: int):
    """A burst on one conversation, then another visitor: that visitor's seconds to an answer."""
    flood = [
        asyncio.ensure_future(turn_guard.run_turn(handler, UserMessage(f"flood {n}", CollectingOutputChannel(), "flooder")))
        for n in range(burst)
    ]
    await asyncio.sleep(0.05)  # the burst is queued
    started = time.monotonic()
    other = await visit(handler, 1)
    waited = time.monotonic() - started
    await asyncio.gather(*flood)
    return waited, other


@in_own_loop
async def test_a_flooded_conversation_holds_one_place_and_another_visitor_is_answered_at_once():
    handler = ConversationLocks(Handler(action_seconds=0.05, parse_seconds=0.01))
    waited, other = await flood_and_visit(handler, burst=40)
    assert other.messages[0]["text"] == "answer to question 1"
    # behind at most the one flood turn in progress, not the 40 queued (40 x 0.06 s)
    assert waited < 0.5, waited
    # the burst's messages waited for their conversation without a place: the others stayed free
    assert min(handler.places_free) >= turn_guard.MAX_TURNS_IN_PROGRESS - 2
    assert turn_guard._conversations[asyncio.get_running_loop()] == {}  # nothing kept once answered


@in_own_loop
async def test_a_conversations_messages_run_one_at_a_time_in_the_order_they_came():
    handler = ConversationLocks(Handler(action_seconds=0.02, parse_seconds=0))
    outputs = [CollectingOutputChannel() for _ in range(6)]
    await asyncio.gather(*(
        turn_guard.run_turn(handler, UserMessage(f"message {n}", output, "visitor")) for n, output in enumerate(outputs)
    ))
    assert handler.handler.most_in_progress == 1
    assert [o.messages[0]["text"] for o in outputs] == [f"answer to message {n}" for n in range(6)]


@in_own_loop
async def test_a_message_that_cannot_reach_its_conversation_in_time_gets_the_apology(monkeypatch):
    monkeypatch.setattr(turn_guard, "START_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(turn_guard, "TURN_BUDGET_SECONDS", 0.1)
    stuck = Handler(action_seconds=0.6, parse_seconds=0)
    first = await visit(stuck, 7)  # apology past the budget; its turn goes on, holding the conversation
    assert first.messages[0]["text"] == turn_guard.apology()
    started = time.monotonic()
    with pytest.raises(turn_guard.AssistantUnavailable):
        await turn_guard.run_turn(stuck, UserMessage("again", CollectingOutputChannel(), "visitor-7"))
    assert time.monotonic() - started < 0.4
    await asyncio.sleep(0.6)
    # the conversation is free again, and no place was lost
    assert (await visit(Handler(0, 0), 7)).messages[0]["text"] == "answer to question 7"
    assert turn_guard._turn_places()._value == turn_guard.MAX_TURNS_IN_PROGRESS


@in_own_loop
async def test_a_visitor_who_leaves_while_the_conversation_is_busy_leaves_it_usable():
    handler = Handler(action_seconds=0.2, parse_seconds=0)
    running = asyncio.ensure_future(visit(handler, 3))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(visit(handler, 3))  # waits for the conversation
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await running
    assert (await visit(handler, 3)).messages[0]["text"] == "answer to question 3"
    assert turn_guard._conversations[asyncio.get_running_loop()] == {}
    assert turn_guard._turn_places()._value == turn_guard.MAX_TURNS_IN_PROGRESS
