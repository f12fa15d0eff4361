"""Statistics (SPEC §8): calls and totals, vendor quality by destination, balancing checks, live calls."""

from flask import Blueprint

bp = Blueprint("stats", __name__)

from panel.stats import views  # noqa: E402,F401
