"""The audit mechanism: one function records who changed what, in the same transaction as the change.

Pattern in a view::

    before = audit.state(account)
    form.populate_obj(account)
    audit.record("update", account, before=before)
    db.session.commit()

`record` adds the entry to the session; the caller's commit writes the change and its entry together, and a
rollback drops both.
"""

import enum
from datetime import date, datetime
from decimal import Decimal

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import inspect

from panel import diffs
from panel.extensions import db
from panel.models import AuditEntry
from panel.scope import owner_of

# Never copied into an audit entry.
SECRET_FIELDS = {"password_hash", "password_encrypted", "token_hash"}


def _json(value):
    """A JSON-safe form of a column value."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def state(obj) -> dict:
    """The object's column values (secrets masked) plus whatever its `audit_extra()` adds."""
    mapper = inspect(obj).mapper
    data = {}
    for column in mapper.column_attrs:
        key = column.key
        if key in SECRET_FIELDS:
            data[key] = "(set)" if getattr(obj, key) else ""
        else:
            data[key] = _json(getattr(obj, key))
    extra = getattr(obj, "audit_extra", None)
    if callable(extra):
        data.update({k: _json(v) for k, v in extra().items()})
    refs = diffs.references(obj)
    if refs:
        data["_refs"] = refs  # names of the objects its ids point to, for a readable log
    return data


def owner(obj) -> tuple[int | None, int | None]:
    """(company id, client id) that an entry about `obj` belongs to: derived from the model's `__owner__`."""
    return owner_of(obj)


def label(obj) -> str:
    """A short human name for the object."""
    text = str(obj)
    if text.startswith("<"):
        text = f"{type(obj).__name__} {getattr(obj, 'id', '')}".strip()
    return text[:255]


def object_type(obj) -> str:
    """The object's type name in audit entries (the table name in the singular, e.g. `account`)."""
    return getattr(obj, "__audit_type__", None) or type(obj).__name__.lower()


def record(
    action: str, obj, *, before: dict | None = None, after: dict | None = None, note: str = "", user=None
):
    """Add an audit entry for `obj` to the session: action is create, update, delete (or a named action).

    `after` defaults to the object's current state (none for deletes). The session is flushed first so a new
    object has its id.
    """
    if action != "delete":
        db.session.flush()
        if after is None:
            after = state(obj)
    if user is None and has_request_context() and getattr(current_user, "is_authenticated", False):
        user = current_user
    company_id, client_id = owner(obj)
    entry = AuditEntry(
        user_id=getattr(user, "id", None),
        username=getattr(user, "username", "") or "system",
        company_id=company_id,
        client_id=client_id,
        object_type=object_type(obj),
        object_id=getattr(obj, "id", None),
        object_label=label(obj),
        action=action,
        before=before,
        after=after,
        note=note,
    )
    db.session.add(entry)
    return entry


def changes(entry: AuditEntry) -> list[tuple[str, object, object]]:
    """Field-by-field difference of an entry: (field, before, after) for every field that changed.

    Bookkeeping keys (`_refs`, `version`) are left out; `panel.diffs` gives the readable form.
    """
    before, after = entry.before or {}, entry.after or {}
    keys = sorted(k for k in set(before) | set(after) if not k.startswith("_") and k != "version")
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
