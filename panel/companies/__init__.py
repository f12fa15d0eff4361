"""Companies: the reseller tree (root operator, resellers, sub-resellers, managers) managed by admins."""

from flask import Blueprint

bp = Blueprint("companies", __name__)

from panel.companies import views  # noqa: E402,F401
