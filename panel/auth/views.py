"""Log in, log out and change password."""

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select, update

from panel import writes
from panel.access import reader_required
from panel.auth import bp
from panel.auth.forms import LoginForm, PasswordForm
from panel.auth.passwords import (
    check_password,
    claim_attempt,
    clear_failures,
    hash_password,
    password_problem,
)
from panel.extensions import db, login_manager
from panel.models import User
from panel.models.types import utcnow


@login_manager.user_loader
def load_user(session_id: str):
    """Load the user of a session id `<id>:<version>`; an old version (password changed) logs out."""
    try:
        user_id, version = (int(part) for part in session_id.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, user_id)
    if user is None or user.session_version != version or not user.is_active:
        return None
    return user


def _safe_next(target: str | None) -> str:
    """Only follow local redirects after login."""
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; log in when the password matches and the rate limit allows."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        username = form.username.data.strip()
        address = request.remote_addr or "unknown"
        blocked = claim_attempt(username, address)
        if blocked:
            form.form_errors.append(blocked)
            status = 429
        else:
            user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))
            if user and check_password(user.password_hash, form.password.data) and user.is_active:
                clear_failures(username)
                user.last_login_at = utcnow()
                db.session.commit()
                login_user(user)
                return redirect(_safe_next(request.args.get("next")))
            form.form_errors.append("Wrong username or password, or the user is deactivated.")
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@reader_required
def logout():
    """Log out and go back to the login page: every session of the user ends, in every worker.

    The session cookie is signed, not stored, so a copy of it would outlive logout_user(); bumping the
    user's session_version (checked by load_user against the database on every request) voids every copy.
    """
    if current_user.is_authenticated:
        db.session.execute(
            update(User).where(User.id == current_user.id).values(session_version=User.session_version + 1)
        )
        db.session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), 303)


@bp.route("/password", methods=["GET", "POST"])
@login_required
@reader_required
def password():
    """Change one's own password; every other session of the user ends."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        problem = password_problem(form.new.data)
        # Guesses of the current password count against the login limit of this user (and address).
        blocked = claim_attempt(current_user.username, request.remote_addr or "unknown")
        if blocked:
            form.current.errors.append(blocked.replace("failed logins", "wrong passwords"))
            status = 429
        elif not check_password(current_user.password_hash, form.current.data):
            form.current.errors.append("The current password is wrong.")
        elif problem:
            clear_failures(current_user.username)  # the current password was right
            db.session.commit()
            form.new.errors.append(problem)
        else:
            user = current_user._get_current_object()
            clear_failures(user.username)
            with writes.change(user, note="password changed"):
                user.password_hash = hash_password(form.new.data)
                user.session_version += 1
            login_user(user)  # this session continues with the new version
            flash("Password changed. Other sessions of yours are logged out.", "success")
            return redirect(url_for("main.index"), 303)
    if form.errors and status == 200:
        status = 422
    return render_template("auth/password.html", form=form), status
