"""Run an import in a background thread so the page stays usable; progress lives in the import_jobs row.

`start(...)` records the job and the process that runs it (panel.models.imports.ImportWorker) and runs
`work(job_id, progress)` in a thread with an app context. `work` does the parsing and the writing in its own
transaction and returns a summary message, or raises ImportFailed with the per-line errors (nothing
written). Progress and a heartbeat are written through a separate short connection; on SQLite, while the
import holds the write lock, a progress write that cannot get the lock is skipped, not waited for, and the
connection's normal lock wait is restored before it goes back to the pool.

A job whose process died (kill -9, a restart) cannot end itself: `reap` marks it failed, with a message, the
next time someone looks at it (the status fragment, the recent imports list).
"""

import os
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta

from flask import current_app
from flask_login import current_user
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from panel.extensions import db
from panel.models.imports import ImportWorker
from panel.models.system import ImportJob
from panel.models.types import utcnow

# A progress write waits at most this long for SQLite's lock (the import itself may hold it).
PROGRESS_WAIT_MS = 50
# The worker writes a heartbeat this often; a job on another host without one for STALE_AFTER is dead.
HEARTBEAT_SECONDS = 10
STALE_AFTER = timedelta(minutes=10)
DIED_MESSAGE = (
    "The import stopped before it finished: the process running it ended (a restart or a crash). "
    "Nothing was imported; start the import again."
)
HOST = socket.gethostname()[:255]

# The jobs this process is running right now (a job of this pid that is not here has lost its thread).
_running: set[int] = set()


class ImportFailed(Exception):
    """The import wrote nothing; `errors` says why, line by line."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


def _set(job_id: int, **values) -> None:
    """Update the job row outside the import's transaction (best effort while SQLite is locked)."""
    final = values.get("status") in ("done", "failed")
    _write(update(ImportJob).where(ImportJob.id == job_id).values(**values), final=final)


def _write(stmt, *, final: bool = False) -> None:
    """Run one statement on a short connection of its own; only a final status write may raise.

    On SQLite the connection's lock wait is shortened for this statement (set before its transaction
    begins) and restored before the connection goes back to the pool: a setting made for one job never
    leaks into other requests.
    """
    engine = db.engine
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection if engine.dialect.name == "sqlite" and not final else None
            previous = _busy_timeout(raw, PROGRESS_WAIT_MS) if raw is not None else None
            try:
                conn.execute(stmt)
                conn.commit()
            finally:
                if previous is not None:
                    conn.rollback()
                    _busy_timeout(raw, previous)
    except Exception:  # noqa: BLE001 - progress is advisory; the final status is written after the import
        if final:
            raise


def _busy_timeout(raw, milliseconds: int) -> int:
    """Set SQLite's lock wait on a driver connection; returns the previous value."""
    cursor = raw.cursor()
    try:
        previous = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout={int(milliseconds)}")
    finally:
        cursor.close()
    return int(previous)


