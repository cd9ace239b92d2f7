"""Runs a visitor's turn so that the visitor always hears back within seconds.

Every channel (channels/base.py) hands its message to `run_turn` (REST,
which answers a failed turn with 503) or wraps Rasa's handler with
`with_reply_guarantee` (Socket.IO, SMS: channels without status codes, which
get the same text as a message):

- When the turn produced no reply (an action failed: Rasa logs it, drops the
  action's events and ends the turn silently), the visitor gets the apology
  from data/clinic.yml (`assistant_unavailable`, with the clinic's phone).
- When it is still running after TURN_BUDGET_SECONDS (a stopped action
  server, a slow database), the visitor gets the apology; the turn itself
  goes on in the background, and its replies follow once it is saved.
- A turn's replies are held until it is saved: a turn refused at saving (a
  server paused past its conversation lock, clinic/tracker_store.py) gets
  the apology, never an answer the conversation does not keep.
- When it failed outright (database or lock store down, or the conversation
  could not be read or saved, which Rasa itself would hide), `run_turn`
  raises AssistantUnavailable: a 503 with the same text, never a stack trace.

At most MAX_TURNS_IN_PROGRESS turns run at once in a server; more messages
wait for a free place before their turn starts. Rasa parses every message on
the event loop (about 0.1 s of CPU each), so with dozens of turns in flight a
turn whose action server had long answered was not resumed for seconds, the
action call timed out and the medical disclaimer was lost.

A message first waits for its conversation's previous turn, then for a
place: Rasa runs one turn of a conversation at a time (its lock store), and
messages queued there while holding places took every place, so a burst of
40 messages on one conversation kept every other visitor waiting 25 s for
a 503. Now a conversation holds at most one place, whatever it sends.
"""

import asyncio
import logging
import os
import weakref
from typing import Any, Awaitable, Callable, Dict, List, Text, Tuple

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic.exceptions import SanicException

from clinic import action_timeout
from clinic.facts import clinic_facts
from clinic.tracker_store import report_failures_to, stop_reporting

logger = logging.getLogger(__name__)

# The visitor hears back within 5 s of the turn starting; this leaves time
# for the reply to travel.
TURN_BUDGET_SECONDS = 4.5


def _max_turns_in_progress() -> int:
    value = os.environ.get("MAX_TURNS_IN_PROGRESS") or "4"
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"MAX_TURNS_IN_PROGRESS must be a whole number of at least 1, not {value!r}")
    return int(value)


# Few enough that a waiting action call is resumed within a fraction of a
# second, enough to overlap the turns' database and action-server calls.
MAX_TURNS_IN_PROGRESS = _max_turns_in_progress()
# A message that cannot start within this (a server far beyond its capacity)
# gets the apology instead of a timeout.
START_WAIT_SECONDS = 25.0
_places: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()
_conversations: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Text, _Conversation]]" = (
    weakref.WeakKeyDictionary()
)

# Rasa imports the channels (credentials.yml) before it serves anything, so
# every Rasa server that uses this guard calls the action server with a
# timeout that fits in the turn budget.
action_timeout.apply()

Handler = Callable[[UserMessage], Awaitable[Any]]


def apology() -> Text:
    return clinic_facts()["assistant_unavailable"]


class AssistantUnavailable(SanicException):
    """The turn could not run at all: 503 with the apology as the message."""

    status_code = 503
    quiet = True

    def __init__(self) -> None:
        super().__init__(apology())


class _HeldOutput(OutputChannel):
    """Holds the turn's replies until the turn has been saved, then passes
    them on in order: a visitor never gets an answer the conversation does
    not keep (a turn refused at saving: clinic/tracker_store.py)."""

    def __init__(self, inner: OutputChannel) -> None:
        self.inner = inner
        self.held: List[Tuple[Text, tuple, Dict[Text, Any]]] = []

    def name(self) -> Text:  # responses' channel variations (e.g. sms) follow the real channel
        return self.inner.name()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.held.append(("send_response", (recipient_id, message), {}))

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        self.held.append(("send_text_message", (recipient_id, text), kwargs))

    async def release(self) -> int:
        """Passes the held replies on; how many there were."""
        held, self.held = self.held, []
        for method, args, kwargs in held:
            await getattr(self.inner, method)(*args, **kwargs)
        return len(held)


def _turn_places() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _places:
        _places[loop] = asyncio.Semaphore(MAX_TURNS_IN_PROGRESS)
    return _places[loop]


class _Conversation:
    """One conversation's turn in this server: its messages wait here, in
    order of arrival, without a place. Forgotten when none is left."""

    def __init__(self, conversations: Dict[Text, "_Conversation"], sender_id: Text) -> None:
        self.conversations = conversations
        self.sender_id = sender_id
        self.lock = asyncio.Lock()
        self.messages = 0  # running or waiting

    def acquire(self) -> Awaitable[bool]:
        return self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    def leave(self) -> None:
        self.messages -= 1
        if self.messages == 0:
            del self.conversations[self.sender_id]


