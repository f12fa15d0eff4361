"""The users section: the logins of the user's company subtree.

Everyone sees the users of their subtree read-only; admins create users, change their role, company and
details, reset their password and deactivate them. Users are never deleted (the audit log names them); a
deactivated user cannot log in. A password reset and a deactivation bump `session_version`, which ends every
session of that user at its next request. An admin cannot lock itself out: it cannot change its own role or
company, nor deactivate itself, and changes its own password on the Password page.
"""

from flask import flash, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from wtforms.fields.choices import SelectChoice

from panel import htmx, scope, search, writes
from panel.access import admin_required, reader_required
from panel.auth.passwords import hash_password, password_problem
from panel.companies.tree import tree_rows
from panel.extensions import db
from panel.forms import choice_values, choices
from panel.listing import id_arg, paginate
from panel.models import Company, User
from panel.models.companies import ROLES
from panel.users import bp
from panel.users.access import is_self, may_manage_user
from panel.users.forms import PasswordResetForm, UserEditForm, UserForm

SORTABLE = {
    "username": User.username,
    "company": Company.name,
    "role": User.role,
    "last_login": User.last_login_at,
    "created": User.created_at,
}


def _company_choices(active_only: bool = True) -> list[tuple[int, str]]:
    """The companies of the user's subtree in tree order, indented."""
    companies = db.session.scalars(scope.visible_companies()).all()
    return [
        (c.id, "\u2003" * depth + c.name + ("" if c.active else " (inactive)"))
        for c, depth in tree_rows(companies, current_user.company_id)
        if c.active or not active_only
    ]


@bp.route("/")
@reader_required
def index():
    """Users of the subtree with search, filters (company, role, state), sorting and paging."""
    stmt = scope.scoped(User).join(Company, User.company_id == Company.id)
    q = request.args.get("q", "").strip()
    if q:
        stmt = stmt.where(or_(*(search.contains(c, q) for c in (User.username, User.full_name, User.email))))
    company_id = id_arg("company_id")
    if company_id:
        stmt = stmt.where(User.company_id == company_id)
    role = request.args.get("role", "")
    if role in ROLES:
        stmt = stmt.where(User.role == role)
    state = request.args.get("state", "")
    if state in ("active", "inactive"):
        stmt = stmt.where(User.active.is_(state == "active"))
    page = paginate(stmt, SORTABLE, "username", tiebreak=User.id)
    return htmx.render(
        "users/list.html",
        "users/_table.html",
        pagination=page,
        q=q,
        company_id=company_id,
        role=role,
        state=state,
        roles=ROLES,
        companies=_company_choices(active_only=False),
    )


@bp.route("/<int:user_id>")
@reader_required
def show(user_id: int):
    """One user: details, role, state and the actions an admin may take."""
    user = scope.get_or_404(User, user_id)
    return htmx.render("users/show.html", user=user, may_manage=may_manage_user(user), is_self=is_self(user))


def _username_taken(username: str) -> bool:
    """Usernames are unique in the whole panel, in any case."""
    return db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())) is not None


def _check_company(form) -> Company | None:
    """The chosen company when it is an active company of the admin's subtree; else a field error."""
    allowed = choice_values(form.company_id)
    company = db.session.get(Company, form.company_id.data) if form.company_id.data in allowed else None
    if company is None:
        form.company_id.errors.append("Choose one of your active companies.")
    return company


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    """Create a user in one of the admin's companies, with a first password."""
    form = UserForm()
    form.company_id.choices = choices(_company_choices())
    if request.method == "GET":
        wanted = request.args.get("company_id", type=int)
        allowed = choice_values(form.company_id)
        form.company_id.data = wanted if wanted in allowed else current_user.company_id
    if form.validate_on_submit():
        company = _check_company(form)
        problem = password_problem(form.password.data)
        if _username_taken(form.username.data):
            form.username.errors.append("This username is taken.")
        elif problem:
            form.password.errors.append(problem)
        elif company is not None:
            user = User(
                company_id=company.id,
                username=form.username.data,
                full_name=form.full_name.data or "",
                email=form.email.data or "",
                role=form.role.data,
                password_hash=hash_password(form.password.data),
            )
            writes.create(user)
            flash(f"User {user.username} created in {company.name}.", "success")
            return htmx.redirect(url_for("users.show", user_id=user.id))
    status = 422 if request.method == "POST" else 200
    return htmx.render("users/form.html", "users/_form.html", status, form=form, user=None)


