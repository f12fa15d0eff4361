"""Call records (CDRs, SPEC §7-§8): validate, rate at the call's start, store once, charge the balance.

Plain functions with no Flask request in them: `POST /api/v1/cdrs` and `bench/cdrs.py` both call `ingest()`.

- **Validation** first, for the whole batch: a bad record (or an account or rule outside the token's company
  scope) raises `CdrError` naming the record's index and field, and nothing of the batch is stored.
- **Rating**: the customer's rate table is the originator account's, else its client's originator default; the
  vendor's is the terminator account's, else its client's terminator default. The rate is the longest code
  prefixing the number among the rates effective at the call's start (SPEC §3). While this process's routing
  snapshot holds exactly the database's data (no panel change since the version it was built from, see
  `panel.manager.current_snapshot`), its rate tables answer, with no query at all; otherwise one query per
  rate table and batch reads the rates of every prefix of every number (`code IN (...)`), then each record
  takes the longest code, the latest effective_from. Billed seconds and charges come from `panel.billing`; an
  unanswered call costs nothing, an answered one its setup fee too. A record with no customer or vendor rate
  is still stored (the call happened), unpriced on that side, and listed as `unrated`.
- **Storing**: one `INSERT ... ON CONFLICT (company_id, call_id) DO NOTHING RETURNING call_id` for the batch
  (SQLite: rows; PostgreSQL: one JSON document expanded by `json_to_recordset`), so a repeated `call_id` is
  stored once and reported as a duplicate, also when two requests race: the unique index decides, and only
  the rows this statement inserted are charged. A call id is unique per company, the company whose token
  posted the record (without a token, the originator's company): another tenant's records are never matched,
  so a duplicate answer reveals nothing of them, and nobody can pre-empt another tenant's call ids.
- **Balance**: per originator client, `UPDATE clients SET balance = balance - total` in the same transaction
  (no read-modify-write). Rows are inserted in call id order and clients charged in id order, so concurrent
  batches take their locks in one order; a deadlock or lock failure that still happens runs the write again
  (`panel.txn.retrying`), and one that outlives the retries answers 503, never a 500.

CDRs write no audit entries: they are traffic, not panel edits (and an audit entry would also move the
manager's data version and rebuild every routing snapshot).
"""

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from sqlalchemy import any_, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError

from panel import billing, txn
from panel.extensions import db
from panel.models import CallStat, Client, Rate
from panel.models.types import utcnow
from panel.records import (  # noqa: F401 - MAX_BATCH and the errors are part of this module's interface
    MAX_BATCH,
    AccountInfo,
    CdrError,
    FieldError,
    RecordError,
    check_references,
    dialled_number,
    moment,
    object_id,
    optional_int,
    parse_records,
    seconds,
    text_id,
)
from panel.stats import rollup

# The query-parameter budget of one rate lookup (SQLite allows 32,766 variables; keep well below).
PREFIX_CHUNK = 5000
CDR_FIELDS = (
    "call_id",
    "orig_account_id",
    "term_account_id",
    "rule_id",
    "number",
    "start",
    "duration",
    "answered",
    "sip_code",
    "pdd",
)


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """One validated call record (one attempt to one terminator)."""

    call_id: str
    orig_account_id: int
    term_account_id: int | None
    rule_id: int | None
    number: str
    start: datetime
    duration: int
    answered: bool
    sip_code: int | None
    pdd_ms: int | None


@dataclass(frozen=True, slots=True)
class RateRow:
    """The columns of a rate that rating needs."""

    rate_table_id: int
    code: str
    rate: Decimal
    effective_from: datetime
    end: datetime | None
    setup_fee: Decimal
    min_time: int
    interval: int

    def effective_at(self, moment: datetime) -> bool:
        """effective_from <= moment < end."""
        return self.effective_from <= moment and (self.end is None or moment < self.end)


# The rate columns a RateRow holds, in its order.
_RATE_ROW_COLUMNS = tuple(getattr(Rate, f.name) for f in fields(RateRow))


