"""The switch API under /api/v1: JSON, authenticated by `Authorization: Bearer <token>` (SPEC §7)."""

from flask import Blueprint

from panel.extensions import csrf

bp = Blueprint("api", __name__)
# Switches authenticate with bearer tokens, not cookies, so CSRF does not apply.
csrf.exempt(bp)

from panel.api import auth  # noqa: E402,F401
from panel.api import cdrs  # noqa: E402,F401
from panel.api import calls  # noqa: E402,F401
from panel.api import route  # noqa: E402,F401
