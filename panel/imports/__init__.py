"""Background CSV imports with a progress bar: start a job, poll its status fragment."""

from flask import Blueprint

bp = Blueprint("imports", __name__)

from panel.imports import views  # noqa: E402,F401
