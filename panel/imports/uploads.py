"""Uploaded files kept server-side for a replace preview's confirmation and for retrying a failed import.

A kept file is found by a random token and only by users of the company that uploaded it, for the same kind
of import into the same object. It is bounded: at most MAX_BYTES each (the upload limit applies first), at
most PER_COMPANY files and TOTAL_BYTES per company (the oldest go first), and at most MAX_AGE old.
"""

import secrets
from datetime import timedelta

from flask_login import current_user
from sqlalchemy import delete, select

from panel.extensions import db
from panel.models.imports import ImportUpload
from panel.models.types import utcnow

MAX_AGE = timedelta(hours=24)
PER_COMPANY = 20
MAX_BYTES = 64 * 1024 * 1024
TOTAL_BYTES = 256 * 1024 * 1024


def keep(
    kind: str, target_id: int | None, company_id: int, filename: str, mode: str, data: bytes, options: dict
) -> ImportUpload:
    """Store the file and return its row (its `token` goes into the preview or retry form)."""
    if len(data) > MAX_BYTES:
        raise ValueError("file too large to keep")
    purge(company_id, len(data))
    upload = ImportUpload(
        token=secrets.token_urlsafe(32),
        company_id=company_id,
        user_id=getattr(current_user, "id", None),
        kind=kind,
        target_id=target_id,
        filename=(filename or "")[:255],
        mode=mode,
        options=options,
        size=len(data),
        data=data,
    )
    db.session.add(upload)
    db.session.commit()
    return upload


def find(token: str, kind: str, target_id: int | None) -> ImportUpload | None:
    """The kept file with this token, for this import, visible to the current user; None otherwise."""
    from panel.scope import user_company_ids

    if not token or len(token) > 64:
        return None
    upload = db.session.scalar(
        select(ImportUpload).where(
            ImportUpload.token == token,
            ImportUpload.kind == kind,
            ImportUpload.target_id == target_id,
            ImportUpload.company_id.in_(user_company_ids()),
            ImportUpload.created_at > utcnow() - MAX_AGE,
        )
    )
    return upload


def for_job(job_id: int) -> ImportUpload | None:
    """The kept file of a (failed) job, for its retry button."""
    from panel.scope import user_company_ids

    rows = db.session.scalars(
        select(ImportUpload)
        .where(
            ImportUpload.company_id.in_(user_company_ids()),
            ImportUpload.created_at > utcnow() - MAX_AGE,
        )
        .order_by(ImportUpload.id.desc())
        .limit(PER_COMPANY)
    )
    return next((u for u in rows if (u.options or {}).get("job_id") == job_id), None)


def remember_job(upload_id: int, job_id: int, retry_url: str) -> None:
    """Note which job imports the kept file and where its retry goes."""
    upload = db.session.get(ImportUpload, upload_id)
    if upload is not None:
        upload.options = {**(upload.options or {}), "job_id": job_id, "retry_url": retry_url}
        db.session.commit()


def drop(upload_id: int) -> None:
    """Forget a kept file (its import is done)."""
    db.session.execute(delete(ImportUpload).where(ImportUpload.id == upload_id))


def purge(company_id: int, incoming: int = 0) -> None:
    """Drop files older than MAX_AGE, then the company's oldest until one more of `incoming` bytes fits."""
    db.session.execute(delete(ImportUpload).where(ImportUpload.created_at <= utcnow() - MAX_AGE))
    kept = db.session.execute(
        select(ImportUpload.id, ImportUpload.size)
        .where(ImportUpload.company_id == company_id)
        .order_by(ImportUpload.id.desc())
    ).all()
    count, total, drop_ids = 1, incoming, []
    for upload_id, size in kept:  # newest first: keep while both bounds hold
        if count < PER_COMPANY and total + size <= TOTAL_BYTES:
            count, total = count + 1, total + size
        else:
            drop_ids.append(upload_id)
    if drop_ids:
        db.session.execute(delete(ImportUpload).where(ImportUpload.id.in_(drop_ids)))
