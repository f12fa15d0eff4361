"""Queries over the call statistics: quality per vendor and code, call totals, balancing shares.

Used by the Statistics pages and the home page; the quality formula itself (ASR, ACD) is panel.quality's.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, exists, func, literal, or_, select, true, union_all
from sqlalchemy.orm import aliased

from panel import quality
from panel.extensions import db
from panel.models import CallDay, CallHour, CallStat, Client, RoutingRule
from panel.quality import ANSWERED, ANSWERED_SECONDS
from panel.stats.rollup import day_of, hour_of

# The per-call pieces of the quality formula live with the formula (panel.quality).
__all__ = [
    "ANSWERED",
    "ANSWERED_SECONDS",
    "CallFilter",
    "Totals",
    "balancing_groups",
    "filter_totals",
    "totals",
]


@dataclass
class Totals:
    """The figures under a list of calls."""

    attempts: int = 0
    answered: int = 0
    seconds: int = 0
    revenue: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    # Calls with an originator or terminator of a company the user does not see (charge or cost not shown).
    foreign: int = 0
    # Calls of a visible originator whose terminator the user does not see: a reseller's calls to its
    # provider's vendors, whose cost is the provider's. Their revenue has no known cost, so no margin.
    cost_hidden: int = 0
    # Revenue of the calls whose cost is known (originator visible, terminator visible or none).
    revenue_with_cost: Decimal = Decimal(0)

    @property
    def asr(self) -> Decimal | None:
        """Answered calls in % of attempts (panel.quality.asr)."""
        return quality.asr(self.answered, self.attempts)

    @property
    def acd(self) -> Decimal | None:
        """Mean answered call length in minutes (panel.quality.acd)."""
        return quality.acd(self.answered, self.seconds)

    @property
    def minutes(self) -> Decimal:
        """Answered minutes."""
        return Decimal(self.seconds) / 60

    @property
    def margin(self) -> Decimal:
        """Revenue less cost, over the calls whose cost is known (never a hidden cost counted as zero)."""
        return self.revenue_with_cost - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        """Margin in % of the revenue it was computed over."""
        return self.margin * 100 / self.revenue_with_cost if self.revenue_with_cost else None

    @property
    def margin_known(self) -> bool:
        """False when every charged call's cost is hidden: a margin would be a made-up 100 %."""
        return not self.cost_hidden or self.revenue_with_cost > 0 or self.cost > 0

    def __add__(self, other: "Totals") -> "Totals":
        """The figures of two disjoint sets of calls together."""
        return Totals(**{name: getattr(self, name) + getattr(other, name) for name in _SUMMED})


_SUMMED = (
    "attempts",
    "answered",
    "seconds",
    "revenue",
    "cost",
    "foreign",
    "cost_hidden",
    "revenue_with_cost",
)


@dataclass
class CallFilter:
    """The calls filter in the terms the totals need (panel.stats.views builds it)."""

    conditions: list  # over call_stats, the company scope included
    orig_visible: object  # call_stats: the originator's client is one of the user's
    term_visible: object
    company_ids: frozenset
    since: datetime | None = None
    until: datetime | None = None
    client_id: int | None = None
    direction: str = ""  # "", "orig", "term"
    answered: str = ""  # "", "yes", "no"
    # A filter the hourly figures do not hold (an account, a number): the totals add up the calls.
    by_call: bool = False


def _sums(calls, answered, seconds, revenue, cost, term_none, orig_visible, term_visible):
    """The totals' SELECT: over calls (`calls` is 1) or over hourly figures (`calls` is their count).

    Revenue from visible originators, cost to visible terminators; a call whose terminator the user does not
    see has no known cost, so its revenue stays out of the margin.
    """
    zero = Decimal(0)
    cost_known = term_none | term_visible
    both_known = and_(orig_visible, cost_known)
    return select(
        func.coalesce(func.sum(calls), 0),
        func.coalesce(func.sum(answered), 0),
        func.coalesce(func.sum(seconds), 0),
        func.coalesce(func.sum(case((orig_visible, revenue), else_=zero)), zero),
        func.coalesce(func.sum(case((term_visible, cost), else_=zero)), zero),
        func.coalesce(func.sum(case((both_known, 0), else_=calls)), 0),
        func.coalesce(func.sum(case((and_(orig_visible, ~cost_known), calls), else_=0)), 0),
        func.coalesce(func.sum(case((both_known, revenue), else_=zero)), zero),
    )


