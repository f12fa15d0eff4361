"""System > Traffic Rules manager: the manager's runs, its snapshot and the "Run now" button (SPEC §6)."""

from flask import Blueprint

bp = Blueprint("manager_views", __name__)

from panel.manager_views import views  # noqa: E402,F401
