"""The switch API under /api/v1: JSON, authenticated by `Authorization: Bearer <token>` (SPEC §7)."""

from flask import Blueprint

from panel.extensions import csrf

bp = Blueprint("api", __name__)
# Switches authenticate with bearer tokens, not cookies, so CSRF does not apply.
csrf.exempt(bp)

# The endpoints register themselves on `bp`, which must exist first.
from panel.api import auth, calls, cdrs, route  # noqa: E402,F401
