"""."""

from flask import Blueprint

bp = Blueprint("rates", __name__)

from panel.rates import views  # noqa: E402,F401
