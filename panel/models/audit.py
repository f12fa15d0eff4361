"""Audit entries: who changed what, when, with the state before and after (SPEC §8)."""

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from panel.extensions import db
from panel.models.types import UTCDateTime, utcnow


class AuditEntry(db.Model):
    """One create, update or delete of one object; written in the same transaction as the change."""

    __tablename__ = "audit_entries"
    __owner__ = "company_id"
    __table_args__ = (
        Index("ix_audit_entries_object_type_object_id", "object_type", "object_id"),
        Index("ix_audit_entries_client_id_at", "client_id", "at"),
        Index("ix_audit_entries_company_id_at", "company_id", "at"),
        Index("ix_audit_entries_at", "at", "id"),  # the log's order (keyset pages)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # No foreign keys to users or objects: the entry outlives what it describes.
    user_id: Mapped[int | None] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(80), default="")
    # The company that owns the object (scopes who may read the entry).
    company_id: Mapped[int | None] = mapped_column()
    # The client the object belongs to (a client, its accounts), for the client's change history.
    client_id: Mapped[int | None] = mapped_column()
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column()
    object_label: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(20))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")

    user = relationship("User", primaryjoin="foreign(AuditEntry.user_id) == User.id", viewonly=True)
