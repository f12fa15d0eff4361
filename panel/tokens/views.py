"""API tokens: list per company with last use, create (the token is shown once), revoke.

Everyone sees the tokens of their company subtree; only admins create and revoke them. A token is stored as
a SHA-256 hash with its first characters (to tell tokens apart); the clear token appears once, on the page
that answers its creation. Revoking is immediate (the next API call with it answers 401) and is kept in the
list, with the audit entry, rather than deleted.
"""

from flask import flash, request, url_for
from flask_login import current_user

from panel import htmx, scope, writes
from panel.access import admin_required, reader_required
from panel.api.auth import new_token
from panel.companies.tree import tree_rows
from panel.extensions import db
from panel.listing import id_arg
from panel.models import ApiToken, Company, User
from panel.models.types import utcnow
from panel.tokens import bp
from panel.tokens.forms import TokenForm


def _company_choices() -> list[tuple[int, str]]:
    """Active companies of the user's subtree in tree order, indented."""
    companies = db.session.scalars(scope.visible_companies()).all()
    return [
        (c.id, "\u2003" * depth + c.name)
        for c, depth in tree_rows(companies, current_user.company_id)
        if c.active
    ]


def _tokens(company_id: int | None, state: str) -> list[tuple[ApiToken, Company, User | None]]:
    """Tokens of the subtree (optionally one company, active or revoked), newest first."""
    stmt = (
        scope.scoped(ApiToken)
        .join(Company, ApiToken.company_id == Company.id)
        .outerjoin(User, ApiToken.created_by_id == User.id)
        .add_columns(Company, User)
        .order_by(
            Company.name, ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc()
        )
    )
    if company_id:
        stmt = stmt.where(ApiToken.company_id == company_id)
    if state == "active":
        stmt = stmt.where(ApiToken.revoked_at.is_(None))
    elif state == "revoked":
        stmt = stmt.where(ApiToken.revoked_at.is_not(None))
    return [tuple(row) for row in db.session.execute(stmt)]


def _list_context(**extra) -> dict:
    """What the list page shows."""
    company_id = id_arg("company_id")
    state = request.args.get("state", "")
    return dict(
        rows=_tokens(company_id, state),
        companies=_company_choices(),
        company_id=company_id,
        state=state,
        **extra,
    )


@bp.route("/")
@reader_required
def index():
    """The tokens of the user's company subtree with their last use."""
    return htmx.render("tokens/list.html", "tokens/_table.html", **_list_context())


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    """Create a token for a company of the subtree; the token is shown once, on the answer to this form."""
    form = TokenForm()
    form.company_id.choices = _company_choices()
    if request.method == "GET" and not form.company_id.data:
        form.company_id.data = current_user.company_id
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return htmx.render("tokens/form.html", "tokens/_form.html", status, form=form)
    company = scope.get_or_404(Company, form.company_id.data)
    token, token_hash = new_token()
    api_token = ApiToken(
        company_id=company.id,
        name=form.name.data.strip(),
        token_hash=token_hash,
        prefix=token[:12],
        created_by_id=current_user.id,
    )
    writes.create(api_token, note=f"API token for {company.name}")
    # Not a redirect: the clear token exists only in this answer.
    response = htmx.render("tokens/form.html", "tokens/_created.html", api_token=api_token, token=token)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@admin_required
def revoke(token_id: int):
    """Revoke a token now: the switch using it gets 401 from its next call."""
    api_token = scope.get_or_404(ApiToken, token_id)
    if api_token.revoked_at is None:
        with writes.change(api_token, note="API token revoked"):
            api_token.revoked_at = utcnow()
        flash(
            f"Token {api_token.name} ({api_token.prefix}…) revoked: calls with it now answer 401.", "success"
        )
    if htmx.is_htmx():
        return htmx.render("tokens/list.html", "tokens/_table.html", **_list_context())
    return htmx.redirect(url_for("tokens.index"))
