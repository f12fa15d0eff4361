"""Rate tables: list, create, edit, delete (refused while used); the rates grid with inline edit; CSV."""

from datetime import datetime

from flask import request
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased

from panel.extensions import db
from panel.listing import sort_key
from panel.models import Account, Client, Rate, RateTable
from panel.models.types import utcnow
from panel.rates import bp, importer
from panel.rates.forms import RateForm, RateTableForm
from panel.rates.importer import RATE_COLUMNS, export_rows
from panel.reference.owners import code_or_text, count_by, moment_arg
from panel.reference.views import InlineGrid, OwnedSection

RATE_SORTABLE = {
    "code": Rate.code,
    "name": Rate.name,
    "rate": Rate.rate,
    "effective_from": Rate.effective_from,
    "end": Rate.end,
}


# ---------------------------------------------------------------------------------------------------------
# Who uses a table


# What points to a rate table: clients and accounts, each as originator (orig) and terminator (term).
USERS = (("client", Client), ("account", Account))
ROLES = ("orig", "term")


def usage_counts(table_ids: list[int]) -> dict[int, dict[str, int]]:
    """For each table: how many clients and accounts use it as originator and as terminator rate table
    (`clients_orig`, `clients_term`, `accounts_orig`, `accounts_term`)."""
    usage: dict[int, dict[str, int]] = {tid: {} for tid in table_ids}
    for kind, model in USERS:
        for role in ROLES:
            for table_id, count in count_by(getattr(model, f"{role}_rate_table_id"), table_ids).items():
                usage[table_id][f"{kind}s_{role}"] = count
    return usage


def _using(model, table: RateTable):
    """`model` (Client or Account) uses the table as originator or terminator rate table."""
    return or_(*(getattr(model, f"{role}_rate_table_id") == table.id for role in ROLES))


def _roles(holder, table: RateTable) -> str:
    """`orig`, `term` or `orig/term`: how `holder` (a client or an account) uses the table."""
    return "/".join(role for role in ROLES if getattr(holder, f"{role}_rate_table_id") == table.id)


def usage_names(table: RateTable) -> tuple[list[str], set[int]]:
    """The clients and accounts that use the table, as the operator reads them, and their companies."""
    clients = db.session.scalars(select(Client).where(_using(Client, table)).order_by(Client.name)).all()
    names = [f"client {client.name} ({_roles(client, table)})" for client in clients]
    companies = {client.company_id for client in clients}
    accounts = db.session.execute(
        select(Account, Client)
        .join(Client, Account.client_id == Client.id)
        .where(_using(Account, table))
        .order_by(Client.name, Account.name)
    ).all()
    names += [
        f"account {client.name}/{account.name} ({_roles(account, table)})" for account, client in accounts
    ]
    companies |= {c.company_id for _, c in accounts}
    return names, companies


# ---------------------------------------------------------------------------------------------------------
# Rate tables


section = OwnedSection(
    bp,
    RateTable,
    RateTableForm,
    usage_names,
    sortable={"currency": RateTable.currency},
    rows=Rate.rate_table_id,
    exclude_owner_kinds=("manager",),  # managers own no rate tables (SPEC §1)
    created_hint=" Add rates or import a deck.",
    list_context=lambda tables: {"usage": usage_counts([t.id for t in tables])},
)


# ---------------------------------------------------------------------------------------------------------
# The rates grid


def _rates_filter(table: RateTable) -> tuple:
    """The grid's select and filters from the query string: `q` (code prefix or name) and `at` (a moment)."""
    q = request.args.get("q", "").strip()
    at_text, at, at_error = moment_arg("at", "date")
    stmt = select(Rate).where(Rate.rate_table_id == table.id)
    if q:
        stmt = stmt.where(code_or_text(q, Rate.code, Rate.name))
    if at is not None:
        stmt = stmt.where(_effective_at(Rate, at))
        # Of the rows effective at T, only the latest effective_from of each code prices a call (SPEC §3).
        later = aliased(Rate)
        stmt = stmt.where(
            ~exists().where(
                later.rate_table_id == Rate.rate_table_id,
                later.code == Rate.code,
                later.effective_from > Rate.effective_from,
                _effective_at(later, at),
            )
        )
    return stmt, {"q": q, "at": at_text, "at_value": at, "at_error": at_error}


def _effective_at(model, at: datetime):
    """effective_from <= T < end (no end: open)."""
    return and_(model.effective_from <= at, or_(model.end.is_(None), model.end > at))


def _tiebreak():
    """By code, a code's rows follow each other by effective_from (code and moment are unique in a table)."""
    return Rate.effective_from if sort_key(RATE_SORTABLE, "code").lstrip("-") == "code" else Rate.id


def _validate_rate(form: RateForm, table: RateTable, rate: Rate | None) -> bool:
    """Field rules plus: end after effective_from; one rate per code and moment in a table."""
    if not form.validate():
        return False
    effective_from = form.effective_from.parsed or (
        rate.effective_from if rate else utcnow().replace(microsecond=0)
    )
    form.effective_from.parsed = effective_from
    end = form.end.parsed
    if end is not None and end <= effective_from:
        form.end.errors.append("The end must be after effective from.")
        return False
    if rates.taken(table, rate, Rate.code == form.code.parsed, Rate.effective_from == effective_from):
        form.effective_from.errors.append(f"Code {form.code.parsed} already has a rate from this moment.")
        return False
    return True


def _form_data(rate: Rate) -> dict:
    """A rate as the text the inline inputs show."""
    from panel.values import format_decimal, format_moment

    return {
        "code": rate.code,
        "name": rate.name,
        "rate": format_decimal(rate.rate),
        "effective_from": format_moment(rate.effective_from),
        "end": format_moment(rate.end),
        "setup_fee": format_decimal(rate.setup_fee),
        "min_time": str(rate.min_time),
        "interval": str(rate.interval),
    }


rates = InlineGrid(
    section,
    Rate,
    RateForm,
    RATE_COLUMNS,
    _rates_filter,
    _validate_rate,
    label=lambda rate: f"Rate for {rate.code}",
    importer=importer.IMPORT,
    export_rows=export_rows,
    order=(Rate.code, Rate.effective_from),
    sortable=RATE_SORTABLE,
    tiebreak=_tiebreak,
    page_context=lambda table: {"usage": usage_names(table)[0]},
    form_data=_form_data,
)
