"""."""

from flask import Blueprint

bp = Blueprint("users", __name__)

from panel.users import views  # noqa: E402,F401
