"""Validation shared by the switch's call records (`panel.cdrs`) and call events (`panel.livecalls`).

The field checks (call ids, database ids, moments, dialled numbers, durations) and the one loop that runs
them over a batch (`parse_records`), the errors that name a record's index and field, and the check of the
accounts and rules a batch names against the token's company scope (its statements built once per company
and process, see SCOPE_SECONDS). No Flask request in here (an app context: the statements are the app's);
both modules (and the API views) import it, and it imports neither of them.
"""

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, has_app_context
from sqlalchemy import Select, bindparam, event, select
from sqlalchemy.orm import Session, object_session

from panel.extensions import db
from panel.models import Account, Client, Company, RoutingRule
from panel.scope import MAX_ID, descendant_ids, scope_condition

MAX_BATCH = 1000
# Every bad record is named, so a switch can drop exactly those and send the rest again.
MAX_ERRORS_REPORTED = 2000


@dataclass(frozen=True, slots=True)
class RecordError:
    """One problem with one record: its index in the request (0 for a single object), field and message."""

    index: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict:
        """The JSON form used in API answers."""
        return {"index": self.index, "field": self.field, "error": self.message}

    def __str__(self) -> str:
        where = [] if self.index is None else [f"record {self.index}"]
        if self.field:
            where.append(self.field)
        return ": ".join([*where, self.message])


class CdrError(Exception):
    """The request was refused as a whole; `errors` lists every problem found."""

    def __init__(self, errors: list[RecordError]):
        super().__init__(str(errors[0]) if errors else "invalid records")
        self.errors = errors[:MAX_ERRORS_REPORTED]

    def as_json(self) -> dict:
        """`{"error", "field", "index", "errors"}`: the first problem in words, then all of them."""
        first = self.errors[0]
        return {
            "error": str(first),
            "field": first.field,
            "index": first.index,
            "errors": [e.as_dict() for e in self.errors],
        }


# --- field checks ----------------------------------------------------------------------------------------


class FieldError(ValueError):
    """A field's value is not acceptable; the message says what is expected (`field`: which one, when the
    error is not raised by that field's own check)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def records_of(payload, noun: str = "call record") -> list:
    """The list of records in a payload: one object or a list of 1..1000 objects. Raises CdrError."""
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        if not payload:
            raise CdrError([RecordError(None, None, f"the list holds no {noun}s")])
        if len(payload) > MAX_BATCH:
            raise CdrError(
                [RecordError(None, None, f"at most {MAX_BATCH:,} {noun}s per request, got {len(payload):,}")]
            )
        return payload
    raise CdrError([RecordError(None, None, f"expected a {noun} object or a list of them")])


def require_object(index: int, item, allowed: frozenset[str], errors: list[RecordError]) -> bool:
    """True when `item` is an object (its unknown fields are recorded as errors); otherwise record why."""
    if not isinstance(item, dict):
        errors.append(RecordError(index, None, "expected an object"))
        return False
    if not allowed.issuperset(item):
        for name in sorted(set(item) - allowed):
            errors.append(RecordError(index, name, "unknown field"))
    return True


# (field, attribute of the record, required, check): one field's check; the checks of a kind of record run in
# the order their problems are reported.
Check = tuple[str, str, bool, Callable]


def parse_records(
    payload, noun: str, fields: Iterable[str], checks: tuple[Check, ...], make: Callable
) -> list:
    """Validate one record or a list of up to MAX_BATCH: each item an object of the given `fields`, each
    field through its check (`checks`); `make(values)` builds the record from the checked values (it may
    raise FieldError naming a field, for a rule between fields). Raises CdrError listing every problem of
    every record."""
    allowed = frozenset(fields)
    errors: list[RecordError] = []
    records = []
    for index, item in enumerate(records_of(payload, noun)):
        if not require_object(index, item, allowed, errors):
            continue
        values: dict = {}
        ok = True
        for name, key, required, check in checks:
            if required and name not in item:
                errors.append(RecordError(index, name, "is required"))
                ok = False
                continue
            try:
                values[key] = check(item.get(name))
            except FieldError as exc:
                errors.append(RecordError(index, name, str(exc)))
                ok = False
        if ok:
            try:
                records.append(make(values))
            except FieldError as exc:
                errors.append(RecordError(index, exc.field, str(exc)))
    if errors:
        raise CdrError(errors)
    return records


def text_id(value) -> str:
    """A call id: a string of 1 to 255 characters, without NUL (PostgreSQL cannot store it)."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 255:
        raise FieldError("must be a string of 1 to 255 characters")
    if "\x00" in value:
        raise FieldError("may not contain the NUL character")
    return value.strip()


