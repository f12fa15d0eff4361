"""Who uses a routing plan: the clients (their default plan), the accounts (an origination override) and the
plans that continue into it (additional plan), each within the user's scope, for the plan's header."""

from dataclasses import dataclass, field

from sqlalchemy import func, select

from panel.extensions import db
from panel.models import Account, Client, RoutingPlan
from panel.scope import scoped

# Names listed in the header; the rest are counted and reachable through the linked lists.
SHOWN = 8


@dataclass
class PlanUsage:
    """Counts and the first few of each kind of user of a plan."""

    clients: int = 0
    accounts: int = 0
    plans: int = 0
    first_clients: list[Client] = field(default_factory=list)
    first_accounts: list[Account] = field(default_factory=list)
    first_plans: list[RoutingPlan] = field(default_factory=list)

    @property
    def unused(self) -> bool:
        """True when nothing routes through the plan (a new or imported plan still to be assigned)."""
        return not (self.clients or self.accounts or self.plans)


def _count_and_first(stmt, order) -> tuple[int, list]:
    """How many rows a scoped select gives, and the first SHOWN of them."""
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    first = list(db.session.scalars(stmt.order_by(order).limit(SHOWN))) if total else []
    return int(total or 0), first


def plan_usage(plan: RoutingPlan) -> PlanUsage:
    """The clients, accounts and plans in the user's scope that route through `plan`."""
    usage = PlanUsage()
    usage.clients, usage.first_clients = _count_and_first(
        scoped(Client).where(Client.routing_plan_id == plan.id), Client.name
    )
    usage.accounts, usage.first_accounts = _count_and_first(
        scoped(Account).where(Account.orig_routing_plan_id == plan.id), Account.name
    )
    usage.plans, usage.first_plans = _count_and_first(
        scoped(RoutingPlan).where(RoutingPlan.additional_plan_id == plan.id), RoutingPlan.name
    )
    return usage