def _conversation(sender_id: Text) -> _Conversation:
    """The conversation's queue, joined by one more message (leave() when done)."""
    conversations = _conversations.setdefault(asyncio.get_running_loop(), {})
    conversation = conversations.get(sender_id)
    if conversation is None:
        conversation = conversations[sender_id] = _Conversation(conversations, sender_id)
    conversation.messages += 1
    return conversation


async def _take(resource: Any, seconds: float) -> bool:
    """Waits up to `seconds` to acquire the lock or semaphore; False when it
    did not come free in time. (Not asyncio.wait_for: on Python 3.10 it can
    drop an acquired place when its timeout fires at the same moment.)"""
    acquiring = asyncio.ensure_future(resource.acquire())
    try:
        await asyncio.wait({acquiring}, timeout=max(0.0, seconds))
    except BaseException:  # the visitor went away while waiting
        _give_up(acquiring, resource)
        raise
    if acquiring.done() and not acquiring.cancelled():
        return True
    _give_up(acquiring, resource)
    return False


def _give_up(acquiring: "asyncio.Future", resource: Any) -> None:
    if not acquiring.done():
        acquiring.cancel()  # Lock and Semaphore pass on what they were just giving
    elif not acquiring.cancelled():
        resource.release()


async def _start(sender_id: Text) -> Callable[[], None]:
    """Waits for the conversation's previous turn, then for a free place;
    returns what frees both. Raises AssistantUnavailable when they did not
    come within START_WAIT_SECONDS."""
    deadline = asyncio.get_running_loop().time() + START_WAIT_SECONDS
    conversation = _conversation(sender_id)
    places = _turn_places()
    try:
        if not await _take(conversation, START_WAIT_SECONDS):
            logger.error("a turn could not start within %.0f s: its conversation's turns were stuck", START_WAIT_SECONDS)
            raise AssistantUnavailable()
        try:
            placed = await _take(places, deadline - asyncio.get_running_loop().time())
        except BaseException:
            conversation.release()
            raise
        if not placed:
            conversation.release()
            logger.error("a turn could not start within %.0f s: the server is overloaded", START_WAIT_SECONDS)
            raise AssistantUnavailable()
    except BaseException:
        conversation.leave()
        raise

    def finish() -> None:
        places.release()
        conversation.release()
        conversation.leave()

    return finish


async def run_turn(on_new_message: Handler, message: UserMessage) -> None:
    """Runs the turn; the visitor's output channel has at least one reply afterwards.

    Raises AssistantUnavailable when the turn could not run at all.
    """
    finish = await _start(message.sender_id)
    output = message.output_channel
    held = _HeldOutput(output)
    message.output_channel = held
    # Rasa hides the tracker store's failures (clinic/tracker_store.py):
    # the store reports them here instead.
    storage_failures: list = []
    reporting = report_failures_to(storage_failures)
    try:
        # Shielded: a visitor who gives up (or a missed budget) must not
        # cancel a turn halfway, between the lock and saving the conversation.
        turn = asyncio.ensure_future(on_new_message(message))
    except BaseException:
        finish()
        raise
    finally:
        stop_reporting(reporting)
    # the place and the conversation are free again when the turn ends, also
    # when it outlives the budget
    turn.add_done_callback(lambda _: finish())
    turn.add_done_callback(_log_failure)
    try:
        await asyncio.wait_for(asyncio.shield(turn), TURN_BUDGET_SECONDS)
    except asyncio.TimeoutError:
        logger.warning("a turn took longer than %.1f s; it goes on in the background", TURN_BUDGET_SECONDS)
        # the apology now; the replies follow if the turn is saved (a
        # channel that can still deliver them, the website chat, does)
        turn.add_done_callback(lambda done: _release_if_saved(done, held, storage_failures))
        await output.send_text_message(message.sender_id, apology())
        return
    except asyncio.CancelledError:
        raise
    except Exception:
        raise AssistantUnavailable() from None
    if storage_failures:
        # Whatever was answered was not saved: the visitor should ask again.
        logger.error("a turn could not %s its conversation", " or ".join(sorted({what for what, _ in storage_failures})))
        raise AssistantUnavailable()
    if await held.release() == 0:
        await output.send_text_message(message.sender_id, apology())


def _release_if_saved(turn: "asyncio.Future", held: _HeldOutput, storage_failures: list) -> None:
    if not turn.cancelled() and turn.exception() is None and not storage_failures:
        asyncio.ensure_future(held.release())


def with_reply_guarantee(on_new_message: Handler) -> Handler:
    """Rasa's message handler, guarded; a turn that cannot run gets the
    apology as a message. The guarded handler returns whether the turn ran."""

    async def guarded(message: UserMessage) -> bool:
        output = message.output_channel
        try:
            await run_turn(on_new_message, message)
        except AssistantUnavailable:
            await output.send_text_message(message.sender_id, apology())
            return False
        return True

    return guarded


def _log_failure(turn: "asyncio.Future") -> None:
    if turn.cancelled():
        return
    error = turn.exception()
    if error is not None:
        # Neither the message nor a traceback (whose locals and SQL may
        # quote it): only what kind of failure it was.
        summary = (str(error).strip().splitlines() or [""])[0][:200]
        logger.error("a turn failed: %s: %s", type(error).__name__, summary)
