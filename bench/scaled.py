"""PostgreSQL and Redis for the scaled profile: whether this machine's are up, and a throwaway database for one benchmark run."""

import os
import uuid
from contextlib import contextmanager
from typing import Iterator, Optional

import redis
import sqlalchemy as sa

# This machine's services (README, "Several servers"); the benchmark only
# creates and drops a database of its own there.
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# A Redis database of its own: a running `make run-scaled` (0) or the tests (15) are untouched.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def unavailable() -> Optional[str]:
    """Why the scaled profile cannot run here, or None when it can."""
    url = sa.engine.url.make_url(POSTGRES_URL)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return f"PostgreSQL at {url.host}:{url.port or 5432} does not answer ({reason})"
    finally:
        engine.dispose()
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        return f"Redis at {REDIS_URL.split('@')[-1]} does not answer ({error})"
    return None


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the block, dropped after; its URL."""
    name = f"clinic_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield str(sa.engine.url.make_url(POSTGRES_URL).set(database=name))
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
