"""Drain and restore terminators (SPEC §5 step 7): an operator's temporary stop with a reason and an end.

A drained account, or every account of a drained client, is rejected by routing with the reason `drained`.
Each drain and restore writes an audit entry (who, why, until when) in the caller's transaction; the audit
entry is also what makes the Traffic Rules manager publish a new snapshot, so a drain takes effect at its next
run like any edit. `restore_expired` is called by every manager run and restores what reached its end time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from panel import writes
from panel.extensions import db
from panel.models import Account, Client
from panel.models.types import utcnow

DRAIN_FIELDS = ("drained_at", "drained_until", "drained_reason", "drained_by")
REASON_MAX = 500


class DrainError(ValueError):
    """The drain was refused (a reason is missing, the end is in the past); nothing changed."""


def _fields(obj) -> dict:
    """The drain fields of an account or client as an audit state (times as ISO text)."""
    values = {key: getattr(obj, key) for key in DRAIN_FIELDS}
    return {key: v.isoformat() if isinstance(v, datetime) else v for key, v in values.items()}


def drain(
    obj: Account | Client, reason: str, until: datetime | None, user, now: datetime | None = None
) -> None:
    """Drain the account or client now, with a reason and an optional end; adds the audit entry."""
    now = now or utcnow()
    reason = " ".join((reason or "").split())[:REASON_MAX]
    if not reason:
        raise DrainError("Say why it is drained: the reason is shown to everyone who sees it.")
    if until is not None and until <= now:
        raise DrainError("The end time is already past: leave it empty or choose a later moment.")
    note = f"drained: {reason}" + (f" (until {until:%Y-%m-%d %H:%M} UTC)" if until else "")
    with writes.change(obj, action="drain", state=_fields, note=note, user=user, commit_now=False):
        obj.drained_at = now
        obj.drained_until = until
        obj.drained_reason = reason
        obj.drained_by = (getattr(user, "username", "") or "system")[:80]


def restore(obj: Account | Client, user, note: str = "") -> None:
    """End the drain of the account or client; adds the audit entry."""
    note = note or f"restored (was: {obj.drained_reason})"
    with writes.change(obj, action="restore", state=_fields, note=note, user=user, commit_now=False):
        obj.drained_at = obj.drained_until = None
        obj.drained_reason = obj.drained_by = ""


def restore_expired(now: datetime, user) -> int:
    """Restore every account and client whose drain reached its end time, one audit entry each (no commit)."""
    count = 0
    for model in (Account, Client):
        stmt = select(model).where(model.drained_at.is_not(None), model.drained_until <= now)
        for obj in db.session.scalars(stmt).all():
            restore(obj, user, note=f"drain ended at {obj.drained_until:%Y-%m-%d %H:%M} UTC; restored")
            count += 1
    if count:
        db.session.flush()
    return count


@dataclass(frozen=True, slots=True)
class Drained:
    """One drained object as the home page lists it."""

    kind: str  # "account" or "client"
    id: int
    label: str
    client_id: int
    reason: str
    drained_at: datetime
    drained_until: datetime | None
    drained_by: str


def drained_objects(company_ids) -> list[Drained]:
    """The drained accounts and clients of these companies, most recently drained first."""
    ids = list(company_ids)
    if not ids:
        return []
    found: list[Drained] = []
    clients = db.session.execute(
        select(Client).where(Client.company_id.in_(ids), Client.drained_at.is_not(None))
    ).scalars()
    for client in clients:
        found.append(
            Drained(
                "client",
                client.id,
                client.name,
                client.id,
                client.drained_reason,
                client.drained_at,
                client.drained_until,
                client.drained_by,
            )
        )
    accounts = db.session.execute(
        select(Account, Client.name)
        .join(Client, Account.client_id == Client.id)
        .where(Client.company_id.in_(ids), Account.drained_at.is_not(None))
    ).all()
    for account, client_name in accounts:
        found.append(
            Drained(
                "account",
                account.id,
                f"{client_name} / {account.name}",
                account.client_id,
                account.drained_reason,
                account.drained_at,
                account.drained_until,
                account.drained_by,
            )
        )
    found.sort(key=lambda d: (d.drained_at, d.kind, d.id), reverse=True)
    return found
