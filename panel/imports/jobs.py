"""Run an import in a background thread so the page stays usable; progress lives in the import_jobs row.

`start(...)` records the job and runs `work(job_id, progress)` in a thread with an app context. `work` does
the parsing and the writing in its own transaction and returns a summary message, or raises ImportFailed with
the per-line errors (nothing written). Progress is written through a separate short connection; on SQLite,
while the import holds the write lock, a progress write that cannot get the lock is skipped, not waited for.
"""

import threading
from collections.abc import Callable

from flask import current_app
from flask_login import current_user
from sqlalchemy import update

from panel.extensions import db
from panel.models.system import ImportJob
from panel.models.types import utcnow


class ImportFailed(Exception):
    """The import wrote nothing; `errors` says why, line by line."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


def _set(job_id: int, **values) -> None:
    """Update the job row outside the import's transaction (best effort while SQLite is locked)."""
    engine = db.engine
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout=50")
            conn.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))
            conn.commit()
    except Exception:  # noqa: BLE001 - progress is advisory; the final status is written after the import
        if values.get("status") in ("done", "failed"):
            raise


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
) -> ImportJob:
    """Create the job and run `work` (in a thread unless synchronous, which tests and small files use)."""
    job = ImportJob(
        company_id=company_id,
        user_id=getattr(current_user, "id", None),
        kind=kind,
        target_id=target_id,
        target_label=target_label,
        filename=filename[:255],
        mode=mode,
        status="queued",
    )
    db.session.add(job)
    db.session.commit()
    job_id = job.id
    app = current_app._get_current_object()
    user_id = getattr(current_user, "id", None)
    if synchronous is None:
        synchronous = app.config.get("IMPORTS_SYNCHRONOUS", False)

    def run() -> None:
        with app.app_context(), app.test_request_context():
            from flask_login import login_user

            from panel.models import User

            user = db.session.get(User, user_id) if user_id else None
            if user is not None:
                login_user(user)  # audit entries name the user who started the import

            def progress(done: int, total: int) -> None:
                _set(job_id, status="parsing", done=done, total=total)

            try:
                message = work(job_id, progress)
                _set(job_id, status="done", message=message, errors=[], finished_at=utcnow())
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
                db.session.remove()

    if synchronous:
        run()
        db.session.expire_all()
    else:
        threading.Thread(target=run, name=f"import-{job_id}", daemon=True).start()
    return db.session.get(ImportJob, job_id)


def mark_writing(job_id: int, total: int) -> None:
    """Tell the progress bar that parsing is over and the rows are being written."""
    _set(job_id, status="writing", done=total, total=total)
