"""Accounts section: the ways clients are identified, with originator and terminator settings (SPEC §2)."""

from flask import Blueprint

bp = Blueprint("accounts", __name__)

from panel.accounts import views  # noqa: E402,F401
