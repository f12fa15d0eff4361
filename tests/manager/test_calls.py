"""POST /api/v1/calls: start and end events, live counts, capacity in routing, expiry of lost calls."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from panel import livecalls, manager
from panel.extensions import db
from panel.models import LiveCall
from panel.models.types import utcnow
from tests.manager.conftest import bearer, make_token, route_now


def _events(client, token, payload):
    return client.post("/api/v1/calls", json=payload, headers=bearer(token))


def _start(carrier, call_id, term=None, rule=None, **extra):
    event = {
        "event": "start",
        "call_id": call_id,
        "orig_account_id": carrier.acme_main.id,
        "term_account_id": (term or carrier.vox_gw).id,
    }
    if rule is not None:
        event["rule_id"] = rule.id
    event.update(extra)
    return event


def _live(*places) -> tuple[int, ...]:
    """The live calls now of each (kind, object) of `places`: kind "orig", "term" or "rule"."""
    counts = livecalls.counts()
    return tuple(getattr(counts, kind)(obj.id) for kind, obj in places)


def test_start_and_end_events_keep_the_counts(client, routed, alpha_token):
    """Counts per originator, terminator and rule follow the events; an end for no live call is reported."""
    response = _events(
        client,
        alpha_token,
        [
            _start(routed, "c1", rule=routed.vox_rule),
            _start(routed, "c2", rule=routed.vox_rule),
            _start(routed, "c3", routed.tel_gw),
        ],
    )
    assert response.status_code == 200
    assert response.json == {"started": 3, "ended": 0, "not_live": []}
    assert _live(("orig", routed.acme_main), ("term", routed.vox_gw), ("term", routed.tel_gw)) == (3, 2, 1)
    assert _live(("rule", routed.vox_rule), ("rule", routed.tel_rule)) == (2, 0)

    response = _events(
        client, alpha_token, [{"event": "end", "call_id": "c1"}, {"event": "end", "call_id": "nope"}]
    )
    assert response.json == {"started": 0, "ended": 1, "not_live": ["nope"]}
    assert _live(("orig", routed.acme_main), ("term", routed.vox_gw), ("rule", routed.vox_rule)) == (2, 1, 1)


def test_a_repeated_start_moves_the_call_to_the_new_terminator(client, routed, alpha_token):
    """Failover: a start for a live call id replaces its terminator and rule; repeating it changes nothing."""
    _events(client, alpha_token, _start(routed, "f1", rule=routed.vox_rule))
    _events(client, alpha_token, _start(routed, "f1", routed.tel_gw, rule=routed.tel_rule))
    _events(client, alpha_token, _start(routed, "f1", routed.tel_gw, rule=routed.tel_rule))
    assert _live(("orig", routed.acme_main), ("term", routed.vox_gw), ("term", routed.tel_gw)) == (1, 0, 1)
    assert _live(("rule", routed.vox_rule), ("rule", routed.tel_rule)) == (0, 1)


def test_bad_events_are_refused_whole(client, routed, alpha_token):
    """A bad event, an unknown field or another company's account: 400 naming index and field."""
    response = _events(client, alpha_token, [_start(routed, "ok"), {"event": "pause", "call_id": "x"}])
    assert response.status_code == 400
    assert (response.json["index"], response.json["field"]) == (1, "event")
    response = _events(
        client, alpha_token, [_start(routed, "ok"), _start(routed, "b", orig_account_id=routed.beta_acc.id)]
    )
    assert response.status_code == 400
    assert response.json["error"] == "record 1: orig_account_id: unknown account"
    response = _events(client, alpha_token, {"event": "start", "call_id": "lonely"})
    assert response.status_code == 400 and response.json["field"] == "orig_account_id"
    assert db.session.scalar(select(func.count()).select_from(LiveCall)) == 0
    assert client.post("/api/v1/calls", json=_start(routed, "x")).status_code == 401


