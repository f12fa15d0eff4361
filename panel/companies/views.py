"""The companies section: the tree of the user's companies; admins create, rename, deactivate and delete.

Everyone sees the companies of their subtree read-only. Admins manage the companies strictly below their own
(the root operator's admins may also rename the root). A company with data is never deleted, only
deactivated; deactivating a company deactivates every company below it, which logs their users out and stops
their API tokens.
"""

from flask import flash, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from panel import htmx, scope, writes
from panel.access import admin_required, reader_required
from panel.companies import bp
from panel.companies.forms import (
    CHILD_KINDS,
    CompanyEditForm,
    CompanyForm,
    kinds_label,
)
from panel.companies.tree import tree_rows
from panel.extensions import db
from panel.forms import choice_values, choices
from panel.models import ApiToken, Client, Company, User
from panel.users.access import may_manage_company

# Names of the tables that refer to a company, for "Alpha holds 2 users and 1 client".
DATA_LABELS = {
    "companies": "company",
    "users": "user",
    "api_tokens": "API token",
    "clients": "client",
    "gateways": "gateway",
    "rate_tables": "rate table",
    "code_decks": "code deck",
    "time_profiles": "time profile",
    "policies": "routing policy",
    "routing_plans": "routing plan",
    "plan_origination_limits": "origination limit",
    "plan_termination_limits": "termination limit",
    "import_jobs": "import",
    "import_uploads": "kept upload",
    "call_stats": "call record",
    "live_calls": "live call",
}


def _counts(model, ids) -> dict[int, int]:
    """Rows of `model` per company."""
    stmt = (
        select(model.company_id, func.count())
        .where(model.company_id.in_(list(ids)))
        .group_by(model.company_id)
    )
    return dict(db.session.execute(stmt).all())


@bp.route("/")
@reader_required
def index():
    """The user's company and every company below it, as a tree; a search flattens it."""
    companies = db.session.scalars(scope.visible_companies()).all()
    ids = [c.id for c in companies]
    rows = tree_rows(companies, current_user.company_id)
    q = request.args.get("q", "").strip()
    state = request.args.get("state", "")
    if q:
        rows = [(c, d) for c, d in rows if q.lower() in c.name.lower()]
    if state in ("active", "inactive"):
        rows = [(c, d) for c, d in rows if c.active == (state == "active")]
    return htmx.render(
        "companies/list.html",
        "companies/_table.html",
        rows=rows,
        q=q,
        state=state,
        users=_counts(User, ids),
        clients=_counts(Client, ids),
        may_manage=may_manage_company,
        can_create=current_user.is_admin and CHILD_KINDS.get(current_user.company.kind, ()) != (),
    )


def data_counts(company_id: int) -> dict[str, int]:
    """What refers to the company, by kind of object: found from every foreign key to companies."""
    counts: dict[str, int] = {}
    for table in db.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name != "companies" or fk.parent.table is not table:
                continue
            n = db.session.scalar(select(func.count()).select_from(table).where(fk.parent == company_id))
            if n:
                # A table without a label reads as its singular: "call_rollups" -> "call rollup".
                label = DATA_LABELS.get(table.name) or table.name.replace("_", " ").removesuffix("s")
                counts[label] = counts.get(label, 0) + n
    return counts


def describe_counts(counts: dict[str, int]) -> str:
    """`2 users and 1 client`."""
    parts = [f"{n:,} {label}{'' if n == 1 else 's'}" for label, n in counts.items()]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else "nothing"