def object_id(value, *, required: bool) -> int | None:
    """A database id: a positive integer (null or absent when not required)."""
    if value is None:
        if required:
            raise FieldError("is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise FieldError("must be a positive integer id")
    return value


def moment(value) -> datetime:
    """An ISO 8601 date-time; without a zone it is UTC."""
    if not isinstance(value, str):
        raise FieldError("must be an ISO 8601 date-time such as 2026-05-01T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.strip())
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise FieldError("must be an ISO 8601 date-time such as 2026-05-01T12:00:00Z") from None
    if not 1900 <= parsed.year <= 2999:
        raise FieldError("must be a date-time between the years 1900 and 2999")
    return parsed


def dialled_number(value) -> str:
    """The number as routed: digits; a leading `+` is dropped; a tech prefix up to `#` is cut off."""
    if not isinstance(value, str):
        raise FieldError("must be a string of digits")
    number = value.strip()
    if "#" in number:
        number = number.rsplit("#", 1)[1]
    number = number.removeprefix("+")
    if not number or not number.isdigit() or not number.isascii() or len(number) > 64:
        raise FieldError("must be 1 to 64 digits (a leading + is allowed)")
    return number


def seconds(value) -> int:
    """Whole seconds, >= 0; a fraction of a second is rounded up (as billing does)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError("must be a number of seconds")
    if value < 0 or value > 10_000_000:
        raise FieldError("must be between 0 and 10,000,000 seconds")
    return math.ceil(value)


def optional_int(value, low: int, high: int, what: str) -> int | None:
    """An optional whole number within bounds (a float is rounded)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(f"must be {what}")
    if not low <= value <= high:
        raise FieldError(f"must be {what} between {low:,} and {high:,}")
    return round(value)


# --- references ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What rating and storing need of an account: its client, its client's company and its rate tables."""

    client_id: int
    company_id: int
    orig_rate_table_id: int | None
    term_rate_table_id: int | None


# How long a process uses the statements of a company's scope (its companies read once) before reading the
# company tree again: the API's token is remembered as long (panel.api.auth.TOKEN_CACHE_SECONDS), and a
# change of the tree in this process is seen as soon as it is committed (see _forget_scopes).
SCOPE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class _Scope:
    """The statements that read the accounts and the rules a company may name, with their ids a parameter."""

    read_at: float
    accounts: Select
    rules: Select


def _scope(company_id: int | None) -> _Scope:
    """The statements of a company's scope (None: every company), built at most every SCOPE_SECONDS."""
    scopes = current_app.extensions.setdefault("panel_record_scopes", {})
    now = time.monotonic()
    scope = scopes.get(company_id)
    if scope is None or now - scope.read_at >= SCOPE_SECONDS:
        accounts = (
            select(
                Account.id,
                Account.client_id,
                Account.orig_rate_table_id,
                Account.term_rate_table_id,
                Client.orig_rate_table_id,
                Client.term_rate_table_id,
                Client.company_id,
            )
            .join(Client, Client.id == Account.client_id)
            .where(Account.id.in_(bindparam("ids", expanding=True)))
        )
        rules = select(RoutingRule.id).where(RoutingRule.id.in_(bindparam("ids", expanding=True)))
        if company_id is not None:
            companies = descendant_ids(company_id)
            accounts = accounts.where(scope_condition(Account, companies))
            rules = rules.where(scope_condition(RoutingRule, companies))
        scope = scopes[company_id] = _Scope(now, accounts, rules)
    return scope


def _forget_scopes(_mapper, _connection, target) -> None:
    """A company was added, moved or removed in this process: build every scope again on its next use, and
    once more after the commit (a request in between may have read the tree as it was before)."""
    if has_app_context():
        current_app.extensions.pop("panel_record_scopes", None)
    session = object_session(target)
    if session is not None:
        session.info["panel_forget_scopes"] = True


def _forget_after_commit(session) -> None:
    if session.info.pop("panel_forget_scopes", False) and has_app_context():
        current_app.extensions.pop("panel_record_scopes", None)


for _event in ("after_insert", "after_update", "after_delete"):
    event.listen(Company, _event, _forget_scopes)
event.listen(Session, "after_commit", _forget_after_commit)


def _accounts(ids: set[int], company_id: int | None) -> dict[int, AccountInfo]:
    """The accounts among `ids` that the company may see (all of them when company_id is None)."""
    if not ids:
        return {}
    rows = db.session.execute(_scope(company_id).accounts, {"ids": sorted(ids)})
    return {row[0]: AccountInfo(row[1], row[6], row[2] or row[4], row[3] or row[5]) for row in rows}


def known_rules(ids: set[int], company_id: int | None) -> set[int]:
    """The rule ids among `ids` that exist (and that the company may see)."""
    if not ids:
        return set()
    return set(db.session.scalars(_scope(company_id).rules, {"ids": sorted(ids)}))


def check_references(
    items: list[tuple[int, int | None, int | None, int | None]], company_id: int | None
) -> dict[int, AccountInfo]:
    """Check (index, orig, term, rule) ids against the database; raise CdrError naming each unknown one."""
    account_ids = {a for _, o, t, _r in items for a in (o, t) if a is not None}
    accounts = _accounts(account_ids, company_id)
    rules = known_rules({r for *_, r in items if r is not None}, company_id)
    errors = []
    for index, orig, term, rule in items:
        if orig is not None and orig not in accounts:
            errors.append(RecordError(index, "orig_account_id", "unknown account"))
        if term is not None and term not in accounts:
            errors.append(RecordError(index, "term_account_id", "unknown account"))
        if rule is not None and rule not in rules:
            errors.append(RecordError(index, "rule_id", "unknown rule"))
    if errors:
        raise CdrError(errors)
    return accounts
