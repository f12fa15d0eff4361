"""Helpers for the reference-data tests: CSV uploads and audit lookups."""

import io

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import AuditEntry


def upload(text: str, filename: str = "deck.csv") -> tuple[io.BytesIO, str]:
    """A file for a test client's multipart form."""
    return io.BytesIO(text.encode("utf-8")), filename


def audit_entries(object_type: str, action: str | None = None) -> list[AuditEntry]:
    """The audit entries about one type of object, oldest first."""
    stmt = select(AuditEntry).where(AuditEntry.object_type == object_type).order_by(AuditEntry.id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(db.session.scalars(stmt))


@pytest.fixture
def text_of():
    """`text_of(response)`: the response body as text."""
    return lambda response: response.get_data(as_text=True)
