"""."""

from flask import Blueprint

bp = Blueprint("timeprofiles", __name__)

from panel.timeprofiles import views  # noqa: E402,F401
