"""The Traffic Rules manager (SPEC §6): a background thread in every panel process.

**Writing work**, done by one process at a time (the holder of the manager lock), once per period:

1. deletes the routing rules past their expiration, each with an audit entry by `system`;
2. deletes live calls with no end event older than `LIVE_CALL_MAX_SECONDS` (so a lost event cannot block
   an account);
3. recomputes `quality` per terminator account and vendor code (the code of the rate that priced the call)
   over the last `QUALITY_WINDOW_HOURS`: attempts, answered, ASR (%), ACD (minutes), PDD (ms). ASR, ACD and
   PDD are left empty (NULL) with fewer than `QUALITY_MIN_CALLS` attempts, so routing ignores thin figures;
   a terminator with enough attempts and none answered gets ACD 0;
4. publishes the **data version** in its `manager_runs` row: the newest audit entry (every panel change writes
   one in its own transaction) plus a digest of the quality figures routing uses. "Run now" always publishes.

**Snapshot sync**, done by every process about once a second: when the newest published version differs from
the one this process's routing snapshot was built from, `panel.snapshots.rebuild()` builds a new snapshot and
swaps it in atomically (a route in flight finishes on the old one). So an edit takes effect at the next run,
within a second of it in every worker.

**The lock**: on PostgreSQL a session advisory lock (`pg_try_advisory_lock`) on a connection held only for the
run, released at its end and by PostgreSQL itself if the process dies; on SQLite a lease row in
`manager_lease` with an expiry. A process that finds the lock taken skips the writing work (it still syncs its
snapshot); a process that gets it but sees a run started less than a period ago skips too, so the work is done
once per period however many workers there are.

A failing run is recorded (`outcome = error`, with the error) and retried next period; nothing it raises
leaves the thread, and the thread never touches a request.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from flask import Flask, current_app, has_app_context
from sqlalchemy import delete, func, select, update

from panel import livecalls, manager_lock, snapshots, txn, writes
from panel import quality as call_quality
from panel.extensions import db
from panel.manager_lock import LEASE_NAME, LOCK_KEY  # noqa: F401 - part of this module's interface
from panel.models import AuditEntry, ManagerRun, RoutingRule
from panel.models.types import utcnow

log = logging.getLogger("panel.manager")

# How often each process checks for a newly published data version.
SYNC_SECONDS = 1.0
# Kept for the manager page: successful runs for two days, errors and skips for a week.
KEEP_OK_RUNS = timedelta(days=2)
KEEP_OTHER_RUNS = timedelta(days=7)
# Audit ids written by transactions that commit late (after a higher id) are caught by counting this tail.
AUDIT_TAIL = 1000
SYSTEM_USER = SimpleNamespace(id=None, username="system")
WRITING_OUTCOMES = ("ok", "error")


@dataclass
class ManagerState:
    """One app's manager in this process: its thread, its wake-up signal and its snapshot's version."""

    app: Flask
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    run_requested: bool = False
    # Serialises runs of this app in this process (the thread and a "Run now" may meet).
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    sync_lock: threading.Lock = field(default_factory=threading.Lock)
    snapshot_version: str | None = None
    snapshot_built_at: datetime | None = None
    snapshot_build_ms: int | None = None
    # (version, retry after): a snapshot build that failed is not retried every second.
    failed_sync: tuple[str, float] | None = None
    last_error: str = ""
    pid: int = field(default_factory=os.getpid)

    @property
    def alive(self) -> bool:
        """True while this process's manager thread runs."""
        return self.thread is not None and self.thread.is_alive()


def state(app: Flask | None = None) -> ManagerState:
    """The manager state of an app in this process (created on first use, thread or not)."""
    app = app or current_app._get_current_object()
    current = app.extensions.get("panel_manager")
    if current is None:
        current = app.extensions.setdefault("panel_manager", ManagerState(app))
    return current


