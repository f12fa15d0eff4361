"""Time profiles: weekdays and HH:MM-HH:MM ranges in an IANA zone, during which a routing rule applies."""

from flask import Blueprint

bp = Blueprint("timeprofiles", __name__)

from panel.timeprofiles import views  # noqa: E402,F401
