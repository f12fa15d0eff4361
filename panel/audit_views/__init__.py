"""The audit log section: who changed what and when, with the difference field by field (read-only)."""

from flask import Blueprint

bp = Blueprint("audit_views", __name__)

from panel.audit_views import views  # noqa: E402,F401
