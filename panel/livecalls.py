"""Live calls and capacity (SPEC §8): the switch's start and end events, and the counts routing checks.

The switch reports `start` when it sends a call to a terminator and `end` when that attempt ends
(`POST /api/v1/calls`); each live call is one `live_calls` row holding its originator account, terminator
account and rule. Routing rejects an originator at its capacity (`originator_capacity`) and a terminator or
rule at its capacity (`capacity`); the engine asks `counts()` for an object with `orig(account_id)`,
`term(account_id)` and `rule(rule_id)`.

The choice for speed: a route call must not run three COUNT queries. Each process keeps the counts of every
account and rule in memory, read with **one grouped query at most every `REFRESH_SECONDS` (0.5 s)**; a route
call only looks numbers up in dicts. Events posted to this process drop the cached counts at once, so the
process that saw an event counts it on its very next route; another process sees it within 0.5 s. Capacity is
therefore exact within one process and may be overshot by the calls other processes admit in that half second,
which is the usual trade of a switch-side limit held by a separate service.

A call with no end event (a lost event, a crashed switch) stops counting once it is older than
`LIVE_CALL_MAX_SECONDS`, and the Traffic Rules manager deletes it (`expire`).

Tenants: a live call belongs to the company whose token sent its start event, and its call id is unique per
company. An event only ever touches that company's calls: another tenant's call id is simply not live for it
(a start creates the caller's own call, an end answers `not_live`), exactly like an unknown one.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import bindparam, delete, func, select

from panel import txn
from panel.extensions import db
from panel.models import LiveCall
from panel.models.types import utcnow
from panel.records import (
    FieldError,
    check_references,
    moment,
    object_id,
    parse_records,
    text_id,
)

REFRESH_SECONDS = 0.5
EVENT_FIELDS = ("event", "call_id", "orig_account_id", "term_account_id", "rule_id", "at")


class LiveCounts:
    """Live calls per originator account, terminator account and rule, as read at `taken_at`."""

    __slots__ = ("_orig", "_rule", "_term", "taken", "taken_at", "total")

    def __init__(self, orig: Counter, term: Counter, rule: Counter, total: int, taken_at: datetime):
        self._orig, self._term, self._rule = orig, term, rule
        self.total = total
        self.taken_at = taken_at
        self.taken = time.monotonic()

    def orig(self, account_id: int) -> int:
        """Live calls from this originator account."""
        return self._orig.get(account_id, 0)

    def term(self, account_id: int) -> int:
        """Live calls to this terminator account."""
        return self._term.get(account_id, 0)

    def rule(self, rule_id: int) -> int:
        """Live calls routed by this rule."""
        return self._rule.get(rule_id, 0)

    def by_orig(self) -> dict[int, int]:
        """Every originator account with live calls."""
        return dict(self._orig)

    def by_term(self) -> dict[int, int]:
        """Every terminator account with live calls."""
        return dict(self._term)

    def by_rule(self) -> dict[int, int]:
        """Every rule with live calls."""
        return dict(self._rule)


@dataclass
class _Cache:
    """One app's cached counts (tests run several apps in one process, each with its own database)."""

    counts: LiveCounts | None = None
    lock: threading.Lock = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.lock = threading.Lock()


def _cache(app: Flask) -> _Cache:
    cache = app.extensions.get("panel_livecalls")
    if cache is None:
        cache = app.extensions.setdefault("panel_livecalls", _Cache())
    return cache


def max_age(app: Flask | None = None) -> timedelta:
    """How long a call may stay live without an end event."""
    app = app or current_app
    return timedelta(seconds=int(app.config.get("LIVE_CALL_MAX_SECONDS", 14400)))


