"""Home page: is routing healthy right now (the last 24 hours, live calls, the manager, expiring rules, low
balances), and the health check for load balancers."""

from flask import jsonify
from sqlalchemy import func, select, text

from panel import expiry
from panel.access import reader_required
from panel.extensions import db
from panel.htmx import render
from panel.main import bp
from panel.main.health import collect
from panel.models import Account, Client, RateTable, RoutingPlan
from panel.models.types import utcnow
from panel.scope import scope_condition, user_company_ids

# The health section refreshes itself this often while the page is open.
REFRESH_SECONDS = 60


@bp.route("/")
@reader_required
def index():
    """The health of the user's routing (a fragment of it when htmx refreshes it) and object counts."""
    ids = user_company_ids()
    counts = {}
    for label, model in (
        ("Clients", Client),
        ("Accounts", Account),
        ("Rate tables", RateTable),
        ("Routing plans", RoutingPlan),
    ):
        counts[label] = db.session.scalar(
            select(func.count()).select_from(model).where(scope_condition(model, ids))
        )
    now = utcnow()
    return render(
        "main/index.html",
        "main/_health.html",
        counts=counts,
        health=collect(now),
        now=now,
        horizon_days=f"{expiry.horizon_days():g}",
        refresh=REFRESH_SECONDS,
    )


@bp.route("/health")
def health():
    """Liveness for load balancers: the database answers."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")
