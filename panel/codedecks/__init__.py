"""."""

from flask import Blueprint

bp = Blueprint("codedecks", __name__)

from panel.codedecks import views  # noqa: E402,F401
