"""The one company-scope helper: every query for a user's objects goes through here (SPEC §1).

A user sees the objects of its company and of every company below it, never of its parent or siblings.
An object outside the scope answers 404, never 403, so its existence is not revealed.
"""

from flask import abort, g
from flask_login import current_user
from sqlalchemy import Select, and_, exists, false, or_, select
from sqlalchemy import inspect as sa_inspect

from panel.extensions import db
from panel.models import Company, RateTable, RoutingPlan, plan_origination_limits


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


def _owner_paths(model) -> tuple[str, ...]:
    """The model's owner paths (its `__owner__` declaration): dotted steps ending in a company id column."""
    paths = getattr(model, "__owner__", None)
    if paths is None:
        raise TypeError(f"no company scope is defined for {model.__name__}: declare __owner__ on the model")
    return (paths,) if isinstance(paths, str) else tuple(paths)


def _step(model, name: str):
    """One step of an owner path: (local column, remote column, target model).

    A step names a relationship (`client`) or a foreign-key column (`orig_account_id`).
    """
    mapper = sa_inspect(model)
    if name in mapper.relationships:
        relationship = mapper.relationships[name]
        (local, remote), *_ = relationship.local_remote_pairs
        return local, remote, relationship.mapper.class_
    column = mapper.columns[name]
    (foreign_key,) = column.foreign_keys
    target = next(m.class_ for m in mapper.registry.mappers if foreign_key.column.table in m.tables)
    return column, foreign_key.column, target


def _path_condition(model, steps: list[str], ids: list[int]):
    """SQL condition for one owner path: nested `IN (SELECT ...)` from the row up to the company id."""
    if len(steps) == 1:
        return getattr(model, steps[0]).in_(ids)
    local, remote, target = _step(model, steps[0])
    return local.in_(select(remote).where(_path_condition(target, steps[1:], ids)))


def scope_condition(model, ids: frozenset[int]):
    """The SQL condition that keeps rows of `model` owned by one of the companies `ids` (from `__owner__`)."""
    paths = _owner_paths(model)
    ids = list(ids)
    if not ids:
        return false()
    conditions = [_path_condition(model, path.split("."), ids) for path in paths]
    return conditions[0] if len(conditions) == 1 else or_(*conditions)


def owner_of(obj) -> tuple[int | None, int | None]:
    """(company id, client id) an object belongs to, walking its `__owner__` path (first path that resolves).

    The client is the first Client met on the way (the object itself included), for the client's history.
    Relationships not loaded yet (a new object with only its foreign key set) are read by id.
    """
    from panel.models import Client

    try:
        paths = _owner_paths(type(obj))
    except TypeError:
        return getattr(obj, "company_id", None), None
    for path in paths:
        current, client_id = obj, None
        steps = path.split(".")
        for name in steps[:-1]:
            if isinstance(current, Client) and client_id is None:
                client_id = current.id
            local, _remote, target = _step(type(current), name)
            nxt = getattr(current, name, None) if name in sa_inspect(type(current)).relationships else None
            if nxt is None:
                key = getattr(current, sa_inspect(type(current)).get_property_by_column(local).key, None)
                nxt = db.session.get(target, key) if key is not None else None
            current = nxt
            if current is None:
                break
        if current is None:
            continue
        if isinstance(current, Client) and client_id is None:
            client_id = current.id
        return getattr(current, steps[-1], None), client_id
    return None, None


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
