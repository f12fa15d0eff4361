"""The import jobs the tests start: the latest one, and the errors of one that failed."""

from sqlalchemy import select

from panel.extensions import db
from panel.models.system import ImportJob


def last_job() -> ImportJob:
    """The latest import job, read afresh."""
    db.session.expire_all()
    return db.session.scalars(select(ImportJob).order_by(ImportJob.id.desc())).first()


def failed_job_errors() -> list[str]:
    """The per-line errors of the latest import job, which must have failed."""
    job = last_job()
    assert job.status == "failed", (job.status, job.message)
    return job.errors
