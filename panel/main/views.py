"""Home page: what the user's companies hold, at a glance."""

from flask import jsonify, render_template
from sqlalchemy import func, select, text

from panel.access import reader_required
from panel.extensions import db
from panel.main import bp
from panel.models import Account, Client, RateTable, RoutingPlan
from panel.scope import scope_condition, user_company_ids


@bp.route("/")
@reader_required
def index():
    """Counts of the main objects in the user's scope."""
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
    return render_template("main/index.html", counts=counts)


@bp.route("/health")
def health():
    """Liveness for load balancers: the database answers."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")