def load() -> LiveCounts:
    """Read the counts now: one grouped query over the live calls younger than the maximum duration."""
    now = utcnow()
    stmt = (
        select(LiveCall.orig_account_id, LiveCall.term_account_id, LiveCall.rule_id, func.count())
        .where(LiveCall.started_at > now - max_age())
        .group_by(LiveCall.orig_account_id, LiveCall.term_account_id, LiveCall.rule_id)
    )
    orig, term, rule = Counter(), Counter(), Counter()
    total = 0
    for orig_id, term_id, rule_id, count in db.session.execute(stmt):
        total += count
        if orig_id is not None:
            orig[orig_id] += count
        if term_id is not None:
            term[term_id] += count
        if rule_id is not None:
            rule[rule_id] += count
    return LiveCounts(orig, term, rule, total, now)


def counts() -> LiveCounts:
    """The live counts for routing: cached per process, read again when older than REFRESH_SECONDS.

    While one thread reads, the others keep using the previous counts rather than wait.
    """
    cache = _cache(current_app)
    current = cache.counts
    if current is not None and time.monotonic() - current.taken < REFRESH_SECONDS:
        return current
    if not cache.lock.acquire(blocking=current is None):
        return current  # another thread is reading fresh counts
    try:
        current = cache.counts
        if current is None or time.monotonic() - current.taken >= REFRESH_SECONDS:
            current = load()
            cache.counts = current
        return current
    finally:
        cache.lock.release()


def invalidate(app: Flask | None = None) -> None:
    """Forget this process's cached counts (after events changed them)."""
    _cache(app or current_app).counts = None


# --- events -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A validated start or end event."""

    event: str
    call_id: str
    orig_account_id: int | None
    term_account_id: int | None
    rule_id: int | None
    at: datetime | None


def _kind(value) -> str:
    if value not in ("start", "end"):
        raise FieldError('must be "start" or "end"')
    return value


_EVENT_CHECKS = (
    ("event", "event", False, _kind),
    ("call_id", "call_id", True, text_id),
    ("orig_account_id", "orig_account_id", False, lambda v: object_id(v, required=False)),
    ("term_account_id", "term_account_id", False, lambda v: object_id(v, required=False)),
    ("rule_id", "rule_id", False, lambda v: object_id(v, required=False)),
    ("at", "at", False, lambda v: None if v is None else moment(v)),
)


def _event(values: dict) -> CallEvent:
    if values["event"] == "start" and values["orig_account_id"] is None and values["term_account_id"] is None:
        raise FieldError("a start event names the originator or terminator", "orig_account_id")
    return CallEvent(**values)


def parse_events(payload) -> list[CallEvent]:
    """Validate one event or a list of up to 1,000; raises CdrError naming each problem's index and field."""
    return parse_records(payload, "call event", EVENT_FIELDS, _EVENT_CHECKS, _event)


_LIVE = LiveCall.__table__
# The end of every call of a batch that has an end event, with the rows it removed: one statement, built once.
_DELETE_ANY = (
    delete(_LIVE)
    .where(_LIVE.c.call_id.in_(bindparam("call_ids", expanding=True)))
    .returning(_LIVE.c.company_id, _LIVE.c.call_id)
)
_DELETE = _DELETE_ANY.where(_LIVE.c.company_id == bindparam("company_id"))


