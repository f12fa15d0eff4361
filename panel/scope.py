"""The one company-scope helper: every query for a user's objects goes through here (SPEC §1).

A user sees the objects of its company and of every company below it, never of its parent or siblings.
An object outside the scope answers 404, never 403, so its existence is not revealed.
"""

from collections.abc import Iterable

from flask import abort, g
from flask_login import current_user
from sqlalchemy import Select, and_, exists, false, or_, select

from panel.extensions import db
from panel.models import (
    Account,
    AccountNetwork,
    ApiToken,
    AuditEntry,
    CallStat,
    Client,
    Code,
    CodeDeck,
    Company,
    Did,
    Gateway,
    LiveCall,
    Policy,
    Rate,
    RateTable,
    RoutingPlan,
    RoutingRule,
    TimeProfile,
    User,
    plan_origination_limits,
)
from panel.models.system import ImportJob


def _parents() -> dict[int, int | None]:
    """Every company's parent, read once per request (the tree is small and read everywhere)."""
    cache = g.get("_company_parents") if _has_g() else None
    if cache is None:
        cache = dict(db.session.execute(select(Company.id, Company.parent_id)).all())
        if _has_g():
            g._company_parents = cache
    return cache


def _has_g() -> bool:
    """True inside an application context (the CLI and the manager thread have one too)."""
    from flask import has_app_context

    return has_app_context()


def forget_tree() -> None:
    """Drop the cached tree after a company is created or moved."""
    if _has_g():
        g.pop("_company_parents", None)


def descendant_ids(company_id: int) -> frozenset[int]:
    """The company and every company below it."""
    parents = _parents()
    children: dict[int | None, list[int]] = {}
    for cid, pid in parents.items():
        children.setdefault(pid, []).append(cid)
    seen, stack = {company_id}, [company_id]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return frozenset(seen)


def ancestor_ids(company_id: int) -> list[int]:
    """The company and every company above it, nearest first."""
    parents = _parents()
    chain, cid = [], company_id
    while cid is not None and cid not in chain:
        chain.append(cid)
        cid = parents.get(cid)
    return chain


def user_company_ids(user=None) -> frozenset[int]:
    """The companies a user may see: its own and its descendants; nothing for anonymous users."""
    user = user or current_user
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    return descendant_ids(user.company_id)


def _clients_of(ids: Iterable[int]):
    """Subquery: ids of the clients owned by these companies."""
    return select(Client.id).where(Client.company_id.in_(ids))


def scope_condition(model, ids: frozenset[int]):
    """The SQL condition that keeps rows of `model` owned by one of the companies `ids`."""
    ids = list(ids)
    if not ids:
        return false()
    if model is Company:
        return Company.id.in_(ids)
    if model in (
        User,
        ApiToken,
        Client,
        Gateway,
        RateTable,
        CodeDeck,
        TimeProfile,
        Policy,
        RoutingPlan,
        ImportJob,
    ):
        return model.company_id.in_(ids)
    if model is AuditEntry:
        return AuditEntry.company_id.in_(ids)
    if model is Account:
        return Account.client_id.in_(_clients_of(ids))
    if model is AccountNetwork:
        return AccountNetwork.account_id.in_(
            select(Account.id).where(Account.client_id.in_(_clients_of(ids)))
        )
    if model is Did:
        return Did.account_id.in_(select(Account.id).where(Account.client_id.in_(_clients_of(ids))))
    if model is Rate:
        return Rate.rate_table_id.in_(select(RateTable.id).where(RateTable.company_id.in_(ids)))
    if model is Code:
        return Code.code_deck_id.in_(select(CodeDeck.id).where(CodeDeck.company_id.in_(ids)))
    if model is RoutingRule:
        return RoutingRule.plan_id.in_(select(RoutingPlan.id).where(RoutingPlan.company_id.in_(ids)))
    if model is CallStat:
        clients = _clients_of(ids)
        return or_(CallStat.orig_client_id.in_(clients), CallStat.term_client_id.in_(clients))
    if model is LiveCall:
        accounts = select(Account.id).where(Account.client_id.in_(_clients_of(ids)))
        return or_(LiveCall.orig_account_id.in_(accounts), LiveCall.term_account_id.in_(accounts))
    raise TypeError(f"no company scope is defined for {model.__name__}")


def scoped(model, user=None, *, company_id: int | None = None) -> Select:
    """`select(model)` limited to what the user (or, for the API, a company) may see."""
    ids = descendant_ids(company_id) if company_id is not None else user_company_ids(user)
    return select(model).where(scope_condition(model, ids))


# The largest id an INTEGER column holds (32 bits on PostgreSQL); larger numbers in URLs and forms are simply
# not found, instead of failing in the database.
MAX_ID = 2**31 - 1


def get_or_404(model, object_id, user=None, *, company_id: int | None = None):
    """Load one object in scope, or answer 404 (also when it exists but belongs to another company)."""
    try:
        object_id = int(object_id)
    except (TypeError, ValueError):
        abort(404)
    if not -MAX_ID <= object_id <= MAX_ID:
        abort(404)  # beyond any id: no such object (the database would refuse the number)
    obj = db.session.scalar(scoped(model, user, company_id=company_id).where(model.id == object_id))
    if obj is None:
        abort(404)
    return obj


def in_scope(model, object_id, user=None) -> bool:
    """True when the object exists and the user may see it (for validating ids posted by forms)."""
    if object_id in (None, ""):
        return False
    try:
        object_id = int(object_id)
    except (TypeError, ValueError):
        return False
    if not -MAX_ID <= object_id <= MAX_ID:
        return False
    return (
        db.session.scalar(scoped(model, user).where(model.id == int(object_id)).with_only_columns(model.id))
        is not None
    )


def usable_plans_condition(company_id: int):
    """SQL condition for the routing plans a company may use (SPEC §1, origination limits).

    Usable by the companies in the plan's Origination Limits and their descendants; an empty list means
    every company in the owner's subtree.
    """
    ancestors = ancestor_ids(company_id)
    limited = exists().where(plan_origination_limits.c.plan_id == RoutingPlan.id)
    allowed = exists().where(
        and_(
            plan_origination_limits.c.plan_id == RoutingPlan.id,
            plan_origination_limits.c.company_id.in_(ancestors),
        )
    )
    return and_(RoutingPlan.company_id.in_(ancestors), or_(allowed, ~limited))


def usable_plans(company) -> Select:
    """`select(RoutingPlan)` of the plans `company` (a Company or id) may assign to clients and accounts."""
    company_id = company if isinstance(company, int) else company.id
    return select(RoutingPlan).where(usable_plans_condition(company_id)).order_by(RoutingPlan.name)


def usable_rate_tables(company) -> Select:
    """`select(RateTable)` of the rate tables `company` may assign: its own and its ancestors'."""
    company_id = company if isinstance(company, int) else company.id
    return (
        select(RateTable).where(RateTable.company_id.in_(ancestor_ids(company_id))).order_by(RateTable.name)
    )


def visible_companies(user=None) -> Select:
    """`select(Company)` of the user's company and its descendants, ordered by name."""
    return scoped(Company, user).order_by(Company.name)
