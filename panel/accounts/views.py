"""Accounts: the list with quick and advanced search, an account's page, create, edit, deactivate, delete.

Pages degrade to whole pages without JavaScript; with htmx the list updates in place, and the account, its
form and the delete dialog open in a modal whose save replaces the list row without reloading the page.
"""

from decimal import Decimal

from flask import flash, g, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from panel import crypto, writes
from panel.access import reader_required, writer_required
from panel.accounts import bp, idents, listing, pickers, service
from panel.accounts.forms import AccountForm, AccountSearchForm
from panel.extensions import db
from panel.htmx import is_htmx, redirect, render
from panel.listing import id_arg, sort_key
from panel.models import Account, CallStat, Client, Gateway, RateTable, RoutingPlan
from panel.models.accounts import IDENT_BY_LABELS
from panel.scope import ancestor_ids, get_or_404, usable_plans_condition, user_company_ids


def _search_form() -> AccountSearchForm:
    """The search form read from the query string; its pickers are filled only for the whole page."""
    form = AccountSearchForm(request.args)
    if is_htmx():
        # Fragments (search as you type, paging) do not show the pickers: no need to load them.
        form.client_id.choices = form.rate_table_id.choices = form.routing_plan_id.choices = []
        return form
    company_id = current_user.company_id
    ids = user_company_ids()
    visible = or_(RateTable.company_id.in_(ids), RateTable.company_id.in_(ancestor_ids(company_id)))
    tables = db.session.execute(
        select(RateTable.id, RateTable.name).where(visible).order_by(RateTable.name, RateTable.id)
    ).all()
    form.rate_table_id.choices = [("", "Any"), *((t.id, t.name) for t in tables)]
    # The subtree's own plans, and the ancestors' plans only where the company may use them (a parent's plan
    # limited to other companies is not offered, issue 13.12).
    plan_visible = or_(RoutingPlan.company_id.in_(ids), usable_plans_condition(company_id))
    plans = db.session.execute(
        select(RoutingPlan.id, RoutingPlan.name)
        .where(plan_visible)
        .order_by(RoutingPlan.name, RoutingPlan.id)
    ).all()
    form.routing_plan_id.choices = [("", "Any"), *((p.id, p.name) for p in plans)]
    form.client_id.choices, form.client_id.more = client_filter_choices(form)
    return form


def client_filter_choices(form: AccountSearchForm) -> tuple[list[tuple], bool]:
    """The client filter's options (every client, the chosen one, and the first clients by name whose name
    contains the text typed beside the filter), and whether more clients match: never the whole list (a
    carrier may have 10,000 clients)."""
    text = (form.client_q.data or "").strip()[:120]
    limit = pickers.CLIENT_FILTER_LIMIT
    matches = pickers.client_choices(text, limit + 1)
    shown, more = matches[:limit], len(matches) > limit
    chosen = form.client_id.data
    if chosen is not None and all(cid != chosen for cid, _ in shown):  # the chosen client stays selectable
        shown = pickers.client_choices(limit=0, chosen=chosen) + shown
    return [("", "All clients"), *shown], more


@bp.route("/clients")
@reader_required
def client_filter():
    """The client filter's options for the name typed beside it (htmx swaps them into the filter)."""
    form = AccountSearchForm(request.args)
    choices, more = client_filter_choices(form)
    return render_template(
        "accounts/_client_options.html", choices=choices, more=more, selected=form.client_id.data
    )


@bp.route("/")
@reader_required
def index():
    """The accounts in the user's scope, searched, sorted and paged on the server."""
    form = _search_form()
    client = get_or_404(Client, form.client_id.data) if form.client_id.data else None
    if form.match.data not in listing.MATCHES:
        form.match.data = listing.default_match()
    search = listing.Search(
        text=(form.q.data or "").strip()[:100],
        match=form.match.data,
        client_id=client.id if client else None,
        ident_by=form.ident_by.data or "",
        rate_table_id=form.rate_table_id.data,
        routing_plan_id=form.routing_plan_id.data,
        tag=(form.tag.data or "").strip()[:40],
        state=form.state.data or "",
    )
    sort = sort_key({key: None for key in listing.SORTABLE}, listing.DEFAULT_SORT)
    pagination = listing.account_page(user_company_ids(), search, sort)
    return render(
        "accounts/list.html",
        "accounts/_table.html",
        form=form,
        pagination=pagination,
        accounts=pagination.items,
        client=client,
        filtered=search.filtered,
        sort=sort,
        default_sort=listing.DEFAULT_SORT,
        title=f"Accounts of {client.name}" if client else "Accounts",
    )


