"""What the SMS channel keeps in the project database (clinic.store), so
that it holds across several Rasa servers: opt-outs, the reply given to each
MessageSid, every MessageSid ever received (so that none is answered twice),
and the per-number rate limit counted from those.

Replays. Twilio signs only the webhook URL and the POST parameters ("Secure
webhooks", https://www.twilio.com/docs/usage/webhooks/webhooks-security),
and an incoming message's parameters carry no time: nothing in a signed
request tells its age, and a copied one verifies for as long as the auth
token is unchanged. Twilio itself sends a MessageSid again only within
seconds: its retries (`rc`, at most 5) all fall within the total time `tt`,
at most 15,000 ms ("Webhooks (HTTP callbacks): Connection Overrides",
https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides),
then perhaps once to the fallback URL. So no age limit could be checked, and
none is needed: every MessageSid is kept for good in sms_message_sids, as a
SHA-256 beside the time it came (no number: "forget me" leaves it, and so
does the one-day prune of replies). A MessageSid seen before whose reply is
no longer kept is a replay, and is refused. It costs about 100 bytes a text.
"""

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Iterable, List, Optional, Tuple

import sqlalchemy as sa

from clinic import store
from clinic.store import sms_message_sids, sms_messages, sms_opt_outs

# What claim() found for a MessageSid.
NEW = "new"            # first time (or its server died): this request answers it
ANSWERED = "answered"  # a retry: here is the reply already given
PENDING = "pending"    # a retry while a live server is still answering it
REPLAYED = "replayed"  # seen before, its reply no longer kept: never answered again

# Replies are kept this long for retries (Twilio retries within seconds).
KEEP_REPLIES = timedelta(days=1)
_PRUNE_EVERY = 600.0
_last_prune = 0.0


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def sid_hash(message_sid: str) -> str:
    return hashlib.sha256(message_sid.encode("ascii")).hexdigest()


def claim(
    message_sid: str, sender_id: str, server_id: str, dead_after: float
) -> Tuple[str, Optional[List[str]]]:
    """Records a received text for this server to answer, unless its
    MessageSid was seen before. The unique MessageSid makes exactly one
    request (on any server) answer it at a time."""
    _prune_now_and_then()
    for _ in range(2):
        received = store.now()
        try:
            with store.engine().begin() as connection:
                connection.execute(
                    sms_message_sids.insert().values(
                        message_sid_hash=sid_hash(message_sid), received_at=received,
                        answered_by=server_id, alive_at=received,
                    )
                )
                connection.execute(
                    sms_messages.insert().values(
                        message_sid=message_sid, sender_id=sender_id, received_at=received
                    )
                )
            return NEW, None
        except sa.exc.IntegrityError:
            pass
        status, reply = recheck(message_sid, server_id, dead_after)
        if status is not None:
            return status, reply
    return PENDING, None


def recheck(message_sid: str, server_id: str, dead_after: float) -> Tuple[Optional[str], Optional[List[str]]]:
    """What became of a MessageSid received before: its reply, still being
    answered, a replay, or taken over by this server when the one answering
    it stopped renewing its claim (it died). None: neither row is there
    (a claim given up in between), so it may be claimed afresh."""
    current = store.now()
    digest = sid_hash(message_sid)
    with store.engine().begin() as connection:
        row = connection.execute(
            sa.select(sms_messages.c.reply, sms_messages.c.received_at).where(
                sms_messages.c.message_sid == message_sid
            )
        ).first()
        seen = connection.execute(
            sa.select(sms_message_sids.c.answered_by, sms_message_sids.c.alive_at).where(
                sms_message_sids.c.message_sid_hash == digest
            )
        ).first()
        alive = seen is not None and seen.answered_by is not None and seen.alive_at is not None and (
            _utc(seen.alive_at) >= current - timedelta(seconds=dead_after)
        )
        if row is None:
            if seen is None:
                return None, None
            # Erased ("forget me", maybe by the turn still running) or pruned.
            return (PENDING if alive else REPLAYED), None
        if row.reply is not None:
            return ANSWERED, json.loads(row.reply)
        if seen is None:  # received before MessageSids were kept apart
            connection.execute(
                sms_message_sids.insert().values(
                    message_sid_hash=digest, received_at=row.received_at, alive_at=row.received_at
                )
            )
            seen = connection.execute(
                sa.select(sms_message_sids.c.answered_by, sms_message_sids.c.alive_at).where(
                    sms_message_sids.c.message_sid_hash == digest
                )
            ).first()
            alive = _utc(seen.alive_at) >= current - timedelta(seconds=dead_after)
        if alive:
            return PENDING, None
        taken = connection.execute(
            sms_message_sids.update()
            .where(sms_message_sids.c.message_sid_hash == digest)
            .where(_same(sms_message_sids.c.answered_by, seen.answered_by))
            .where(_same(sms_message_sids.c.alive_at, seen.alive_at))
            .values(answered_by=server_id, alive_at=current)
        ).rowcount
        return (NEW if taken else PENDING), None


def _same(column: sa.Column, value) -> sa.sql.ColumnElement:
    return column.is_(None) if value is None else column == value


def still_answering(message_sids: Iterable[str], server_id: str) -> None:
    """Renews this server's claims: the sign that it is alive."""
    digests = [sid_hash(sid) for sid in message_sids]
    if not digests:
        return
    with store.engine().begin() as connection:
        connection.execute(
            sms_message_sids.update()
            .where(sms_message_sids.c.message_sid_hash.in_(digests))
            .where(sms_message_sids.c.answered_by == server_id)
            .values(alive_at=store.now())
        )


def save_reply(message_sid: str, kind: str, texts: List[str]) -> None:
    """Keeps the reply for retries (the first one given, should a server
    that was thought dead answer too). A reply whose row "forget me" erased
    during the turn is not kept."""
    with store.engine().begin() as connection:
        connection.execute(
            sms_messages.update()
            .where(sms_messages.c.message_sid == message_sid)
            .where(sms_messages.c.reply.is_(None))
            .values(kind=kind, reply=json.dumps(texts))
        )
        connection.execute(
            sms_message_sids.update()
            .where(sms_message_sids.c.message_sid_hash == sid_hash(message_sid))
            .values(answered_by=None)
        )


def release(message_sid: str, server_id: str) -> None:
    """Forgets this server's unanswered claim (the answer failed), so a
    retry runs the turn again."""
    with store.engine().begin() as connection:
        given_up = connection.execute(
            sms_message_sids.delete()
            .where(sms_message_sids.c.message_sid_hash == sid_hash(message_sid))
            .where(sms_message_sids.c.answered_by == server_id)
        ).rowcount
        if given_up:
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
    """Drops replies older than KEEP_REPLIES, at most every few minutes (the
    MessageSids themselves are kept: see the module's docstring)."""
    global _last_prune
    if time.monotonic() - _last_prune < _PRUNE_EVERY:
        return
    _last_prune = time.monotonic()
    with store.engine().begin() as connection:
        connection.execute(
            sms_messages.delete().where(sms_messages.c.received_at < store.now() - KEEP_REPLIES)
        )
