"""Write transactions under contention: SQLite's writer lock, PostgreSQL deadlocks, and the 503 answer.

**SQLite** allows one writer at a time. A transaction that began with a plain (deferred) `BEGIN`, read, and
then tries to write fails at once with "database is locked" when another connection committed meanwhile (its
read snapshot is stale, so waiting cannot help: the busy timeout does not apply). So, following SQLAlchemy's
pysqlite recipe ("Serializable isolation / Savepoints / Transactional DDL"), the driver's own transaction
handling is switched off and the panel emits BEGIN itself:

- reads before a transaction's first write run on their own (no BEGIN) and see the newest data; they never
  hold a lock a writer would wait for, nor a snapshot that could go stale (WAL: readers and the one writer
  run side by side);
- the first INSERT/UPDATE/DELETE opens the transaction with `BEGIN IMMEDIATE`: it waits (up to the busy
  timeout) for the writer lock, and from then on the transaction reads and writes under that lock, so it
  cannot fail with a stale snapshot;
- a unit of work that must read under the writer lock too (a read-modify-write) selects its rows
  `with_for_update()` (SQLite has no FOR UPDATE: such a SELECT opens the transaction with BEGIN IMMEDIATE
  here, so it reads under the writer lock, as the row lock does on PostgreSQL), or enters `writing()`: its
  transaction starts with `BEGIN IMMEDIATE`.

Writers are not made to take the lock at the start of every POST on purpose: a request that hands work to
another connection and waits for it (the manager's "Run now", a synchronous import) would then wait for
its own lock.

The busy timeout is set again on every checkout from the pool, so a job that shortened it on its connection
cannot leak a 50 ms wait into later requests.

**PostgreSQL** can still pick a deadlock victim or fail a serializable transaction; `retrying()` runs the
unit of work again a few times. Whatever still cannot proceed (SQLite locked past the busy timeout, a
deadlock retried out) is answered `503 Service Unavailable` with `Retry-After` (JSON under /api/), not 500.
"""

import contextvars
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import Flask, jsonify, request
from sqlalchemy import bindparam, event, text
from sqlalchemy.dialects import registry
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.expression import Executable, TextClause

from panel.extensions import db

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
RETRIES = 5
RETRY_AFTER_SECONDS = 1
# PostgreSQL SQLSTATEs worth running the transaction again for: deadlock_detected, serialization_failure.
RETRY_SQLSTATES = {"40P01", "40001"}
_writes: contextvars.ContextVar[bool] = contextvars.ContextVar("panel_writes", default=False)


def _is_sqlite(dbapi_connection) -> bool:
    return type(dbapi_connection).__module__.startswith("sqlite3")


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, _record) -> None:
    """SQLite: foreign keys on, WAL (readers never wait for the writer), and BEGIN emitted by the panel."""
    if _is_sqlite(dbapi_connection):
        # The driver would otherwise BEGIN (deferred) before the first write on its own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()


@event.listens_for(Engine, "checkout")
def _sqlite_checkout(dbapi_connection, _record, _proxy) -> None:
    """Every checkout gets the full busy timeout back, whatever the previous user of the connection set."""
    if _is_sqlite(dbapi_connection):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn) -> None:
    """Transactions begun inside writing() start with BEGIN IMMEDIATE (see the module doc)."""
    if conn.dialect.name == "sqlite" and _writes.get():
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


@event.listens_for(Engine, "before_execute")
def _sqlite_lock_for_update(conn, clauseelement, _multiparams, _params, _options) -> None:
    """SELECT ... FOR UPDATE on SQLite: take the writer lock before the read (see the module doc)."""
    if conn.dialect.name == "sqlite" and getattr(clauseelement, "_for_update_arg", None) is not None:
        if not conn.connection.dbapi_connection.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_begin_before_write(conn, cursor, statement, _parameters, _context, _executemany) -> None:
    """Any other transaction starts at its first write: BEGIN IMMEDIATE just before it."""
    if conn.dialect.name == "sqlite" and statement.lstrip()[:6].upper() in _WRITES:
        if not conn.connection.dbapi_connection.in_transaction:
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except conn.dialect.dbapi.OperationalError as exc:
                # Raised here, outside SQLAlchemy's wrapping: wrap it as the statement itself would be.
                raise OperationalError("BEGIN IMMEDIATE", (), exc) from exc


