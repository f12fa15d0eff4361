"""Pieces shared by the reference-data sections (rate tables, code decks, time profiles, policies, DIDs).

Owner pickers, the rule for moving an object to another company while it is used, and the wording of
"used by" lists, so the five sections say the same thing the same way. (Their CSV imports and exports live in
panel/imports/, their value rules in panel/values.py.)
"""

from collections.abc import Iterable

from flask import request
from flask_login import current_user
from sqlalchemy import func, select

from panel import search
from panel.extensions import db
from panel.listing import id_arg, paginate
from panel.models import Company, RoutingPlan, RoutingRule
from panel.scope import ancestor_ids, scoped, user_company_ids, visible_companies


def count_by(column, ids: list[int]) -> dict[int, int]:
    """Rows per value of `column` (a foreign key) for the given ids, in one grouped query: {id: count}."""
    if not ids:
        return {}
    return dict(
        db.session.execute(select(column, func.count()).where(column.in_(ids)).group_by(column)).all()
    )


def rules_using(column, object_id: int) -> list:
    """The routing rules whose `column` (policy_id, time_profile_id) is the object, with their plans."""
    return db.session.execute(
        select(RoutingRule, RoutingPlan)
        .join(RoutingPlan, RoutingRule.plan_id == RoutingPlan.id)
        .where(column == object_id)
        .order_by(RoutingPlan.name, RoutingRule.priority, RoutingRule.id)
    ).all()


def owned_list(model, sortable: dict):
    """The list of a named object owned by companies (rate tables, decks, policies, profiles): name search,
    owner filter, sorting and paging, all in the user's scope. Returns (pagination, q, company_id)."""
    q = request.args.get("q", "").strip()
    company_id = id_arg("company_id")
    stmt = scoped(model).join(Company, model.company_id == Company.id)
    if q:
        stmt = stmt.where(search.contains(model.name, q))
    if company_id and company_id in user_company_ids():
        stmt = stmt.where(model.company_id == company_id)
    return paginate(stmt, sortable, "name", model.id), q, company_id


def owner_choices(exclude_kinds: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(id, name) of the companies the user may give an object to: its own and its descendants."""
    excluded = set(exclude_kinds)
    companies = db.session.scalars(visible_companies()).all()
    return [(c.id, c.name) for c in companies if c.kind not in excluded]


def default_owner(choices: list[tuple[int, str]]) -> int | None:
    """The user's own company when it is offered, else the first choice."""
    ids = [cid for cid, _ in choices]
    if current_user.company_id in ids:
        return current_user.company_id
    return ids[0] if ids else None


def owner_change_error(new_owner_id: int, user_company_ids: Iterable[int], what: str) -> str | None:
    """Why the object cannot move to `new_owner_id`, or None.

    An object is usable by its owner and the companies below it, so every company that uses it must stay at or
    below the new owner.
    """
    stranded = sorted({cid for cid in user_company_ids if new_owner_id not in ancestor_ids(cid)})
    if not stranded:
        return None
    names = db.session.scalars(
        select(Company.name).where(Company.id.in_(stranded)).order_by(Company.name)
    ).all()
    return (
        f"This {what} is used by {', '.join(names)}, which would no longer be allowed to use it under the "
        f"new owner. Change those users first."
    )


def name_list(names: Iterable[str], limit: int = 5) -> str:
    """`A, B, C and 4 more`: a readable list of who uses an object."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit:,} more"


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    """`1 rate`, `2 rates`."""
    return f"{count:,} {word if count == 1 else (plural_word or word + 's')}"


def rule_label(rule, plan) -> str:
    """`plan Retail rule 4420 (priority 10)`; `plan Retail did rule (priority 1)` for rules without a code."""
    what = f"rule {rule.code}" if rule.code else f"{rule.type.replace('_', ' ')} rule"
    return f"plan {plan.name} {what} (priority {rule.priority})"
