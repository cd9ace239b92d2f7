"""The shared conversation lock (clinic/lock_store.py) on this machine's Redis:
one turn at a time across servers, a dead server's turn freed by its lease,
a long turn kept by renewal, nothing left behind, a clear error without Redis."""

import asyncio
import threading
import time
import uuid

import pytest
import redis
from rasa.core.lock_store import LockError
from rasa.utils.endpoints import EndpointConfig

from clinic.lock_store import KEY_TTL_SECONDS, LeasedRedisLockStore
from services import REDIS_URL, redis_up, require


@pytest.fixture
def client():
    require(redis_up(), "Redis")
    return redis.Redis.from_url(REDIS_URL)


def server(lease_seconds: float = 10.0) -> LeasedRedisLockStore:
    """A lock store as one Rasa server builds it from endpoints.scaled.yml."""
    config = EndpointConfig(url=REDIS_URL, type="clinic.lock_store.LeasedRedisLockStore", lease_seconds=lease_seconds)
    return LeasedRedisLockStore(endpoint_config=config)


def conversation() -> str:
    return "lock-test-" + uuid.uuid4().hex[:10]


def keys_of(client, conversation_id: str) -> list:
    return client.keys(f"clinic:lock:{{{conversation_id}}}*")


def test_three_servers_never_run_one_conversations_turns_at_once(client):
    """Each server is a thread with its own event loop and lock store, all
    taking the same conversation's lock at once (Rasa's own RedisLockStore
    loses tickets and stalls here)."""
    conversation_id = conversation()
    counter = f"lock-test-counter:{conversation_id}"
    state = {"holding": 0, "most_at_once": 0, "turns": 0}
    guard = threading.Lock()
    failures = []

    def one_server() -> None:
        store = server()

        async def turn() -> None:
            async with store.lock(conversation_id):
                with guard:
                    state["holding"] += 1
                    state["most_at_once"] = max(state["most_at_once"], state["holding"])
                # a read-modify-write that loses updates unless turns are exclusive
                value = int(client.get(counter) or 0)
                await asyncio.sleep(0.002)
                client.set(counter, value + 1)
                with guard:
                    state["holding"] -= 1
                    state["turns"] += 1

        async def turns() -> None:
            await asyncio.gather(*(turn() for _ in range(10)))

        try:
            asyncio.run(turns())
        except Exception as error:  # reported by the assertion below
            failures.append(error)

    servers = [threading.Thread(target=one_server) for _ in range(3)]
    try:
        for thread in servers:
            thread.start()
        for thread in servers:
            thread.join(60)
        assert not failures and state["turns"] == 30
        assert int(client.get(counter)) == 30
        assert state["most_at_once"] == 1
        assert keys_of(client, conversation_id) == []  # the last one out cleans up
    finally:
        client.delete(counter)


async def test_turns_are_served_in_the_order_they_arrived(client):
    store, conversation_id, served = server(), conversation(), []

    async def turn(index: int) -> None:
        await asyncio.sleep(index * 0.02)  # arrive one after the other
        async with store.lock(conversation_id):
            served.append(index)
            await asyncio.sleep(0.05)

    await asyncio.gather(*(turn(index) for index in range(6)))
    assert served == list(range(6))


async def test_a_dead_servers_turn_is_freed_when_its_lease_lapses(client):
    conversation_id = conversation()
    dead = server(lease_seconds=1.0)
    counter_key, queue, lease_prefix = dead._keys(conversation_id)
    # a server takes the conversation and is killed: nobody renews its lease
    dead._take_ticket(keys=[counter_key, queue, lease_prefix], args=[1000, KEY_TTL_SECONDS])
    started = time.monotonic()
    async with server().lock(conversation_id):
        waited = time.monotonic() - started
    assert 0.7 < waited < 3, waited
    assert keys_of(client, conversation_id) == []


async def test_a_long_turn_keeps_its_lock_by_renewing_the_lease(client):
    first, second = server(lease_seconds=0.6), server(lease_seconds=0.6)
    conversation_id, events = conversation(), []

    async def long_turn() -> None:
        async with first.lock(conversation_id):
            events.append("long starts")
            await asyncio.sleep(2.0)  # over three leases
            events.append("long ends")

    async def next_turn() -> None:
        await asyncio.sleep(0.2)
        async with second.lock(conversation_id):
            events.append("next runs")

    await asyncio.gather(long_turn(), next_turn())
    assert events == ["long starts", "long ends", "next runs"]


async def test_without_redis_taking_a_lock_fails_quickly_and_clearly():
    unreachable = LeasedRedisLockStore(
        endpoint_config=EndpointConfig(url="redis://127.0.0.1:1/0", type="clinic.lock_store.LeasedRedisLockStore")
    )
    started = time.monotonic()
    with pytest.raises(LockError, match="lock store"):
        async with unreachable.lock(conversation()):
            pass
    assert time.monotonic() - started < 5