@dataclass
class IngestResult:
    """What `ingest` did: records new, repeated, lacking a rate, and the amount charged."""

    received: int = 0
    stored: int = 0
    duplicates: list[str] = field(default_factory=list)
    unrated: list[str] = field(default_factory=list)
    charged: Decimal = Decimal(0)

    def as_json(self) -> dict:
        """The API answer."""
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "unrated": self.unrated,
            "charged": format(self.charged, "f"),
        }


def _answered(value) -> bool | None:
    """`answered`: true or false; None when absent (then it is `duration > 0`)."""
    if value is not None and not isinstance(value, bool):
        raise FieldError("must be true or false")
    return value


# (field, CdrRecord attribute, required, check): the checks of one record, in the order they are reported.
_CDR_CHECKS = (
    ("call_id", "call_id", True, text_id),
    ("orig_account_id", "orig_account_id", False, lambda v: object_id(v, required=True)),
    ("term_account_id", "term_account_id", False, lambda v: object_id(v, required=False)),
    ("rule_id", "rule_id", False, lambda v: object_id(v, required=False)),
    ("number", "number", True, dialled_number),
    ("start", "start", True, moment),
    ("duration", "duration", True, seconds),
    ("sip_code", "sip_code", False, lambda v: optional_int(v, 100, 699, "a SIP status code")),
    ("pdd", "pdd_ms", False, lambda v: optional_int(v, 0, 3_600_000, "milliseconds")),
    ("answered", "answered", False, _answered),
)


def _record(values: dict) -> CdrRecord:
    if values["answered"] is None:
        values["answered"] = values["duration"] > 0
    return CdrRecord(**values)


def parse(payload) -> list[CdrRecord]:
    """Validate a request body (one record or a list) into records; raises CdrError listing every problem."""
    return parse_records(payload, "call record", CDR_FIELDS, _CDR_CHECKS, _record)


# --- rate lookup ------------------------------------------------------------------------------------------


def prefixes(number: str) -> list[str]:
    """Every prefix of the number, longest first: the candidate codes of SPEC §3."""
    return [number[:length] for length in range(len(number), 0, -1)]


class RateLookup:
    """The rates of some rate tables for some numbers, loaded with one query per table, chosen per call.

    `load([(rate_table_id, number, moment), ...])` reads every rate whose code prefixes one of the numbers
    and that is effective at some moment of the batch; `find(rate_table_id, number, moment)` then picks the
    longest code effective at that moment, the latest effective_from among rows of that code.
    """

    def __init__(self) -> None:
        self._codes: dict[int, dict[str, list[RateRow]]] = {}

    def load(self, wanted: Iterable[tuple[int, str, datetime]]) -> "RateLookup":
        """Read the rates the given (table, number, moment) triples may need."""
        per_table: dict[int, tuple[set[str], list[datetime]]] = {}
        for table_id, number, at in wanted:
            codes, moments = per_table.setdefault(table_id, (set(), []))
            codes.update(prefixes(number))
            moments.append(at)
        postgres = db.engine.dialect.name == "postgresql"
        for table_id, (codes, moments) in per_table.items():
            by_code = self._codes.setdefault(table_id, {})
            earliest, latest = min(moments), max(moments)
            code_list = sorted(codes)
            # PostgreSQL takes the candidate codes as one array parameter (a statement with thousands of
            # parameters costs more to prepare than to run); SQLite binds a plain IN list, in chunks.
            chunk = len(code_list) or 1 if postgres else PREFIX_CHUNK
            for start in range(0, len(code_list), chunk):
                part = code_list[start : start + chunk]
                code_match = (
                    Rate.code == any_(func.string_to_array(bindparam("codes", ",".join(part)), ","))
                    if postgres
                    else Rate.code.in_(part)
                )
                stmt = select(*_RATE_ROW_COLUMNS).where(
                    Rate.rate_table_id == table_id,
                    code_match,
                    Rate.effective_from <= latest,
                    (Rate.end.is_(None)) | (Rate.end > earliest),
                )
                for row in db.session.execute(stmt):
                    by_code.setdefault(row.code, []).append(RateRow(*row))
        for by_code in self._codes.values():
            for rows in by_code.values():
                rows.sort(key=lambda r: r.effective_from, reverse=True)
        return self

    def find(self, rate_table_id: int | None, number: str, at: datetime) -> RateRow | None:
        """The rate for `number` at `at`: longest code first, then the latest effective_from."""
        if rate_table_id is None:
            return None
        by_code = self._codes.get(rate_table_id)
        if not by_code:
            return None
        for code in prefixes(number):
            for row in by_code.get(code, ()):
                if row.effective_at(at):
                    return row
        return None