@bp.route("/<int:company_id>")
@reader_required
def show(company_id: int):
    """A company: its details, the companies below it, its users and its API tokens (read-only here)."""
    company = scope.get_or_404(Company, company_id)
    users = db.session.scalars(
        select(User).where(User.company_id == company.id).order_by(User.username)
    ).all()
    tokens = db.session.scalars(
        select(ApiToken)
        .where(ApiToken.company_id == company.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    ).all()
    children = sorted(company.children, key=lambda c: c.name.lower())
    return htmx.render(
        "companies/show.html",
        company=company,
        users=users,
        tokens=tokens,
        children=children,
        data=data_counts(company.id),
        may_manage=may_manage_company(company),
        child_kinds=CHILD_KINDS.get(company.kind, ()),
        below_own=company.id != current_user.company_id,
    )


def _parent_choices() -> list[tuple[int, str]]:
    """Active companies of the admin's subtree that may hold companies."""
    companies = db.session.scalars(scope.visible_companies()).all()
    rows = tree_rows(companies, current_user.company_id)
    return [
        (c.id, "\u2003" * depth + f"{c.name} ({c.kind_label})")
        for c, depth in rows
        if c.active and CHILD_KINDS.get(c.kind)
    ]


def _name_taken(name: str, exclude_id: int | None = None) -> bool:
    """True when another company has this name (names are unique in the whole panel, any case)."""
    stmt = select(Company.id).where(func.lower(Company.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Company.id != exclude_id)
    return db.session.scalar(stmt) is not None


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    """Create a reseller, sub-reseller or manager under one of the admin's companies."""
    form = CompanyForm()
    form.parent_id.choices = choices(_parent_choices())
    if request.method == "GET":
        wanted = request.args.get("parent_id", type=int)
        form.parent_id.data = wanted if wanted in choice_values(form.parent_id) else None
    if form.validate_on_submit():
        parent = db.session.get(Company, form.parent_id.data) if form.parent_id.data else None
        allowed_ids = choice_values(form.parent_id)
        if parent is None or parent.id not in allowed_ids:
            form.parent_id.errors.append("Choose one of your active companies that may hold companies.")
        elif form.kind.data not in CHILD_KINDS.get(parent.kind, ()):
            form.kind.errors.append(
                f"{'An' if parent.kind_label[0] in 'AEIOU' else 'A'} {parent.kind_label} holds "
                f"{kinds_label(CHILD_KINDS.get(parent.kind, ()))} only."
            )
        elif _name_taken(form.name.data):
            form.name.errors.append("A company with this name exists already.")
        else:
            company = Company(
                name=form.name.data, kind=form.kind.data, parent_id=parent.id, notes=form.notes.data or ""
            )
            writes.create(company)
            scope.forget_tree()
            flash(f"{company.kind_label} {company.name} created under {parent.name}.", "success")
            return htmx.redirect(url_for("companies.show", company_id=company.id))
    status = 422 if request.method == "POST" else 200
    return htmx.render(
        "companies/form.html", "companies/_form.html", status, form=form, company=None, kinds=CHILD_KINDS
    )


@bp.route("/<int:company_id>/edit", methods=["GET", "POST"])
@admin_required
def update(company_id: int):
    """Rename a company or change its notes."""
    company = scope.get_or_404(Company, company_id)
    if not may_manage_company(company):
        flash("Your own company is changed by the admins of its parent company.", "error")
        return htmx.redirect(url_for("companies.show", company_id=company.id))
    form = CompanyEditForm(obj=company)
    if form.validate_on_submit():
        if _name_taken(form.name.data, company.id):
            form.name.errors.append("A company with this name exists already.")
        else:
            with writes.change(company, version=form.version.data, skip_unchanged=True) as unit:
                company.name = form.name.data
                company.notes = form.notes.data or ""
            if unit.changed:
                flash(f"{company.name} saved.", "success")
            else:
                flash("Nothing changed.", "info")
            return htmx.redirect(url_for("companies.show", company_id=company.id))
    status = 422 if request.method == "POST" else 200
    return htmx.render(
        "companies/form.html", "companies/_form.html", status, form=form, company=company, kinds=CHILD_KINDS
    )


def _manageable_below(company: Company) -> bool:
    """Deactivate, activate and delete apply to companies strictly below the admin's own."""
    return company.id != current_user.company_id and may_manage_company(company)


@bp.route("/<int:company_id>/deactivate", methods=["POST"])
@admin_required
def deactivate(company_id: int):
    """Deactivate a company and every company below it: their users are logged out, their tokens stop."""
    company = scope.get_or_404(Company, company_id)
    if not _manageable_below(company):
        flash("Your own company is deactivated by the admins of its parent company.", "error")
        return htmx.redirect(url_for("companies.show", company_id=company.id))
    ids = scope.descendant_ids(company.id)
    affected = db.session.scalars(
        select(Company).where(Company.id.in_(list(ids)), Company.active.is_(True))
    ).all()
    for item in affected:  # one transaction: every company of the subtree, or none
        note = "" if item.id == company.id else f"with {company.name}"
        with writes.change(item, action="deactivate", note=note, commit_now=False):
            item.active = False
    writes.commit(company)
    others = len([c for c in affected if c.id != company.id])
    suffix = f" with {others} compan{'y' if others == 1 else 'ies'} below it" if others else ""
    flash(
        f"{company.name} deactivated{suffix}: its users can no longer log in and its API tokens stop.",
        "success",
    )
    return htmx.redirect(url_for("companies.show", company_id=company.id))


@bp.route("/<int:company_id>/activate", methods=["POST"])
@admin_required
def activate(company_id: int):
    """Activate a company again (the companies below it stay as they are)."""
    company = scope.get_or_404(Company, company_id)
    if not _manageable_below(company):
        flash("Your own company is activated by the admins of its parent company.", "error")
    elif company.parent is not None and not company.parent.active:
        flash(f"Activate {company.parent.name} first: {company.name} is below it.", "error")
    elif not company.active:
        with writes.change(company, action="activate"):
            company.active = True
        flash(f"{company.name} is active again.", "success")
    return htmx.redirect(url_for("companies.show", company_id=company.id))


@bp.route("/<int:company_id>/delete", methods=["POST"])
@admin_required
def delete(company_id: int):
    """Delete an empty company; a company that holds anything is refused (deactivate it instead)."""
    company = scope.get_or_404(Company, company_id)
    if not _manageable_below(company):
        flash("Your own company cannot be deleted here.", "error")
        return htmx.redirect(url_for("companies.show", company_id=company.id))
    counts = data_counts(company.id)
    if counts:
        flash(
            f"{company.name} holds {describe_counts(counts)}; it is not deleted. Deactivate it instead.",
            "error",
        )
        return htmx.redirect(url_for("companies.show", company_id=company.id))
    parent_id, name = company.parent_id, company.name
    entry = writes.delete(company, commit_now=False)
    # The company is gone: its history stays readable by the parent's users.
    entry.company_id = parent_id
    writes.commit(company)
    scope.forget_tree()
    flash(f"{name} deleted.", "success")
    return htmx.redirect(url_for("companies.index"))
