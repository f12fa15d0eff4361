"""Clients: list, profile (details, balance, accounts, recent calls), create, edit, balance, delete."""

from decimal import Decimal

from flask import flash, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from panel import search, writes
from panel.access import reader_required, writer_required
from panel.accounts import pickers
from panel.accounts.listing import load_rows
from panel.clients import bp
from panel.clients.forms import BalanceForm, ClientForm, ClientSearchForm
from panel.extensions import db
from panel.forms import choices
from panel.htmx import redirect, render
from panel.listing import id_arg, paginate
from panel.models import Account, CallStat, Client, RateTable, RoutingPlan, RoutingRule
from panel.pages import confirm_delete
from panel.scope import get_or_404, scoped, user_company_ids, visible_companies

SORTABLE = {"name": Client.name, "balance": Client.balance, "id": Client.id}
PROFILE_ACCOUNTS = 50
PROFILE_CALLS = 20
MAX_BALANCE = Decimal("1e12")


@bp.route("/")
@reader_required
def index():
    """The clients in scope with their company, balance, number of accounts and defaults."""
    form = ClientSearchForm(request.args)
    companies = list(db.session.scalars(visible_companies()))
    form.company_id.choices = choices([(c.id, c.name) for c in companies], "All companies")
    stmt = scoped(Client).options(
        selectinload(Client.company),
        selectinload(Client.orig_rate_table),
        selectinload(Client.term_rate_table),
        selectinload(Client.routing_plan),
    )
    text = (form.q.data or "").strip()[:100]
    if text:
        stmt = stmt.where(search.contains(Client.name, text))
    if form.company_id.data:
        stmt = stmt.where(Client.company_id == form.company_id.data)
    pagination = paginate(stmt, SORTABLE, "name", tiebreak=Client.id)
    ids = [c.id for c in pagination.items]
    counts = dict(
        db.session.execute(
            select(Account.client_id, func.count())
            .where(Account.client_id.in_(ids))
            .group_by(Account.client_id)
        ).all()
    )
    return render(
        "clients/list.html",
        "clients/_table.html",
        form=form,
        pagination=pagination,
        clients=pagination.items,
        counts=counts,
        several_companies=len(companies) > 1,
        filtered=bool(text or form.company_id.data),
        title="Clients",
    )


@bp.route("/<int:client_id>")
@reader_required
def show(client_id: int):
    """The client's profile: details, balance, its accounts and its recent calls."""
    client = get_or_404(Client, client_id)
    accounts_total = db.session.scalar(
        select(func.count()).select_from(Account).where(Account.client_id == client.id)
    )
    accounts = _first_accounts(client)
    calls = _recent_calls(client)
    return render(
        "clients/show.html",
        None,
        client=client,
        accounts=accounts,
        accounts_total=accounts_total,
        calls=calls,
        balance_form=BalanceForm(),
        title=client.name,
    )


def _first_accounts(client: Client) -> list[Account]:
    """The client's first accounts by name, loaded as list rows."""
    ids = db.session.scalars(
        select(Account.id)
        .where(Account.client_id == client.id)
        .order_by(Account.name, Account.id)
        .limit(PROFILE_ACCOUNTS)
    )
    return load_rows(list(ids))


def _recent_calls(client: Client) -> list[CallStat]:
    """The latest calls the client sent or received (two indexed queries, merged)."""
    found: dict[int, CallStat] = {}
    for column in (CallStat.orig_client_id, CallStat.term_client_id):
        stmt = (
            select(CallStat)
            .where(column == client.id)
            .options(selectinload(CallStat.orig_account), selectinload(CallStat.term_account))
            .order_by(CallStat.start_at.desc(), CallStat.id.desc())
            .limit(PROFILE_CALLS)
        )
        for call in db.session.scalars(stmt):
            found[call.id] = call
    return sorted(found.values(), key=lambda c: (c.start_at, c.id), reverse=True)[:PROFILE_CALLS]


def _prepare_form(form: ClientForm, client: Client | None) -> None:
    """Companies in scope; rate tables and plans usable by the client's company (posted ids checked)."""
    form.company_id.choices = choices([(c.id, c.name) for c in db.session.scalars(visible_companies())])
    if client is not None:
        company_id = client.company_id
    elif form.company_id.data in user_company_ids():
        company_id = form.company_id.data
    else:
        company_id = current_user.company_id
    if client is None and form.company_id.data is None:
        form.company_id.data = company_id
    tables = pickers.usable_rate_table_list(company_id)
    plans = pickers.usable_plan_list(company_id)
    pickers.set_select(
        form.orig_rate_table_id, tables, "— none —", client.orig_rate_table_id if client else None, RateTable
    )
    pickers.set_select(
        form.term_rate_table_id, tables, "— none —", client.term_rate_table_id if client else None, RateTable
    )
    pickers.set_select(
        form.routing_plan_id, plans, "— none —", client.routing_plan_id if client else None, RoutingPlan
    )


