"""A throwaway PostgreSQL database for the tests and the benchmark: created
empty for a block of code, dropped after."""

import uuid
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import sqlalchemy as sa

# This machine's PostgreSQL (README, "Several servers"); the tests and the
# benchmark only create and drop databases of their own there.
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def scratch_database(prefix: str, server_url: str = LOCAL_POSTGRES_URL,
                     before_drop: Optional[Callable[[], None]] = None) -> Iterator[str]:
    """A new, empty database named `<prefix>_<8 hex digits>` on the server at
    `server_url`; its URL. Dropped after the block, with any connection still
    open to it (WITH (FORCE), PostgreSQL 13+), once `before_drop()` has run."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    # no pooled connection: a test may restart PostgreSQL in between
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield str(sa.engine.url.make_url(server_url).set(database=name))
    finally:
        if before_drop:
            before_drop()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
