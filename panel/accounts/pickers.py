"""Choices offered by the account and client forms, limited to what the client's company may use (SPEC §1).

Rate tables come from `scope.usable_rate_tables`, limited to the tables the user sees: a provider's rate
tables (of the companies above the user's) hold its prices, which the reseller's Rate tables list does not
show, so they are not offered either (issue 14.4); one the provider already assigned stays, marked. Routing
plans come from `scope.usable_plans`, gateways from the company and its ancestors (the operator's switch
nodes serve its resellers; the Gateways list shows them too). A posted id outside these lists is refused
with a message; a value already stored but no longer usable is still shown, marked, so the form tells the
truth and asks for a change.
"""

from flask_login import current_user
from sqlalchemy import select

from panel import search as searching
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.models import Client, Company, Gateway, RateTable, RoutingPlan
from panel.scope import ancestor_ids, scoped, usable_plans, usable_rate_tables, user_company_ids

NOT_USABLE = " (not usable by this client's company)"
PROVIDERS = " (your provider's table: kept as it is)"


# The accounts list's client filter offers this many clients at a time (found by name as the user types).
CLIENT_FILTER_LIMIT = 50


def client_choices(
    text: str = "", limit: int | None = None, chosen: int | None = None
) -> list[tuple[int, str]]:
    """The clients in the user's scope as (id, label); the company is named when the user sees several.

    `text` keeps the clients whose name contains it and `limit` the first of them by name; `chosen` (a client
    in scope) comes first, whether it is among them or not. Plain rows, not ORM objects: a carrier may have
    thousands of clients.
    """
    ids = user_company_ids()
    base = (
        scoped(Client)
        .with_only_columns(Client.id, Client.name, Client.company_id)
        .order_by(Client.name, Client.id)
    )
    stmt = base.where(searching.contains(Client.name, text)) if text else base
    rows = db.session.execute(stmt.limit(limit)).all()
    if chosen is not None:
        rows = db.session.execute(base.where(Client.id == chosen)).all() + [r for r in rows if r.id != chosen]
    if len(ids) <= 1:
        return [(cid, name) for cid, name, _ in rows]
    companies = dict(db.session.execute(select(Company.id, Company.name).where(Company.id.in_(ids))).all())
    return [(cid, f"{name} — {companies.get(company_id, '')}") for cid, name, company_id in rows]


def usable_rate_table_list(company_id: int) -> list[RateTable]:
    """Rate tables the company may assign that the user also sees (not a provider's price list)."""
    seen = user_company_ids()
    return [t for t in db.session.scalars(usable_rate_tables(company_id)) if t.company_id in seen]


def usable_plan_list(company_id: int) -> list[RoutingPlan]:
    """Routing plans the company may assign."""
    return list(db.session.scalars(usable_plans(company_id)))


def usable_gateway_list(company_id: int) -> list[Gateway]:
    """Gateways the company's accounts may name: its own and its ancestors'."""
    stmt = (
        select(Gateway)
        .where(Gateway.company_id.in_(ancestor_ids(company_id)))
        .order_by(Gateway.name, Gateway.id)
    )
    return list(db.session.scalars(stmt))


def set_select(field, objects, empty_label: str, current_id: int | None, model) -> None:
    """Fill a single select: an empty choice, the usable objects, and the stored one when it is not usable."""
    choices = [("", empty_label)] + [(obj.id, _label(obj)) for obj in objects]
    usable_ids = {obj.id for obj in objects}
    if current_id is not None and current_id not in usable_ids:
        stored = db.session.get(model, current_id)
        if stored is not None and _providers(stored):
            choices.append((stored.id, _label(stored) + PROVIDERS))
            usable_ids.add(stored.id)  # usable by the client's company: saving the form keeps it
        elif stored is not None:
            choices.append((stored.id, _label(stored) + NOT_USABLE))
    field.choices = as_choices(choices)
    field.usable_ids = usable_ids


def check_select(field, what: str) -> bool:
    """Server-side check that a posted id is one the company may use."""
    if field.data is None or field.data in field.usable_ids:
        return True
    field.errors.append(f"This {what} may not be used by the client's company; choose another.")
    return False


def _providers(obj) -> bool:
    """True for a rate table of a company above the user's: usable by its clients, hidden from its lists."""
    if not isinstance(obj, RateTable) or not current_user.is_authenticated:
        return False
    providers = ancestor_ids(current_user.company_id)[1:]  # the user's own company comes first
    return obj.company_id in providers


def _label(obj) -> str:
    """A picker label: rate tables show their currency."""
    if isinstance(obj, RateTable):
        return f"{obj.name} ({obj.currency})"
    return obj.name
