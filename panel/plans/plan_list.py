"""The routing plans list: its advanced search's pickers and the plans select its filters give."""

from flask_login import current_user
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import contains_eager

from panel import search
from panel.extensions import db
from panel.forms import parse_id
from panel.models import Account, CodeDeck, Company, RoutingPlan, RoutingRule, plan_origination_limits
from panel.plans import lookups
from panel.plans.forms import PlanSearchForm, options
from panel.scope import scoped, usable_plans, visible_companies


def search_choices(form: PlanSearchForm) -> None:
    """Fill the advanced search's pickers from the user's scope."""
    companies = [(c.id, c.name) for c in db.session.scalars(visible_companies())]
    form.company_id.choices = options(companies, "any reseller")
    form.allowed_for.choices = options(companies, "any company")
    form.code_deck_id.choices = options(lookups.code_decks(), "any code deck")
    # Additional plans may also be plans of companies above that the user's company may use.
    plans = {}
    for stmt in (scoped(RoutingPlan), usable_plans(current_user.company_id)):
        plans.update(
            db.session.execute(stmt.with_only_columns(RoutingPlan.id, RoutingPlan.name)).tuples().all()
        )
    form.additional_plan_id.choices = options(sorted(plans.items(), key=lambda p: p[1].lower()), "any")
    form.term_client_id.choices = options(lookups.terminator_clients(), "any client")


def _int_arg(field) -> int | None:
    """A search select's value, or None when empty or not a number."""
    return field.data if isinstance(field.data, int) else None


def plan_select(form: PlanSearchForm):
    """The scoped plans select of the search, whether the advanced search narrowed it, the rules count."""
    rules_count = (
        select(func.count())
        .where(RoutingRule.plan_id == RoutingPlan.id)
        .correlate(RoutingPlan)
        .scalar_subquery()
    )
    stmt = (
        scoped(RoutingPlan)
        .join(Company, RoutingPlan.company_id == Company.id)
        .outerjoin(CodeDeck, RoutingPlan.code_deck_id == CodeDeck.id)
        .options(contains_eager(RoutingPlan.company), contains_eager(RoutingPlan.code_deck))
    )
    q = (form.q.data or "").strip()
    if q:
        condition = or_(search.contains(RoutingPlan.name, q), search.has_word(RoutingPlan.tags, q))
        if parse_id(q) is not None:
            condition = or_(condition, RoutingPlan.id == parse_id(q))
        stmt = stmt.where(condition)
    advanced = False
    for name, column in (
        ("company_id", RoutingPlan.company_id),
        ("code_deck_id", RoutingPlan.code_deck_id),
        ("additional_plan_id", RoutingPlan.additional_plan_id),
    ):
        value = _int_arg(getattr(form, name))
        if value is not None:
            stmt = stmt.where(column == value)
            advanced = True
    allowed_for = _int_arg(form.allowed_for)
    if allowed_for is not None:
        stmt = stmt.where(
            exists().where(
                plan_origination_limits.c.plan_id == RoutingPlan.id,
                plan_origination_limits.c.company_id == allowed_for,
            )
        )
        advanced = True
    tag = (form.tag.data or "").strip()
    if tag:
        stmt = stmt.where(search.has_word(RoutingPlan.tags, tag))
        advanced = True
    term_client = _int_arg(form.term_client_id)
    if term_client is not None:
        accounts = select(Account.id).where(Account.client_id == term_client)
        stmt = stmt.where(
            exists().where(
                RoutingRule.plan_id == RoutingPlan.id,
                or_(
                    RoutingRule.terminator_client_id == term_client,
                    RoutingRule.terminator_account_id.in_(accounts),
                ),
            )
        )
        advanced = True
    return stmt, advanced, rules_count
