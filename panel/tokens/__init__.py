"""API tokens (SPEC §7): the switches' credentials for /api/v1, scoped to a company."""

from flask import Blueprint

bp = Blueprint("tokens", __name__)

from panel.tokens import views  # noqa: E402,F401
