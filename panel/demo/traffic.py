"""The demo traffic generator: while the panel runs with PANEL_DEMO_TRAFFIC=1, calls keep coming.

A daemon thread routes a new call every couple of seconds on this process's routing snapshot (as the route
API does), reports it live (`panel.livecalls.apply_events`, what `POST /api/v1/calls` calls) and, when it
ends, posts its call records through `panel.cdrs.ingest` (what `POST /api/v1/cdrs` calls). So the home
page's live calls and last-24-hours figures move while one looks at them. One generator per host: the gunicorn
workers race for a lock file under instance/, the others stay idle. Off by default; `make run` turns it on.
"""

import fcntl
import logging
import os
import random
import threading
import uuid
from datetime import timedelta

from flask import Flask
from sqlalchemy import select

log = logging.getLogger(__name__)

# Seconds between new calls, and the most calls in progress at once.
INTERVAL = 2.0
MAX_LIVE = 40


def start(app: Flask, lock_path: str | None = None) -> threading.Thread | None:
    """Start the generator in this process unless another process of this host runs it already."""
    path = lock_path or os.path.join(app.instance_path, "demo-traffic.lock")
    handle = open(path, "w")  # noqa: SIM115 - held open for the life of the process: it is the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    stopping = threading.Event()
    thread = threading.Thread(target=_loop, args=(app, stopping, handle), name="demo-traffic", daemon=True)
    app.extensions["demo_traffic"] = (thread, stopping)
    thread.start()
    return thread


def stop(app: Flask, timeout: float = 10) -> None:
    """Stop this process's generator and wait for it (tests, shutdown)."""
    running = app.extensions.pop("demo_traffic", None)
    if running is not None:
        thread, event = running
        event.set()
        thread.join(timeout)


def _loop(app: Flask, stopping: threading.Event, handle) -> None:
    """Start calls, end the ones whose time has come; nothing raised here stops the loop."""
    from panel import cdrs, livecalls, snapshots
    from panel.demo import calls, has_demo_users
    from panel.extensions import db
    from panel.models import LiveCall
    from panel.models.types import utcnow

    rng = random.Random()
    live: list[calls.Attempt] = []
    with app.app_context():
        try:
            if not has_demo_users():
                log.info("demo traffic: no demo data in this database, not generating calls")
                return
            # Calls a previous run left live when it stopped end now (else they would count for hours).
            leftover = db.session.scalars(
                select(LiveCall.call_id).where(LiveCall.call_id.like("live-%")).limit(1000)
            ).all()
            if leftover:
                livecalls.apply_events([{"event": "end", "call_id": c} for c in leftover], company_id=None)
        finally:
            db.session.remove()
    while not stopping.wait(INTERVAL * rng.uniform(0.5, 1.5)):
        with app.app_context():
            try:
                now = utcnow()
                ended = [a for a in live if a.ends_at <= now]
                if ended:
                    live = [a for a in live if a.ends_at > now]
                    livecalls.apply_events(
                        [{"event": "end", "call_id": a.record["call_id"]} for a in ended], company_id=None
                    )
                    cdrs.ingest([a.record for a in ended], company_id=None)
                accounts = calls.originators()
                if accounts and len(live) < MAX_LIVE:
                    call_id = f"live-{uuid.uuid4().hex[:12]}"
                    made = calls.attempts(snapshots.get_snapshot(), rng.choice(accounts), now, rng, call_id)
                    if made:
                        last = made[-1]
                        # Only the attempt that is still going is live; the failed ones are over already.
                        if len(made) > 1:
                            cdrs.ingest([a.record for a in made[:-1]], company_id=None)
                        last.ends_at = max(last.ends_at, now + timedelta(seconds=5))
                        livecalls.apply_events(
                            [
                                {
                                    "event": "start",
                                    "call_id": last.record["call_id"],
                                    "orig_account_id": last.record["orig_account_id"],
                                    "term_account_id": last.record["term_account_id"],
                                    "rule_id": last.record["rule_id"],
                                }
                            ],
                            company_id=None,
                        )
                        live.append(last)
            except Exception:  # noqa: BLE001 - the demo must outlive a failed batch and keep going
                db.session.rollback()
                log.exception("demo traffic: a call failed (continuing)")
            finally:
                db.session.remove()
    handle.close()