def _totals_of(stmt) -> Totals:
    row = db.session.execute(stmt).one()
    return Totals(
        attempts=int(row[0]),
        answered=int(row[1]),
        seconds=int(row[2]),
        revenue=Decimal(row[3] or 0),
        cost=Decimal(row[4] or 0),
        foreign=int(row[5]),
        cost_hidden=int(row[6]),
        revenue_with_cost=Decimal(row[7] or 0),
    )


def totals(conditions: list, orig_visible, term_visible) -> Totals:
    """Add up the calls matching `conditions` one by one."""
    stmt = _sums(
        literal(1),
        ANSWERED,
        ANSWERED_SECONDS,
        CallStat.customer_charge,
        CallStat.vendor_cost,
        CallStat.term_client_id.is_(None),
        orig_visible,
        term_visible,
    )
    return _totals_of(stmt.where(*conditions))


def _ceil(at: datetime, start_of) -> datetime:
    """The start of the period (hour or day) at or after `at`."""
    start = start_of(at)
    return (
        start if start == at else start + (timedelta(hours=1) if start_of is hour_of else timedelta(days=1))
    )


def _grouped_totals(query: CallFilter, parts: list) -> Totals:
    """The totals of `parts` (selects of sums per originator client, terminator client (0 for none) and
    answered), in one statement.

    The company scope and the visibility of each side are told after grouping, from the clients' companies
    (the rows' `__owner__` paths: either side's client's company is one of the user's): a week or the whole
    table comes down to one row per pair of clients first, and no list of the user's clients (10,000 at a
    large carrier) is built and probed per row. The calls' part is already in scope (its conditions hold the
    scope and the direction); checking them again here changes nothing for it.
    """
    grouped = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
    ids = list(query.company_ids)
    orig_client, term_client = aliased(Client), aliased(Client)
    # A side without a client (0, or a client since deleted) is nobody's: false, never NULL.
    orig_visible = func.coalesce(orig_client.company_id, 0).in_(ids)
    term_visible = func.coalesce(term_client.company_id, 0).in_(ids)
    conditions = [or_(orig_visible, term_visible)]
    if query.client_id is None and query.direction == "orig":
        conditions.append(orig_visible)
    elif query.client_id is None and query.direction == "term":
        conditions.append(term_visible)
    stmt = _sums(
        grouped.c.calls,
        case((grouped.c.answered, grouped.c.calls), else_=0),
        grouped.c.seconds,
        grouped.c.revenue,
        grouped.c.cost,
        grouped.c.term_client_id == 0,
        orig_visible,
        term_visible,
    )
    stmt = (
        stmt.select_from(grouped)
        .outerjoin(orig_client, orig_client.id == grouped.c.orig_client_id)
        .outerjoin(term_client, term_client.id == grouped.c.term_client_id)
        .where(*conditions)
    )
    return _totals_of(stmt)


def _rollup_part(query: CallFilter, model, period: str, ranges: list[tuple]):
    """The sums of whole periods read from a level of the figures (panel.stats.rollup): the periods
    starting in any of `ranges` ((first, end) pairs, either None for no bound). The scope and the direction
    are applied to the sums (_grouped_totals)."""
    start = getattr(model, period)
    conditions = []
    if query.client_id is not None:
        sides = {"orig": [model.orig_client_id], "term": [model.term_client_id]}.get(
            query.direction, [model.orig_client_id, model.term_client_id]
        )
        conditions.append(or_(*(column == query.client_id for column in sides)))
    if query.answered in ("yes", "no"):
        conditions.append(model.answered.is_(query.answered == "yes"))
    bounds = [
        and_(
            true(),
            *([start >= first] if first is not None else []),
            *([start < end] if end is not None else []),
        )
        for first, end in ranges
    ]
    conditions.append(bounds[0] if len(bounds) == 1 else or_(*bounds))
    grouped = (
        select(
            model.orig_client_id,
            model.term_client_id,
            model.answered,
            func.sum(model.calls).label("calls"),
            func.sum(model.seconds).label("seconds"),
            func.sum(model.revenue).label("revenue"),
            func.sum(model.cost).label("cost"),
        )
        .where(*conditions)
        .group_by(model.orig_client_id, model.term_client_id, model.answered)
    )
    return grouped


