"""Code decks: the names and countries of destination codes; a routing plan's deck names its rule codes."""

from flask import Blueprint

bp = Blueprint("codedecks", __name__)

from panel.codedecks import views  # noqa: E402,F401
