"""Clients section: the companies we trade with, their balance, defaults and accounts."""

from flask import Blueprint

bp = Blueprint("clients", __name__)

from panel.clients import views  # noqa: E402,F401
