"""Drain (issue 15.2): routing skips a drained terminator or client with `drained`; restore; expiry; pages."""

from datetime import timedelta

import pytest

from panel import manager
from panel.extensions import db
from panel.models import Account, AuditEntry, Client
from panel.models.types import utcnow
from panel.routing.engine import CANDIDATE_REASONS
from panel.whatif import drain
from tests import factories as f
from tests.routing.conftest import MONDAY_NOON, run


def _names(result) -> list[str]:
    return [r.terminator for r in result.routes]


def _reasons(result) -> dict[str, str]:
    return {r.account.name: r.reason for r in result.rejections if r.account is not None}


def _rules(world):
    for v in (world.v1, world.v2, world.v3):
        f.rule(world.plan, "44", "static_client", terminator_client_id=v.client.id)


def test_drained_reason_comes_after_terminator_disabled():
    assert CANDIDATE_REASONS.index("drained") == CANDIDATE_REASONS.index("terminator_disabled") + 1
    assert CANDIDATE_REASONS.index("loop_protection") == CANDIDATE_REASONS.index("drained") + 1


def test_drained_account_is_skipped_with_its_reason(world):
    _rules(world)
    assert _names(run("447700900123")) == ["v1", "v2", "v3"]
    drain.drain(world.v1.account, "vendor outage", None, None)
    result = run("447700900123")
    assert _names(result) == ["v2", "v3"]
    assert _reasons(result) == {"v1": "drained"}
    explain = result.to_json(explain=True)["explain"]
    assert [e["reason"] for e in explain] == ["drained"]


def test_drained_client_drains_every_account(world):
    _rules(world)
    f.account(
        world.v2.client,
        "v2b",
        ident_value="203.0.113.22",
        term_enabled=True,
        term_rate_table_id=world.v2.table.id,
    )
    drain.drain(world.v2.client, "quality tests", None, None)
    result = run("447700900123")
    assert _names(result) == ["v1", "v3"]
    assert _reasons(result) == {"v2": "drained", "v2b": "drained"}


def test_disabled_beats_drained(world):
    f.rule(world.plan, "44", "static_account", terminator_account_id=world.v1.account.id)
    world.v1.account.term_enabled = False
    drain.drain(world.v1.account, "outage", None, None)
    assert _reasons(run("447700900123"))["v1"] == "terminator_disabled"


def test_drain_ends_at_its_end_time_for_routing(world):
    _rules(world)
    end = MONDAY_NOON + timedelta(hours=1)
    drain.drain(world.v1.account, "maintenance", end, None, now=MONDAY_NOON - timedelta(hours=1))
    assert _reasons(run("447700900123", at=MONDAY_NOON)) == {"v1": "drained"}
    assert _names(run("447700900123", at=end)) == ["v1", "v2", "v3"]


def test_restore_routes_again_and_audits_who(world):
    _rules(world)
    admin = f.user(world.root, "admin", "root_admin")
    drain.drain(world.v1.account, "outage", None, admin)
    drain.restore(world.v1.account, admin)
    assert _names(run("447700900123")) == ["v1", "v2", "v3"]
    entries = (
        db.session.query(AuditEntry).filter_by(object_type="account", object_id=world.v1.account.id).all()
    )
    assert [(e.action, e.username) for e in entries] == [("drain", "root_admin"), ("restore", "root_admin")]
    assert "outage" in entries[0].note and entries[0].after["drained_reason"] == "outage"


def test_drain_needs_a_reason_and_a_future_end(world):
    with pytest.raises(drain.DrainError):
        drain.drain(world.v1.account, "  ", None, None)
    with pytest.raises(drain.DrainError):
        drain.drain(world.v1.account, "late", utcnow() - timedelta(minutes=1), None)
    assert not world.v1.account.is_drained


def test_manager_restores_at_the_end_time(world, app):
    now = utcnow()
    drain.drain(world.v1.account, "short", now + timedelta(minutes=5), None, now=now)
    drain.drain(world.v2.client, "long", now + timedelta(hours=5), None, now=now)
    drain.drain(world.v3.account, "open", None, None, now=now)
    db.session.commit()
    assert manager.restore_expired_drains(now + timedelta(minutes=10)) == 1
    db.session.commit()
    assert not db.session.get(Account, world.v1.account.id).is_drained
    assert db.session.get(Client, world.v2.client.id).is_drained
    assert db.session.get(Account, world.v3.account.id).is_drained
    entry = db.session.query(AuditEntry).filter_by(action="restore").one()
    assert entry.username == "system" and entry.object_id == world.v1.account.id


def test_manager_run_restores_expired_drains(world, app):
    drain.drain(world.v1.account, "short", utcnow() + timedelta(seconds=1), None, now=utcnow())
    world.v1.account.drained_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    run_ = manager.run_once(app, force=True)
    assert run_.outcome == "ok", run_.error
    db.session.expire_all()
    assert not db.session.get(Account, world.v1.account.id).is_drained


# --- pages ----------------------------------------------------------------------------------------


def _vendor(company, name="Vend"):
    client = f.client(company, name)
    account = f.account(client, name.lower(), ident_value="203.0.113.50", term_enabled=True)
    db.session.commit()
    return client, account