def holder_name(app: Flask) -> str:
    """Who holds the lease: host, process and app instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{id(app):x}"[:120]


# --- the thread -------------------------------------------------------------------------------------------


def start(app: Flask) -> ManagerState:
    """Start the manager thread of this process (once per app; create_app() calls it)."""
    current = state(app)
    if current.alive:
        return current
    current.stop.clear()
    current.pid = os.getpid()
    current.thread = threading.Thread(
        target=_loop, args=(current,), name="traffic-rules-manager", daemon=True
    )
    current.thread.start()
    if not getattr(app, "_manager_fork_hook", False):
        # A server that creates the app before forking its workers (gunicorn --preload): the workers get a
        # manager of their own (threads do not survive a fork) and the forking master stops its own.
        os.register_at_fork(
            after_in_parent=lambda: _stop_in_parent(app), after_in_child=lambda: _after_fork(app)
        )
        app._manager_fork_hook = True
    return current


def _stop_in_parent(app: Flask) -> None:
    """In a process that forks workers: leave the manager to them."""
    current = app.extensions.get("panel_manager")
    if current is not None:
        current.stop.set()
        current.wake.set()


def _after_fork(app: Flask) -> None:
    """In a forked worker: a fresh state and thread (the parent's thread does not exist here)."""
    app.extensions.pop("panel_manager", None)
    start(app)


def stop(app: Flask, timeout: float = 10) -> None:
    """Stop this process's manager thread and wait for it (tests, shutdown)."""
    current = state(app)
    current.stop.set()
    current.wake.set()
    if current.thread is not None:
        current.thread.join(timeout)


def _loop(current: ManagerState) -> None:
    """Run every period, sync the snapshot every second; nothing raised here stops the loop."""
    app = current.app
    period = float(app.config.get("MANAGER_PERIOD_SECONDS", 10))
    next_run = 0.0
    while not current.stop.is_set():
        try:
            if current.run_requested or time.monotonic() >= next_run:
                forced, current.run_requested = current.run_requested, False
                next_run = time.monotonic() + period
                run_once(app, force=forced, wait=period if forced else 0)
            sync_snapshot(app)
            current.last_error = ""
        except Exception as exc:  # noqa: BLE001 - the manager must outlive any failure and retry
            current.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("Traffic Rules manager: unexpected failure (retrying)")
        timeout = min(SYNC_SECONDS, max(0.05, next_run - time.monotonic()))
        current.wake.wait(timeout)
        current.wake.clear()


def request_run(app: Flask | None = None) -> None:
    """ "Run now": wake this process's manager thread for a forced run, or run in a thread of its own.

    With TESTING on (and no manager thread) the run happens before this returns.
    """
    app = app or current_app._get_current_object()
    current = state(app)
    if current.alive:
        current.run_requested = True
        current.wake.set()
        return
    period = float(app.config.get("MANAGER_PERIOD_SECONDS", 10))
    if app.config.get("TESTING"):
        run_once(app, force=True, wait=period)
        sync_snapshot(app)
        return

    def work() -> None:
        try:
            run_once(app, force=True, wait=period)
            sync_snapshot(app)
        except Exception:  # noqa: BLE001 - recorded by run_once; never raise in a bare thread
            log.exception("Traffic Rules manager: requested run failed")

    threading.Thread(target=work, name="traffic-rules-manager-run", daemon=True).start()


# --- the lock (panel/manager_lock.py) --------------------------------------------------------------------


@contextmanager
def writer_lock(app: Flask, wait: float = 0.0) -> Iterator[bool]:
    """Hold the manager lock for the block; yields False when another process held it for `wait` seconds."""
    ttl = timedelta(seconds=max(60.0, 6 * float(app.config.get("MANAGER_PERIOD_SECONDS", 10))))
    with manager_lock.held(state(app).run_lock, holder_name(app), ttl, wait) as held:
        yield held


# --- one run ----------------------------------------------------------------------------------------------


def run_once(app: Flask, *, force: bool = False, wait: float = 0.0) -> ManagerRun | None:
    """One run: take the lock, do the writing work, record it. Returns the recorded run, or None when skipped
    quietly (lock taken by another process, or a run started less than a period ago and not forced).

    A forced run ("Run now") waits up to `wait` seconds for the lock and always publishes a new version.
    """
    with app.app_context():
        with writer_lock(app, wait) as held:
            if not held:
                if not force:
                    return None
                run = _record_skip(f"another panel process held the manager lock for {wait:g} s")
            elif not force and _recent_run(app):
                return None
            else:
                run = _run_locked(app, force)
        # Loaded and detached, so the caller can read it after this app context ends.
        db.session.refresh(run)
        db.session.expunge(run)
        return run


def _period(app: Flask) -> timedelta:
    return timedelta(seconds=float(app.config.get("MANAGER_PERIOD_SECONDS", 10)))


def _recent_run(app: Flask) -> bool:
    """True when a writing run started less than (most of) a period ago, here or in another process."""
    last = db.session.scalar(
        select(ManagerRun.started_at)
        .where(ManagerRun.outcome.in_(WRITING_OUTCOMES + ("running",)))
        .order_by(ManagerRun.id.desc())
        .limit(1)
    )
    return last is not None and utcnow() - last < _period(app) * 0.8


def _record_skip(reason: str) -> ManagerRun:
    now = utcnow()
    run = ManagerRun(
        started_at=now, finished_at=now, duration_ms=0, outcome="skipped", error=reason, host=_host()
    )
    db.session.add(run)
    db.session.commit()
    return run


def _host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def _run_locked(app: Flask, force: bool) -> ManagerRun:
    """The writing work under the lock; its row says `running` while it runs, then `ok` or `error`."""
    started = time.perf_counter()
    run = ManagerRun(started_at=utcnow(), outcome="running", host=_host())
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    try:
        now = utcnow()
        _interrupt_stale_runs(run_id)
        rules_expired = delete_expired_rules(now)
        restore_expired_drains(now)
        calls_expired = livecalls.expire(now)
        quality_rows, digest = recompute_quality(app, now)
        prune_runs(now)
        version = data_version(digest) + (f".f{run_id}" if force else "")
        previous = published_version(before_id=run_id)
        run.rules_expired = rules_expired
        run.calls_expired = calls_expired
        run.quality_rows = quality_rows
        run.data_version = version
        run.snapshot_published = version != previous
        run.outcome = "ok"
        run.finished_at = utcnow()
        run.duration_ms = round((time.perf_counter() - started) * 1000)
        # What the run read (rules, drains, live calls, call records, runs) is not read again for a period:
        # on SQLite its connection's page cache goes back, as a snapshot read's does.
        txn.release_cache(db.session.connection())
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - recorded and retried next period
        db.session.rollback()
        log.exception("Traffic Rules manager: run %s failed", run_id)
        db.session.execute(
            update(ManagerRun)
            .where(ManagerRun.id == run_id)
            .values(
                outcome="error",
                error=f"{type(exc).__name__}: {exc}"[:4000],
                finished_at=utcnow(),
                duration_ms=round((time.perf_counter() - started) * 1000),
            )
        )
        db.session.commit()
        run = db.session.get(ManagerRun, run_id)
    if run.outcome == "ok" and (run.rules_expired or run.calls_expired):
        livecalls.invalidate(app)
    return run


def _interrupt_stale_runs(current_id: int) -> None:
    """Runs still `running` while we hold the lock were cut short (their process stopped)."""
    db.session.execute(
        update(ManagerRun)
        .where(ManagerRun.outcome == "running", ManagerRun.id != current_id)
        .values(outcome="error", error="interrupted: the process running it stopped", finished_at=utcnow())
    )


def delete_expired_rules(now: datetime) -> int:
    """Delete the rules whose expiration has passed, one audit entry each (the caller commits)."""
    rules = db.session.scalars(
        select(RoutingRule).where(RoutingRule.expires_at.is_not(None), RoutingRule.expires_at <= now)
    ).all()
    for rule in rules:
        note = (
            f"Expired at {rule.expires_at:%Y-%m-%d %H:%M} UTC; "
            f"deleted from plan {rule.plan.name!r} by the Traffic Rules manager."
        )
        writes.delete(rule, note=note, user=SYSTEM_USER, commit_now=False)
    return len(rules)


def restore_expired_drains(now: datetime) -> int:
    """Restore the accounts and clients whose drain reached its end time, one audit entry each."""
    from panel.whatif.drain import restore_expired  # imported here: panel.whatif's views import this module

    return restore_expired(now, SYSTEM_USER)


def prune_runs(now: datetime) -> None:
    """Forget old runs: successful ones after two days, errors and skips after a week."""
    db.session.execute(
        delete(ManagerRun).where(ManagerRun.outcome == "ok", ManagerRun.started_at < now - KEEP_OK_RUNS)
    )
    db.session.execute(delete(ManagerRun).where(ManagerRun.started_at < now - KEEP_OTHER_RUNS))


# --- quality ----------------------------------------------------------------------------------------------


def recompute_quality(app: Flask, now: datetime) -> tuple[int, str]:
    """Rewrite the quality table from the window's call records (the formula and query: panel.quality)."""
    return call_quality.recompute(app.config, now)


# --- data version and snapshot sync -----------------------------------------------------------------------


def audit_marker() -> str:
    """The newest audit entry and the size of its tail (which catches commits of lower ids that land late)."""
    top = select(func.coalesce(func.max(AuditEntry.id), 0)).scalar_subquery()
    tail = select(func.count()).where(AuditEntry.id > top - AUDIT_TAIL).scalar_subquery()
    row = db.session.execute(select(top, tail)).one()
    return f"a{row[0]}-{row[1]}"


def data_version(quality_digest: str) -> str:
    """The audit marker plus the quality digest: what a routing snapshot was built from."""
    return f"{audit_marker()}.q{quality_digest}"


def current_snapshot():
    """This process's routing snapshot when it holds exactly the database's panel data, else None.

    The snapshot records the audit entries it holds (read in the same transaction as its data): when no
    panel change (audit entry) was written since, its rate tables equal the database's.
    """
    snapshot = snapshots.current()
    if snapshot is None:
        return None
    held = f"a{snapshot.audit_top}-{len(snapshot.audit_seen)}"
    return snapshot if held == audit_marker() else None


def _version_part(version: str | None, prefix: str) -> str:
    """One part of a data version ("q…" the quality digest, "f…" a forced run), "" when absent."""
    for part in (version or "").split(".")[1:]:
        if part.startswith(prefix):
            return part
    return ""


def published_version(before_id: int | None = None) -> str:
    """The data version of the newest successful run ("" before the first one)."""
    stmt = select(ManagerRun.data_version).where(ManagerRun.outcome == "ok", ManagerRun.data_version != "")
    if before_id is not None:
        stmt = stmt.where(ManagerRun.id < before_id)
    return db.session.scalar(stmt.order_by(ManagerRun.id.desc()).limit(1)) or ""


def sync_snapshot(app: Flask, *, force: bool = False) -> bool:
    """Update this process's routing snapshot when the published version moved; True when it did.

    Only what changed since the snapshot was read is read again (`panel.snapshots.update`); a forced run
    ("Run now", for changes made outside the panel) or `force` builds it whole, a process without a snapshot
    starts from the host's files when it can (`panel.snapshots`), and a new quality digest reads the quality
    figures again.
    """
    current = state(app)
    with current.sync_lock, app.app_context():
        version = published_version()
        # End the read before a build that may take minutes: an open transaction would hold PostgreSQL's
        # cleanup (idle in transaction) and SQLite's checkpoints back all that time.
        db.session.rollback()
        if not force and current.snapshot_version is not None and version == current.snapshot_version:
            return False
        failed = current.failed_sync
        if not force and failed is not None and failed[0] == version and time.monotonic() < failed[1]:
            return False  # this version failed to build a moment ago: wait a period before trying again
        started = time.perf_counter()
        previous = current.snapshot_version
        forced_run = _version_part(version, "f")
        full = force or (forced_run != "" and forced_run != _version_part(previous, "f"))
        quality = previous is None or _version_part(version, "q") != _version_part(previous, "q")
        try:
            if full:
                snapshots.rebuild()
            else:
                # A process without a snapshot starts from the host's files when it can (snapshots._start).
                snapshots.update(quality=quality)
        except Exception:
            current.failed_sync = (
                version,
                time.monotonic() + float(app.config.get("MANAGER_PERIOD_SECONDS", 10)),
            )
            raise
        current.failed_sync = None
        current.snapshot_build_ms = round((time.perf_counter() - started) * 1000)
        current.snapshot_built_at = utcnow()
        current.snapshot_version = version
        return True


# --- what pages show --------------------------------------------------------------------------------------


def last_writing_run() -> ManagerRun | None:
    """The newest run that did the writing work (ok or error)."""
    return db.session.scalar(
        select(ManagerRun)
        .where(ManagerRun.outcome.in_(WRITING_OUTCOMES))
        .order_by(ManagerRun.id.desc())
        .limit(1)
    )


def next_run_at(app: Flask | None = None) -> datetime | None:
    """When the next run should start (an edit takes effect then, in every worker within a second).

    None when no manager runs: no run yet, or the last one is more than two periods late.
    """
    app = app or current_app._get_current_object()
    period = _period(app)
    last = db.session.scalar(
        select(ManagerRun.started_at)
        .where(ManagerRun.outcome.in_(WRITING_OUTCOMES + ("running",)))
        .order_by(ManagerRun.id.desc())
        .limit(1)
    )
    now = utcnow()
    if last is None:
        return now + period if state(app).alive else None
    expected = last + period
    if expected < now - period:
        return now + period if state(app).alive else None
    return max(expected, now)


def snapshot_info(app: Flask | None = None) -> dict:
    """This process's routing snapshot: built when, how long it took, its age, its size, its data version."""
    app = app or current_app._get_current_object()
    current = state(app)
    info = {
        "available": True,
        "version": current.snapshot_version,
        "built_at": current.snapshot_built_at,
        "build_ms": current.snapshot_build_ms,
        "age_s": None,
        "size": None,
        # What the last build or update read ("rate tables [6] (the host's files)", "base", "full", ...).
        "read": snapshots.last_changes(),
    }
    snap = snapshots.current()
    if snap is not None:
        info["built_at"] = snap.built_at
        if info["build_ms"] is None:
            info["build_ms"] = round(snap.build_seconds * 1000)
        info["size"] = dict(snap.counts) or None
    if info["built_at"] is not None:
        info["age_s"] = max(0.0, (utcnow() - info["built_at"]).total_seconds())
    return info


def status(app: Flask | None = None) -> dict:
    """A summary other pages may show: last run, running run, next run, snapshot, settings, this thread."""
    app = app or current_app._get_current_object()
    if not has_app_context():
        raise RuntimeError("manager.status() needs an application context")
    current = state(app)
    now = utcnow()
    last = last_writing_run()
    running = db.session.scalar(
        select(ManagerRun).where(ManagerRun.outcome == "running").order_by(ManagerRun.id.desc()).limit(1)
    )
    day = now - timedelta(hours=24)
    rules_expired_24h = db.session.scalar(
        select(func.coalesce(func.sum(ManagerRun.rules_expired), 0)).where(ManagerRun.started_at >= day)
    )
    errors_24h = db.session.scalar(
        select(func.count())
        .select_from(ManagerRun)
        .where(ManagerRun.started_at >= day, ManagerRun.outcome == "error")
    )
    return {
        "enabled": bool(app.config.get("MANAGER_ENABLED")) and not app.config.get("TESTING"),
        "thread_alive": current.alive,
        "thread_error": current.last_error,
        "pid": os.getpid(),
        "last_run": last,
        "running_run": running,
        "next_run_at": next_run_at(app),
        "snapshot": snapshot_info(app),
        "published_version": published_version(),
        "rules_expired_24h": int(rules_expired_24h or 0),
        "errors_24h": int(errors_24h or 0),
        "period_s": float(app.config.get("MANAGER_PERIOD_SECONDS", 10)),
        "window_h": float(app.config.get("QUALITY_WINDOW_HOURS", 24)),
        "min_calls": int(app.config.get("QUALITY_MIN_CALLS", 10)),
        "live_call_max_s": int(app.config.get("LIVE_CALL_MAX_SECONDS", 14400)),
    }
