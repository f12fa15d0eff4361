"""The Traffic Rules manager page: last run, next run, snapshot age and size, errors, recent runs, Run now.

The manager works for the whole system, so its figures (quality rows, snapshot size, errors) and "Run now"
belong to the operator: users of the root company see them, root admins may run it. A reseller sees when
the runs happen (when its edits take effect) and how many rules of its own plans expired, not the rest.
"""

import time
from datetime import timedelta

from flask import current_app, flash, request, url_for
from sqlalchemy import func, select

from panel import manager
from panel.access import is_operator_user, reader_required, root_required, user_company_ids
from panel.extensions import db
from panel.htmx import is_htmx, redirect, render
from panel.listing import id_arg, paginate
from panel.manager_views import bp
from panel.models import AuditEntry, ManagerRun
from panel.models.types import utcnow

# How long the status fragment keeps polling for a requested run before it says none started.
POLL_LIMIT_SECONDS = 120


def _runs():
    """The recent runs, newest first, paged."""
    return paginate(select(ManagerRun), {"id": ManagerRun.id}, "-id")


def _requested(since: int | None, asked: float | None) -> dict:
    """Where a "Run now" stands: the first run recorded after it, whether to keep polling or give up."""
    if since is None:
        return {"since": None, "run": None, "waiting": False, "gave_up": False, "asked": None}
    run = db.session.scalar(select(ManagerRun).where(ManagerRun.id > since).order_by(ManagerRun.id).limit(1))
    waiting = run is None or run.outcome == "running"
    limit = max(POLL_LIMIT_SECONDS, 3 * float(current_app.config.get("MANAGER_PERIOD_SECONDS", 10)))
    gave_up = waiting and asked is not None and time.time() - asked > limit
    return {
        "since": since,
        "run": run,
        "waiting": waiting and not gave_up,
        "gave_up": gave_up,
        "asked": asked,
    }


def _own_rules_expired_24h() -> int:
    """Rules of the user's companies that the manager deleted as expired in the last 24 hours (audit log)."""
    stmt = select(func.count()).where(
        AuditEntry.action == "delete",
        AuditEntry.object_type == "routingrule",
        AuditEntry.user_id.is_(None),
        AuditEntry.username == manager.SYSTEM_USER.username,
        AuditEntry.at >= utcnow() - timedelta(hours=24),
        AuditEntry.company_id.in_(user_company_ids()),
    )
    return int(db.session.scalar(stmt) or 0)


def _context(since: int | None = None, asked: float | None = None) -> dict:
    """What the status card shows; figures of the whole system only for the operator's users."""
    state = manager.status()
    requested = _requested(since, asked)
    system = is_operator_user()
    return {
        "system": system,
        "own_rules_expired_24h": None if system else _own_rules_expired_24h(),
        "state": state,
        "requested": requested,
        "polling": requested["waiting"] or (since is None and state["running_run"] is not None),
    }


@bp.route("/")
@reader_required
def index():
    """The manager's state and its recent runs."""
    return render("manager_views/index.html", "manager_views/_runs.html", runs=_runs(), **_context())


@bp.route("/status")
@reader_required
def status():
    """The status card alone: htmx polls it while a run is under way or was requested."""
    # The id of the last run the page had seen; 0 when there was none yet.
    since = 0 if request.args.get("since") == "0" else id_arg("since")
    asked = request.args.get("asked", type=float)
    context = _context(since, asked)
    finished = since is not None and not context["requested"]["waiting"]
    return render(
        "manager_views/index.html",
        "manager_views/_status.html",
        runs=_runs() if (finished or not is_htmx()) else None,
        refresh_runs=finished and is_htmx(),
        **context,
    )


@bp.route("/run", methods=["POST"])
@root_required
def run():
    """Run now (root admins, as the run is system-wide): a forced run that publishes a new snapshot."""
    since = db.session.scalar(select(func.max(ManagerRun.id))) or 0
    asked = time.time()
    manager.request_run(current_app._get_current_object())
    db.session.expire_all()
    if not is_htmx():
        flash("The Traffic Rules manager was asked to run now.", "success")
        return redirect(url_for("manager_views.index"))
    context = _context(since, asked)
    finished = not context["requested"]["waiting"]
    return render(
        "manager_views/index.html",
        "manager_views/_status.html",
        runs=_runs() if finished else None,
        refresh_runs=finished,
        **context,
    )
