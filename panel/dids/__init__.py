"""DIDs: numbers assigned to terminator accounts; DID rules route calls to them (SPEC §3, §5)."""

from flask import Blueprint

bp = Blueprint("dids", __name__)

from panel.dids import views  # noqa: E402,F401
