"""This process's routing snapshot (SPEC §6): built on first use, swapped atomically when data changed.

Routing reads only the snapshot. `get_snapshot()` returns the current one (building it on first use);
`update()` brings it up to date with the database by reading again only what changed since it was read
(`panel.routing.update`; a full build when in doubt) and publishes the result; `rebuild()` builds it whole;
`publish(snapshot)` swaps one in. A route in flight keeps the object it took, so a swap never disturbs it:
readers take one reference and never see a half-built snapshot.

**One copy per host**: the rate tables, nearly all of the data, are files written once per host and version
and mapped read-only by every process (`rate_store()`, `panel.routing.ratestore`). A server that forks its
workers from a master process (gunicorn with `preload_app`, see `panel/gunicorn_preload.py`) also builds
the rest of the snapshot once in the master (`preload`): every worker starts routing with it at once, and
brings it up to date incrementally.

At most one build or update runs in a process at a time, however many ask: a caller that arrives while one
runs waits for it, and when the one it waited for started after it asked (so it read everything the caller
would read), takes its result instead of starting another.
"""

from __future__ import annotations

import atexit
import ctypes
import dataclasses
import gc
import hashlib
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app

from panel import txn
from panel.extensions import db
from panel.routing import update as incremental
from panel.routing.build import build_snapshot, read_connection
from panel.routing.ratestore import RateStore
from panel.routing.snapshot import Snapshot

# From this size on a built snapshot is moved out of the cyclic collector's reach (see _build).
FREEZE_FROM_RATES = 200_000
# The host's manifest is recorded again after this many audit entries at most (see _update).
MANIFEST_EVERY = 500
# How long an update waits for another process of the host reading the same rate tables (see _host_update).
UPDATE_WAIT_SECONDS = 30.0


class _Holder:
    """The snapshot of one app (tests create many apps in one process) and the lock of its builds."""

    __slots__ = ("snapshot", "lock", "started", "full_started", "last_changes", "last_cpu_s", "manifest_top")

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        # One build at a time per process; readers never wait for it once a snapshot exists.
        self.lock = threading.Lock()
        # Builds and updates started (all, and full ones): a waiting caller compares them with its ticket.
        self.started = 0
        self.full_started = 0
        # What the last update read again (Changes.summary()), for the manager page and tests.
        self.last_changes = ""
        # The CPU time of the thread that made the last build or update (seconds; unlike the wall clock,
        # whatever else the machine runs does not count).
        self.last_cpu_s = 0.0
        # The audit position of the last manifest this process recorded (see _save_manifest).
        self.manifest_top = 0


def _holder() -> _Holder:
    """The current app's holder, created on first use."""
    holder = current_app.extensions.get("routing_snapshot")
    if holder is None:
        holder = current_app.extensions.setdefault("routing_snapshot", _Holder())
    return holder


def get_snapshot() -> Snapshot:
    """The current snapshot of this process, built from the database on first use."""
    holder = _holder()
    snapshot = holder.snapshot
    if snapshot is not None:
        return snapshot
    with holder.lock:
        if holder.snapshot is None:
            holder.full_started += 1
            holder.last_changes = "full"
            holder.snapshot = _start()
        return holder.snapshot


def rebuild() -> Snapshot:
    """Build a whole snapshot from the database now and publish it; returns it."""
    return update(full=True)


def update(*, full: bool = False, quality: bool = False) -> Snapshot:
    """Bring the snapshot up to date with the database now and publish it; returns it.

    Reads again only what changed since the current snapshot was read (with `quality`, the quality figures
    too); builds it whole with `full` or when there is none yet. One at a time per process: a caller that
    finds one running waits, and takes that one's result when it started after this call (and was full when
    `full` is asked).
    """
    holder = _holder()
    ticket, full_ticket = holder.started, holder.full_started
    with holder.lock:
        caught_up = holder.full_started > full_ticket if full else holder.started > ticket
        if caught_up and holder.snapshot is not None and not quality:
            return holder.snapshot
        holder.started += 1
        cpu = time.thread_time()
        old = holder.snapshot
        if full or old is None:
            holder.full_started += 1
            holder.last_changes = "full"
            # A process that starts takes the host's files of the newest state read (see _start).
            snapshot = _build() if full else _start()
        else:
            snapshot = _update(old, quality)
        holder.snapshot = snapshot
        holder.last_cpu_s = time.thread_time() - cpu
        return snapshot


