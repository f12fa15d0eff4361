"""."""

from flask import Blueprint

bp = Blueprint("manager_views", __name__)

from panel.manager_views import views  # noqa: E402,F401
