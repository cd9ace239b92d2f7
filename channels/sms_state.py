"""What the SMS channel keeps in the project database (clinic.store), so
that it holds across several Rasa servers: opt-outs, the reply given to each
MessageSid, and the per-number rate limit counted from those."""

import json
import time
from datetime import datetime, timedelta, timezone
from typing import List, Optional, Tuple

import sqlalchemy as sa

from clinic import store
from clinic.store import sms_messages, sms_opt_outs

# What claim() found for a MessageSid.
NEW = "new"            # first time: this request answers it
ANSWERED = "answered"  # a retry: here is the reply already given
PENDING = "pending"    # a retry while another request is still answering it

# Replies are kept this long for retries (Twilio retries within minutes).
KEEP_REPLIES = timedelta(days=1)
_PRUNE_EVERY = 600.0
_last_prune = 0.0


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def claim(message_sid: str, sender_id: str, stale_after: float) -> Tuple[str, Optional[List[str]]]:
    """Records a received text, unless its MessageSid was seen before. The
    unique MessageSid makes exactly one request (on any server) answer it;
    a claim left unanswered for `stale_after` seconds (its server died) may
    be taken over."""
    _prune_now_and_then()
    received = store.now()
    for _ in range(2):
        try:
            with store.engine().begin() as connection:
                connection.execute(
                    sms_messages.insert().values(
                        message_sid=message_sid, sender_id=sender_id, received_at=received
                    )
                )
            return NEW, None
        except sa.exc.IntegrityError:
            pass
        with store.engine().begin() as connection:
            row = connection.execute(
                sa.select(sms_messages.c.reply, sms_messages.c.received_at).where(
                    sms_messages.c.message_sid == message_sid
                )
            ).first()
            if row is None:  # erased in between ("forget me"): insert again
                continue
            if row.reply is not None:
                return ANSWERED, json.loads(row.reply)
            if _utc(row.received_at) < received - timedelta(seconds=stale_after):
                taken = connection.execute(
                    sms_messages.update()
                    .where(sms_messages.c.message_sid == message_sid)
                    .where(sms_messages.c.reply.is_(None))
                    .where(sms_messages.c.received_at == row.received_at)
                    .values(received_at=received)
                ).rowcount
                if taken:
                    return NEW, None
            return PENDING, None
    return PENDING, None


def reply_for(message_sid: str) -> Optional[List[str]]:
    with store.engine().connect() as connection:
        reply = connection.execute(
            sa.select(sms_messages.c.reply).where(sms_messages.c.message_sid == message_sid)
        ).scalar()
    return None if reply is None else json.loads(reply)


def save_reply(message_sid: str, kind: str, texts: List[str]) -> None:
    with store.engine().begin() as connection:
        connection.execute(
            sms_messages.update()
            .where(sms_messages.c.message_sid == message_sid)
            .values(kind=kind, reply=json.dumps(texts))
        )


def release(message_sid: str) -> None:
    """Forgets an unanswered claim (the answer failed), so a retry runs again."""
    with store.engine().begin() as connection:
        connection.execute(
            sms_messages.delete()
            .where(sms_messages.c.message_sid == message_sid)
            .where(sms_messages.c.reply.is_(None))
        )


RATE_OK, RATE_NOTICE, RATE_QUIET = "ok", "rate_notice", "rate_quiet"


def rate_verdict(sender_id: str, message_sid: str, limit: int, window: float) -> str:
    """Whether a number may get an answer: ok while it sent at most `limit`
    texts in the last `window` seconds (this one included); past that, one
    polite notice per window, then nothing."""
    since = store.now() - timedelta(seconds=window)
    recent = sa.and_(sms_messages.c.sender_id == sender_id, sms_messages.c.received_at >= since)
    with store.engine().begin() as connection:
        count = connection.execute(
            sa.select(sa.func.count()).select_from(sms_messages).where(recent)
        ).scalar()
        if count <= limit:
            return RATE_OK
        noticed = connection.execute(
            sa.select(sa.func.count()).select_from(sms_messages)
            .where(recent).where(sms_messages.c.kind == RATE_NOTICE)
        ).scalar()
        verdict = RATE_QUIET if noticed else RATE_NOTICE
        # Marked at once, so a concurrent text sees the notice as given.
        connection.execute(
            sms_messages.update().where(sms_messages.c.message_sid == message_sid).values(kind=verdict)
        )
    return verdict


def is_opted_out(sender_id: str) -> bool:
    with store.engine().connect() as connection:
        return connection.execute(
            sa.select(sms_opt_outs.c.id).where(sms_opt_outs.c.sender_id == sender_id)
        ).first() is not None


def opt_out(sender_id: str) -> None:
    try:
        with store.engine().begin() as connection:
            connection.execute(sms_opt_outs.insert().values(sender_id=sender_id, created_at=store.now()))
    except sa.exc.IntegrityError:
        pass  # already opted out


def opt_in(sender_id: str) -> None:
    with store.engine().begin() as connection:
        connection.execute(sms_opt_outs.delete().where(sms_opt_outs.c.sender_id == sender_id))


def _prune_now_and_then() -> None:
    """Drops replies older than KEEP_REPLIES, at most every few minutes."""
    global _last_prune
    if time.monotonic() - _last_prune < _PRUNE_EVERY:
        return
    _last_prune = time.monotonic()
    with store.engine().begin() as connection:
        connection.execute(
            sms_messages.delete().where(sms_messages.c.received_at < store.now() - KEEP_REPLIES)
        )
