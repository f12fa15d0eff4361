"""."""

from flask import Blueprint

bp = Blueprint("gateways", __name__)

from panel.gateways import views  # noqa: E402,F401
