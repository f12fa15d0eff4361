"""Pins against hand mutations that the suite did not notice (issue 13.16), one test per mutation.

Each test names the mutation it catches; every one was checked by making that change by hand and seeing the
test fail (docs/security.md lists them).
"""

import threading
import time
from datetime import timedelta
from decimal import Decimal
from itertools import product

import pytest
from sqlalchemy import func, select

from panel import billing, livecalls, manager, manager_lock
from panel.extensions import db
from panel.models import CallStat, Client
from panel.models.types import utcnow
from panel.routing.engine import max_vendor_rate
from tests import factories
from tests.conftest import IS_POSTGRES
from tests.manager.conftest import bearer, carrier, make_token, routed  # noqa: F401 - fixtures
from tests.oracles import brute_billed

MICRO = 1_000_000


# --- cdrs.py: the in-batch `seen` check -----------------------------------------------------------------


def test_a_new_call_id_twice_in_one_batch_is_stored_and_charged_once(client, carrier):  # noqa: F811
    """Mutation: drop the in-batch `seen` check in panel/cdrs.py (the second copy was charged again)."""
    token = make_token(carrier.tree.alpha)
    record = {
        "call_id": "twice",
        "orig_account_id": carrier.acme_main.id,
        "number": "441234567",
        "start": "2026-05-01T10:00:00Z",
        "duration": 60,
    }
    answer = client.post("/api/v1/cdrs", json=[record, record], headers=bearer(token)).json
    assert (answer["stored"], answer["duplicates"], answer["charged"]) == (1, ["twice"], "0.150000")
    db.session.expire_all()
    assert db.session.get(Client, carrier.acme.id).balance == Decimal("-0.15")
    assert db.session.scalar(select(func.count()).select_from(CallStat)) == 1


# --- records.py: the company filter of known_rules ------------------------------------------------------


def test_a_token_cannot_name_another_companys_rule(client, carrier):  # noqa: F811
    """Mutation: drop the company filter of `known_rules` (a token could name Beta's rule in CDRs and call
    events): Beta's rule is an unknown rule for Alpha's token, in both APIs."""
    token = make_token(carrier.tree.alpha)
    beta_rule = factories.rule(factories.plan(carrier.tree.beta, "Beta plan"), "44")
    own_rule = factories.rule(factories.plan(carrier.tree.alpha, "Alpha plan"), "44")
    db.session.commit()
    record = {
        "call_id": "r1",
        "orig_account_id": carrier.acme_main.id,
        "number": "441234567",
        "start": "2026-05-01T10:00:00Z",
        "duration": 10,
    }
    event = {"event": "start", "call_id": "r1", "orig_account_id": carrier.acme_main.id}
    for path, body in (("/api/v1/cdrs", record), ("/api/v1/calls", event)):
        refused = client.post(path, json={**body, "rule_id": beta_rule.id}, headers=bearer(token))
        assert refused.status_code == 400, path
        assert (refused.json["field"], refused.json["errors"][0]["error"]) == ("rule_id", "unknown rule")
        accepted = client.post(path, json={**body, "rule_id": own_rule.id}, headers=bearer(token))
        assert accepted.status_code == 200, path


# --- the live-call total is the company's ----------------------------------------------------------------


def test_live_total_counts_only_the_companys_calls(login, routed):  # noqa: F811
    """Mutation: drop the scope of the live-call count on the live calls page (it counted every company's
    calls): Alpha sees its 2 calls, Beta its 1, though 3 are live."""
    livecalls.apply_events(
        [
            {"event": "start", "call_id": "a1", "orig_account_id": routed.acme_main.id},
            {"event": "start", "call_id": "a2", "orig_account_id": routed.acme_main.id},
            {"event": "start", "call_id": "b1", "orig_account_id": routed.beta_acc.id},
        ],
        company_id=None,
    )
    alpha = login(routed.tree.alpha_viewer).get("/statistics/live").get_data(as_text=True)
    beta = login(routed.tree.beta_admin).get("/statistics/live").get_data(as_text=True)
    assert "<strong>2</strong> calls in progress" in alpha
    assert "<strong>1</strong> call" in beta and "<strong>3</strong>" not in beta


# --- billing.py: the search bound and the rounding -------------------------------------------------------


