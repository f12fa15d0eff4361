"""Rate tables: list, create, edit, delete (refused while used); the rates grid with inline edit; CSV."""

from datetime import datetime

from flask import abort, flash, make_response, request, url_for
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from panel import audit
from panel.access import reader_required, writer_required
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.forms import name_taken
from panel.htmx import is_htmx, redirect, render, trigger
from panel.imports import export as csv_export
from panel.imports.flow import start_csv_import
from panel.imports.jobs import recent_jobs
from panel.listing import paginate, sort_key
from panel.models import Account, Client, Company, Rate, RateTable
from panel.models.types import utcnow
from panel.rates import bp
from panel.rates.forms import RateForm, RateImportForm, RateTableForm
from panel.rates.importer import MODES, RATE_COLUMNS, REQUIRED_COLUMNS, export_rows, import_rates
from panel.rates.shared import (
    count_by,
    default_owner,
    name_list,
    owned_list,
    owner_change_error,
    owner_choices,
    plural,
)
from panel.scope import get_or_404
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


@bp.route("/")
@reader_required
def index():
    """The rate tables of the user's companies, with rates count and who uses them."""
    pagination, q, company_id = owned_list(RateTable, TABLE_SORTABLE)
    ids = [t.id for t in pagination.items]
    return render(
        "rates/list.html",
        "rates/_table.html",
        pagination=pagination,
        rate_counts=count_by(Rate.rate_table_id, ids),
        usage=usage_counts(ids),
        companies=owner_choices(),
        q=q,
        company_id=company_id,
    )


def _table_form(table: RateTable | None = None) -> RateTableForm:
    """The table form with the owner choices (managers own no rate tables, SPEC §1)."""
    form = RateTableForm(obj=table)
    form.company_id.choices = as_choices(owner_choices(exclude_kinds=("manager",)))
    if table is None and request.method == "GET":
        form.company_id.data = default_owner(owner_choices(exclude_kinds=("manager",)))
    return form


@bp.route("/new", methods=["GET", "POST"])
@writer_required(reads="reader")
def create():
    """Create a rate table."""
    form = _table_form()
    if form.validate_on_submit() and not name_taken(form, RateTable, None, "rate table"):
        table = RateTable()
        form.populate_obj(table)
        db.session.add(table)
        audit.record("create", table)
        db.session.commit()
        flash(f"Rate table {table.name} created. Add rates or import a deck.", "success")
        return redirect(url_for("rates.show", rate_table_id=table.id))
    status = 422 if form.is_submitted() else 200
    return render("rates/form.html", status=status, form=form, table=None)


@bp.route("/<int:rate_table_id>/edit", methods=["GET", "POST"])
@writer_required(reads="reader")
def update(rate_table_id: int):
    """Edit a rate table's name, currency, owner and notes."""
    table = get_or_404(RateTable, rate_table_id)
    form = _table_form(table)
    if form.validate_on_submit() and not name_taken(form, RateTable, table, "rate table"):
        if form.company_id.data != table.company_id:
            _, companies = usage_names(table)
            error = owner_change_error(form.company_id.data, companies, "rate table")
            if error:
                form.company_id.errors.append(error)
                return render("rates/form.html", status=422, form=form, table=table)
        before = audit.state(table)
        form.populate_obj(table)
        audit.record("update", table, before=before)
        db.session.commit()
        flash(f"Rate table {table.name} saved.", "success")
        return redirect(url_for("rates.show", rate_table_id=table.id))
    status = 422 if form.is_submitted() else 200
    return render("rates/form.html", status=status, form=form, table=table)


@bp.route("/<int:rate_table_id>/delete", methods=["POST"])
@writer_required
def delete(rate_table_id: int):
    """Delete a rate table and its rates; refused while a client or an account uses it."""
    table = get_or_404(RateTable, rate_table_id)
    names, _ = usage_names(table)
    if names:
        flash(f"Rate table {table.name} is not deleted: it is used by {name_list(names)}.", "error")
        return redirect(url_for("rates.index"))
    count = count_by(Rate.rate_table_id, [table.id]).get(table.id, 0)
    before = audit.state(table)
    audit.record("delete", table, before=before, note=f"Deleted with its {plural(count, 'rate')}.")
    db.session.delete(table)
    db.session.commit()
    flash(f"Rate table {table.name} deleted with its {plural(count, 'rate')}.", "success")
    return redirect(url_for("rates.index"))


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


def _load_rate(rate_table_id: int, rate_id: int) -> tuple[RateTable, Rate]:
    """The table and one of its rates, or 404."""
    table = get_or_404(RateTable, rate_table_id)
    rate = get_or_404(Rate, rate_id)
    if rate.rate_table_id != table.id:
        abort(404)
    return table, rate


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