def _upsert(dialect: str):
    """The upsert of live calls: a start for a call already live (for that company) moves it to the new
    terminator and rule."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(_LIVE)
    return stmt.on_conflict_do_update(
        index_elements=["company_id", "call_id"],
        set_={"term_account_id": stmt.excluded.term_account_id, "rule_id": stmt.excluded.rule_id},
    )


_UPSERT = txn.compiled_once(
    _upsert, ("company_id", "call_id", "orig_account_id", "term_account_id", "rule_id", "started_at")
)


@dataclass
class _Batch:
    """A batch of events reduced to two statements: delete every call of the batch that has an end event,
    then upsert the calls a start leaves live (per company: the originator and start time of the first start
    after the call's last end, the terminator and rule of its last start). The events still apply in order:
    `outcome` replays them on the rows the delete removed, which is what ending them one by one would have
    found (the delete holds those rows' locks until the commit)."""

    events: list[tuple[CallEvent, int]]  # each event and the company of its call
    ending: list[str]  # call ids with an end event, sorted (one lock order)
    rows: list[dict]  # the upsert's rows, by (company, call id)

    def outcome(self, removed: set[tuple[int, str]]) -> dict:
        """`{"started", "ended", "not_live"}` of the events in order, given the rows the delete removed."""
        live: dict[str, set[int]] = {}
        for company, call_id in removed:
            live.setdefault(call_id, set()).add(company)
        started = ended = 0
        not_live: list[str] = []
        for event, company in self.events:
            companies = live.setdefault(event.call_id, set())
            if event.event == "start":
                companies.add(company)
                started += 1
            elif companies:
                # without a company (the CLI), an end ends that call id of every company
                ended += len(companies)
                companies.clear()
            else:
                not_live.append(event.call_id)
        return {"started": started, "ended": ended, "not_live": not_live}


def _reduce(events: list[CallEvent], accounts: dict, company_id: int | None, now: datetime) -> _Batch:
    """The statements of a batch of events (see _Batch)."""
    tagged = []
    rows: dict[str, dict[int, dict]] = {}  # call id -> company -> the row its starts leave
    for event in events:
        company = None
        if event.event == "end":
            # what the end leaves: no call of that id (of any company); a start after it begins afresh
            rows.pop(event.call_id, None)
        else:
            company = company_id or accounts[event.orig_account_id or event.term_account_id].company_id
            of_call = rows.setdefault(event.call_id, {})
            row = of_call.get(company)
            if row is None:
                of_call[company] = {
                    "company_id": company,
                    "call_id": event.call_id,
                    "orig_account_id": event.orig_account_id,
                    "term_account_id": event.term_account_id,
                    "rule_id": event.rule_id,
                    "started_at": min(event.at or now, now),
                }
            else:
                row["term_account_id"], row["rule_id"] = event.term_account_id, event.rule_id
        tagged.append((event, company))
    ending = sorted({event.call_id for event in events if event.event == "end"})
    upserts = sorted((row for of_call in rows.values() for row in of_call.values()), key=_row_key)
    return _Batch(tagged, ending, upserts)


def _row_key(row: dict) -> tuple[int, str]:
    return row["company_id"], row["call_id"]


def apply_events(payload, *, company_id: int | None) -> dict:
    """Validate and apply start/end events in one transaction; returns `{"started", "ended", "not_live"}`.

    Accounts and rules outside the company's scope answer "unknown account" / "unknown rule" (CdrError).
    Events apply in order, so `end` then `start` of the same call id (a failover) leaves the new attempt live,
    whatever the number of events, in two statements (see _Batch). Calls belong to `company_id`; without
    one (the CLI, tests) a start belongs to its account's company and an end may end any company's call of
    that id.
    """
    events = parse_events(payload)
    accounts = check_references(
        [
            (i, e.orig_account_id, e.term_account_id, e.rule_id)
            for i, e in enumerate(events)
            if e.event == "start"
        ],
        company_id,
    )
    batch = _reduce(events, accounts, company_id, utcnow())

    def apply() -> dict:
        connection = db.session.connection()
        removed: set[tuple[int, str]] = set()
        if batch.ending:
            if company_id is None:
                found = connection.execute(_DELETE_ANY, {"call_ids": batch.ending})
            else:
                found = connection.execute(_DELETE, {"call_ids": batch.ending, "company_id": company_id})
            removed = {tuple(row) for row in found}
        if batch.rows:
            connection.execute(_UPSERT(), batch.rows)
        db.session.commit()
        return batch.outcome(removed)

    try:
        result = txn.retrying(apply)
    except Exception:
        db.session.rollback()
        raise
    invalidate()
    return result


def expire(now: datetime | None = None) -> int:
    """Delete the live calls older than LIVE_CALL_MAX_SECONDS (the caller commits); returns how many."""
    now = now or utcnow()
    result = db.session.execute(delete(LiveCall).where(LiveCall.started_at <= now - max_age()))
    return result.rowcount or 0
