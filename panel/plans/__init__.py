"""."""

from flask import Blueprint

bp = Blueprint("plans", __name__)

from panel.plans import views  # noqa: E402,F401
