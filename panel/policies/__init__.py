"""."""

from flask import Blueprint

bp = Blueprint("policies", __name__)

from panel.policies import views  # noqa: E402,F401