def _managed_user(user_id: int) -> User:
    """Load a user in scope (404 otherwise); the views using it are for admins (`admin_required`)."""
    user = scope.get_or_404(User, user_id)
    return user


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def update(user_id: int):
    """Change a user's name, e-mail, company or role."""
    user = _managed_user(user_id)
    form = UserEditForm(obj=user)
    form.company_id.choices = choices(_company_choices())
    if user.company_id not in choice_values(form.company_id):
        form.company_id.choices.insert(0, SelectChoice(user.company_id, user.company.name + " (inactive)"))
    if form.validate_on_submit():
        company = _check_company(form) if form.company_id.data != user.company_id else user.company
        if is_self(user) and (form.role.data != user.role or form.company_id.data != user.company_id):
            form.role.errors.append("You cannot change your own role or company; ask another admin.")
        elif company is not None:
            with writes.change(user, skip_unchanged=True) as unit:
                user.full_name = form.full_name.data or ""
                user.email = form.email.data or ""
                user.role = form.role.data
                user.company_id = company.id
            if unit.changed:
                flash(f"{user.username} saved.", "success")
            else:
                flash("Nothing changed.", "info")
            return htmx.redirect(url_for("users.show", user_id=user.id))
    status = 422 if request.method == "POST" else 200
    return htmx.render("users/form.html", "users/_form.html", status, form=form, user=user)


@bp.route("/<int:user_id>/password", methods=["GET", "POST"])
@admin_required
def password(user_id: int):
    """Set a new password for a user; every session of that user ends."""
    user = _managed_user(user_id)
    form = PasswordResetForm()
    if is_self(user):
        form.form_errors.append(
            "Change your own password on the Password page (it asks for the current one)."
        )
        return htmx.render(
            "users/password.html", "users/_password.html", 403, form=form, user=user, refused=True
        )
    if form.validate_on_submit():
        problem = password_problem(form.new.data)
        if problem:
            form.new.errors.append(problem)
        else:
            with writes.change(user, note="password reset by an admin"):
                user.password_hash = hash_password(form.new.data)
                user.session_version += 1
            flash(f"New password set for {user.username}; its sessions are logged out.", "success")
            return htmx.redirect(url_for("users.show", user_id=user.id))
    status = 422 if request.method == "POST" else 200
    return htmx.render(
        "users/password.html", "users/_password.html", status, form=form, user=user, refused=False
    )


@bp.route("/<int:user_id>/deactivate", methods=["POST"])
@admin_required
def deactivate(user_id: int):
    """Deactivate a user: it cannot log in and its sessions end."""
    user = _managed_user(user_id)
    if is_self(user):
        flash("You cannot deactivate yourself; ask another admin.", "error")
    elif user.active:
        with writes.change(user, action="deactivate"):
            user.active = False
            user.session_version += 1
        flash(f"{user.username} deactivated and logged out.", "success")
    return htmx.redirect(url_for("users.show", user_id=user.id))


@bp.route("/<int:user_id>/activate", methods=["POST"])
@admin_required
def activate(user_id: int):
    """Let a deactivated user log in again."""
    user = _managed_user(user_id)
    if not user.active:
        with writes.change(user, action="activate"):
            user.active = True
        note = "" if user.company.active else f" {user.company.name} is inactive, so it still cannot log in."
        flash(f"{user.username} is active again.{note}", "success")
    return htmx.redirect(url_for("users.show", user_id=user.id))
