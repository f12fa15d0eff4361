"""."""

from flask import Blueprint

bp = Blueprint("accounts", __name__)

from panel.accounts import views  # noqa: E402,F401