class SnapshotRates:
    """Rate lookups in the routing snapshot's rate tables, used while they equal the database's.

    The snapshot keeps every rate with its validity (rates and fees in integer millionths, times as POSIX
    timestamps, see `panel.routing.snapshot.RateTableData`), so the answer is the one the database gives,
    without a query per batch.
    """

    def __init__(self, snapshot) -> None:
        self._tables = snapshot.rate_tables
        self._universe = snapshot.codes
        self._rows: dict[tuple, RateRow] = {}

    def load(self, _wanted) -> "SnapshotRates":
        """Nothing to read: the snapshot holds every rate."""
        return self

    def find(self, rate_table_id: int | None, number: str, at: datetime) -> RateRow | None:
        """The rate for `number` at `at`, as `RateLookup.find` answers it."""
        table = self._tables.get(rate_table_id) if rate_table_id else None
        if table is None:
            return None
        universe = self._universe
        codes = [p for p in (number[:i] for i in range(len(number), 0, -1)) if p in universe]
        found = table.lookup(codes, at.timestamp())
        if found is None:
            return None
        code, row = found
        key = (rate_table_id, code, row)
        rate_row = self._rows.get(key)
        if rate_row is None:
            rate_row = self._rows[key] = RateRow(
                rate_table_id,
                code,
                Decimal(row[0]).scaleb(-6),
                datetime.fromtimestamp(row[4], UTC),
                None if math.isinf(row[5]) else datetime.fromtimestamp(row[5], UTC),
                Decimal(row[1]).scaleb(-6),
                row[2],
                row[3],
            )
        return rate_row


def rate_source() -> "RateLookup | SnapshotRates":
    """The routing snapshot's rates when they are current (no panel change since it was built), else a
    lookup that reads the database."""
    from panel import manager

    snapshot = manager.current_snapshot()
    return SnapshotRates(snapshot) if snapshot is not None else RateLookup()


def find_rate(rate_table_id: int, number: str, at: datetime) -> RateRow | None:
    """The rate of one table for one number at one moment (SPEC §3), read from the database."""
    return RateLookup().load([(rate_table_id, number, at)]).find(rate_table_id, number, at)


# --- ingest -----------------------------------------------------------------------------------------------


# The columns of a stored record, in the order of the JSON batch below (created_at is the statement's).
_COLUMNS = (
    "company_id",
    "call_id",
    "orig_account_id",
    "orig_client_id",
    "term_account_id",
    "term_client_id",
    "rule_id",
    "number",
    "orig_code",
    "term_code",
    "start_at",
    "duration",
    "orig_billed",
    "term_billed",
    "customer_rate",
    "vendor_rate",
    "customer_charge",
    "vendor_cost",
    "answered",
    "sip_code",
    "pdd_ms",
)
# The whole batch goes as one JSON document that the database expands itself: the statement is the same text
# for every batch, so it is compiled and prepared once. (SQLAlchemy's dialect INSERT ... ON CONFLICT
# constructs have no cache key: they were compiled again for every batch, and the insert of each row's
# twenty values cost more than storing it.) PostgreSQL: a list of objects, typed by json_to_recordset,
# in (company, call id) order so that concurrent batches lock rows in one order.
_PG_INSERT = text(
    """
    INSERT INTO call_stats (
        company_id, call_id, orig_account_id, orig_client_id, term_account_id, term_client_id, rule_id,
        number, orig_code, term_code, start_at, duration, orig_billed, term_billed, customer_rate,
        vendor_rate, customer_charge, vendor_cost, answered, sip_code, pdd_ms, created_at
    )
    SELECT b.*, now() FROM json_to_recordset(CAST(:rows AS json)) AS b(
        company_id integer, call_id text, orig_account_id integer, orig_client_id integer,
        term_account_id integer, term_client_id integer, rule_id integer, number text, orig_code text,
        term_code text, start_at timestamptz, duration integer, orig_billed integer, term_billed integer,
        customer_rate numeric, vendor_rate numeric, customer_charge numeric, vendor_cost numeric,
        answered boolean, sip_code integer, pdd_ms integer
    )
    ORDER BY b.company_id, b.call_id
    ON CONFLICT (company_id, call_id) DO NOTHING
    RETURNING company_id, call_id
    """
)
# SQLite (one writer at a time: no lock order to keep): a list of arrays, each value already in the form
# SQLAlchemy would bind (see _sqlite_values); `WHERE true` tells SQLite's parser the ON CONFLICT is the
# upsert's.
_SQLITE_INSERT = text(
    f"""
    INSERT INTO call_stats ({", ".join(_COLUMNS)}, created_at)
    SELECT {", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_COLUMNS)))}, :created_at
    FROM json_each(:rows) WHERE true
    ON CONFLICT (company_id, call_id) DO NOTHING
    RETURNING company_id, call_id
    """  # noqa: S608 - the column names are the constants above, the values are parameters
).bindparams(bindparam("created_at", type_=CallStat.__table__.c.created_at.type))


