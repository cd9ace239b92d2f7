"""Rasa's SQL tracker store, plus erasing a conversation when the visitor asks.

A conversation cannot be erased from inside the action: Rasa saves the turn's
events after the action has run and would write them all back. So the action
(`action_erase_visitor_data`) only marks the turn, and this store, on saving
that turn, deletes every stored event of the sender instead.

The same class serves both profiles: SQLite by default, PostgreSQL
(`url: ${DATABASE_URL}`) in the scaled one, where its connections are
checked before use so a restarted database is reconnected to, not an error.

A long conversation continues in a new Rasa session every TURNS_PER_SESSION
visitor messages, carrying over every slot's value (and an active form):
Rasa reads only the latest session for a turn (`retrieve`), and a turn's
work (reading and replaying the events, the policies' featurizing, the
tracker sent to the action server, saving) grew with all of it: 300 turns
into one conversation a turn took 518 ms at p95 instead of 42 ms (the
issue; `make bench` measures it). The new session starts just before the
visitor's message, so it always holds the previous turn (its buttons, what
the rules look back on) and Rasa's own expiry (session_expiration_time,
counted from the last visitor message, slots not carried over) is
unchanged. Every event stays stored in order: the full tracker (Rasa's
HTTP API, the chat page's history) is the whole conversation. What the
actions look for in the events rather than in slots (the booking offer,
made once: actions/answers.py) is then once per session, as after Rasa's
own session expiry.

While the database is down, Rasa's agent (which wraps every tracker store in
its FailSafeTrackerStore) would swallow the errors: a conversation it cannot
read is treated as a new one, and a turn it cannot save is kept in that
server's memory only, so the visitor is answered and the turn is lost. This
store therefore reports every failure to the turn in progress (see
`report_failures_to`; channels/turn_guard.py then answers 503), and never
saves a conversation it could not read, which would overwrite or garble the
stored one once the database is back.
"""

import contextlib
import itertools
import json
import logging
from contextvars import ContextVar, Token
from typing import Any, Dict, Generator, List, Optional, Sequence, Text, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs, ensure_schema_exists
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from clinic.lock_store import lease_lapsed

logger = logging.getLogger(__name__)

ERASE_ACTION = "action_erase_visitor_data"
ERASURE_FAILED_SLOT = "erasure_failed"
# Visitor messages per session. A turn's time grows with the session's
# events; ten turns (the first ten, 42 ms at p95) bound it to what
# a new conversation costs. A session that ends here is no shorter, for the
# dialogue, than the previous turn it always keeps.
TURNS_PER_SESSION = 10

# What failed in the turn in progress: ("read" | "save", sender_id) pairs.
_failures: ContextVar[Optional[List[Tuple[Text, Text]]]] = ContextVar("tracker_store_failures", default=None)


# The newest stored event id of each conversation this turn read (None:
# nothing stored yet), to tell at saving whether another server saved since.
_read_marks: ContextVar[Optional[Dict[Text, Optional[int]]]] = ContextVar("tracker_store_read_marks", default=None)


def report_failures_to(failures: List[Tuple[Text, Text]]) -> Token:
    """From now on in this context (and the tasks started from it: the turn),
    storage failures are appended to `failures`. Returns the token to reset with."""
    return _failures.set(failures)


def stop_reporting(token: Token) -> None:
    _failures.reset(token)


def _turn_failures() -> List[Tuple[Text, Text]]:
    failures = _failures.get()
    if failures is None:
        # A turn not started by channels/turn_guard.py (e.g. through Rasa's
        # HTTP API): its request's task keeps its own list.
        failures = []
        _failures.set(failures)
    return failures


class ConversationUnreadable(Exception):
    """Saving refused: the stored conversation could not be read this turn."""


class TurnSuperseded(Exception):
    """Saving refused: this turn's lock lapsed, or another server saved the
    conversation after this turn read it."""


def erasure_outcome(tracker: DialogueStateTracker) -> Optional[bool]:
    """True when the erase action ran in the latest turn and reported success,
    False when it reported failure or did not report at all (the action server
    could not be reached: Rasa still logs the action, without its events),
    None when it did not run in the latest turn."""
    reported = None
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return None
        if isinstance(event, SlotSet) and event.key == ERASURE_FAILED_SLOT and reported is None:
            reported = event.value
        if isinstance(event, ActionExecuted) and event.action_name == ERASE_ACTION:
            return reported is False
    return None


def erasure_requested(tracker: DialogueStateTracker) -> bool:
    """Whether the erase action ran, and erased the visitor's records, in the latest turn."""
    return erasure_outcome(tracker) is True


def _resilient_engine(url: Any) -> sa.engine.Engine:
    """Rasa's engine settings, plus: connections checked before use, quick
    failures while the database is down, and no SQL parameters (visitors'
    words) in error messages."""
    settings = dict(create_engine_kwargs(url), pool_pre_ping=True, hide_parameters=True)
    if sa.engine.url.make_url(url).get_backend_name() == "postgresql":
        settings["pool_timeout"] = 5
        connect_args = dict(settings.get("connect_args") or {})
        connect_args.setdefault("connect_timeout", 3)
        settings["connect_args"] = connect_args
    return sa.create_engine(url, **settings)


def _user_turns_in_session(events: Sequence[Event]) -> int:
    """Visitor messages in the latest session of `events`."""
    turns = 0
    for event in reversed(events):
        if isinstance(event, SessionStarted):
            break
        turns += isinstance(event, UserUttered)
    return turns


def continued_session(tracker: DialogueStateTracker, stored: int, new_events: Sequence[Event]) -> List[Event]:
    """The events that start a new session before this turn's `new_events`,
    when the tracker's latest session (its first `stored` events) already
    holds TURNS_PER_SESSION visitor messages; otherwise none.

    The same events as Rasa's action_session_start, with the slots as they
    were before this turn (every one not at its initial value) and the
    active form carried over, all timed at the visitor's message."""
    if not new_events or not isinstance(new_events[0], UserUttered) or stored == 0:
        return []  # not a visitor's turn (an API call), or a new conversation
    if any(isinstance(event, SessionStarted) for event in new_events):
        return []  # Rasa has just started one itself (the last one expired)
    before = list(itertools.islice(tracker.events, 0, stored))
    if _user_turns_in_session(before) < TURNS_PER_SESSION:
        return []
    # the slots before this turn: its own events set theirs again after these
    state = DialogueStateTracker.from_events(tracker.sender_id, before, list(tracker.slots.values()))
    at = new_events[0].timestamp
    events: List[Event] = [
        # in the previous session, as Rasa's own is (retrieve reads from the SessionStarted)
        ActionExecuted(ACTION_SESSION_START_NAME, timestamp=before[-1].timestamp),
        SessionStarted(timestamp=at),
    ]
    events += [
        SlotSet(slot.name, slot.value, timestamp=at)
        for slot in state.slots.values()
        if slot.value != slot.initial_value
    ]
    if state.active_loop_name:
        events.append(ActiveLoop(state.active_loop_name, timestamp=at))
    events.append(ActionExecuted(ACTION_LISTEN_NAME, timestamp=at))
    for event in events:  # what DialogueStateTracker.update adds to every event
        event.metadata = {
            **event.metadata,
            **({"model_id": tracker.model_id} if tracker.model_id else {}),
            **({"assistant_id": tracker.assistant_id} if tracker.assistant_id else {}),
        }
    return events


class ErasableSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        self.engine = _resilient_engine(url)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    @contextlib.contextmanager
    def session_scope(self) -> Generator[sa.orm.Session, None, None]:
        """Rasa's, without its exit: Rasa takes any ValueError raised while a
        session is open for a missing PostgreSQL schema and ends the whole
        server (sys.exit), and a text that cannot be encoded (a lone
        surrogate: UnicodeEncodeError is a ValueError) raised one. Here any
        error is that one turn's failure; a missing schema still raises,
        naming the schema, for every turn that needs it."""
        session = self.sessionmaker()
        try:
            ensure_schema_exists(session)
            yield session
        finally:
            session.close()

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        try:
            tracker = await super().retrieve(sender_id)
            if _read_marks.get() is None:
                _read_marks.set({})
            with self.session_scope() as session:
                _read_marks.get()[sender_id] = self._newest_id(session, sender_id)
            return tracker
        except Exception:
            _turn_failures().append(("read", sender_id))
            raise

    def _newest_id(self, session: sa.orm.Session, sender_id: Text) -> Optional[int]:
        return session.query(sa.func.max(self.SQLEvent.id)).filter(self.SQLEvent.sender_id == sender_id).scalar()

    async def save(self, tracker: DialogueStateTracker) -> None:
        failures = _turn_failures()
        if ("read", tracker.sender_id) in failures:
            failures.append(("save", tracker.sender_id))
            raise ConversationUnreadable("not saving a conversation that could not be read")
        try:
            if erasure_requested(tracker):
                await self.delete(tracker.sender_id)
                return
            await self._save_continuing_sessions(tracker)
        except Exception:
            failures.append(("save", tracker.sender_id))
            raise

    async def _save_continuing_sessions(self, tracker: DialogueStateTracker) -> None:
        """Rasa's save (the events not stored yet, found as Rasa finds them),
        with a new session started before them when the latest is long;
        refused (TurnSuperseded) when the turn's lock lapsed or another
        server saved the conversation after this turn read it."""
        if await lease_lapsed():
            logger.warning("a turn was not saved: its conversation lock lapsed before it finished")
            raise TurnSuperseded("the conversation lock lapsed")
        marks = _read_marks.get() or {}
        with self.session_scope() as session:
            if tracker.sender_id in marks and self._newest_id(session, tracker.sender_id) != marks[tracker.sender_id]:
                logger.warning("a turn was not saved: another server saved its conversation after this turn read it")
                raise TurnSuperseded("the conversation changed since this turn read it")
            new_events = list(self._additional_events(session, tracker))
            stored = len(tracker.events) - len(new_events)
            rows = [self._row(tracker.sender_id, event) for event in continued_session(tracker, stored, new_events) + new_events]
            session.add_all(rows)
            session.commit()
            if rows and tracker.sender_id in marks:
                marks[tracker.sender_id] = max(row.id for row in rows)
        await self.stream_events(tracker)

    def _event_query(self, session: sa.orm.Session, sender_id: Text, fetch_events_from_all_sessions: bool) -> Any:
        """Rasa's query for a conversation's events, with its latest session
        found by row id instead of timestamp. Rasa takes the session's events
        to be those timed at or after its latest SessionStarted; an event is
        timed by the clock of the server that wrote it, so with servers whose
        clocks differ a turn saved by a server running behind the one that
        started the session was left out (and with it, say, the slot that
        the disclaimer was shown). Row ids are given by the database, in the
        order the turns were saved (one at a time per conversation: the lock
        store), whatever the servers' clocks say."""
        query = session.query(self.SQLEvent).filter(self.SQLEvent.sender_id == sender_id)
        if not fetch_events_from_all_sessions:
            latest_start = (
                session.query(sa.func.max(self.SQLEvent.id))
                .filter(self.SQLEvent.sender_id == sender_id, self.SQLEvent.type_name == SessionStarted.type_name)
                .scalar_subquery()
            )
            query = query.filter(sa.or_(latest_start.is_(None), self.SQLEvent.id >= latest_start))
        return query.order_by(self.SQLEvent.id)

    def _row(self, sender_id: Text, event: Event) -> "SQLTrackerStore.SQLEvent":
        """An event as Rasa's save stores it."""
        data = event.as_dict()
        return self.SQLEvent(
            sender_id=sender_id,
            type_name=event.type_name,
            timestamp=data.get("timestamp"),
            intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            action_name=data.get("name"),
            data=json.dumps(data),
        )

    async def delete(self, sender_id: Text) -> None:
        """Removes every event of the sender, across all sessions."""
        with self.session_scope() as session:
            session.query(self.SQLEvent).filter(
                self.SQLEvent.sender_id == sender_id
            ).delete(synchronize_session=False)
            session.commit()
