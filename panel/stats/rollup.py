"""The hourly and daily call figures (`call_hours`, `call_days`): kept with the call records, read by the
statistics totals.

The totals under the calls list add up every call of the filter: 1.2 million calls in a week's window took 3.6
to 4.9 s. `call_hours` holds the same sums per hour (by start, UTC), originator client, terminator client and
answered, and `call_days` per UTC day, so the totals of whole days read a few rows per day, the whole hours
at a window's edges a few rows per hour (panel.stats.queries).

The figures change in the transaction that changes the calls:

- `add_stored(rows, stored)`: the CDR ingest (panel.cdrs) after its INSERT, for the rows it stored;
- `add(rows, sign=-1)`: after a Core DELETE of calls (an account deleted with its statistics,
  panel.accounts.service);
- calls written through the ORM (tests, scripts) are followed by the mapper events below;
- `rebuild()`: the figures computed afresh from every call (after a bulk load, or to repair them).

Every change is written to both levels (the hours first, then the days, in one transaction). Each upsert adds
to the row of its key (`calls = calls + :calls`), so concurrent batches add up, and keys are written in one
order (sorted, hours before days) so two batches never wait for each other crosswise.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import case, delete, event, func, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite

from panel.extensions import db
from panel.models import CallDay, CallHour, CallStat

KEY = ("hour", "orig_client_id", "term_client_id", "answered")
SUMS = ("calls", "seconds", "revenue", "cost")


def hour_of(at: datetime) -> datetime:
    """The start of the UTC hour holding `at` (a naive time is UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def day_of(at: datetime) -> datetime:
    """The start (midnight, UTC) of the UTC day holding `at` (a naive time is UTC)."""
    return hour_of(at).replace(hour=0)


# The levels of figures: the table, its period column, the start of the period holding a time.
LEVELS = ((CallHour, "hour", hour_of), (CallDay, "day", day_of))


def _key_and_sums(row: Mapping) -> tuple[tuple, tuple]:
    """A call's key and what it adds (its columns as a mapping; unset values are the columns' defaults)."""
    answered = bool(row.get("answered"))
    key = (
        hour_of(row["start_at"]),
        row.get("orig_client_id") or 0,
        row.get("term_client_id") or 0,
        answered,
    )
    seconds = (row.get("duration") or 0) if answered else 0
    return key, (1, seconds, Decimal(row.get("customer_charge") or 0), Decimal(row.get("vendor_cost") or 0))


def group(rows: Iterable[Mapping], sign: int = 1) -> dict[tuple, list]:
    """The calls' sums per key, times `sign`."""
    groups: dict[tuple, list] = {}
    for row in rows:
        key, sums = _key_and_sums(row)
        total = groups.setdefault(key, [0, 0, Decimal(0), Decimal(0)])
        for i, value in enumerate(sums):
            total[i] += value * sign
    return groups


def _upsert(dialect: str, model, period: str):
    """INSERT ... ON CONFLICT (key) DO UPDATE adding the sums, for this database and level."""
    table = model.__table__
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=[period, *KEY[1:]], set_={name: table.c[name] + stmt.excluded[name] for name in SUMS}
    )


def _coarser(groups: Mapping[tuple, list], start_of) -> dict[tuple, list]:
    """Hourly groups added up per longer period (`start_of` gives the period of an hour)."""
    coarse: dict[tuple, list] = {}
    for key, sums in groups.items():
        total = coarse.setdefault((start_of(key[0]), *key[1:]), [0, 0, Decimal(0), Decimal(0)])
        for i, value in enumerate(sums):
            total[i] += value
    return coarse


def write(groups: Mapping[tuple, list], connection=None) -> None:
    """Add the (hourly) groups' sums to their rows of every level (created when new), keys in sorted order."""
    if not groups:
        return
    connection = connection if connection is not None else db.session.connection()
    for model, period, start_of in LEVELS:
        level = groups if period == "hour" else _coarser(groups, start_of)
        params = [
            {
                period: key[0],
                **dict(zip(KEY[1:], key[1:], strict=True)),
                **dict(zip(SUMS, level[key], strict=True)),
            }
            for key in sorted(level)
        ]
        connection.execute(_upsert(connection.dialect.name, model, period), params)


def add(rows: Iterable[Mapping], sign: int = 1) -> None:
    """Add calls (their columns as mappings) to the figures, or take them out with `sign=-1`."""
    write(group(rows, sign))