def last_cpu_seconds() -> float:
    """The CPU time of this process's last build or update (its own thread only), in seconds."""
    return _holder().last_cpu_s


def publish(snapshot: Snapshot) -> None:
    """Make `snapshot` the one new routes use (a single reference assignment: atomic)."""
    _holder().snapshot = snapshot


def current() -> Snapshot | None:
    """The published snapshot, or None when none was built yet (never builds)."""
    return _holder().snapshot


def preload(app) -> Snapshot:
    """In a process about to fork its workers: bring the snapshot up to date (a full build the first time),
    close the database connections (a forked worker must not share them) and move every object out of the
    cyclic collector's reach, so the workers share the snapshot's pages instead of copying them."""
    with app.app_context():
        snapshot = update()
        db.engine.dispose()
    gc.collect()
    gc.freeze()
    return snapshot


def last_changes() -> str:
    """What the last build or update of this process read again, in a few words ("" before the first)."""
    return _holder().last_changes


@contextmanager
def _read():
    """The one read transaction of a build or an update, declared read-only (on SQLite a build must never
    hold the writer lock). On SQLite the connection's page cache is given back at its end
    (`txn.release_cache`; the C heap follows with `_trim` after the build or update): what it read is in the
    snapshot now, and the cache (up to 2 MB a connection, in every worker) would otherwise be the largest
    part of a worker's routing memory that its database costs; PostgreSQL keeps its cache in the server."""
    with txn.read_only(), read_connection(db.engine) as conn:
        yield conn
        txn.release_cache(conn)


def _min_calls() -> int:
    return int(current_app.config.get("QUALITY_MIN_CALLS", 0) or 0)


_TEST_DIRECTORY: list[str] = []


def _test_directory() -> str:
    """This test process's directory of rate files (removed at exit)."""
    if not _TEST_DIRECTORY:
        _TEST_DIRECTORY.append(tempfile.mkdtemp(prefix="panel-routing-tests-"))
        atexit.register(shutil.rmtree, _TEST_DIRECTORY[0], True)
    return _TEST_DIRECTORY[0]


def rate_store() -> RateStore | None:
    """This app's directory of shared rate table files (`panel.routing.ratestore`), None when it cannot be
    used (the rate tables are then held in each process's memory).

    A directory per database (files of two databases never meet, nor prune each other's) under
    `ROUTING_DATA_DIR` (or PANEL_ROUTING_DATA_DIR) when set, else under instance/routing/; tests (a database
    per run) use a temporary directory of their process, removed when it exits.
    """
    app = current_app
    url = str(app.config.get("SQLALCHEMY_DATABASE_URI", ""))
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    base = app.config.get("ROUTING_DATA_DIR")
    if not base and app.config.get("TESTING"):
        base = _test_directory()
    base = base or os.environ.get("PANEL_ROUTING_DATA_DIR") or Path(app.instance_path) / "routing"
    directory = Path(base) / key
    try:
        return RateStore.at(directory)
    except OSError:
        current_app.logger.warning("routing data directory %s unusable: rates kept in memory", directory)
        return None