# ---------------------------------------------------------------- one account


@bp.route("/<int:account_id>")
@reader_required
def show(account_id: int):
    """An account's settings, networks and gateways, and its page its recent calls (a modal for htmx)."""
    account = get_or_404(Account, account_id)
    if is_htmx():
        return render("accounts/show.html", "accounts/_show_modal.html", account=account, title=account.name)
    return render("accounts/show.html", account=account, calls=_recent_calls(account), title=account.name)


def _recent_calls(account: Account, limit: int = 10) -> list[CallStat]:
    """The latest calls the account originated or terminated (two indexed queries, merged)."""
    found: dict[int, CallStat] = {}
    for column in (CallStat.orig_account_id, CallStat.term_account_id):
        stmt = select(CallStat).where(column == account.id).order_by(CallStat.start_at.desc()).limit(limit)
        found.update((call.id, call) for call in db.session.scalars(stmt))
    return sorted(found.values(), key=lambda c: (c.start_at, c.id), reverse=True)[:limit]


def _prepare_form(form: AccountForm, account: Account | None) -> Client | None:
    """Fill the form's choices for the chosen client (or the account's); return that client."""
    form.client_id.choices = pickers.client_choices()
    client_ids = {cid for cid, _ in form.client_id.choices}
    chosen = form.client_id.data if form.client_id.data in client_ids else None
    if chosen is None and account is not None:
        chosen = account.client_id
    client = db.session.get(Client, chosen) if chosen else None
    company_id = client.company_id if client else current_user.company_id

    tables = pickers.usable_rate_table_list(company_id)
    plans = pickers.usable_plan_list(company_id)

    def default(obj) -> str:
        return f"— client default: {obj.name} —" if obj is not None else "— none (client has no default) —"

    # Each picker: its choices, and the client's default it falls back to.
    for field, objects, fallback, model in (
        (form.orig_rate_table_id, tables, "orig_rate_table", RateTable),
        (form.term_rate_table_id, tables, "term_rate_table", RateTable),
        (form.orig_routing_plan_id, plans, "routing_plan", RoutingPlan),
    ):
        empty = default(getattr(client, fallback)) if client else "— client default —"
        stored = getattr(account, field.name) if account else None
        pickers.set_select(field, objects, empty, stored, model)
    gateways = pickers.usable_gateway_list(company_id)
    choices = [(g.id, g.name) for g in gateways]
    if account is not None:
        usable = {g.id for g in gateways}
        choices += [(g.id, g.name + pickers.NOT_USABLE) for g in account.gateways if g.id not in usable]
    form.gateway_ids.choices = choices
    form.gateway_ids.usable_ids = {g.id for g in gateways}
    return client


def _check_form(form: AccountForm, account: Account | None) -> bool:
    """Validate the fields, the pickers (client's company), the name within the client and the identity."""
    valid = form.validate()
    valid = pickers.check_select(form.orig_rate_table_id, "rate table") and valid
    valid = pickers.check_select(form.term_rate_table_id, "rate table") and valid
    valid = pickers.check_select(form.orig_routing_plan_id, "routing plan") and valid
    bad_gateways = [gid for gid in (form.gateway_ids.data or []) if gid not in form.gateway_ids.usable_ids]
    if bad_gateways:
        form.gateway_ids.errors = list(form.gateway_ids.errors) + [
            "A chosen gateway may not be used by the client's company."
        ]
        valid = False
    if not valid:
        return False
    same_name = select(Account.id).where(
        Account.client_id == form.client_id.data, Account.name == form.name.data
    )
    if account is not None:
        same_name = same_name.where(Account.id != account.id)
    if db.session.scalar(same_name.limit(1)):
        form.name.errors.append("The client already has an account of this name.")
        return False
    candidate = idents.Candidate(
        account_id=account.id if account else None,
        ident_by=form.ident_by.data,
        ident_value=form.ident_text,
        networks=[idents.canonical(n) for n in form.networks],
        tech_prefix=form.tech_prefix.data or "",
        gateway_ids=frozenset(form.gateway_ids.data or ()),
        orig_enabled=bool(form.orig_enabled.data),
        term_enabled=bool(form.term_enabled.data),
        protocol=form.protocol.data,
        port=form.port.data,
    )
    conflicts = idents.find_conflicts(candidate)
    for conflict in conflicts:
        getattr(form, conflict.field).errors.append(conflict.message)
    return not conflicts


def _chosen_gateways(form: AccountForm) -> list[Gateway]:
    """The gateways ticked in the form (already checked against the usable ones)."""
    ids = list(form.gateway_ids.data or [])
    if not ids:
        return []
    return list(db.session.scalars(select(Gateway).where(Gateway.id.in_(ids)).order_by(Gateway.name)))


def _form_response(form: AccountForm, account: Account | None, status: int = 200):
    """The form as a page, or as a modal when htmx asked; 422 when it holds errors."""
    action = url_for("accounts.update", account_id=account.id) if account else url_for("accounts.create")
    return render(
        "accounts/form.html",
        "accounts/_form_modal.html",
        status,
        form=form,
        account=account,
        action=action,
        has_password=bool(account and account.password_encrypted),
        title=f"Edit account {account.name}" if account else "New account",
    )


def _saved_response(account: Account, created: bool):
    """After a save: htmx gets the new row (swapped in place) and a closed modal; a browser gets the page."""
    return _row_response(account, f"Account “{account.name}” {'created' if created else 'saved'}.", created)


def _row_response(account: Account, message: str, created: bool = False):
    """The account's page with the message (a browser), or its list row and the message (htmx)."""
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("accounts.show", account_id=account.id))
    account = listing.load_rows([account.id])[0]
    return render_template("accounts/_saved.html", account=account, created=created, message=message)


@bp.route("/new", methods=["GET", "POST"])
@writer_required
def create():
    """A new account; `?client_id=` picks the client (from the client's page)."""
    form = AccountForm()
    if request.method == "GET" and id_arg("client_id"):
        form.client_id.data = id_arg("client_id")
    _prepare_form(form, None)
    if request.method == "POST":
        if _check_form(form, None):
            account = Account(client_id=form.client_id.data, name=form.name.data)
            db.session.add(account)
            service.apply_form(account, form, _chosen_gateways(form))
            db.session.flush()
            writes.create(account, after=service.account_state(account))
            return _saved_response(account, created=True)
        return _form_response(form, None, 422)
    return _form_response(form, None)


@bp.route("/<int:account_id>/edit", methods=["GET", "POST"])
@writer_required
def update(account_id: int):
    """Edit an account: every field of the seed's table."""
    account = get_or_404(Account, account_id)
    form = AccountForm(obj=account if request.method == "GET" else None)
    if request.method == "GET":
        form.gateway_ids.data = [g.id for g in account.gateways]
        form.password.data = ""
    _prepare_form(form, account)
    if request.method == "POST":
        if _check_form(form, account):
            with writes.change(account, version=form.version.data, state=service.account_state) as unit:
                password_changed = service.apply_form(account, form, _chosen_gateways(form))
                db.session.flush()
                unit.note = "password changed" if password_changed else ""
            return _saved_response(account, created=False)
        return _form_response(form, account, 422)
    return _form_response(form, account)


@bp.route("/options")
@writer_required
def options():
    """The form's pickers for the client just chosen (htmx swaps them out of band)."""
    form = AccountForm(formdata=request.args, meta={"csrf": False})
    account = None
    if id_arg("account_id"):
        account = get_or_404(Account, id_arg("account_id"))
    _prepare_form(form, account)
    return render_template("accounts/_options.html", form=form)


@bp.route("/<int:account_id>/password")
@writer_required
def password(account_id: int):
    """The stored password in clear, on demand, for users who may edit the account."""
    account = get_or_404(Account, account_id)
    form = AccountForm(meta={"csrf": False}, formdata=None)
    form.password.data = crypto.decrypt(account.password_encrypted)
    return render_template(
        "accounts/_password.html",
        form=form,
        account=account,
        shown=True,
        has_password=bool(account.password_encrypted),
    )


@bp.route("/password/generate")
@writer_required
def generate_password():
    """A new strong password in the form (saved only with the form)."""
    form = AccountForm(meta={"csrf": False}, formdata=None)
    form.password.data = crypto.generate_password()
    account = None
    if id_arg("account_id"):
        account = get_or_404(Account, id_arg("account_id"))
    return render_template(
        "accounts/_password.html", form=form, account=account, shown=True, generated=True, has_password=False
    )


# ---------------------------------------------------------------- deactivate and delete


@bp.route("/<int:account_id>/deactivate", methods=["POST"])
@writer_required
def deactivate(account_id: int):
    """Untick Originator and Terminator: the account stays, with its statistics, but routes no calls."""
    account = get_or_404(Account, account_id)
    service.deactivate(account)
    return _row_response(account, f"Account “{account.name}” deactivated: its statistics are kept.")


@bp.route("/<int:account_id>/delete", methods=["GET", "POST"])
@writer_required
def delete(account_id: int):
    """Confirm (statistics rows, refund, deactivation instead), then delete and refund in one transaction."""
    account = get_or_404(Account, account_id)
    preview = service.delete_preview(account)
    if request.method == "POST" and not preview.rules_total:
        name, client_name, currency = account.name, account.client.name, account.client.currency
        deleted_id = account.id
        try:
            rows, refund = service.delete_account(account)
        except service.AccountInUse:
            return _delete_response(account, service.delete_preview(account), 422)
        message = (
            f"Account “{name}” deleted with {rows:,} statistics rows; "
            f"{refund.quantize(Decimal('0.01')):,} {currency} credited to “{client_name}”."
        )
        if not is_htmx():
            flash(message, "success")
            return redirect(url_for("accounts.index"))
        return render_template("accounts/_deleted.html", account_id=deleted_id, message=message)
    return _delete_response(account, preview, 422 if request.method == "POST" else 200)


def _delete_response(account: Account, preview: service.DeletePreview, status: int = 200):
    """The delete confirmation as a page or a modal."""
    return render(
        "accounts/delete.html",
        "accounts/_delete_modal.html",
        status,
        account=account,
        preview=preview,
        title=f"Delete account {account.name}",
    )


def address_of(account: Account) -> str:
    """The terminator's address as the list shows it: the proxy, or the first single IP of the ident."""
    if account.proxy:
        return account.proxy
    if account.ident_by != "ip":
        return ""
    for part in account.ident_value.split(";"):
        part = part.strip()
        if part and "/" not in part:
            return f"[{part}]:{account.port}" if ":" in part else f"{part}:{account.port}"
    return ""


@bp.app_template_global("account_address")
def account_address(account: Account) -> str:
    """Template helper: see address_of."""
    return address_of(account)


ROW_LINKS = {
    "client": ("clients.show", "client_id"),
    "client_accounts": ("accounts.index", "client_id"),
    "client_history": ("audit_views.index", "client_id"),
    "show": ("accounts.show", "account_id"),
    "update": ("accounts.update", "account_id"),
    "delete": ("accounts.delete", "account_id"),
}


def row_links() -> dict[str, str]:
    """URL patterns of a list row's links (`/clients/{}`), built once per request: a page of 50 rows would
    otherwise build some 450 URLs one by one."""
    links = g.get("_account_row_links")
    if links is None:
        marker = 987654321
        links = {
            name: url_for(endpoint, **{key: marker}).replace(str(marker), "{}")
            for name, (endpoint, key) in ROW_LINKS.items()
        }
        g._account_row_links = links
    return links


@bp.record_once
def _install_globals(state) -> None:
    """Templates of every section show an account's ident kind in the operator's words, and its rows."""
    state.app.jinja_env.globals["IDENT_BY_LABELS"] = IDENT_BY_LABELS
    state.app.jinja_env.globals["account_row_links"] = row_links
