"""The project's own database: what staff review, and what the SMS channel keeps.

One database setting for every process: DATABASE_URL (any SQLAlchemy URL;
PostgreSQL in the scaled profile), or a SQLite file under var/ by default so
the default profile needs no service. Tables are created on first use.
"""

import asyncio
import concurrent.futures
import json
import os
import threading
from datetime import datetime, timezone
from typing import Any, Awaitable, Dict, Iterable, List, Optional, TypeVar

import sqlalchemy as sa

from clinic import PROJECT_ROOT

T = TypeVar("T")

DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'clinic.db'}"

metadata = sa.MetaData()

# Messages the assistant could not answer confidently, and questions the
# clinic's posts do not answer: the staff inbox.
fallbacks = sa.Table(
    "fallbacks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("channel", sa.String(64)),
    sa.Column("text", sa.Text, nullable=False),
    # low_confidence | unknown_topic
    sa.Column("kind", sa.String(32), nullable=False),
    # top intents and answers with their confidences, as JSON
    sa.Column("predictions", sa.Text),
    # new | taught | out_of_scope | dismissed
    sa.Column("status", sa.String(32), nullable=False, default="new"),
)

# Visitors' helpful / not helpful votes on answers.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("channel", sa.String(64)),
    sa.Column("question", sa.Text),
    sa.Column("answer", sa.Text),
    sa.Column("helpful", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(32), nullable=False, default="new"),
)

# SMS: numbers that texted STOP (sender_id is the number), until they text START.
sms_opt_outs = sa.Table(
    "sms_opt_outs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# SMS: every text received, by Twilio's MessageSid, with the reply it got
# (NULL while it is being answered): a retried webhook gets the same reply,
# and the per-number rate limit counts these rows.
sms_messages = sa.Table(
    "sms_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_sid", sa.String(64), nullable=False, unique=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    # conversation | help | stop | start | opted_out | rate_notice | rate_quiet | ...
    sa.Column("kind", sa.String(32)),
    # the reply's messages as a JSON list of texts
    sa.Column("reply", sa.Text),
)

# SMS: every MessageSid ever received, kept for good so that a replayed
# request is refused (channels/sms_state.py says why). No sender_id: "forget
# me" leaves these, and a SHA-256 of Twilio's id leads back to no one.
sms_message_sids = sa.Table(
    "sms_message_sids",
    metadata,
    sa.Column("message_sid_hash", sa.String(64), primary_key=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    # while a text is being answered: which server answers it, and when that
    # server last renewed its claim (a retry takes over from a dead one)
    sa.Column("answered_by", sa.String(64)),
    sa.Column("alive_at", sa.DateTime(timezone=True)),
)

# Staff console (staff/): accounts, sign-in sessions, what staff changed, and
# which model was put live when. No sender_id column: "forget me" erases the
# visitor's rows above, and a staff member's audit trail is not the visitor's.
staff_accounts = sa.Table(
    "staff_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    # "scrypt$n$r$p$salt$hash" (staff/passwords.py), never the password
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
)

staff_sessions = sa.Table(
    "staff_sessions",
    metadata,
    # SHA-256 of the session cookie: a copy of the database signs no one in
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

staff_audit = sa.Table(
    "staff_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    # sign_in | add_phrasing | new_answer | edit_answer | set_status | retrain | publish | rollback ...
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(255)),
    # what changed, as JSON (before/after, file, gate result)
    sa.Column("detail", sa.Text),
)

# Every model put live (rollbacks too); the newest row is the live one.
published_models = sa.Table(
    "published_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("published_by", sa.String(64), nullable=False),
    sa.Column("model_id", sa.String(64), nullable=False),
    sa.Column("model_path", sa.Text, nullable=False),
    sa.Column("candidate", sa.String(64)),
    # publish | rollback | running (the model found live before the first publish)
    sa.Column("kind", sa.String(16), nullable=False),
    # the row that was live before this one: where a rollback goes back to
    sa.Column("previous_id", sa.Integer),
)

_engine: Optional[sa.engine.Engine] = None
_engine_lock = threading.Lock()


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def engine() -> sa.engine.Engine:
    """The process's engine, created (with its tables) on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _create_engine(database_url())
            metadata.create_all(_engine)
    return _engine


def _create_engine(url: str) -> sa.engine.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        created = sa.create_engine(url, connect_args={"timeout": 10})

        @sa.event.listens_for(created, "connect")
        def _wal(connection, _record):  # readers never block the writer
            connection.execute("PRAGMA journal_mode=WAL")

        return created
    # pre_ping: a restarted PostgreSQL is reconnected to, not an error forever.
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        connect_args={"connect_timeout": 3},
    )


def reset_engine() -> None:
    """Forgets the engine (tests switch DATABASE_URL between cases)."""
    global _engine
    with _engine_lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None


def now() -> datetime:
    return datetime.now(timezone.utc)


def _add_for_review(table: sa.Table, **values: Any) -> None:
    """One row in a table staff review (status "new"), stamped now."""
    with engine().begin() as connection:
        connection.execute(table.insert().values(created_at=now(), status="new", **values))


def record_fallback(
    sender_id: str,
    channel: Optional[str],
    text: str,
    kind: str,
    predictions: Iterable[Dict[str, Any]],
) -> None:
    _add_for_review(
        fallbacks, sender_id=sender_id, channel=channel, text=text, kind=kind,
        predictions=json.dumps(list(predictions)),
    )


def record_feedback(
    sender_id: str,
    channel: Optional[str],
    question: Optional[str],
    answer: Optional[str],
    helpful: bool,
) -> None:
    _add_for_review(feedback, sender_id=sender_id, channel=channel, question=question, answer=answer, helpful=helpful)


def erase_sender(sender_id: str) -> int:
    """Deletes every row about a sender from every project table."""
    deleted = 0
    with engine().begin() as connection:
        for table in metadata.sorted_tables:
            if "sender_id" in table.c:
                deleted += connection.execute(
                    table.delete().where(table.c.sender_id == sender_id)
                ).rowcount
    return deleted


def rows(table: sa.Table, **where: Any) -> List[Dict[str, Any]]:
    query = table.select().order_by(table.c.id)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine().connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


async def run_blocking(function, *args, **kwargs):
    """Runs a database call off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: function(*args, **kwargs)
    )


def run_to_completion(coroutine: Awaitable[T]) -> T:
    """Runs a coroutine (Rasa's tracker stores are async) from synchronous
    code: asyncio.run, on a thread of its own when this thread already runs
    an event loop (asyncio.run refuses to nest: Sanic, Playwright's sync API)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()