def _call_part(query: CallFilter, *extra):
    """The sums of the calls matching the filter and `extra`, added up call by call (grouped as the
    figures are)."""
    orig = func.coalesce(CallStat.orig_client_id, 0)
    term = func.coalesce(CallStat.term_client_id, 0)
    grouped = (
        select(
            orig.label("orig_client_id"),
            term.label("term_client_id"),
            CallStat.answered,
            func.count().label("calls"),
            func.sum(ANSWERED_SECONDS).label("seconds"),
            func.sum(CallStat.customer_charge).label("revenue"),
            func.sum(CallStat.vendor_cost).label("cost"),
        )
        .where(*query.conditions, *extra)
        .group_by(orig, term, CallStat.answered)
    )
    return grouped


def client_sides(client_id: int, since: datetime | None, until: datetime | None) -> list[str]:
    """The sides ("orig", "term") a client's calls from `since` to `until` are on, read from the daily
    figures of the days the window touches (a superset of the window: a side not found has no call in it).
    """
    conditions = [CallDay.calls > 0]
    if since is not None:
        conditions.append(CallDay.day >= day_of(since))
    if until is not None:
        conditions.append(CallDay.day < until)
    orig = exists().where(CallDay.orig_client_id == client_id, *conditions)
    term = exists().where(CallDay.term_client_id == client_id, *conditions)
    found = db.session.execute(select(orig, term)).one()
    return [side for side, present in zip(("orig", "term"), found, strict=True) if present]


def filter_totals(query: CallFilter) -> Totals:
    """The figures under the calls list: whole days from the daily figures, whole hours at either end of the
    window from the hourly ones (panel.stats.rollup), the minutes of a partial hour at either end from the
    calls themselves. A window without a bound reads only days (the day of "now" holds every call so far).

    A filter by account or number is added up call by call (through its index). Every part is summed per
    pair of clients and the parts are added up in one statement.
    """
    if query.by_call:
        return _grouped_totals(query, [_call_part(query)])
    since, until = query.since, query.until
    first_hour = _ceil(since, hour_of) if since is not None else None
    end_hour = hour_of(until) if until is not None else None
    if first_hour is not None and end_hour is not None and first_hour >= end_hour:
        return _grouped_totals(
            query, [_call_part(query)]
        )  # less than an hour from one hour's start to the next
    first_day = _ceil(first_hour, day_of) if first_hour is not None else None
    end_day = day_of(end_hour) if end_hour is not None else None
    if first_day is not None and end_day is not None and first_day >= end_day:
        parts = [_rollup_part(query, CallHour, "hour", [(first_hour, end_hour)])]  # no whole day
    else:
        parts = [_rollup_part(query, CallDay, "day", [(first_day, end_day)])]
        edges = []
        if first_hour is not None and first_hour < first_day:
            edges.append((first_hour, first_day))
        if end_hour is not None and end_day < end_hour:
            edges.append((end_day, end_hour))
        if edges:
            parts.append(_rollup_part(query, CallHour, "hour", edges))
    # The minutes of a partial hour at each end: one index range each (the filter's window bounds the other
    # side).
    if since is not None and since < first_hour:
        parts.append(_call_part(query, CallStat.start_at < first_hour))
    if until is not None and end_hour < until:
        parts.append(_call_part(query, CallStat.start_at >= end_hour))
    return _grouped_totals(query, parts)


