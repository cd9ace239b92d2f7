"""Per-visitor and per-address limits on the chat channels (REST and the
website chat's Socket.IO): a conversation, or a client address, sending far
more than a person would gets the polite `too_many_messages` of
data/clinic.yml (a 429 on REST) instead of a turn. The SMS channel has its
own per-number limit (channels/sms.py).

Each of the two has two limits, from the environment (read once):

- at most RATE_LIMIT messages per RATE_WINDOW seconds (a sliding window);
- at most AT_ONCE messages being answered or waiting at once, so a burst is
  refused at once instead of queueing (channels/turn_guard.py queues a
  conversation's messages behind each other).

| per | variables | default |
|---|---|---|
| visitor (conversation id) | VISITOR_RATE_LIMIT, VISITOR_RATE_WINDOW, VISITOR_AT_ONCE | 60 per 60 s, 3 at once |
| client address | ADDRESS_RATE_LIMIT, ADDRESS_RATE_WINDOW, ADDRESS_AT_ONCE | 120 per 60 s, 8 at once |

Where the defaults come from: an answer is at most 600 characters (about
100 words, clinic/quality.py), which takes an adult about 25 s to read at
the average 238 words a minute (Brysbaert 2019, "How many words do we read
per minute?"), so a visitor reading the answers sends two or three messages
a minute; a message a second leaves room for quick replies tapped without
reading. The chat page waits for each answer; three at once leaves room for
a tap while the answer is on its way. An address can be shared (an office,
a phone network's shared address), hence twice a visitor's rate; eight at
once is twice MAX_TURNS_IN_PROGRESS's default, so one address can never
hold every place and the queue behind them too. A refused message does not
count: a visitor who waits as asked goes on normally.

The client address is the connection's peer. Behind a reverse proxy it is
the proxy's, shared by every visitor, unless Sanic is told about the proxy
with its own settings (SANIC_PROXIES_COUNT, SANIC_REAL_IP_HEADER or
SANIC_FORWARDED_SECRET); then it is the address the proxy forwarded. An
X-Forwarded-For header is never believed otherwise: anyone can send one.
Addresses in LIMITS_EXEMPT_ADDRESSES (default: loopback, this machine: the
tests, the benchmark and the staff console, which all share it) are not
limited per address; conversations are limited wherever they come from.

Counts live in each server's memory only: nothing about a visitor is
stored, they are gone on a restart, and behind round robin each of several
servers counts its own share.
"""

import ipaddress
import logging
import math
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Deque, Dict, Mapping, Optional, Text, Tuple

from sanic.request import Request

from channels.settings import whole_number
from clinic.facts import clinic_facts

logger = logging.getLogger(__name__)

DEFAULT_EXEMPT = "127.0.0.1 ::1"
# Beyond this many visitors or addresses counted at once, the least recently
# seen is forgotten: memory stays bounded whatever ids a client makes up.
MAX_KEYS = 100_000
# A proxy that is not configured is reported at most once per this many seconds.
PROXY_WARNING_SECONDS = 300.0
_FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def too_many_messages() -> Text:
    return clinic_facts()["too_many_messages"]


@dataclass(frozen=True)
class Limit:
    rate: int
    window: int
    at_once: int


