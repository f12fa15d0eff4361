"""Changes to routing plans that are more than a form save: copy, delete, the additional-plan chain, counts.

Every function that changes data adds its audit entry to the session; the caller commits.
"""

from sqlalchemy import delete, func, insert, literal, select

from panel import audit, writes
from panel.extensions import db
from panel.models import Account, Client, RoutingPlan, RoutingRule
from panel.models.types import utcnow

# Columns a copy of a rule takes over (everything but its id and plan).
RULE_COPY_COLUMNS = [c.key for c in RoutingRule.__table__.columns if c.key not in ("id", "plan_id")]
NAMES_SHOWN = 8


def rule_counts(plan_ids: list[int]) -> dict[int, int]:
    """Number of rules of each plan."""
    if not plan_ids:
        return {}
    stmt = (
        select(RoutingRule.plan_id, func.count())
        .where(RoutingRule.plan_id.in_(plan_ids))
        .group_by(RoutingRule.plan_id)
    )
    return dict(db.session.execute(stmt).all())


def common_priority(plan_id: int, default: int | None = 0) -> int | None:
    """The priority most of the plan's rules use (the lowest of equally common ones), else `default`."""
    stmt = (
        select(RoutingRule.priority)
        .where(RoutingRule.plan_id == plan_id)
        .group_by(RoutingRule.priority)
        .order_by(func.count().desc(), RoutingRule.priority)
        .limit(1)
    )
    found = db.session.scalar(stmt)
    return default if found is None else found


def additional_chain(additional_plan_id: int | None) -> list[int]:
    """The ids met following `additional plan` from this plan on (stops at the end or at a repeat)."""
    chain: list[int] = []
    current = additional_plan_id
    while current is not None and current not in chain:
        chain.append(current)
        current = db.session.scalar(select(RoutingPlan.additional_plan_id).where(RoutingPlan.id == current))
    return chain


def cycle_problem(plan: RoutingPlan | None, additional_plan_id: int | None) -> str | None:
    """Why `additional_plan_id` may not be `plan`'s additional plan (itself, leads back), or None."""
    if additional_plan_id is None or plan is None or plan.id is None:
        return None
    if additional_plan_id == plan.id:
        return "A plan cannot be its own additional plan."
    chain = additional_chain(additional_plan_id)
    if plan.id in chain:
        names = dict(
            db.session.execute(
                select(RoutingPlan.id, RoutingPlan.name).where(RoutingPlan.id.in_(chain))
            ).all()
        )
        path = [names.get(pid, f"#{pid}") for pid in chain[: chain.index(plan.id)]]
        return f"That leads back to this plan: {' → '.join([*path, plan.name])}."
    return None


def _names(items: list[str]) -> str:
    """A short list of names for a message: the first few and how many more."""
    shown = ", ".join(items[:NAMES_SHOWN])
    more = len(items) - NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def usage(plan: RoutingPlan) -> list[str]:
    """Who uses the plan: clients, accounts and plans that have it as their additional plan (as sentences)."""
    clients = db.session.scalars(
        select(Client.name).where(Client.routing_plan_id == plan.id).order_by(Client.name)
    ).all()
    accounts = db.session.execute(
        select(Client.name, Account.name)
        .join(Client, Account.client_id == Client.id)
        .where(Account.orig_routing_plan_id == plan.id)
        .order_by(Client.name, Account.name)
    ).all()
    plans = db.session.scalars(
        select(RoutingPlan.name).where(RoutingPlan.additional_plan_id == plan.id).order_by(RoutingPlan.name)
    ).all()
    parts = []
    if clients:
        parts.append(f"client{'s' if len(clients) > 1 else ''} {_names(list(clients))}")
    if accounts:
        labels = [f"{c} / {a}" for c, a in accounts]
        parts.append(f"account{'s' if len(accounts) > 1 else ''} {_names(labels)}")
    if plans:
        parts.append(f"as additional plan of {_names(list(plans))}")
    return parts


def delete_plan(plan: RoutingPlan) -> str | None:
    """Delete the plan and its rules with an audit entry; or say why not (it is in use), changing nothing."""
    used = usage(plan)
    if used:
        return (
            f"Routing plan {plan.name} is in use ({'; '.join(used)}). "
            "Assign those another plan first, then delete it."
        )
    count = rule_counts([plan.id]).get(plan.id, 0)
    before = audit.state(plan)
    db.session.execute(delete(RoutingRule).where(RoutingRule.plan_id == plan.id))
    writes.delete(plan, before=before, note=f"with {count:,} rules", commit_now=False)
    return None


def copy_name(plan: RoutingPlan) -> str:
    """`<name> (copy)`, or `(copy 2)`, `(copy 3)`… when that name is taken in the company."""
    taken = set(
        db.session.scalars(
            select(RoutingPlan.name).where(
                RoutingPlan.company_id == plan.company_id, RoutingPlan.name.startswith(plan.name[:100])
            )
        )
    )
    base = f"{plan.name[:110]} (copy"
    name, n = f"{base})", 1
    while name in taken:
        n += 1
        name = f"{base} {n})"
    return name


def copy_plan(plan: RoutingPlan) -> RoutingPlan:
    """A copy of the plan with all its rules (one INSERT … SELECT), audited as a create with a note."""
    copy = RoutingPlan(
        company_id=plan.company_id,
        name=copy_name(plan),
        additional_plan_id=plan.additional_plan_id,
        code_deck_id=plan.code_deck_id,
        loop_protection=plan.loop_protection,
        rules_hunting=plan.rules_hunting,
        dr_order=plan.dr_order,
        match_increments=plan.match_increments,
        pm_value=plan.pm_value,
        pm_percent=plan.pm_percent,
        vendor_limit=plan.vendor_limit,
        tags=plan.tags,
        notes=plan.notes,
        created_at=utcnow(),
    )
    copy.origination_limits = list(plan.origination_limits)
    copy.termination_limits = list(plan.termination_limits)
    db.session.add(copy)
    db.session.flush()
    source = select(literal(copy.id), *[getattr(RoutingRule, c) for c in RULE_COPY_COLUMNS]).where(
        RoutingRule.plan_id == plan.id
    )
    db.session.execute(insert(RoutingRule).from_select(["plan_id", *RULE_COPY_COLUMNS], source))
    count = rule_counts([copy.id]).get(copy.id, 0)
    writes.create(copy, note=f"copy of {plan.name} (id {plan.id}) with {count:,} rules", commit_now=False)
    return copy