def _update(old: Snapshot, quality: bool) -> Snapshot:
    """`old` with what changed since it was read, read in one consistent read of the database."""
    started = time.perf_counter()
    with _read() as conn:
        changes = incremental.pending(conn, old)
        changes.quality = changes.quality or quality
        if changes.empty:
            # Nothing routing reads changed: the same data, with the newer audit tail (a cheap copy).
            snapshot = dataclasses.replace(
                old, built_at=datetime.now(UTC), audit_top=changes.audit_top, audit_seen=changes.audit_seen
            )
        else:
            with _host_update(old.store, changes):
                snapshot = incremental.apply(conn, old, changes, _min_calls())
                # The host's manifest follows the rate tables (and the audit log, so a process that starts
                # later has few entries to read); one taken from it is already recorded.
                behind = changes.audit_top - _holder().manifest_top
                if (
                    changes.full
                    or (changes.rate_tables and not changes.from_host)
                    or behind >= MANIFEST_EVERY
                ):
                    _save_manifest(conn, snapshot)
    snapshot.build_seconds = time.perf_counter() - started
    _holder().last_changes = changes.summary()
    if changes.full:
        _release(snapshot, None)
    elif changes.rate_tables:
        _release(snapshot, changes.rate_tables)
    elif changes.base:
        _trim()  # the replaced accounts, plans and rules
    if changes.full or changes.rate_tables:
        _freeze(snapshot)
    return snapshot


@contextmanager
def _host_update(store: RateStore | None, changes: incremental.Changes):
    """An update that reads rate tables again holds the host's update lock (`RateStore.updating`), until
    its manifest is recorded: the host's other processes, which see the same change within a second, wait
    and map the files it wrote (`incremental.tables_from_host`) instead of each reading the same rates.
    Only the rate tables are read once per host: everything else is small, and each process reads it."""
    if store is None or changes.full or not changes.rate_tables:
        yield
        return
    with store.updating(UPDATE_WAIT_SECONDS):
        yield


def _build() -> Snapshot:
    """Build from the app's database in one read (which also anchors the host's manifest)."""
    with _read() as conn:
        snapshot = build_snapshot(conn, quality_min_calls=_min_calls(), store=rate_store())
        _save_manifest(conn, snapshot)
    _release(snapshot, None)
    _freeze(snapshot)
    return snapshot


def _start() -> Snapshot:
    """The first snapshot of a process: when the host's manifest records the files of a recent state (see
    `panel.routing.update.start_from_host`), the rates are mapped from them and only the rate tables changed
    since are read; otherwise (or when in doubt) a whole build."""
    store = rate_store()
    if store is None:
        return _build()
    started = time.perf_counter()
    with _read() as conn:
        found = incremental.start_from_host(conn, store, _min_calls())
        if found is None:
            snapshot = None
        else:
            snapshot, changes = found
            _save_manifest(conn, snapshot)
    if snapshot is None:
        return _build()
    snapshot.build_seconds = time.perf_counter() - started
    _holder().last_changes = f"full, from the host's files ({changes.summary()} read again)"
    if changes.rate_tables:
        _release(snapshot, changes.rate_tables)
    else:
        _trim()
    _freeze(snapshot)
    return snapshot


def _save_manifest(conn, snapshot: Snapshot) -> None:
    """Record the snapshot's rate table files for the processes that start later (`start_from_host`)."""
    holder = _holder()
    if incremental.save_manifest(conn, snapshot):
        holder.manifest_top = snapshot.audit_top


def _release(snapshot: Snapshot, table_ids) -> None:
    """After a build (`table_ids` None) or an update of these rate tables: remove the host's table files that
    the snapshot does not use (of these tables only, after an update), and give the memory the build read
    the rates into back to the system."""
    store = snapshot.store
    if store is not None:
        keep = {t.file for t in snapshot.rate_tables.values() if t.file}
        store.prune(keep, table_ids)
    _trim()


def _trim() -> None:
    """Return the C heap's free pages to the system (glibc keeps what a build freed otherwise)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _freeze(snapshot: Snapshot) -> None:
    """Keep a big snapshot's objects out of the cyclic collector's walks."""
    if snapshot.counts.get("rates", 0) >= FREEZE_FROM_RATES:
        # A big snapshot is millions of long-lived objects that form no reference cycles (reference counting
        # frees them when the next one replaces them): keep the cyclic collector from walking them at every
        # full collection, which would stall routes for tens of milliseconds each time.
        gc.freeze()