# --- balancing --------------------------------------------------------------------------------------------


@dataclass
class BalancedRule:
    """One balanced rule of a group: its target share and what it got."""

    rule: RoutingRule
    label: str
    target: float
    attempts: int = 0
    answered: int = 0
    attempts_share: float | None = None
    answered_share: float | None = None


@dataclass
class BalancingGroup:
    """Rules of one plan with the same code (trailing `*` ignored) and priority whose balancing is 1..99."""

    key: tuple[str, int]  # (code, priority)
    rules: list[BalancedRule] = field(default_factory=list)
    fixed: list[RoutingRule] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.key[0]

    @property
    def priority(self) -> int:
        return self.key[1]

    @property
    def answered(self) -> int:
        """Answered calls of the whole group in the window."""
        return sum(r.answered for r in self.rules)

    @property
    def attempts(self) -> int:
        """Attempts of the whole group in the window."""
        return sum(r.attempts for r in self.rules)

    @property
    def rule_ids(self) -> list[int]:
        """Ids of the balanced rules."""
        return [r.rule.id for r in self.rules]


def is_balanced(rule: RoutingRule) -> bool:
    """A balancing of 1..99 shuffles the rule within its group (SPEC §5 step 5)."""
    return rule.balancing is not None and 1 <= rule.balancing <= 99


def group_key(rule: RoutingRule) -> tuple[str, int]:
    """The balancing group of a rule: code without a trailing `*`, and priority."""
    return (rule.code or "").rstrip("*"), rule.priority


def rule_label(rule: RoutingRule) -> str:
    """The rule's terminator in words."""
    if rule.type == "static_client" and rule.terminator_client is not None:
        return rule.terminator_client.name
    if rule.type == "static_account" and rule.terminator_account is not None:
        account = rule.terminator_account
        return f"{account.client.name} / {account.name}"
    if rule.type == "dynamic":
        return f"dynamic: {rule.policy.name}" if rule.policy is not None else "dynamic"
    if rule.type == "did":
        return "DID"
    return f"rule {rule.id}"


def balancing_groups(plan_id: int, since: datetime, until: datetime, rule_id: int | None = None) -> list:
    """The balanced groups of a plan (only the one holding `rule_id` when given) with their shares."""
    rules = db.session.scalars(
        select(RoutingRule)
        .where(RoutingRule.plan_id == plan_id)
        .order_by(RoutingRule.priority, RoutingRule.code, RoutingRule.id)
    ).all()
    groups: dict[tuple[str, int], BalancingGroup] = {}
    for rule in rules:
        if rule.type == "did":
            continue
        key = group_key(rule)
        group = groups.setdefault(key, BalancingGroup(key))
        if is_balanced(rule):
            group.rules.append(BalancedRule(rule=rule, label=rule_label(rule), target=0.0))
        else:
            group.fixed.append(rule)
    result = [g for g in groups.values() if g.rules]
    if rule_id is not None:
        result = [g for g in result if rule_id in g.rule_ids or any(r.id == rule_id for r in g.fixed)]
    ids = [rid for g in result for rid in g.rule_ids]
    counts: dict[int, tuple[int, int]] = {}
    if ids:
        stmt = (
            select(CallStat.rule_id, func.count(), func.coalesce(func.sum(ANSWERED), 0))
            .where(CallStat.rule_id.in_(ids), CallStat.start_at >= since, CallStat.start_at < until)
            .group_by(CallStat.rule_id)
        )
        counts = {row[0]: (int(row[1]), int(row[2])) for row in db.session.execute(stmt)}
    for group in result:
        weight = sum(r.rule.balancing for r in group.rules)
        for item in group.rules:
            item.target = item.rule.balancing / weight
            item.attempts, item.answered = counts.get(item.rule.id, (0, 0))
        if group.attempts:
            for item in group.rules:
                item.attempts_share = item.attempts / group.attempts
        if group.answered:
            for item in group.rules:
                item.answered_share = item.answered / group.answered
    return result
