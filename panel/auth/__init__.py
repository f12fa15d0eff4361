"""Logins: log in, log out, change password; the login rate limit and the user loader."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from panel.auth import views  # noqa: E402,F401
