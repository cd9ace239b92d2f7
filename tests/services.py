"""This machine's PostgreSQL and Redis for tests: a throwaway database, a test
Redis database, and restarting either mid-test (always left running after)."""

import glob
import os
import subprocess
import time
from typing import ContextManager

import pytest
import redis
import sqlalchemy as sa

from clinic.scratch_database import LOCAL_POSTGRES_URL
from clinic.scratch_database import scratch_database as clinic_scratch_database

SERVER_URL = os.environ.get("TEST_POSTGRES_URL", LOCAL_POSTGRES_URL)
# Database 15: far from the profiles' 0, so a running `make run-scaled` is untouched.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require(reachable: bool, what: str) -> None:
    """Skips without the service; under CI (CI=true) a missing service fails the run."""
    if reachable:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI and could not be reached", pytrace=False)
    pytest.skip(f"{what} not reachable")


def postgres_up(timeout: float = 3) -> bool:
    engine = sa.create_engine(SERVER_URL, connect_args={"connect_timeout": int(timeout)})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def scratch_database(prefix: str) -> ContextManager[str]:
    """A new, empty PostgreSQL database for the block; its URL. Dropped after,
    with PostgreSQL started again first if the test left it stopped."""
    return clinic_scratch_database(prefix, SERVER_URL, before_drop=ensure_running)


def _postgres_cluster() -> list:
    version = sorted(os.path.basename(path) for path in glob.glob("/etc/postgresql/*"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def stop_postgres() -> None:
    subprocess.run(_postgres_cluster() + ["stop", "-m", "fast"], check=True, timeout=60)


def start_postgres() -> None:
    subprocess.run(_postgres_cluster() + ["start"], check=True, timeout=60)
    _wait_for(postgres_up, "PostgreSQL")


def stop_redis() -> None:
    subprocess.run(["redis-cli", "shutdown", "nosave"], timeout=30)
    _wait_for(lambda: not redis_up(), "Redis to stop")


def start_redis() -> None:
    subprocess.run(
        [
            "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
            "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
            "--logfile", "/var/log/redis/ci.log",
        ],
        check=True, timeout=30,
    )
    _wait_for(redis_up, "Redis")


def ensure_running() -> None:
    """Starts whichever of the two a test left stopped."""
    if not postgres_up():
        start_postgres()
    if not redis_up():
        start_redis()


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)
