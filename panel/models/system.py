"""The Traffic Rules manager's runs and its lease (SPEC §6)."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from panel.extensions import db
from panel.models.types import UTCDateTime, utcnow


class ManagerRun(db.Model):
    """One run of the manager: when, how long, what it did, and the error if it failed."""

    __tablename__ = "manager_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column()
    # ok | error | skipped (another process held the lock)
    outcome: Mapped[str] = mapped_column(String(20), default="running")
    error: Mapped[str] = mapped_column(Text, default="")
    rules_expired: Mapped[int] = mapped_column(default=0)
    calls_expired: Mapped[int] = mapped_column(default=0)
    quality_rows: Mapped[int] = mapped_column(default=0)
    snapshot_published: Mapped[bool] = mapped_column(default=False)
    # The data version the run saw (see panel.manager): workers rebuild their snapshot when it moves.
    data_version: Mapped[str] = mapped_column(String(120), default="")
    host: Mapped[str] = mapped_column(String(120), default="")


class ManagerLease(db.Model):
    """A named lease with an expiry: the manager's lock on SQLite (PostgreSQL uses an advisory lock)."""

    __tablename__ = "manager_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportJob(db.Model):
    """A CSV import running in the background, with its progress and its per-line errors."""

    __tablename__ = "import_jobs"
    __owner__ = "company_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[int | None] = mapped_column()
    target_label: Mapped[str] = mapped_column(String(255), default="")
    filename: Mapped[str] = mapped_column(String(255), default="")
    mode: Mapped[str] = mapped_column(String(20), default="")
    # queued | parsing | writing | done | failed
    status: Mapped[str] = mapped_column(String(20), default="queued")
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list | None] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def running(self) -> bool:
        """True until the job is done or failed."""
        return self.status not in ("done", "failed")

    @property
    def percent(self) -> int:
        """Progress in percent, for the progress bar."""
        if not self.total:
            return 0 if self.running else 100
        return min(100, int(self.done * 100 / self.total))
