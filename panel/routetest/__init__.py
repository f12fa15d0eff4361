"""Routing > Route test: the routing engine's answer for one call, with every rule and rejection shown."""

from flask import Blueprint

bp = Blueprint("routetest", __name__)

from panel.routetest import views  # noqa: E402,F401
