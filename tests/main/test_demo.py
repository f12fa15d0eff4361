"""The demo comes alive: days of routed and billed calls, a change history, and traffic while it runs."""

import time
from datetime import timedelta

from sqlalchemy import func, select

from panel import demo
from panel.demo import traffic
from panel.extensions import db
from panel.models import Account, AuditEntry, CallStat, Client, LiveCall, RoutingPlan, RoutingRule
from panel.models.types import utcnow
from panel.stats.queries import balancing_groups


def test_demo_history_is_routed_calls_billed_through_the_cdr_ingest(app, login):
    """Three days of calls with the rules routing chose, rated and charged; figures a carrier would see."""
    assert demo.load(if_empty=True) is True
    now = utcnow()
    total, answered, with_rule, earliest = db.session.execute(
        select(
            func.count(),
            func.sum(func.cast(CallStat.answered, db.Integer)),
            func.count(CallStat.rule_id),
            func.min(CallStat.start_at),
        )
    ).one()
    assert total > 3000 and with_rule == total  # every attempt names the rule that routed it
    assert 0.35 < answered / total < 0.7
    assert earliest < now - timedelta(days=2)
    # Rated by the ingest: answered calls have a charge and a cost; the customers' balances moved.
    priced = db.session.scalar(
        select(func.count()).where(CallStat.answered.is_(True), CallStat.customer_charge > 0)
    )
    assert priced > answered * 0.9
    acme = db.session.scalar(select(Client).where(Client.name == "Acme Calls"))
    assert acme.balance < 5000
    # Balancing shares have something to show: the 447 group of Standard LCR got calls.
    plan = db.session.scalar(select(RoutingPlan).where(RoutingPlan.name == "Standard LCR"))
    groups = balancing_groups(plan.id, now - timedelta(days=3), now)
    assert groups and groups[0].attempts > 0
    # A customer ends low or negative, so the home page has something to warn about.
    html = login(_admin()).get("/").data.decode()
    balances = html[html.index('id="home-balances"') :]
    assert "Delta Dial" in balances or "Retail Shop Ltd" in balances
    assert "Standard LCR" in html[html.index('id="home-expiring"') :]  # promotions end within days


def _admin():
    from panel.models import User

    return db.session.scalar(select(User).where(User.username == demo.DEMO_USERS[0][0]))


def test_demo_objects_have_a_change_history(app, login):
    """Every demo client and rule has its "created" entry, so "Change history" links find something."""
    demo.load(if_empty=True, history_days=0)
    acme = db.session.scalar(select(Client).where(Client.name == "Acme Calls"))
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.client_id == acme.id)).all()
    assert {e.object_type for e in entries} >= {"client", "account"}
    assert all(e.action == "create" and e.username == "admin" for e in entries)
    rules = db.session.scalar(select(func.count()).select_from(RoutingRule))
    rule_entries = db.session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.object_type == "routingrule")
    )
    assert rule_entries == rules
    page = login(_admin()).get(f"/audit/?client_id={acme.id}").data.decode()
    assert "No change matches" not in page and "Acme Calls" in page


def test_demo_traffic_keeps_routing_and_billing_calls(app, tmp_path, monkeypatch):
    """With the generator on, calls go live and their records arrive through the ingest while it runs."""
    demo.load(if_empty=True, history_days=0)
    monkeypatch.setattr(traffic, "INTERVAL", 0.05)
    # A call a previous run left live when it stopped.
    account_id = db.session.scalar(select(CallStat.orig_account_id).limit(1)) or db.session.scalar(
        select(Account.id).where(Account.orig_enabled.is_(True)).limit(1)
    )
    db.session.add(LiveCall(call_id="live-leftover", orig_account_id=account_id))
    db.session.commit()
    thread = traffic.start(app, lock_path=str(tmp_path / "demo-traffic.lock"))
    assert thread is not None
    # A second generator on the same host stays idle (the gunicorn workers share one).
    assert traffic.start(app, lock_path=str(tmp_path / "demo-traffic.lock")) is None
    try:
        deadline = time.monotonic() + 30
        live = records = 0
        while time.monotonic() < deadline and not (live and records):
            time.sleep(0.3)
            db.session.rollback()
            live = live or db.session.scalar(
                select(func.count()).select_from(LiveCall).where(LiveCall.call_id != "live-leftover")
            )
            records = db.session.scalar(
                select(func.count()).select_from(CallStat).where(CallStat.call_id.like("live-%"))
            )
        assert live and records
        assert db.session.scalar(select(LiveCall).where(LiveCall.call_id == "live-leftover")) is None
    finally:
        traffic.stop(app)
    assert not thread.is_alive()


def test_demo_traffic_is_off_unless_asked(app):
    """The setting defaults to off; tests and CLI commands never start it."""
    from panel.config import Config

    assert Config.DEMO_TRAFFIC is False or Config.DEMO_TRAFFIC == 0
    assert "demo_traffic" not in app.extensions