@bp.route("/<int:rate_table_id>/rates", methods=["POST"])
@writer_required
def rate_create(rate_table_id: int):
    """Add one rate from the form above the grid."""
    table = get_or_404(RateTable, rate_table_id)
    form = RateForm()
    if _validate_rate(form, table, None):
        rate = Rate(rate_table_id=table.id)
        _apply(form, rate)
        rate.rate_table = table
        db.session.add(rate)
        audit.record("create", rate)
        db.session.commit()
        if is_htmx():
            response = render(
                "rates/_add.html",
                "rates/_add.html",
                table=table,
                form=RateForm(formdata=None),
                keep_open=True,
            )
            return trigger(response, "rates-changed")
        flash(f"Rate for {rate.code} added.", "success")
        return redirect(url_for("rates.show", rate_table_id=table.id))
    if is_htmx():
        return render("rates/_add.html", "rates/_add.html", status=422, table=table, form=form)
    return _grid(table, form, 422)


@bp.route("/<int:rate_table_id>/rates/<int:rate_id>")
@reader_required
def rate_row(rate_table_id: int, rate_id: int):
    """One grid row (what Cancel shows again)."""
    table, rate = _load_rate(rate_table_id, rate_id)
    return render("rates/_row.html", "rates/_row.html", table=table, rate=rate, now=utcnow())


@bp.route("/<int:rate_table_id>/rates/<int:rate_id>/edit", methods=["GET", "POST"])
@writer_required(reads="reader")
def rate_update(rate_table_id: int, rate_id: int):
    """Inline edit of one rate: GET the row as inputs, POST to save (422 keeps the row in edit mode)."""
    table, rate = _load_rate(rate_table_id, rate_id)
    if request.method == "POST":
        form = RateForm()
        if _validate_rate(form, table, rate):
            before = audit.state(rate)
            _apply(form, rate)
            audit.record("update", rate, before=before)
            db.session.commit()
            if is_htmx():
                return render("rates/_row.html", "rates/_row.html", table=table, rate=rate, now=utcnow())
            return redirect(url_for("rates.show", rate_table_id=table.id))
        return render(
            "rates/rate_edit.html", "rates/_row_edit.html", status=422, table=table, rate=rate, form=form
        )
    form = RateForm(formdata=None, data=_form_data(rate))
    return render("rates/rate_edit.html", "rates/_row_edit.html", table=table, rate=rate, form=form)


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


@bp.route("/<int:rate_table_id>/rates/<int:rate_id>/delete", methods=["POST"])
@writer_required
def rate_delete(rate_table_id: int, rate_id: int):
    """Delete one rate (the row disappears from the grid)."""
    table, rate = _load_rate(rate_table_id, rate_id)
    before = audit.state(rate)
    audit.record("delete", rate, before=before)
    db.session.delete(rate)
    db.session.commit()
    if is_htmx():
        return make_response("", 200)  # htmx swaps the row out
    flash(f"Rate for {rate.code} deleted.", "success")
    return redirect(url_for("rates.show", rate_table_id=table.id))


# ---------------------------------------------------------------------------------------------------------
# Import and export


@bp.route("/<int:rate_table_id>/import", methods=["GET", "POST"])
@writer_required(reads="reader")
def import_(rate_table_id: int):
    """Upload a rate deck; it is checked and written in the background while a progress bar shows."""
    table = get_or_404(RateTable, rate_table_id)
    form = RateImportForm()
    context = {
        "table": table,
        "form": form,
        "modes": MODES,
        "columns": RATE_COLUMNS,
        "required": REQUIRED_COLUMNS,
    }
    if form.validate_on_submit():
        table_id, mode, default_from = table.id, form.mode.data, form.effective_from.parsed

        def run(data: bytes, filename: str, job_id: int, progress) -> str:
            return import_rates(
                table_id,
                data,
                mode,
                filename=filename,
                default_effective_from=default_from,
                progress=progress,
                job_id=job_id,
            )

        job = start_csv_import("rates", target=table, form=form, mode_label=MODES[mode], run=run)
        if job is not None:
            if is_htmx():
                context["form"] = RateImportForm(formdata=None)
                return render("rates/_import_form.html", "rates/_import_form.html", job=job, **context)
            return redirect(url_for("rates.import_", rate_table_id=table.id))
    status = 422 if form.is_submitted() else 200
    return render(
        "rates/import.html",
        "rates/_import_form.html",
        status=status,
        jobs=recent_jobs("rates", table.id),
        **context,
    )


@bp.route("/<int:rate_table_id>/export")
@reader_required
def export(rate_table_id: int):
    """The table's rates as CSV (the grid's search and date filter apply), in the import's column order."""
    table = get_or_404(RateTable, rate_table_id)
    stmt, _ = _rates_filter(table)
    stmt = stmt.order_by(Rate.code, Rate.effective_from)
    return csv_export.response(
        csv_export.csv_filename(table.name, "rates"), RATE_COLUMNS, export_rows(stmt)
    )