def _whole_number(env: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    try:
        return whole_number(env, name, default, maximum)
    except ValueError as error:  # a bad setting stops the server at start
        raise SystemExit(str(error))


def _limit(env: Mapping[str, str], prefix: str, rate: int, window: int, at_once: int) -> Limit:
    return Limit(
        _whole_number(env, f"{prefix}_RATE_LIMIT", rate, 1_000_000),
        _whole_number(env, f"{prefix}_RATE_WINDOW", window, 24 * 3600),
        _whole_number(env, f"{prefix}_AT_ONCE", at_once, 10_000),
    )


def _network(text: str) -> "ipaddress._BaseNetwork":
    try:
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        raise SystemExit(f"LIMITS_EXEMPT_ADDRESSES: {text!r} is not an IP address or network")


@dataclass(frozen=True)
class LimitSettings:
    visitor: Limit
    address: Limit
    exempt: Tuple["ipaddress._BaseNetwork", ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "LimitSettings":
        exempt = env.get("LIMITS_EXEMPT_ADDRESSES", DEFAULT_EXEMPT)
        return cls(
            visitor=_limit(env, "VISITOR", 60, 60, 3),
            address=_limit(env, "ADDRESS", 120, 60, 8),
            exempt=tuple(_network(text) for text in exempt.replace(",", " ").split()),
        )


class TooManyMessages(Exception):
    """The message is refused; the visitor may send again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many messages")
        self.retry_after = max(1, math.ceil(retry_after))


class _Counts:
    """Messages per key in the last window, and messages in progress."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        # least recently seen first
        self.recent: "OrderedDict[Text, Deque[float]]" = OrderedDict()
        self.in_progress: Dict[Text, int] = {}

    def wait_needed(self, key: Text, now: float) -> float:
        """Seconds until the key may send again; 0 when it may now."""
        if self.in_progress.get(key, 0) >= self.limit.at_once:
            return 1.0
        times = self.recent.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.limit.window:
            times.popleft()
        if len(times) >= self.limit.rate:
            return times[0] + self.limit.window - now
        return 0.0

    def take(self, key: Text, now: float) -> None:
        times = self.recent.pop(key, None) or deque()
        times.append(now)
        self.recent[key] = times
        self.in_progress[key] = self.in_progress.get(key, 0) + 1
        # forget the least recently seen: idle for a whole window, or beyond MAX_KEYS
        for _ in range(2):
            oldest, oldest_times = next(iter(self.recent.items()))
            idle = not oldest_times or oldest_times[-1] <= now - self.limit.window
            if oldest == key or not (idle or len(self.recent) > MAX_KEYS):
                break
            del self.recent[oldest]

    def done(self, key: Text) -> None:
        left = self.in_progress.get(key, 0) - 1
        if left > 0:
            self.in_progress[key] = left
        else:
            self.in_progress.pop(key, None)


class Admission:
    """A message let through: `done()` (or the `with` block's end) when its turn is over."""

    def __init__(self, counts: Tuple[Tuple[_Counts, Text], ...]) -> None:
        self._counts = counts

    def done(self) -> None:
        for counts, key in self._counts:
            counts.done(key)
        self._counts = ()

    def __enter__(self) -> "Admission":
        return self

    def __exit__(self, *_) -> None:
        self.done()


class ChatLimits:
    """The limits of one server, shared by its chat channels."""

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.visitors = _Counts(settings.visitor)
        self.addresses = _Counts(settings.address)

    def is_exempt(self, address: Optional[Text]) -> bool:
        try:
            parsed = ipaddress.ip_address((address or "").strip("[]"))
        except ValueError:
            return False
        return any(parsed in network for network in self.settings.exempt)

    def admit(self, visitor: Text, address: Optional[Text]) -> Admission:
        """Lets the message through, or raises TooManyMessages."""
        now = time.monotonic()
        checks = [(self.visitors, visitor)]
        if address and not self.is_exempt(address):
            checks.append((self.addresses, address))
        wait = max(counts.wait_needed(key, now) for counts, key in checks)
        if wait > 0:
            raise TooManyMessages(wait)
        for counts, key in checks:
            counts.take(key, now)
        return Admission(tuple(checks))


@lru_cache(maxsize=1)
def chat_limits() -> ChatLimits:
    """This server's limits, from the environment (a bad setting stops the server)."""
    settings = LimitSettings.from_env()
    logger.info(
        "Chat limits: %d messages per %d s and %d at once per conversation; %d per %d s and %d at once "
        "per address (not limited: %s)",
        settings.visitor.rate, settings.visitor.window, settings.visitor.at_once,
        settings.address.rate, settings.address.window, settings.address.at_once,
        " ".join(str(network) for network in settings.exempt) or "none",
    )
    return ChatLimits(settings)


_last_proxy_warning = [-PROXY_WARNING_SECONDS]


def client_address(request: Request) -> Text:
    """The visitor's address: the one a proxy Sanic was told about forwarded,
    else the connection's peer (never a header nobody vouches for)."""
    forwarded = request.remote_addr  # "" unless SANIC_PROXIES_COUNT & co. are set
    if forwarded:
        return forwarded.strip("[]")
    config = request.app.config
    proxy_configured = config.PROXIES_COUNT or config.REAL_IP_HEADER or config.FORWARDED_SECRET
    if not proxy_configured and any(name in request.headers for name in _FORWARDING_HEADERS):
        now = time.monotonic()
        if now - _last_proxy_warning[0] >= PROXY_WARNING_SECONDS:
            _last_proxy_warning[0] = now
            logger.warning(
                "chat messages arrive through a proxy (they carry X-Forwarded-For or Forwarded) that the "
                "server was not told about, so every visitor behind it shares that proxy's per-address "
                "limit: set SANIC_PROXIES_COUNT (or SANIC_REAL_IP_HEADER / SANIC_FORWARDED_SECRET) to the "
                "proxies in front of the server"
            )
    return request.ip