def test_vendor_bills_more_on_every_small_increment_pair():
    """Mutation: shrink the search bound of `vendor_bills_more` (customer 0/3 against vendor 1/2 passed
    although a 6 s call bills the vendor 7 s). Every pair of increments up to 8/8 against brute force: the
    random property test meets a failing pair about once in 10,000 draws; this checks them all."""
    assert billing.vendor_bills_more(0, 3, 1, 2)
    assert (brute_billed(6, 1, 2), brute_billed(6, 0, 3)) == (7, 6)
    small = range(0, 9)
    for cm, ci, vm, vi in product(small, range(1, 9), small, range(1, 9)):
        horizon = max(cm, vm) + 2 * ci * vi + max(ci, vi)
        brute = any(brute_billed(d, vm, vi) > brute_billed(d, cm, ci) for d in range(1, horizon + 1))
        assert billing.vendor_bills_more(cm, ci, vm, vi) is brute, (cm, ci, vm, vi)


def test_charges_round_half_up():
    """Mutation: ROUND_HALF_UP -> ROUND_HALF_EVEN in panel/billing.py. 1 s at 0.00015/min is 0.0000025:
    half up gives 0.000003 (half even would give 0.000002); 0.0000035 gives 0.000004 either way."""
    assert billing.charge(1, Decimal("0.00015"), 1, 1) == Decimal("0.000003")
    assert billing.charge(1, Decimal("0.00021"), 1, 1) == Decimal("0.000004")
    assert billing.charge(1, Decimal("0.00003"), 1, 1) == Decimal("0.000001")


# --- engine.py: the percent margin bound -----------------------------------------------------------------


def test_percent_margin_bound_is_rounded_up():
    """Mutation: round the percent profit-margin bound down in panel/routing/engine.py. Customer 0.100001,
    margin 33%: the margin must be at least 0.03300033, so 0.067000 passes and 0.067001 does not."""
    assert max_vendor_rate(100_001, 33 * MICRO, True) == 67_000
    assert max_vendor_rate(100_000, 40 * MICRO, True) == 60_000  # exact: kept
    assert max_vendor_rate(100_000, 40_000, False) == 60_000  # absolute, per minute


# --- manager.py: the next period's run happens -----------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 2}])
def test_the_next_periods_run_happens(app, routed):  # noqa: F811
    """Mutation: the manager working only every 8 periods. A run a moment after the last one is skipped; one
    a period later does the work (the expired rule goes). The period is long enough for a first run that
    builds the routing data (and writes its files) on a busy machine."""
    first = manager.run_once(app)
    assert first is not None and first.outcome == "ok"
    assert manager.run_once(app) is None  # within the period: nothing to do
    factories.rule(routed.plan, "4420", expires_at=utcnow() - timedelta(minutes=1))
    db.session.commit()
    time.sleep(2.05)
    second = manager.run_once(app)
    assert second is not None and second.outcome == "ok" and second.rules_expired == 1


# --- manager_lock.py: the lease and the advisory lock themselves ------------------------------------------


@pytest.mark.skipif(IS_POSTGRES, reason="the SQLite lease")
def test_the_sqlite_lease_admits_one_holder(app):
    """Mutation: a lease that always says yes (on SQLite the old overlap test passed without one). While A
    holds it B is refused; A may take it again; after A gives it back, or once it expired, B gets it."""
    ttl = timedelta(seconds=60)
    with manager_lock._lease("A", ttl, 0) as a:
        assert a
        with manager_lock._lease("B", ttl, 0) as b:
            assert not b
        with manager_lock._lease("A", ttl, 0) as again:
            assert again
    with manager_lock._lease("B", ttl, 0) as b:
        assert b
    with manager_lock._lease("A", timedelta(seconds=-1), 0) as expired:
        assert expired  # B gave it back; A takes it with a lease that is already over
        with manager_lock._lease("B", ttl, 0) as b:
            assert b


@pytest.mark.skipif(not IS_POSTGRES, reason="the PostgreSQL advisory lock")
def test_the_advisory_lock_admits_one_holder(app):
    """Mutation: an advisory lock that always says yes. While one connection holds it another is refused,
    also after waiting; once released, the other gets it."""
    with manager_lock._advisory_lock(0) as first:
        assert first
        with manager_lock._advisory_lock(0.2) as second:
            assert not second
    with manager_lock._advisory_lock(0) as second:
        assert second


def test_two_processes_never_hold_the_manager_lock_together(app):
    """The lock as a process takes it (its own thread lock, then the lease or the advisory lock): a second
    process (its own thread lock) is refused while the first holds it."""
    ttl = timedelta(seconds=60)
    with manager_lock.held(threading.Lock(), "process-1", ttl) as first:
        assert first
        with manager_lock.held(threading.Lock(), "process-2", ttl, wait=0.2) as second:
            assert not second
    with manager_lock.held(threading.Lock(), "process-2", ttl) as second:
        assert second
