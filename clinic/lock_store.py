"""A conversation lock in Redis that several Rasa servers can share safely.

Rasa runs one turn of a conversation at a time by taking that conversation's
lock. Its own RedisLockStore reads the lock, adds a ticket and writes it back
in separate steps, so two servers taking the lock at the same moment can both
get it and interleave one conversation's events (Rasa issue #9213); and a
server killed while holding it blocks the conversation for a full minute.

Here each step is one Lua script, so it is atomic in Redis: a ticket number
comes from INCR, waiting tickets sit in a sorted set (first come, first
served), and each ticket has a lease key that its server renews while the turn
runs. A ticket whose lease has lapsed (its server died) is skipped, so the
conversation goes on on another server within `lease_seconds`.

A server stopped past its lease (a long pause, a stalled machine) must not
save the turn it was running: while the turn runs, `lease_lapsed()` says
whether its ticket's lease is gone, and the tracker store asks before saving
(clinic/tracker_store.py).

endpoints.scaled.yml:

    lock_store:
      type: clinic.lock_store.LeasedRedisLockStore
      url: ${REDIS_URL}
"""

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import AsyncGenerator, Callable, Optional, Text

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
# Long enough to outlast a CPU-bound NLU step that delays renewals, short
# enough that a dead server's conversation is free again quickly.
DEFAULT_LEASE_SECONDS = 10.0
# A turn normally takes well under a second; waiting longer than this for
# the one before means something is stuck, and the visitor gets a clear error.
DEFAULT_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.05
# Idle conversations' counters and queues disappear after a day.
KEY_TTL_SECONDS = 24 * 3600

# KEYS: counter, queue, lease prefix; ARGV: lease ms, key ttl s -> ticket number
_TAKE_TICKET = """
local number = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], number, number)
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3] .. number, '1', 'PX', ARGV[1])
return number
"""

# KEYS: queue, lease prefix; ARGV: ticket -> 1 when it is this ticket's turn,
# 0 when another live ticket is ahead, -1 when this ticket's lease has lapsed
_IS_MY_TURN = """
if redis.call('EXISTS', KEYS[2] .. ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return -1
end
while true do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if head == nil then return -1 end
  if head == ARGV[1] then return 1 end
  if redis.call('EXISTS', KEYS[2] .. head) == 1 then return 0 end
  redis.call('ZREM', KEYS[1], head)
end
"""

# KEYS: lease key; ARGV: lease ms -> 1 when renewed, 0 when already lapsed
_RENEW = """
return redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'XX') and 1 or 0
"""

# KEYS: queue, lease key, counter; ARGV: ticket. The last one out removes the
# counter too: no key naming the visitor outlives the conversation's turns.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end
return 1
"""


# The running turn's lease check (set while a turn holds the lock): a
# coroutine function answering whether the lease has lapsed.
_lease_check: ContextVar[Optional[Callable]] = ContextVar("conversation_lease_check", default=None)


async def lease_lapsed() -> bool:
    """Whether the running turn's conversation lock has lapsed: False when
    it holds a live lease, or holds no leased lock (one server, Rasa's
    in-memory lock store). Raises redis.RedisError when Redis cannot say."""
    check = _lease_check.get()
    return bool(check and await check())


class LeasedRedisLockStore(LockStore):
    """Atomic first-come-first-served conversation locks with renewed leases."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        url: Optional[Text] = None,
        key_prefix: Text = "clinic:lock:",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        socket_timeout: float = 2.0,
    ) -> None:
        settings = dict(endpoint_config.kwargs) if endpoint_config else {}
        url = url or (endpoint_config.url if endpoint_config else None) or DEFAULT_URL
        self.key_prefix = str(settings.get("key_prefix", key_prefix))
        self.lease_ms = int(float(settings.get("lease_seconds", lease_seconds)) * 1000)
        self.wait_seconds = float(settings.get("wait_seconds", wait_seconds))
        timeout = float(settings.get("socket_timeout", socket_timeout))
        # One retry on a dropped connection: after a Redis restart the pooled
        # connections are dead, and the next call should reconnect, not fail.
        self.red = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[redis.ConnectionError],
            health_check_interval=30,
        )
        self._take_ticket = self.red.register_script(_TAKE_TICKET)
        self._is_my_turn = self.red.register_script(_IS_MY_TURN)
        self._renew = self.red.register_script(_RENEW)
        self._release = self.red.register_script(_RELEASE)
        super().__init__()

    def _keys(self, conversation_id: Text):
        # The braces keep one conversation's keys on one Redis Cluster node.
        base = self.key_prefix + "{" + conversation_id + "}"
        return base + ":next", base + ":queue", base + ":lease:"

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = 0,
        wait_time_in_seconds: float = POLL_SECONDS,
    ) -> AsyncGenerator[TicketLock, None]:
        """Holds the conversation's lock for the duration of the block.

        Rasa's `lock_lifetime` and `wait_time_in_seconds` (a fixed ticket
        lifetime, a one-second poll) are not used: the lease is renewed for
        as long as the block runs, and the queue is polled every 50 ms.
        """
        counter, queue, lease_prefix = self._keys(conversation_id)
        try:
            ticket = int(
                await _blocking(
                    self._take_ticket,
                    keys=[counter, queue, lease_prefix],
                    args=[self.lease_ms, KEY_TTL_SECONDS],
                )
            )
        except redis.RedisError as error:
            raise LockError(f"Could not reach the lock store: {error}") from error
        lease_key = lease_prefix + str(ticket)
        renewal = asyncio.ensure_future(self._keep_renewed(lease_key))
        check = _lease_check.set(lambda: self._has_lapsed(lease_key))
        try:
            await self._wait_for_turn(queue, lease_prefix, ticket)
            yield TicketLock(conversation_id)
        finally:
            with contextlib.suppress(ValueError):  # closed from another context
                _lease_check.reset(check)
            renewal.cancel()
            try:
                await _blocking(
                    self._release, keys=[queue, lease_prefix + str(ticket), counter], args=[ticket]
                )
            except redis.RedisError:
                # The lease lapses by itself; the turn itself is done and saved.
                logger.warning("could not release a conversation lock; it expires by itself")

    async def _wait_for_turn(self, queue: Text, lease_prefix: Text, ticket: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            try:
                state = await _blocking(self._is_my_turn, keys=[queue, lease_prefix], args=[ticket])
            except redis.RedisError as error:
                raise LockError(f"Could not reach the lock store: {error}") from error
            if state == 1:
                return
            if state == -1:
                # (no conversation id in these: for SMS it is a phone number)
                raise LockError("Lost the place in the conversation's queue (lease lapsed).")
            if loop.time() > deadline:
                raise LockError("Timed out waiting for the conversation's previous turn.")
            await asyncio.sleep(POLL_SECONDS)

    async def _has_lapsed(self, lease_key: Text) -> bool:
        return not await _blocking(lambda: self.red.exists(lease_key))

    async def _keep_renewed(self, lease_key: Text) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 1000 / 4)
            try:
                if not await _blocking(self._renew, keys=[lease_key], args=[self.lease_ms]):
                    logger.warning("a conversation lock lapsed while its turn was running")
                    return
            except redis.RedisError:
                logger.warning("could not renew a conversation lock")


async def _blocking(script, **kwargs):
    """Runs a Redis call off the event loop (a stalled Redis must not stall every conversation)."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: script(**kwargs))