def _check_form(form: ClientForm, client: Client | None) -> bool:
    """Fields, pickers and a name unique within the company."""
    valid = form.validate()
    valid = pickers.check_select(form.orig_rate_table_id, "rate table") and valid
    valid = pickers.check_select(form.term_rate_table_id, "rate table") and valid
    valid = pickers.check_select(form.routing_plan_id, "routing plan") and valid
    if not valid:
        return False
    company_id = client.company_id if client else form.company_id.data
    same = select(Client.id).where(Client.company_id == company_id, Client.name == form.name.data)
    if client is not None:
        same = same.where(Client.id != client.id)
    if db.session.scalar(same.limit(1)):
        form.name.errors.append("The company already has a client of this name.")
        return False
    return True


def _apply(form: ClientForm, client: Client) -> None:
    """Copy the form into the client."""
    client.name = form.name.data
    client.currency = form.currency.data
    client.orig_rate_table_id = form.orig_rate_table_id.data
    client.term_rate_table_id = form.term_rate_table_id.data
    client.routing_plan_id = form.routing_plan_id.data
    client.notes = form.notes.data or ""


def _form_page(form: ClientForm, client: Client | None, status: int = 200):
    """The client form page."""
    return render(
        "clients/form.html",
        None,
        status,
        form=form,
        client=client,
        title=f"Edit client {client.name}" if client else "New client",
    )


@bp.route("/new", methods=["GET", "POST"])
@writer_required
def create():
    """A new client of one of the user's companies."""
    form = ClientForm()
    if request.method == "GET" and id_arg("company_id") in user_company_ids():
        form.company_id.data = id_arg("company_id")
    _prepare_form(form, None)
    if request.method == "POST":
        if _check_form(form, None):
            client = Client(company_id=form.company_id.data, balance=Decimal("0"))
            _apply(form, client)
            writes.create(client)
            flash(f"Client “{client.name}” created.", "success")
            return redirect(url_for("clients.show", client_id=client.id))
        return _form_page(form, None, 422)
    return _form_page(form, None)


@bp.route("/<int:client_id>/edit", methods=["GET", "POST"])
@writer_required
def update(client_id: int):
    """Edit a client's name, currency, defaults and notes (its company stays)."""
    client = get_or_404(Client, client_id)
    form = ClientForm(obj=client if request.method == "GET" else None)
    if request.method == "POST":
        form.company_id.data = client.company_id
    _prepare_form(form, client)
    form.company_id.data = client.company_id
    if request.method == "POST":
        if _check_form(form, client):
            with writes.change(client, version=form.version.data):
                _apply(form, client)
            flash(f"Client “{client.name}” saved.", "success")
            return redirect(url_for("clients.show", client_id=client.id))
        return _form_page(form, client, 422)
    return _form_page(form, client)


@bp.route("/<int:client_id>/balance", methods=["POST"])
@writer_required
def adjust_balance(client_id: int):
    """Credit or debit the balance by hand (a payment, a correction), with the reason in the audit log."""
    client = get_or_404(Client, client_id)
    form = BalanceForm()
    if form.validate():
        client = db.session.scalar(
            select(Client)
            .where(Client.id == client.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        new_balance = (client.balance or Decimal("0")) + form.amount.data
        if abs(new_balance) >= MAX_BALANCE:
            form.amount.errors.append("The balance would be out of range.")
        else:
            with writes.change(client, note=f"Balance adjusted by {form.amount.data}: {form.note.data}"):
                client.balance = new_balance
            flash(f"Balance adjusted by {form.amount.data} {client.currency}.", "success")
            return redirect(url_for("clients.show", client_id=client.id))
    accounts_total = db.session.scalar(
        select(func.count()).select_from(Account).where(Account.client_id == client.id)
    )
    accounts = _first_accounts(client)
    return render(
        "clients/show.html",
        None,
        422,
        client=client,
        accounts=accounts,
        accounts_total=accounts_total,
        calls=_recent_calls(client),
        balance_form=form,
        title=client.name,
    )


def _blockers(client: Client) -> list[str]:
    """Why the client cannot be deleted yet (it has accounts, rules send calls to it)."""
    reasons = []
    accounts = db.session.scalar(
        select(func.count()).select_from(Account).where(Account.client_id == client.id)
    )
    if accounts:
        reasons.append(
            f"it has {accounts:,} account(s): delete them first, or keep the client and deactivate them"
        )
    rules = db.session.scalar(
        select(func.count()).select_from(RoutingRule).where(RoutingRule.terminator_client_id == client.id)
    )
    if rules:
        reasons.append(f"{rules:,} routing rule(s) send calls to it: change those rules first")
    return reasons


@bp.route("/<int:client_id>/delete", methods=["GET", "POST"])
@writer_required
def delete(client_id: int):
    """Delete a client without accounts (refused, with the reason, while it has any)."""
    client = get_or_404(Client, client_id)
    blockers = _blockers(client)
    return confirm_delete(
        client,
        "clients/delete.html",
        bool(blockers),
        url_for("clients.index"),
        f"Client “{client.name}” deleted.",
        client=client,
        blockers=blockers,
        noun="client",
        back=url_for("clients.show", client_id=client.id),
        title=f"Delete {client.name}",
    )