def test_routing_rejects_at_capacity(client, routed, alpha_token):
    """Terminator or rule at capacity: `capacity`; the originator at its limit: the call is rejected."""
    routed.vox_gw.term_capacity = 1
    routed.tel_rule.capacity = 1
    routed.acme_main.orig_capacity = 2
    db.session.commit()
    manager.sync_snapshot(client.application, force=True)

    result = route_now("441234567", routed.acme_main, live=livecalls.counts())
    assert [r.terminator_id for r in result.routes] == [routed.vox_gw.id, routed.tel_gw.id]

    _events(client, alpha_token, _start(routed, "v1", rule=routed.vox_rule))
    result = route_now("441234567", routed.acme_main, live=livecalls.counts())
    assert [r.terminator_id for r in result.routes] == [routed.tel_gw.id]
    assert [(r.terminator_id, r.reason) for r in result.rejections] == [(routed.vox_gw.id, "capacity")]

    _events(client, alpha_token, _start(routed, "t1", routed.tel_gw, rule=routed.tel_rule))
    result = route_now("441234567", routed.acme_main, live=livecalls.counts())
    assert result.reason == "originator_capacity"
    routed.acme_main.orig_capacity = None
    db.session.commit()
    manager.sync_snapshot(client.application, force=True)
    result = route_now("441234567", routed.acme_main, live=livecalls.counts())
    assert result.reason == "no_routes"
    assert {r.reason for r in result.rejections} == {"capacity"}

    _events(client, alpha_token, {"event": "end", "call_id": "v1"})
    result = route_now("441234567", routed.acme_main, live=livecalls.counts())
    assert [r.terminator_id for r in result.routes] == [routed.vox_gw.id]


@pytest.mark.parametrize("app_config", [{"LIVE_CALL_MAX_SECONDS": 600, "MANAGER_PERIOD_SECONDS": 0}])
def test_a_call_that_never_ended_expires(client, routed, alpha_token):
    """A call older than the maximum duration stops counting at once and the manager deletes it."""
    routed.vox_gw.term_capacity = 1
    db.session.commit()
    lost = _start(routed, "lost", at=(utcnow() - timedelta(minutes=11)).isoformat())
    recent = _start(routed, "recent", routed.tel_gw, at=(utcnow() - timedelta(minutes=9)).isoformat())
    assert _events(client, alpha_token, [lost, recent]).status_code == 200
    assert _live(("term", routed.vox_gw), ("term", routed.tel_gw), ("orig", routed.acme_main)) == (0, 1, 1)

    run = manager.run_once(client.application)
    assert run.calls_expired == 1
    assert list(db.session.scalars(select(LiveCall.call_id))) == ["recent"]
    result = route_now("441234567", routed.acme_main, live=livecalls.counts())
    assert routed.vox_gw.id in [r.terminator_id for r in result.routes]
    # An end event after the expiry is harmless.
    assert _events(client, alpha_token, {"event": "end", "call_id": "lost"}).json["not_live"] == ["lost"]


def _beta_start(carrier, call_id):
    return {"event": "start", "call_id": call_id, "orig_account_id": carrier.beta_acc.id}


def _live_rows():
    db.session.expire_all()
    return sorted(
        db.session.execute(select(LiveCall.call_id, LiveCall.orig_account_id, LiveCall.company_id)).all()
    )


def test_events_touch_only_the_tokens_own_calls(client, carrier, alpha_token):
    """Issue 13.1: with Alpha's token, an end or a repeated start naming Beta's live call id neither ends nor
    rewrites Beta's call, and the answer is the one an unknown call id gets (it tells nothing of Beta)."""
    beta_token = make_token(carrier.tree.beta, "beta switch")
    assert _events(client, beta_token, _beta_start(carrier, "beta-call")).status_code == 200
    beta_row = ("beta-call", carrier.beta_acc.id, carrier.tree.beta.id)
    assert _live_rows() == [beta_row]

    foreign = _events(client, alpha_token, {"event": "end", "call_id": "beta-call"})
    unknown = _events(client, alpha_token, {"event": "end", "call_id": "never-started"})
    assert foreign.status_code == unknown.status_code == 200
    assert foreign.json == {"started": 0, "ended": 0, "not_live": ["beta-call"]}
    assert unknown.json == {"started": 0, "ended": 0, "not_live": ["never-started"]}
    assert _live_rows() == [beta_row]

    # A start with Beta's call id is Alpha's own new call; Beta's row keeps its originator.
    assert _events(client, alpha_token, _start(carrier, "beta-call")).json == {
        "started": 1,
        "ended": 0,
        "not_live": [],
    }
    assert _live_rows() == [("beta-call", carrier.acme_main.id, carrier.tree.alpha.id), beta_row]
    # Each company ends its own call.
    assert _events(client, beta_token, {"event": "end", "call_id": "beta-call"}).json["ended"] == 1
    assert _live_rows() == [("beta-call", carrier.acme_main.id, carrier.tree.alpha.id)]
