"""Gateways section: the switch nodes that ask for routes and report calls (SPEC §7)."""

from flask import Blueprint

bp = Blueprint("gateways", __name__)

from panel.gateways import views  # noqa: E402,F401
