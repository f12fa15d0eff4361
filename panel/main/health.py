"""The home page's figures: is routing healthy right now, for the companies the user sees.

Calls, ASR, ACD, revenue and margin over the last 24 hours come from the same `filter_totals()` the Calls
page uses (revenue of the user's originators, costs of its terminators); when some calls' cost belongs to a
company the user does not see (a reseller's calls through the operator's vendors), the margin is not shown
rather than a misleading 100 %. Live calls are counted against the originators' capacity; the manager's last
run, the rules expiring soon and the clients whose balance is low complete the picture.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import and_, case, exists, func, or_, select

from panel import expiry, livecalls
from panel.access import is_operator_user
from panel.extensions import db
from panel.models import Account, CallStat, Client, LiveCall, ManagerRun, RoutingPlan
from panel.scope import scope_condition, scoped, user_company_ids
from panel.stats.queries import ANSWERED, CallFilter, Totals, filter_totals

HOURS = 24
LOW_BALANCE_SHOWN = 10


@dataclass
class Hour:
    """One bar of the per-hour chart."""

    start: datetime
    attempts: int
    answered: int

    @property
    def asr(self) -> float | None:
        """Answered calls in % of attempts."""
        return self.answered * 100 / self.attempts if self.attempts else None


@dataclass
class Health:
    """Everything the home page shows."""

    since: datetime
    until: datetime
    summary: Totals
    hours: list[Hour]
    live: int
    capacity: int
    last_run: ManagerRun | None
    errors_24h: int
    system: bool  # the user belongs to the operator: it sees the manager's error texts
    expiring: list = field(default_factory=list)
    low_balance: list[Client] = field(default_factory=list)
    low_balance_limit: Decimal = Decimal(0)

    @property
    def margin_shown(self) -> bool:
        """A margin means something only over calls whose cost the user sees (never a hidden cost as zero)."""
        known = getattr(self.summary, "margin_known", None)
        return self.summary.foreign == 0 if known is None else bool(known)

    @property
    def cost_hidden(self) -> int:
        """Calls of the user's customers whose cost its provider sets (the user does not see it)."""
        return int(getattr(self.summary, "cost_hidden", self.summary.foreign))

    @property
    def peak(self) -> int:
        """The largest hourly attempts (the chart's scale), at least 1."""
        return max([h.attempts for h in self.hours] + [1])


def window(now: datetime) -> tuple[datetime, datetime]:
    """The last 24 hours ending now."""
    return now - timedelta(hours=HOURS), now


def call_conditions(ids, since: datetime, until: datetime) -> list:
    """The calls the user sees within the window: the Calls page's scope, by start time."""
    return [scope_condition(CallStat, ids), CallStat.start_at >= since, CallStat.start_at < until]


def visibility(ids) -> tuple:
    """(originator visible, terminator visible): whose charge and whose cost the user may see."""
    visible = select(Client.id).where(Client.company_id.in_(list(ids)))
    return CallStat.orig_client_id.in_(visible), CallStat.term_client_id.in_(visible)


def hourly(ids, since: datetime) -> list[Hour]:
    """Attempts and answered calls per hour of the window, in one scan (24 conditional sums each)."""
    starts = [since + timedelta(hours=i) for i in range(HOURS)]
    columns = []
    for start in starts:
        inside = and_(CallStat.start_at >= start, CallStat.start_at < start + timedelta(hours=1))
        columns.append(func.coalesce(func.sum(case((inside, 1), else_=0)), 0))
        columns.append(func.coalesce(func.sum(case((inside, ANSWERED), else_=0)), 0))
    row = db.session.execute(
        select(*columns).where(*call_conditions(ids, since, since + timedelta(hours=HOURS)))
    ).one()
    return [Hour(start, int(row[2 * i]), int(row[2 * i + 1])) for i, start in enumerate(starts)]


def live_calls(ids, now: datetime) -> tuple[int, int]:
    """Calls in progress that the user sees, and the capacity of its originator accounts (0: unlimited)."""
    fresh = LiveCall.started_at > now - livecalls.max_age()
    live = db.session.scalar(
        select(func.count()).select_from(LiveCall).where(scope_condition(LiveCall, ids), fresh)
    )
    capacity = db.session.scalar(
        select(func.coalesce(func.sum(Account.orig_capacity), 0)).where(
            scope_condition(Account, ids), Account.orig_enabled.is_(True)
        )
    )
    return int(live or 0), int(capacity or 0)


def low_balance(limit: Decimal) -> list[Client]:
    """Customers (clients that originate) whose balance is below `limit` or negative, lowest first."""
    originates = or_(
        Client.orig_rate_table_id.is_not(None),
        exists().where(Account.client_id == Client.id, Account.orig_enabled.is_(True)),
    )
    stmt = (
        scoped(Client)
        .where(originates, or_(Client.balance < limit, Client.balance < 0))
        .order_by(Client.balance, Client.name)
        .limit(LOW_BALANCE_SHOWN)
    )
    return list(db.session.scalars(stmt))


def collect(now: datetime) -> Health:
    """The home page's figures at `now` for the logged-in user."""
    ids = user_company_ids()
    since, until = window(now)
    orig_visible, term_visible = visibility(ids)
    # As the Calls page: whole hours from the hourly figures, the partial hours at both ends call by call.
    conditions = call_conditions(ids, since, until)
    summary = filter_totals(CallFilter(conditions, orig_visible, term_visible, frozenset(ids), since, until))
    live, capacity = live_calls(ids, now)
    runs = select(ManagerRun).where(ManagerRun.outcome.in_(("ok", "error")))
    last_run = db.session.scalar(runs.order_by(ManagerRun.id.desc()).limit(1))
    errors = db.session.scalar(
        select(func.count())
        .select_from(ManagerRun)
        .where(ManagerRun.started_at >= since, ManagerRun.outcome == "error")
    )
    limit = Decimal(str(current_app.config.get("LOW_BALANCE", 100)))
    return Health(
        since=since,
        until=until,
        summary=summary,
        hours=hourly(ids, since),
        live=live,
        capacity=capacity,
        last_run=last_run,
        errors_24h=int(errors or 0),
        system=is_operator_user(),
        expiring=expiry.plans_with_expiring(scoped(RoutingPlan), now),
        low_balance=low_balance(limit),
        low_balance_limit=limit,
    )