def _process_started(pid: int) -> str:
    """The start time of process `pid` as the kernel counts it ('' where /proc is not available)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # Field 22; the command name (field 2) may hold spaces, so count from its closing parenthesis.
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def start(
    kind: str,
    *,
    company_id: int,
    target_id: int | None,
    target_label: str,
    filename: str,
    mode: str,
    work: Callable[[int, Callable[[int, int], None]], str],
    synchronous: bool | None = None,
    on_end: Callable[[int, str], None] | None = None,
    before_run: Callable[[int], None] | None = None,
) -> ImportJob:
    """Create the job and run `work` (in a thread unless synchronous, which tests and small files use).

    `before_run(job_id)` runs once the job is recorded, before the work starts (e.g. to link a kept upload);
    `on_end(job_id, status)` runs after the outcome is recorded (e.g. to drop a kept upload on success).
    """
    user_id = getattr(current_user, "id", None)
    job = ImportJob(
        company_id=company_id,
        user_id=user_id,
        kind=kind,
        target_id=target_id,
        target_label=target_label,
        filename=filename[:255],
        mode=mode,
        status="queued",
    )
    db.session.add(job)
    db.session.flush()
    pid = os.getpid()
    db.session.add(ImportWorker(job_id=job.id, host=HOST, pid=pid, started=_process_started(pid)))
    job_id = job.id
    _running.add(job_id)  # before the commit: a look at the job from another request never finds it dead
    try:
        db.session.commit()
    except BaseException:
        _running.discard(job_id)
        raise
    if before_run is not None:
        before_run(job_id)
    app = current_app._get_current_object()
    if synchronous is None:
        synchronous = app.config.get("IMPORTS_SYNCHRONOUS", False)

    def run() -> None:
        # A POST context: the import's transaction is a write transaction from its start (panel.txn).
        with app.app_context(), app.test_request_context(method="POST"):
            from flask_login import login_user

            from panel.models import User

            user = db.session.get(User, user_id) if user_id else None
            if user is not None:
                login_user(user)  # audit entries name the user who started the import
            stop = threading.Event()
            beat = threading.Thread(target=_heartbeat, args=(app, job_id, stop), daemon=True)
            beat.start()

            def progress(done: int, total: int) -> None:
                _set(job_id, status="parsing", done=done, total=total)

            status = "failed"
            try:
                message = work(job_id, progress)
                _set(job_id, status="done", message=message, errors=[], finished_at=utcnow())
                status = "done"
            except ImportFailed as exc:
                db.session.rollback()
                _set(job_id, status="failed", message=exc.message, errors=exc.errors, finished_at=utcnow())
            except Exception as exc:  # noqa: BLE001 - an unexpected failure must still end the job
                db.session.rollback()
                app.logger.exception("import %s failed", job_id)
                _set(
                    job_id,
                    status="failed",
                    message=f"The import failed: {exc}",
                    errors=[],
                    finished_at=utcnow(),
                )
            finally:
                stop.set()
                _running.discard(job_id)
                db.session.remove()
            if on_end is not None:
                try:
                    on_end(job_id, status)
                    db.session.commit()
                except Exception:  # noqa: BLE001 - the import's outcome is recorded; this is tidying
                    db.session.rollback()
                    app.logger.exception("after import %s", job_id)
                finally:
                    db.session.remove()

    if synchronous:
        # The caller's session must not hold SQLite's writer lock while the job (another session) writes.
        db.session.rollback()
        run()
        db.session.expire_all()
    else:
        threading.Thread(target=run, name=f"import-{job_id}", daemon=True).start()
    return db.session.get(ImportJob, job_id)


def _heartbeat(app, job_id: int, stop: threading.Event) -> None:
    """Write the job's heartbeat every HEARTBEAT_SECONDS until the job ends (best effort)."""
    while not stop.wait(HEARTBEAT_SECONDS):
        with app.app_context():
            stmt = update(ImportWorker).where(ImportWorker.job_id == job_id).values(heartbeat_at=utcnow())
            _write(stmt)


def mark_writing(job_id: int, total: int) -> None:
    """Tell the progress bar that parsing is over and the rows are being written."""
    _set(job_id, status="writing", done=total, total=total)


def _alive(worker: ImportWorker | None, job: ImportJob) -> bool:
    """Whether the process that runs `job` is still running it."""
    now = utcnow()
    if worker is None:  # a job recorded without its worker (an older panel): only its age tells
        return now - job.created_at < STALE_AFTER
    if worker.host != HOST:
        return now - worker.heartbeat_at < STALE_AFTER
    if worker.pid == os.getpid():
        return job.id in _running
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user: it exists
    started = _process_started(worker.pid)
    return not (started and worker.started and started != worker.started)


def reap(jobs: Iterable[ImportJob]) -> None:
    """Mark failed, with a message, every running job among `jobs` whose process is gone."""
    running = {job.id: job for job in jobs if job.running}
    if not running:
        return
    workers = {
        w.job_id: w for w in db.session.scalars(select(ImportWorker).where(ImportWorker.job_id.in_(running)))
    }
    dead = [job_id for job_id, job in running.items() if not _alive(workers.get(job_id), job)]
    for job_id in dead:
        values = {"status": "failed", "message": DIED_MESSAGE, "errors": [], "finished_at": utcnow()}
        stmt = (
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.status.notin_(("done", "failed")))
            .values(**values)
        )
        _write(stmt, final=True)
        # Read back on a connection of its own (the page's read transaction may not see it): a job that ended
        # between the page's read and this check keeps its own outcome, only a dead one says it died.
        columns = (ImportJob.status, ImportJob.message, ImportJob.errors, ImportJob.finished_at)
        with db.engine.connect() as conn:
            row = conn.execute(select(*columns).where(ImportJob.id == job_id)).one()
        for column, value in zip(columns, row, strict=True):
            set_committed_value(running[job_id], column.key, value)


def recent_jobs(kind: str, target_id: int, limit: int = 10) -> list[ImportJob]:
    """The latest imports of one kind into one object that the user may see, newest first."""
    from panel.scope import scoped

    jobs = db.session.scalars(
        scoped(ImportJob)
        .where(ImportJob.kind == kind, ImportJob.target_id == target_id)
        .order_by(ImportJob.id.desc())
        .limit(limit)
    ).all()
    reap(jobs)
    return jobs
