"""Private PostgreSQL databases for the test suite and the benchmarks (the panel itself never uses this).

Each run creates a database of its own next to the one named (same server and user) and drops it at the end,
so parallel runs never collide.
"""

import os
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from panel.config import normalise_database_url


def private_postgres(base_url: str, prefix: str = "panel_test") -> tuple[str, Callable[[], None]]:
    """Create a fresh database next to `base_url`; return its URL and a function that drops it."""
    url = make_url(normalise_database_url(base_url))
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop
