"""Gateways: list, create, edit and delete (refused while accounts name the gateway)."""

from flask import flash, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from panel import search, writes
from panel.access import reader_required, writer_required
from panel.extensions import db
from panel.forms import choices, name_taken
from panel.gateways import bp
from panel.gateways.forms import GatewayForm
from panel.htmx import redirect, render
from panel.listing import paginate
from panel.models import Account, Gateway, account_gateways
from panel.pages import confirm_delete
from panel.scope import ancestor_ids, get_or_404, scope_condition, user_company_ids, visible_companies

SORTABLE = {"name": Gateway.name, "address": Gateway.address, "id": Gateway.id}


def accounts_using(gateway_ids: list[int], mine_only: bool = False) -> dict[int, int]:
    """How many accounts name each gateway: of any company, or (`mine_only`) of the user's companies only."""
    if not gateway_ids:
        return {}
    stmt = (
        select(account_gateways.c.gateway_id, func.count())
        .where(account_gateways.c.gateway_id.in_(gateway_ids))
        .group_by(account_gateways.c.gateway_id)
    )
    if mine_only:  # a provider's gateway serves other companies too: their accounts are not counted
        stmt = stmt.join(Account, Account.id == account_gateways.c.account_id).where(
            scope_condition(Account, user_company_ids())
        )
    return dict(db.session.execute(stmt).all())


def listed_gateways():
    """The gateways the user's accounts may name: its companies' own and its provider's (the companies above).

    The account form offers both (panel.accounts.pickers.usable_gateway_list), so the list shows both; a
    provider's gateway is read-only here (editing it answers 404 as before).
    """
    providers = [cid for cid in ancestor_ids(current_user.company_id) if cid != current_user.company_id]
    return select(Gateway).where(
        scope_condition(Gateway, user_company_ids()) | Gateway.company_id.in_(providers)
    )


@bp.route("/")
@reader_required
def index():
    """The gateways of the user's companies and of its provider, with how many of its accounts use each."""
    stmt = listed_gateways().options(selectinload(Gateway.company))
    text = (request.args.get("q") or "").strip()[:100]
    if text:
        stmt = stmt.where(search.contains(Gateway.name, text) | search.contains(Gateway.address, text))
    pagination = paginate(stmt, SORTABLE, "name", tiebreak=Gateway.id)
    return render(
        "gateways/list.html",
        "gateways/_table.html",
        pagination=pagination,
        gateways=pagination.items,
        usage=accounts_using([g.id for g in pagination.items], mine_only=True),
        own=user_company_ids(),
        q=text,
        title="Gateways",
    )


def _prepare_form(form: GatewayForm, gateway: Gateway | None) -> None:
    """The companies the user may put a gateway in."""
    form.company_id.choices = choices([(c.id, c.name) for c in db.session.scalars(visible_companies())])
    if gateway is not None:
        form.company_id.data = gateway.company_id


def _form_page(form: GatewayForm, gateway: Gateway | None, status: int = 200):
    """The gateway form page."""
    title = f"Edit gateway {gateway.name}" if gateway else "New gateway"
    return render("gateways/form.html", None, status, form=form, gateway=gateway, title=title)


@bp.route("/new", methods=["GET", "POST"])
@writer_required
def create():
    """A new gateway of one of the user's companies."""
    form = GatewayForm()
    _prepare_form(form, None)
    if request.method == "GET" and form.company_id.data is None:
        form.company_id.data = current_user.company_id
    if form.validate_on_submit() and not name_taken(form, Gateway, None, "gateway"):
        gateway = Gateway(company_id=form.company_id.data)
        _fill(form, gateway)
        writes.create(gateway)
        flash(f"Gateway “{gateway.name}” created.", "success")
        return redirect(url_for("gateways.index"))
    return _form_page(form, None, 422 if request.method == "POST" else 200)


def _fill(form: GatewayForm, gateway: Gateway) -> None:
    """The form's name, address and notes onto the gateway (its company is set once, on creation)."""
    gateway.name = form.name.data
    gateway.address = form.address.data or ""
    gateway.notes = form.notes.data or ""


@bp.route("/<int:gateway_id>/edit", methods=["GET", "POST"])
@writer_required
def update(gateway_id: int):
    """Rename a gateway or change its address and notes (its company stays)."""
    gateway = get_or_404(Gateway, gateway_id)
    form = GatewayForm(obj=gateway if request.method == "GET" else None)
    _prepare_form(form, gateway)
    if form.validate_on_submit() and not name_taken(form, Gateway, gateway, "gateway", gateway.company_id):
        with writes.change(gateway, version=form.version.data):
            _fill(form, gateway)
        flash(f"Gateway “{gateway.name}” saved.", "success")
        return redirect(url_for("gateways.index"))
    return _form_page(form, gateway, 422 if request.method == "POST" else 200)


@bp.route("/<int:gateway_id>/delete", methods=["GET", "POST"])
@writer_required
def delete(gateway_id: int):
    """Delete a gateway no account names (refused, with the count, while any does)."""
    gateway = get_or_404(Gateway, gateway_id)
    used = accounts_using([gateway.id]).get(gateway.id, 0)
    return confirm_delete(
        gateway,
        "gateways/delete.html",
        bool(used),
        url_for("gateways.index"),
        f"Gateway “{gateway.name}” deleted.",
        gateway=gateway,
        used=used,
        noun="gateway",
        back=url_for("gateways.index"),
        title=f"Delete {gateway.name}",
    )
