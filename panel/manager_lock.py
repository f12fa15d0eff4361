"""The Traffic Rules manager's lock (SPEC §6): one process at a time does the writing work.

On PostgreSQL a session advisory lock (`pg_try_advisory_lock`) on a connection held only for the block,
released at its end and by PostgreSQL itself if the process dies; on SQLite a lease row in `manager_lease`
naming its holder until an expiry, taken and given back in short commits. Within a process a thread lock
comes first, so two threads of one process never both try.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import or_, text, update

from panel.extensions import db
from panel.models import ManagerLease
from panel.models.types import utcnow

LOCK_KEY = 0x50524D47  # the advisory lock's key: "PRMG"
LEASE_NAME = "manager"


@contextmanager
def held(run_lock: threading.Lock, holder: str, ttl: timedelta, wait: float = 0.0) -> Iterator[bool]:
    """Hold the lock for the block; yields False when another process held it for `wait` seconds."""
    acquired = run_lock.acquire(timeout=wait) if wait > 0 else run_lock.acquire(blocking=False)
    if not acquired:
        yield False
        return
    try:
        if db.engine.dialect.name == "postgresql":
            with _advisory_lock(wait) as got:
                yield got
        else:
            with _lease(holder, ttl, wait) as got:
                yield got
    finally:
        run_lock.release()


def _retry(attempt, wait: float) -> bool:
    """Call `attempt()` until it succeeds or `wait` seconds pass (once when wait is 0)."""
    deadline = time.monotonic() + wait
    while True:
        if attempt():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(0.2, max(0.01, deadline - time.monotonic())))


@contextmanager
def _advisory_lock(wait: float) -> Iterator[bool]:
    """A PostgreSQL session advisory lock on a connection of its own, released at the end of the block."""
    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    got = False
    try:
        got = _retry(
            lambda: bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})), wait
        )
        yield got
    finally:
        if got:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            except Exception:  # noqa: BLE001 - a broken connection: closing it for good frees the lock
                conn.invalidate()
        conn.close()


@contextmanager
def _lease(holder: str, ttl: timedelta, wait: float) -> Iterator[bool]:
    """The SQLite lease: a row naming its holder until an expiry, taken and given back in short commits."""
    from sqlalchemy.dialects.sqlite import insert

    def take() -> bool:
        now = utcnow()
        with db.engine.begin() as conn:
            conn.execute(
                insert(ManagerLease)
                .values(name=LEASE_NAME, holder="", expires_at=now - timedelta(seconds=1))
                .on_conflict_do_nothing(index_elements=["name"])
            )
            taken = conn.execute(
                update(ManagerLease)
                .where(
                    ManagerLease.name == LEASE_NAME,
                    or_(ManagerLease.expires_at <= now, ManagerLease.holder == holder),
                )
                .values(holder=holder, expires_at=now + ttl)
            )
            return taken.rowcount == 1

    got = _retry(take, wait)
    try:
        yield got
    finally:
        if got:
            with db.engine.begin() as conn:
                conn.execute(
                    update(ManagerLease)
                    .where(ManagerLease.name == LEASE_NAME, ManagerLease.holder == holder)
                    .values(holder="", expires_at=utcnow())
                )
