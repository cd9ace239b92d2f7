"""Rasa's SQL tracker store, plus erasing a conversation when the visitor asks.

A conversation cannot be erased from inside the action: Rasa saves the turn's
events after the action has run and would write them all back. So the action
(`action_erase_visitor_data`) only marks the turn, and this store, on saving
that turn, deletes every stored event of the sender instead.

The same class serves both profiles: SQLite by default, PostgreSQL
(`url: ${DATABASE_URL}`) in the scaled one, where its connections are
checked before use so a restarted database is reconnected to, not an error.

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
from contextvars import ContextVar, Token
from typing import Any, Generator, List, Optional, Text, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs, ensure_schema_exists
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

ERASE_ACTION = "action_erase_visitor_data"
ERASURE_FAILED_SLOT = "erasure_failed"

# What failed in the turn in progress: ("read" | "save", sender_id) pairs.
_failures: ContextVar[Optional[List[Tuple[Text, Text]]]] = ContextVar("tracker_store_failures", default=None)


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
            return await super().retrieve(sender_id)
        except Exception:
            _turn_failures().append(("read", sender_id))
            raise

    async def save(self, tracker: DialogueStateTracker) -> None:
        failures = _turn_failures()
        if ("read", tracker.sender_id) in failures:
            failures.append(("save", tracker.sender_id))
            raise ConversationUnreadable("not saving a conversation that could not be read")
        try:
            if erasure_requested(tracker):
                await self.delete(tracker.sender_id)
                return
            await super().save(tracker)
        except Exception:
            failures.append(("save", tracker.sender_id))
            raise

    async def delete(self, sender_id: Text) -> None:
        """Removes every event of the sender, across all sessions."""
        with self.session_scope() as session:
            session.query(self.SQLEvent).filter(
                self.SQLEvent.sender_id == sender_id
            ).delete(synchronize_session=False)
            session.commit()
