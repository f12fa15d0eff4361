"""Pieces shared by the reference-data sections (rate tables, code decks, time profiles, policies, DIDs).

Owner pickers, the rule for moving an object to another company while it is used, and the wording of
"used by" lists, so the five sections say the same thing the same way. (Their CSV imports and exports live in
panel/imports/, their value rules in panel/values.py.)
"""

from collections.abc import Callable, Iterable
from datetime import datetime

from flask import request
from flask_login import current_user
from sqlalchemy import func, or_, select

from panel import search
from panel.extensions import db
from panel.listing import id_arg, paginate
from panel.models import Company, RoutingPlan, RoutingRule
from panel.scope import ancestor_ids, scoped, user_company_ids, visible_companies
from panel.values import parse_moment


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


def used_by_rules(column) -> Callable:
    """A section's `users_of` for what routing rules point to through `column` (policy_id, time_profile_id):
    the rules as the operator reads them and their plans' companies."""

    def users_of(obj) -> tuple[list[str], set[int]]:
        rules = rules_using(column, obj.id)
        return [rule_label(rule, plan) for rule, plan in rules], {plan.company_id for _, plan in rules}

    return users_of


def code_or_text(q: str, code, *texts):
    """A grid's search box: digits are a prefix of `code`, anything else a part of one of `texts`."""
    if q.isdigit():
        return code.startswith(q, autoescape=True)
    return or_(*(column.icontains(q, autoescape=True) for column in texts))


def moment_arg(name: str, kind: str) -> tuple[str, datetime | None, str]:
    """A moment from the query string (`YYYY-MM-DD[ HH:MM]`, UTC; `T` as a browser writes it): its text, its
    value (None when empty or wrong) and what is wrong with it."""
    text = request.args.get(name, "").strip()
    if not text:
        return text, None, ""
    try:
        return text, parse_moment(text.replace("T", " "), kind), ""
    except ValueError as exc:
        return text, None, str(exc)


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
