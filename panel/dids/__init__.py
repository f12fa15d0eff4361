"""."""

from flask import Blueprint

bp = Blueprint("dids", __name__)

from panel.dids import views  # noqa: E402,F401
