"""Rate tables: list, create, edit, delete (refused while used); the rates grid with inline edit; CSV."""

from datetime import datetime

from flask import request
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from panel.access import get_or_404, reader_required, writer_required
from panel.extensions import db
from panel.htmx import render
from panel.imports import export as csv_export
from panel.imports import flow
from panel.listing import paginate, sort_key
from panel.models import Account, Client, Company, Rate, RateTable
from panel.models.types import utcnow
from panel.rates import bp, importer
from panel.rates.forms import RateForm, RateTableForm
from panel.rates.importer import RATE_COLUMNS, export_rows
from panel.reference.owners import count_by, plural
from panel.reference.views import InlineGrid, OwnedSection
from panel.values import parse_moment

TABLE_SORTABLE = {"name": RateTable.name, "company": Company.name, "currency": RateTable.currency}
RATE_SORTABLE = {
    "code": Rate.code,
    "name": Rate.name,
    "rate": Rate.rate,
    "effective_from": Rate.effective_from,
    "end": Rate.end,
}


# ---------------------------------------------------------------------------------------------------------
# Who uses a table


def usage_counts(table_ids: list[int]) -> dict[int, dict[str, int]]:
    """For each table: how many clients and accounts use it as originator and as terminator rate table."""
    usage: dict[int, dict[str, int]] = {tid: {} for tid in table_ids}
    if not table_ids:
        return usage
    sources = {
        "clients_orig": Client.orig_rate_table_id,
        "clients_term": Client.term_rate_table_id,
        "accounts_orig": Account.orig_rate_table_id,
        "accounts_term": Account.term_rate_table_id,
    }
    for key, col in sources.items():
        for table_id, count in db.session.execute(
            select(col, func.count()).where(col.in_(table_ids)).group_by(col)
        ).all():
            usage[table_id][key] = count
    return usage


def usage_names(table: RateTable) -> tuple[list[str], set[int]]:
    """The clients and accounts that use the table, as the operator reads them, and their companies."""
    names: list[str] = []
    companies: set[int] = set()
    clients = db.session.scalars(
        select(Client)
        .where(or_(Client.orig_rate_table_id == table.id, Client.term_rate_table_id == table.id))
        .order_by(Client.name)
    ).all()
    for client in clients:
        roles = [
            r
            for r, col in (("orig", client.orig_rate_table_id), ("term", client.term_rate_table_id))
            if col == table.id
        ]
        names.append(f"client {client.name} ({'/'.join(roles)})")
        companies.add(client.company_id)
    accounts = db.session.execute(
        select(Account, Client)
        .join(Client, Account.client_id == Client.id)
        .where(or_(Account.orig_rate_table_id == table.id, Account.term_rate_table_id == table.id))
        .order_by(Client.name, Account.name)
    ).all()
    for account, client in accounts:
        roles = [
            r
            for r, col in (("orig", account.orig_rate_table_id), ("term", account.term_rate_table_id))
            if col == table.id
        ]
        names.append(f"account {client.name}/{account.name} ({'/'.join(roles)})")
        companies.add(client.company_id)
    return names, companies


# ---------------------------------------------------------------------------------------------------------
# Rate tables


def _rate_count(table: RateTable) -> int:
    """How many rates the table holds."""
    return count_by(Rate.rate_table_id, [table.id]).get(table.id, 0)


section = OwnedSection(
    bp=bp,
    model=RateTable,
    form_class=RateTableForm,
    noun="rate table",
    plural="Rate tables",
    sortable=TABLE_SORTABLE,
    var="table",
    users_of=usage_names,
    exclude_owner_kinds=("manager",),  # managers own no rate tables (SPEC §1)
    created_hint=" Add rates or import a deck.",
    deleted_with=lambda table: f"with its {plural(_rate_count(table), 'rate')}",
    list_context=lambda items: {
        "rate_counts": count_by(Rate.rate_table_id, [t.id for t in items]),
        "usage": usage_counts([t.id for t in items]),
    },
)


# ---------------------------------------------------------------------------------------------------------
# The rates grid


def _rates_filter(table: RateTable) -> tuple:
    """The grid's select and filters from the query string: `q` (code prefix or name) and `at` (a moment)."""
    q = request.args.get("q", "").strip()
    at_text = request.args.get("at", "").strip()
    stmt = select(Rate).where(Rate.rate_table_id == table.id)
    if q:
        if q.isdigit():
            stmt = stmt.where(Rate.code.startswith(q, autoescape=True))
        else:
            stmt = stmt.where(Rate.name.icontains(q, autoescape=True))
    at, at_error = None, ""
    if at_text:
        try:
            at = parse_moment(at_text.replace("T", " "), "date")
        except ValueError as exc:
            at_error = str(exc)
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


def _grid(table: RateTable, form: RateForm | None = None, status: int = 200):
    """The rate table page, or the grid fragment for htmx (search, filter, paging)."""
    stmt, filters = _rates_filter(table)
    # By code, a code's rows follow each other by effective_from (code and moment are unique in a table).
    tiebreak = Rate.effective_from if sort_key(RATE_SORTABLE, "code").lstrip("-") == "code" else Rate.id
    pagination = paginate(stmt, RATE_SORTABLE, "code", tiebreak)
    now = utcnow()
    return render(
        "rates/show.html",
        "rates/_grid.html",
        status=status,
        table=table,
        pagination=pagination,
        filters=filters,
        form=form or RateForm(formdata=None),
        now=now,
        usage=usage_names(table)[0],
        rate_count=count_by(Rate.rate_table_id, [table.id]).get(table.id, 0),
    )


@bp.route("/<int:rate_table_id>")
@reader_required
def show(rate_table_id: int):
    """The rates grid of one table: search by code prefix or name, current rates at a date, paging."""
    table = get_or_404(RateTable, rate_table_id)
    return _grid(table)


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
    stmt = select(Rate.id).where(
        Rate.rate_table_id == table.id, Rate.code == form.code.parsed, Rate.effective_from == effective_from
    )
    if rate is not None:
        stmt = stmt.where(Rate.id != rate.id)
    if db.session.scalar(stmt) is not None:
        form.effective_from.errors.append(f"Code {form.code.parsed} already has a rate from this moment.")
        return False
    return True


def _apply(form: RateForm, rate: Rate) -> None:
    """Copy the form's clean values onto the rate."""
    for name in RATE_COLUMNS:
        setattr(rate, name, getattr(form, name).parsed)


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
    bp=bp,
    parent_model=RateTable,
    model=Rate,
    form_class=RateForm,
    parent_arg="rate_table_id",
    prefix="rate",
    parent_var="table",
    validate=_validate_rate,
    apply=_apply,
    form_data=_form_data,
    show=_grid,
    label=lambda rate: f"Rate for {rate.code}",
)


# ---------------------------------------------------------------------------------------------------------
# Import and export


@bp.route("/<int:rate_table_id>/import", methods=["GET", "POST"])
@writer_required(reads="reader")
def import_(rate_table_id: int):
    """Upload a rate deck: a replace is previewed first; the import runs in the background (panel.imports)."""
    return flow.handle(importer.IMPORT, get_or_404(RateTable, rate_table_id))


@bp.route("/<int:rate_table_id>/export")
@reader_required
def export(rate_table_id: int):
    """The table's rates as CSV (the grid's search and date filter apply), in the import's column order."""
    table = get_or_404(RateTable, rate_table_id)
    stmt, _ = _rates_filter(table)
    stmt = stmt.order_by(Rate.code, Rate.effective_from)
    return csv_export.response(csv_export.csv_filename(table.name, "rates"), RATE_COLUMNS, export_rows(stmt))