def add_stored(rows: list[dict], stored: set[tuple[int, str]]) -> None:
    """The CDR ingest's rows that its INSERT stored ((company id, call id) pairs), added to the figures."""
    add(row for row in rows if (row["company_id"], row["call_id"]) in stored)


def _truncated(dialect: str, column, period: str):
    """SQL for the start of the UTC hour or day holding `column`."""
    if dialect == "postgresql":
        # Truncated in UTC whatever the session's time zone.
        return func.timezone("UTC", func.date_trunc(period, func.timezone("UTC", column)))
    # SQLite keeps UTC times as text in this form (UTCDateTime).
    return func.strftime(
        "%Y-%m-%d %H:00:00.000000" if period == "hour" else "%Y-%m-%d 00:00:00.000000", column
    )


def rebuild() -> int:
    """Compute every row afresh from the calls (one INSERT ... SELECT ... GROUP BY per level: the hours from
    the calls, the days from the hours); returns the hourly rows written.

    For a bulk load that bypassed the ingest, or to repair the figures. The caller commits.
    """
    dialect = db.session.get_bind().dialect.name
    hour = _truncated(dialect, CallStat.start_at, "hour")
    answered = CallStat.answered
    source = select(
        hour,
        func.coalesce(CallStat.orig_client_id, 0),
        func.coalesce(CallStat.term_client_id, 0),
        answered,
        func.count(),
        func.coalesce(func.sum(case((answered, CallStat.duration), else_=0)), 0),
        func.coalesce(func.sum(CallStat.customer_charge), 0),
        func.coalesce(func.sum(CallStat.vendor_cost), 0),
    ).group_by(hour, CallStat.orig_client_id, CallStat.term_client_id, answered)
    # Written in period order, the rows of an hour (a day) lie together as the ingest leaves them: a range of
    # periods reads a few pages, not one page per row (PostgreSQL's hashed GROUP BY gives them in any order).
    source = source.order_by(hour)
    db.session.execute(delete(CallHour))
    db.session.execute(insert(CallHour).from_select([*KEY, *SUMS], source))
    day = _truncated(dialect, CallHour.hour, "day")
    days = select(
        day,
        CallHour.orig_client_id,
        CallHour.term_client_id,
        CallHour.answered,
        *(func.sum(getattr(CallHour, name)) for name in SUMS),
    ).group_by(day, CallHour.orig_client_id, CallHour.term_client_id, CallHour.answered)
    days = days.order_by(day)
    db.session.execute(delete(CallDay))
    db.session.execute(insert(CallDay).from_select(["day", *KEY[1:], *SUMS], days))
    return db.session.scalar(select(func.count()).select_from(CallHour)) or 0


# --- calls written through the ORM -------------------------------------------------------------------------

# The columns a DELETE ... RETURNING gives for `add(rows, sign=-1)`.
RETURNED = (
    CallStat.start_at,
    CallStat.orig_client_id,
    CallStat.term_client_id,
    CallStat.answered,
    CallStat.duration,
    CallStat.vendor_cost,
)
_COLUMNS = (
    "start_at",
    "orig_client_id",
    "term_client_id",
    "answered",
    "duration",
    "customer_charge",
    "vendor_cost",
)


def _values(target: CallStat, old: bool = False) -> dict:
    """The call's columns as stored now, or (`old`) as they were before the pending change."""
    state = inspect(target)
    values = {}
    for name in _COLUMNS:
        history = state.attrs[name].history
        if old and history.deleted:
            values[name] = history.deleted[0]
        elif not old and history.added:
            values[name] = history.added[0]
        else:
            values[name] = getattr(target, name)
    return values


@event.listens_for(CallStat, "after_insert")
def _inserted(_mapper, connection, target: CallStat) -> None:
    write(group([_values(target)]), connection)


@event.listens_for(CallStat, "after_update")
def _updated(_mapper, connection, target: CallStat) -> None:
    state = inspect(target)
    if any(state.attrs[name].history.has_changes() for name in _COLUMNS):
        groups = group([_values(target, old=True)], -1)
        for key, sums in group([_values(target)]).items():
            total = groups.setdefault(key, [0, 0, Decimal(0), Decimal(0)])
            for i, value in enumerate(sums):
                total[i] += value
        write(groups, connection)


@event.listens_for(CallStat, "before_delete")
def _deleted(_mapper, connection, target: CallStat) -> None:
    write(group([_values(target, old=True)], -1), connection)
