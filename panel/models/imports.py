"""What the CSV import pipeline keeps besides the job rows: who runs a job, and uploads kept for a retry.

`ImportWorker` names the process running an import job (host, pid and the process's start time) and when it
last showed life, so a job whose process died is marked failed at the next look instead of staying
"writing" forever. `ImportUpload` keeps an uploaded file server-side, keyed by a random token and scoped to
a company, for the replace preview's confirmation and for retrying a failed import; bounded in size and age
(panel.imports.uploads).
"""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from panel.extensions import db
from panel.models.types import UTCDateTime, utcnow


class ImportWorker(db.Model):
    """The process running one import job, and its heartbeat."""

    __tablename__ = "import_workers"

    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(default=0)
    # The process's start time as the kernel counts it: a recycled pid does not pass for the worker.
    started: Mapped[str] = mapped_column(String(40), default="")
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportUpload(db.Model):
    """An uploaded CSV file kept for a preview's confirmation or a retry; found by its token."""

    __tablename__ = "import_uploads"
    __owner__ = "company_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[int | None] = mapped_column()
    filename: Mapped[str] = mapped_column(String(255), default="")
    mode: Mapped[str] = mapped_column(String(20), default="")
    # The import's other choices (e.g. the rates' default effective_from), as the form sent them.
    options: Mapped[dict | None] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(default=0)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
