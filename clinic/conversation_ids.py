"""Conversation ids that the server issues, so that an id works as a key only
for the channel it was issued to.

A website or REST conversation id is the key to that conversation: whoever
presents it reads its history, votes on its answers, continues or erases it.
So clients never choose one. The server issues `<channel>-<32 hex random
digits><16 hex digits of HMAC-SHA256>`: 128 random bits, and a MAC (keyed
with CONVERSATION_ID_SECRET) over the channel and the random part, which
makes an id of one channel worthless on another and a made-up id (a phone
number, "visitor-1") recognisable as not issued, without a database lookup.
SMS conversations keep the phone number as their id; no web or REST client
can present one, since it never carries a valid MAC.

CONVERSATION_ID_SECRET must be the same on every Rasa server, and kept as
private as the API token: with it, anyone could mint ids. `scripts/serve.py`
generates one into var/ when it is not set.
"""

import hashlib
import hmac
import os
import re
import secrets
from functools import lru_cache
from typing import Any

SECRET_VARIABLE = "CONVERSATION_ID_SECRET"
# The channels that issue their own ids: the website chat (Socket.IO, its
# history and feedback endpoints) and the REST webhook.
WEB = "web"
REST = "rest"
CHANNELS = (WEB, REST)
RANDOM_HEX = 32  # 128 bits
MAC_HEX = 16  # 64 bits: forging one takes ~2^63 tries, each a request
_SHAPE = re.compile(r"^(?P<channel>[a-z]+)-(?P<random>[0-9a-f]{%d})(?P<mac>[0-9a-f]{%d})$" % (RANDOM_HEX, MAC_HEX))
# Shorter secrets are refused: the MAC is only as strong as its key.
MIN_SECRET_CHARS = 32


class MissingSecret(RuntimeError):
    """CONVERSATION_ID_SECRET is not set (or too short) in this process."""


@lru_cache(maxsize=1)
def _key() -> bytes:
    secret = os.environ.get(SECRET_VARIABLE, "")
    if len(secret) < MIN_SECRET_CHARS:
        raise MissingSecret(
            f"{SECRET_VARIABLE} must be set to a secret of at least {MIN_SECRET_CHARS} characters, "
            "the same on every Rasa server (scripts/serve.py generates one into var/)"
        )
    return secret.encode("utf-8")


def _mac(channel: str, random_part: str) -> str:
    digest = hmac.new(_key(), f"{channel}:{random_part}".encode("ascii"), hashlib.sha256)
    return digest.hexdigest()[:MAC_HEX]


def issue(channel: str) -> str:
    """A new conversation id for `channel` (one of CHANNELS)."""
    if channel not in CHANNELS:
        raise ValueError(f"no conversation ids are issued for channel {channel!r}")
    random_part = secrets.token_hex(RANDOM_HEX // 2)
    return f"{channel}-{random_part}{_mac(channel, random_part)}"


def is_issued(conversation_id: Any, channel: str) -> bool:
    """Whether this server issued `conversation_id` to `channel`. Never raises
    for what a client sends (any type, any text)."""
    if not isinstance(conversation_id, str):
        return False
    match = _SHAPE.match(conversation_id)
    if not match or match.group("channel") != channel or channel not in CHANNELS:
        return False
    return hmac.compare_digest(match.group("mac"), _mac(channel, match.group("random")))


def check_configured() -> None:
    """Raises MissingSecret now rather than on the first visitor's message."""
    _key()


def reset() -> None:
    """Forgets the cached key (tests change the environment)."""
    _key.cache_clear()
