"""Password hashing (a slow salted hash) and the login rate limit."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from panel.extensions import db
from panel.models import LoginAttempt
from panel.models.types import utcnow

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    """A salted scrypt hash (werkzeug's default, deliberately slow)."""
    return generate_password_hash(password, method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))


def check_password(password_hash: str, password: str) -> bool:
    """True when the password matches the stored hash."""
    return bool(password_hash) and check_password_hash(password_hash, password)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if password.isdigit() or password.isalpha():
        return "Mix letters with digits or symbols."
    return None


def _window_start():
    return utcnow() - timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])


def login_blocked(username: str, address: str) -> str | None:
    """A message when too many recent failures came for this user or from this address, else None."""
    since = _window_start()
    cfg = current_app.config
    by_user = db.session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.username == username.lower(), LoginAttempt.at >= since)
    )
    by_address = db.session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.address == address, LoginAttempt.at >= since)
    )
    minutes = max(1, cfg["LOGIN_WINDOW_SECONDS"] // 60)
    if by_user >= cfg["LOGIN_MAX_FAILURES_PER_USER"]:
        return f"Too many failed logins for this user. Try again in {minutes} minutes."
    if by_address >= cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]:
        return f"Too many failed logins from your address. Try again in {minutes} minutes."
    return None


def note_failure(username: str, address: str) -> None:
    """Remember a failed login (and forget failures older than the window)."""
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.at < _window_start()))
    db.session.add(LoginAttempt(username=username.lower()[:80], address=address[:64]))
    db.session.commit()


def clear_failures(username: str) -> None:
    """A successful login forgets that user's failures."""
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.username == username.lower()))
