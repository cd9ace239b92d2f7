"""PostgreSQL and Redis for the scaled profile: whether this machine's are up, and a throwaway database for one benchmark run."""

import os
from typing import ContextManager, Optional

import redis
import sqlalchemy as sa

from clinic.scratch_database import LOCAL_POSTGRES_URL
from clinic.scratch_database import scratch_database as clinic_scratch_database

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", LOCAL_POSTGRES_URL)
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


def scratch_database() -> ContextManager[str]:
    """A new, empty PostgreSQL database for one benchmark run, dropped after; its URL."""
    return clinic_scratch_database("clinic_bench", POSTGRES_URL)