@contextmanager
def _declare(writes: bool) -> Iterator[None]:
    token = _writes.set(writes)
    try:
        yield
    finally:
        _writes.reset(token)


def writing():
    """Transactions begun inside the block write: on SQLite they take the writer lock first (BEGIN
    IMMEDIATE). Enter it before the unit of work's first query (a transaction already open is not changed)."""
    return _declare(True)


def read_only():
    """Back to the default inside a writing() block: reads take no lock until the first write."""
    return _declare(False)


def release_cache(conn) -> None:
    """Give a SQLite connection's page cache back (`PRAGMA shrink_memory`): up to 2 MB a pooled connection
    in every process, kept after a long read (a routing build, the manager's run) that a worker will not
    make again soon. Dirty pages of an open transaction stay. Nothing on PostgreSQL: its cache is the
    server's."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA shrink_memory")


def is_contention(exc: BaseException) -> bool:
    """True for a failure caused by other transactions, not by the request: SQLite locked, a deadlock."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in RETRY_SQLSTATES or getattr(orig, "pgcode", None) in RETRY_SQLSTATES:
        return True
    message = str(orig).lower()
    return isinstance(exc, OperationalError) and ("database is locked" in message or "is busy" in message)


def _retryable(exc: DBAPIError) -> bool:
    """A PostgreSQL deadlock victim or serialization failure: running the transaction again may succeed.

    SQLite's "database is locked" is not retried here: it already waited the whole busy timeout.
    """
    orig = exc.orig
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in RETRY_SQLSTATES


def retrying(work: Callable[[], T], attempts: int = RETRIES) -> T:
    """Run a unit of work (which commits) again after a deadlock; the last failure raises.

    `work` must start from a clean session and do the whole transaction, since a failure rolls it all back.
    """
    for attempt in range(attempts):
        try:
            return work()
        except DBAPIError as exc:
            db.session.rollback()
            if not _retryable(exc) or attempt == attempts - 1:
                raise
            # Jittered back-off, so the transactions that collided do not collide again in step.
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # noqa: S311 - not a secret
    raise AssertionError("unreachable")


def compiled_once(build: Callable[[str], Executable], columns: tuple[str, ...]) -> Callable[[], TextClause]:
    """The statement `build(dialect name)` makes, for rows of these `columns` (executemany), compiled once
    per dialect into a text statement with its parameters' types.

    SQLAlchemy caches the compiled form of a statement by its cache key, and the dialects' INSERT ... ON
    CONFLICT constructs have none: each execution compiled them again, which cost more than the upsert it ran.
    A text statement is compiled once. Call the returned function inside an app context.
    """
    texts: dict[str, TextClause] = {}

    def statement() -> TextClause:
        name = db.engine.dialect.name
        found = texts.get(name)
        if found is None:
            # The dialect's default driver with named parameters: SQL that text() reads back (no casts)
            dialect = registry.load(name)(paramstyle="named")
            compiled = build(name).compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
            types = [bindparam(key, type_=param.type) for key, param in compiled.binds.items()]
            found = texts[name] = text(compiled.string).bindparams(*types)
        return found

    return statement


def install(app: Flask) -> None:
    """Answer contention that outlived the retries with 503 and Retry-After (JSON under /api/)."""

    @app.errorhandler(OperationalError)
    def _busy(exc: OperationalError):
        if not is_contention(exc):
            raise exc
        db.session.rollback()
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        message = "the database is busy; try again in a moment"
        if request.path.startswith("/api/"):
            return jsonify(error=message, field=None), 503, headers
        return (
            "The database is busy; try again in a moment.\n",
            503,
            {
                **headers,
                "Content-Type": "text/plain; charset=utf-8",
            },
        )
