"""Who uses a routing plan: the clients (their default plan), the accounts (an origination override) and the
plans that continue into it (additional plan), each within the user's scope, for the plan's header."""

from dataclasses import dataclass

from sqlalchemy import func, select

from panel.extensions import db
from panel.models import Account, Client, RoutingPlan
from panel.scope import scoped

# Names listed in the header; the rest are counted and reachable through the linked lists.
SHOWN = 8


@dataclass
class Users:
    """How many of one kind of user there are, and the first SHOWN of them."""

    count: int
    first: list

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass
class PlanUsage:
    """Who uses a plan: clients (default plan), accounts (origination override), plans (additional plan)."""

    clients: Users
    accounts: Users
    plans: Users

    @property
    def unused(self) -> bool:
        """True when nothing routes through the plan (a new or imported plan still to be assigned)."""
        return not (self.clients or self.accounts or self.plans)


def _users(stmt, order) -> Users:
    """How many rows a scoped select gives, and the first SHOWN of them."""
    total = int(db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    return Users(total, list(db.session.scalars(stmt.order_by(order).limit(SHOWN))) if total else [])


def plan_usage(plan: RoutingPlan) -> PlanUsage:
    """The clients, accounts and plans in the user's scope that route through `plan`."""
    return PlanUsage(
        _users(scoped(Client).where(Client.routing_plan_id == plan.id), Client.name),
        _users(scoped(Account).where(Account.orig_routing_plan_id == plan.id), Account.name),
        _users(scoped(RoutingPlan).where(RoutingPlan.additional_plan_id == plan.id), RoutingPlan.name),
    )
