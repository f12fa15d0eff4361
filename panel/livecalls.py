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
from sqlalchemy import delete, func, select

from panel import txn
from panel.extensions import db
from panel.models import LiveCall
from panel.models.types import utcnow
from panel.records import (
    CdrError,
    FieldError,
    RecordError,
    check_references,
    moment,
    object_id,
    records_of,
    require_object,
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


def parse_events(payload) -> list[CallEvent]:
    """Validate one event or a list of up to 1,000; raises CdrError naming each problem's index and field."""
    items = records_of(payload, "call event")
    errors: list[RecordError] = []
    events: list[CallEvent] = []
    for index, item in enumerate(items):
        if not require_object(index, item, EVENT_FIELDS, errors):
            continue
        ok = True
        kind = item.get("event")
        if kind not in ("start", "end"):
            errors.append(RecordError(index, "event", 'must be "start" or "end"'))
            ok = False
        values: dict = {}
        for name, check in (
            ("call_id", text_id),
            ("orig_account_id", lambda v: object_id(v, required=False)),
            ("term_account_id", lambda v: object_id(v, required=False)),
            ("rule_id", lambda v: object_id(v, required=False)),
            ("at", lambda v: None if v is None else moment(v)),
        ):
            try:
                if name == "call_id" and name not in item:
                    raise FieldError("is required")
                values[name] = check(item.get(name))
            except FieldError as exc:
                errors.append(RecordError(index, name, str(exc)))
                ok = False
        if ok and kind == "start" and values["orig_account_id"] is None and values["term_account_id"] is None:
            errors.append(
                RecordError(index, "orig_account_id", "a start event names the originator or terminator")
            )
            ok = False
        if ok:
            events.append(CallEvent(event=kind, **values))
    if errors:
        raise CdrError(errors)
    return events


def _upsert(rows: list[dict]) -> None:
    """Insert live calls; a start for a call id already live (for that company) moves it to the new terminator
    and rule."""
    # One statement may not touch a row twice: the last start of a call id in the batch wins.
    rows = sorted({(row["company_id"], row["call_id"]): row for row in rows}.values(), key=_row_key)
    # Core on the session's connection: the ORM's bulk insert bookkeeping cost more than the insert.
    db.session.connection().execute(_upsert_statement(db.engine.dialect.name), rows)


_UPSERTS: dict = {}


def _upsert_statement(dialect: str):
    """The upsert of live calls for a dialect, built once (building `excluded` cost more than the insert)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(LiveCall.__table__)
        stmt = _UPSERTS[dialect] = stmt.on_conflict_do_update(
            index_elements=["company_id", "call_id"],
            set_={"term_account_id": stmt.excluded.term_account_id, "rule_id": stmt.excluded.rule_id},
        )
    return stmt


def _row_key(row: dict) -> tuple[int, str]:
    return row["company_id"], row["call_id"]


_LIVE = LiveCall.__table__


def _end(call_ids: list[str], company_id: int | None, not_live: list[str]) -> int:
    """End a run of consecutive end events with one DELETE ... RETURNING (Core: no ORM bookkeeping, which
    cost more than the delete); returns the calls ended and appends the ids that were not live, in order.

    The same as one DELETE per event in order: a repeated id ends its call once and is then not live.
    """
    stmt = delete(_LIVE).where(_LIVE.c.call_id.in_(sorted(set(call_ids)))).returning(_LIVE.c.call_id)
    if company_id is not None:
        stmt = stmt.where(_LIVE.c.company_id == company_id)
    deleted = Counter(db.session.connection().execute(stmt).scalars())
    ended = 0
    for call_id in call_ids:
        count = deleted.pop(call_id, 0)
        if count:
            ended += count
        else:
            not_live.append(call_id)
    return ended


def apply_events(payload, *, company_id: int | None) -> dict:
    """Validate and apply start/end events in one transaction; returns `{"started", "ended", "not_live"}`.

    Accounts and rules outside the company's scope answer "unknown account" / "unknown rule" (CdrError).
    Events apply in order, so `end` then `start` of the same call id (a failover) leaves the new attempt live.
    Calls belong to `company_id`; without one (the CLI, tests) a start belongs to its account's company and
    an end may end any company's call of that id.
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
    now = utcnow()

    def apply() -> dict:
        started = ended = 0
        not_live: list[str] = []
        pending: list[dict] = []
        ending: list[str] = []
        for event in events:
            if event.event == "start":
                if ending:
                    ended += _end(ending, company_id, not_live)
                    ending = []
                account = accounts[event.orig_account_id or event.term_account_id]
                pending.append(
                    {
                        "company_id": company_id or account.company_id,
                        "call_id": event.call_id,
                        "orig_account_id": event.orig_account_id,
                        "term_account_id": event.term_account_id,
                        "rule_id": event.rule_id,
                        "started_at": min(event.at or now, now),
                    }
                )
                started += 1
                continue
            if pending:
                _upsert(pending)
                pending = []
            ending.append(event.call_id)
        if pending:
            _upsert(pending)
        if ending:
            ended += _end(ending, company_id, not_live)
        db.session.commit()
        return {"started": started, "ended": ended, "not_live": not_live}

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
