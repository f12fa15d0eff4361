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


def claim_attempt(username: str, address: str) -> str | None:
    """Count a password check before it happens; a message when it is over the limit, else None.

    The attempt is written and committed first, then the attempts in the window are counted, this one
    included. Each concurrent check therefore sees at least every attempt committed before its own, so
    however many arrive at once (in however many workers: the count lives in the database) at most the
    limit of them go on to check a password. A check that then fails leaves its row as the failure; a
    correct password clears the user's attempts (`clear_failures`); a refused attempt takes its row back,
    so waiting out the window is enough.
    """
    cfg = current_app.config
    since = _window_start()
    username = username.lower()[:80]
    address = address[:64]
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.at < since))
    attempt = LoginAttempt(username=username, address=address)
    db.session.add(attempt)
    db.session.commit()
    by_user = db.session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.username == username, LoginAttempt.at >= since)
    )
    by_address = db.session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.address == address, LoginAttempt.at >= since)
    )
    minutes = max(1, cfg["LOGIN_WINDOW_SECONDS"] // 60)
    message = None
    if by_user > cfg["LOGIN_MAX_FAILURES_PER_USER"]:
        message = f"Too many failed logins for this user. Try again in {minutes} minutes."
    elif by_address > cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]:
        message = f"Too many failed logins from your address. Try again in {minutes} minutes."
    if message:
        db.session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
    db.session.commit()
    return message


def clear_failures(username: str) -> None:
    """A correct password forgets that user's failures (the caller commits)."""
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.username == username.lower()))
