"""Rule expiry an operator sees coming: marks ("expires in 3 d", "expired") and counts per plan.

A rule with an expiry time stops applying at that moment and the Traffic Rules manager deletes it at its next
run (SPEC §4, §6). Rules expiring within the horizon (`PANEL_EXPIRY_HORIZON_DAYS`, default 7) are marked in
amber on the rules tab, in the inline editor and in the route test; expired ones are red until removed. The
plans list and the home page count them per plan.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, func, select

from panel.extensions import db
from panel.models import RoutingPlan, RoutingRule

DEFAULT_HORIZON_DAYS = 7.0
# The "expiring within" filter offers these day counts (and the configured horizon).
FILTER_DAYS = (1, 3, 7, 14, 30)


@dataclass(frozen=True, slots=True)
class Mark:
    """What a rule's expiry looks like now: `state` is "soon" (amber) or "expired" (red)."""

    state: str
    text: str
    title: str


def horizon_days() -> float:
    """The configured horizon in days."""
    return float(current_app.config.get("EXPIRY_HORIZON_DAYS", DEFAULT_HORIZON_DAYS))


def horizon() -> timedelta:
    """How far ahead an expiry is marked."""
    return timedelta(days=horizon_days())


def refresh_seconds() -> int:
    """How often an open page refreshes its marks."""
    return max(1, int(current_app.config.get("EXPIRY_REFRESH_SECONDS", 60)))


def remaining(delta: timedelta) -> str:
    """A time left in the largest whole unit that says it: 3 d, 5 h, 12 min, under a minute."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def mark(expires_at: datetime | None, now: datetime, within: timedelta | None = None) -> Mark | None:
    """The mark of an expiry time at `now`: None when there is none or it is beyond the horizon."""
    if expires_at is None:
        return None
    title = f"Expires {expires_at:%Y-%m-%d %H:%M} UTC"
    if expires_at <= now:
        return Mark("expired", "expired", f"Expired {expires_at:%Y-%m-%d %H:%M} UTC")
    left = expires_at - now
    if left > (within if within is not None else horizon()):
        return None
    return Mark("soon", f"expires in {remaining(left)}", title)


def counts(plan_ids: list[int], now: datetime) -> dict[int, tuple[int, int]]:
    """Per plan: (rules expiring within the horizon, rules expired); plans with neither are left out."""
    if not plan_ids:
        return {}
    limit = now + horizon()
    expired = RoutingRule.expires_at <= now
    stmt = (
        select(
            RoutingRule.plan_id,
            func.sum(case((expired, 0), else_=1)),
            func.sum(case((expired, 1), else_=0)),
        )
        .where(
            RoutingRule.plan_id.in_(plan_ids),
            RoutingRule.expires_at.is_not(None),
            RoutingRule.expires_at <= limit,
        )
        .group_by(RoutingRule.plan_id)
    )
    return {plan_id: (int(soon or 0), int(gone or 0)) for plan_id, soon, gone in db.session.execute(stmt)}


def plans_with_expiring(plan_scope, now: datetime, limit: int = 20) -> list[tuple[RoutingPlan, int, int]]:
    """The plans of a scoped plan select that have rules expiring soon or expired: (plan, soon, expired)."""
    soon_limit = now + horizon()
    candidates = select(RoutingRule.plan_id).where(
        RoutingRule.expires_at.is_not(None), RoutingRule.expires_at <= soon_limit
    )
    plans = db.session.scalars(
        plan_scope.where(RoutingPlan.id.in_(candidates)).order_by(RoutingPlan.name).limit(limit)
    ).all()
    found = counts([p.id for p in plans], now)
    return [(p, *found.get(p.id, (0, 0))) for p in plans if p.id in found]


def filter_choices() -> list[tuple[str, str]]:
    """The rules tab's "expiring within" choices: whole days, the configured horizon among them."""
    days = sorted({*FILTER_DAYS, horizon_days()})
    return [(f"{d:g}", f"expiring within {d:g} day{'s' if d != 1 else ''}") for d in days]


def within_condition(days_text: str | None, now: datetime):
    """SQL condition for the "expiring within N days" filter (not yet expired), or None for no filter."""
    try:
        days = float(days_text or "")
    except ValueError:
        return None
    if not 0 < days <= 3660:
        return None
    return and_(
        RoutingRule.expires_at.is_not(None),
        RoutingRule.expires_at > now,
        RoutingRule.expires_at <= now + timedelta(days=days),
    )