_CHARGE_BALANCE = (
    update(Client.__table__)
    .where(Client.__table__.c.id == bindparam("client"))
    .values(balance=Client.__table__.c.balance - bindparam("total"))
)


def _json_value(value):
    """Decimals and times as text in the JSON batch (PostgreSQL reads them back exactly)."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


@cache
def _sqlite_converters() -> tuple:
    """(position, converter) of the columns whose values SQLAlchemy converts when it binds them on SQLite
    (times to text, money to millionths, rates to floating point): the columns' own bind processors."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    table = CallStat.__table__
    found = ((i, table.c[name].type._cached_bind_processor(dialect)) for i, name in enumerate(_COLUMNS))
    return tuple((i, convert) for i, convert in found if convert is not None)


def _sqlite_values(rows: list[dict]) -> str:
    """The rows as the JSON list of arrays _SQLITE_INSERT reads, values as SQLite stores them."""
    converters = _sqlite_converters()
    arrays = []
    for row in rows:
        values = [row[name] for name in _COLUMNS]
        for i, convert in converters:
            values[i] = convert(values[i])
        arrays.append(values)
    return json.dumps(arrays, separators=(",", ":"))


def _insert(rows: list[dict]) -> set[tuple[int, str]]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: the (company id, call id) pairs this statement stored."""
    if not rows:
        return set()
    connection = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        document = json.dumps(rows, default=_json_value, separators=(",", ":"))
        return {tuple(row) for row in connection.execute(_PG_INSERT, {"rows": document})}
    parameters = {"rows": _sqlite_values(rows), "created_at": utcnow()}
    return {tuple(row) for row in connection.execute(_SQLITE_INSERT, parameters)}


def rate(
    records: list[CdrRecord], accounts: dict[int, AccountInfo], company_id: int | None = None
) -> tuple[list[dict], list[str]]:
    """The call_stats rows for the records, and the call ids that found no customer or vendor rate.

    Each row belongs to `company_id` (the token's company), else to its originator's company.
    """
    wanted = []
    for rec in records:
        orig = accounts[rec.orig_account_id]
        if orig.orig_rate_table_id:
            wanted.append((orig.orig_rate_table_id, rec.number, rec.start))
        term = accounts.get(rec.term_account_id) if rec.term_account_id else None
        if term and term.term_rate_table_id:
            wanted.append((term.term_rate_table_id, rec.number, rec.start))
    lookup = rate_source().load(wanted)
    rows, unrated = [], []
    zero = Decimal(0)
    for rec in records:
        orig = accounts[rec.orig_account_id]
        term = accounts.get(rec.term_account_id) if rec.term_account_id else None
        customer = lookup.find(orig.orig_rate_table_id, rec.number, rec.start)
        vendor = lookup.find(term.term_rate_table_id, rec.number, rec.start) if term else None
        if customer is None or (term is not None and vendor is None):
            unrated.append(rec.call_id)
        billed_duration = rec.duration if rec.answered else 0
        row = {
            "company_id": company_id or orig.company_id,
            "call_id": rec.call_id,
            "orig_account_id": rec.orig_account_id,
            "orig_client_id": orig.client_id,
            "term_account_id": rec.term_account_id,
            "term_client_id": term.client_id if term else None,
            "rule_id": rec.rule_id,
            "number": rec.number,
            "orig_code": customer.code if customer else "",
            "term_code": vendor.code if vendor else "",
            "start_at": rec.start,
            "duration": rec.duration,
            "orig_billed": 0,
            "term_billed": 0,
            "customer_rate": customer.rate if customer else None,
            "vendor_rate": vendor.rate if vendor else None,
            "customer_charge": zero,
            "vendor_cost": zero,
            "answered": rec.answered,
            "sip_code": rec.sip_code,
            "pdd_ms": rec.pdd_ms,
        }
        if rec.answered:
            if customer:
                row["orig_billed"] = billing.billed_seconds(
                    billed_duration, customer.min_time, customer.interval
                )
                row["customer_charge"] = billing.charge(
                    billed_duration, customer.rate, customer.min_time, customer.interval, customer.setup_fee
                )
            if vendor:
                row["term_billed"] = billing.billed_seconds(billed_duration, vendor.min_time, vendor.interval)
                row["vendor_cost"] = billing.charge(
                    billed_duration, vendor.rate, vendor.min_time, vendor.interval, vendor.setup_fee
                )
        rows.append(row)
    return rows, unrated


def ingest(payload, *, company_id: int | None) -> IngestResult:
    """Validate, rate and store a request's records and charge the originators' balances; one transaction.

    `company_id` scopes the accounts and rules the records may name (None: any, for the bench and the CLI).
    Raises CdrError (nothing stored) for a bad batch.
    """
    records = parse(payload)
    accounts = check_references(
        [(i, r.orig_account_id, r.term_account_id, r.rule_id) for i, r in enumerate(records)], company_id
    )
    result = IngestResult(received=len(records))
    # A call id repeated inside the batch: the first one counts, the others are duplicates.
    seen: set[str] = set()
    unique = []
    for rec in records:
        if rec.call_id in seen:
            result.duplicates.append(rec.call_id)
        else:
            seen.add(rec.call_id)
            unique.append(rec)
    rows, unrated = rate(unique, accounts, company_id)
    # One lock order for every batch: rows by (company, call id) (the INSERT's ORDER BY), clients by id.

    def store() -> tuple[set[tuple[int, str]], dict[int, Decimal]]:
        stored = _insert(rows)
        rollup.add_stored(rows, stored)  # the statistics' hourly figures (panel.stats.rollup)
        totals: dict[int, Decimal] = defaultdict(Decimal)
        for row in rows:
            if (row["company_id"], row["call_id"]) in stored:
                totals[row["orig_client_id"]] += row["customer_charge"]
        charges = [{"client": cid, "total": totals[cid]} for cid in sorted(totals) if totals[cid]]
        if charges:
            # One statement per client, in id order (concurrent batches lock clients in the same order), sent
            # together: balance = balance - total, never a read-modify-write.
            db.session.connection().execute(_CHARGE_BALANCE, charges)
        db.session.commit()
        return stored, totals

    try:
        stored, totals = txn.retrying(store)
    except IntegrityError as exc:
        # An account or rule deleted between the check and the insert: nothing was stored.
        db.session.rollback()
        raise CdrError(
            [RecordError(None, None, "an account or rule was deleted meanwhile; send the records again")]
        ) from exc
    except Exception:
        db.session.rollback()
        raise
    stored_ids = {call_id for _company, call_id in stored}
    result.duplicates.extend(
        row["call_id"] for row in rows if (row["company_id"], row["call_id"]) not in stored
    )
    result.stored = len(stored)
    result.unrated = [call_id for call_id in unrated if call_id in stored_ids]
    result.charged = sum(totals.values(), Decimal(0))
    return result
