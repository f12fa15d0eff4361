"""."""

from flask import Blueprint

bp = Blueprint("routetest", __name__)

from panel.routetest import views  # noqa: E402,F401