def test_drain_page_drains_and_lists_mark_it(tree, login):
    client, account = _vendor(tree.alpha)
    web = login(tree.alpha_operator)
    assert web.get(f"/whatif/drain/account/{account.id}").status_code == 200
    response = web.post(
        f"/whatif/drain/account/{account.id}", data={"reason": "vendor outage", "until": "2099-01-01 10:00"}
    )
    assert response.status_code == 303
    db.session.expire_all()
    stored = db.session.get(Account, account.id)
    assert stored.drained_reason == "vendor outage" and stored.drained_by == "alpha_operator"
    assert stored.drained_until.year == 2099
    listing = web.get("/accounts/").get_data(as_text=True)
    assert 'class="badge drained"' in listing and "vendor outage" in listing
    home = web.get("/").get_data(as_text=True)
    assert "vend" in home and "vendor outage" in home and "2099-01-01 10:00" in home
    page = web.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "Restore" in page
    assert web.post(f"/whatif/restore/account/{account.id}").status_code == 303
    db.session.expire_all()
    assert not db.session.get(Account, account.id).is_drained
    assert "No terminator account or client is drained." in web.get("/").get_data(as_text=True)


def test_drain_client_page_and_clients_list(tree, login):
    client, _ = _vendor(tree.alpha)
    web = login(tree.alpha_operator)
    assert web.post(f"/whatif/drain/client/{client.id}", data={"reason": "tests"}).status_code == 303
    listing = web.get("/clients/").get_data(as_text=True)
    assert 'class="badge drained"' in listing and "tests" in listing
    accounts = web.get("/accounts/").get_data(as_text=True)
    assert 'class="badge drained"' in accounts


def test_drain_form_refuses_missing_reason_and_past_end(tree, login):
    _, account = _vendor(tree.alpha)
    web = login(tree.alpha_operator)
    assert web.post(f"/whatif/drain/account/{account.id}", data={"reason": ""}).status_code == 422
    response = web.post(
        f"/whatif/drain/account/{account.id}", data={"reason": "x", "until": "2001-01-01 00:00"}
    )
    assert response.status_code == 422 and "already past" in response.get_data(as_text=True)
    response = web.post(f"/whatif/drain/account/{account.id}", data={"reason": "x", "until": "tomorrow"})
    assert response.status_code == 422
    db.session.expire_all()
    assert not db.session.get(Account, account.id).is_drained


def test_viewer_cannot_drain(tree, login):
    client, account = _vendor(tree.alpha)
    web = login(tree.alpha_viewer)
    assert web.get(f"/whatif/drain/account/{account.id}").status_code == 403
    assert web.post(f"/whatif/drain/account/{account.id}", data={"reason": "x"}).status_code == 403
    assert web.post(f"/whatif/drain/client/{client.id}", data={"reason": "x"}).status_code == 403
    assert web.post(f"/whatif/restore/account/{account.id}").status_code == 403
    assert "Drain…" not in web.get(f"/accounts/{account.id}").get_data(as_text=True)


def test_reseller_drains_only_its_own_objects(tree, login):
    beta_client, beta_account = _vendor(tree.beta, "BetaVend")
    alpha_client, alpha_account = _vendor(tree.sub, "SubVend")
    web = login(tree.alpha_operator)
    assert web.get(f"/whatif/drain/account/{beta_account.id}").status_code == 404
    assert web.post(f"/whatif/drain/account/{beta_account.id}", data={"reason": "x"}).status_code == 404
    assert web.post(f"/whatif/drain/client/{beta_client.id}", data={"reason": "x"}).status_code == 404
    assert web.post(f"/whatif/restore/client/{beta_client.id}").status_code == 404
    # A sub-reseller's vendor is inside Alpha's scope.
    assert web.post(f"/whatif/drain/client/{alpha_client.id}", data={"reason": "x"}).status_code == 303
    db.session.expire_all()
    assert not db.session.get(Client, beta_client.id).is_drained
    # Beta's home page does not list Alpha's drained client.
    assert "SubVend" not in login(tree.beta_admin).get("/").get_data(as_text=True)


def test_route_test_page_shows_drained(world, login):
    _rules(world)
    drain.drain(world.v1.account, "outage", None, None)
    viewer = f.user(world.root, "viewer", "root_viewer")
    db.session.commit()
    html = (
        login(viewer)
        .get(f"/route-test/?account_id={world.cust.id}&number=447700900123&at=2024-03-04+12:00&refresh=1")
        .get_data(as_text=True)
    )
    assert "<code>drained</code>" in html and "is drained" in html


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_drain_takes_effect_at_the_managers_sync(world, app, login):
    """Drain on the page; the manager's next run and sync publish it to the snapshot routing uses."""
    from panel import snapshots
    from panel.routing.engine import RouteQuery, route

    _rules(world)
    admin = f.user(world.root, "admin", "root_admin")
    db.session.commit()

    def routed() -> tuple[list[str], dict[str, str]]:
        manager.run_once(app)
        manager.sync_snapshot(app)
        result = route(
            snapshots.current(), RouteQuery(number="447700900123", account_id=world.cust.id, at=MONDAY_NOON)
        )
        return _names(result), _reasons(result)

    snapshots.get_snapshot()
    assert routed()[0] == ["v1", "v2", "v3"]
    web = login(admin)
    assert (
        web.post(f"/whatif/drain/client/{world.v1.client.id}", data={"reason": "outage"}).status_code == 303
    )
    assert routed() == (["v2", "v3"], {"v1": "drained"})
    assert web.post(f"/whatif/restore/client/{world.v1.client.id}").status_code == 303
    assert routed()[0] == ["v1", "v2", "v3"]
