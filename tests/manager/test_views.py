"""The manager page with Run now; Statistics: calls and totals, quality, balancing, live calls."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from panel import audit, cdrs, livecalls, manager, snapshots
from panel.extensions import db
from panel.models import RoutingRule
from panel.models.types import utcnow
from tests import factories

HTMX = {"HX-Request": "true"}


def _cdr(carrier, call_id, duration, *, orig=None, term=None, rule=None, hours_ago=1.0, answered=None):
    record = {
        "call_id": call_id,
        "orig_account_id": (orig or carrier.acme_main).id,
        "term_account_id": (term or carrier.vox_gw).id,
        "number": "441234567",
        "start": (utcnow() - timedelta(hours=hours_ago)).isoformat(),
        "duration": duration,
    }
    if rule is not None:
        record["rule_id"] = rule.id
    if answered is not None:
        record["answered"] = answered
    return record


@pytest.fixture
def traffic(routed):
    """Acme's calls: three answered to Vox (60, 60, 120 s), one failed to Tel, one answered 10 days ago."""
    cdrs.ingest(
        [
            _cdr(routed, "a1", 60),
            _cdr(routed, "a2", 60),
            _cdr(routed, "a3", 120),
            _cdr(routed, "f1", 0, term=routed.tel_gw),
            _cdr(routed, "old", 60, hours_ago=240),
        ],
        company_id=None,
    )
    return routed


# --- the manager page -------------------------------------------------------------------------------------


def test_manager_page_shows_state_and_runs(login, routed):
    """Every user sees the state: last run, duration, next run, snapshot, settings and the runs."""
    viewer = login(routed.tree.alpha_viewer)
    page = viewer.get("/manager/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Traffic Rules manager" in text and "none yet" in text and "not scheduled" in text
    assert "Run now" not in text  # viewers do not get the button

    run = manager.run_once(viewer.application)
    text = viewer.get("/manager/").get_data(as_text=True)
    assert f'<td class="num">{run.id}</td>' in text
    assert 'badge on">ok' in text and "Next run" in text and "ms" in text
    # The settings and system-wide figures are the operator's (issue 14.9): see tests/ui/test_reseller.py.
    operator_page = login(routed.tree.root_admin).get("/manager/").get_data(as_text=True)
    assert "PANEL_MANAGER_PERIOD_SECONDS" in operator_page


def test_manager_page_says_what_the_last_sync_read(login, routed, app):
    """The operator sees what this process's last snapshot sync read from the database."""
    admin = login(routed.tree.root_admin)
    snapshots.rebuild()
    text = admin.get("/manager/").get_data(as_text=True)
    assert "Last update read" in text and '<td colspan="3">full' in text
    rule = db.session.scalars(select(RoutingRule)).first()
    before = audit.state(rule)
    rule.priority = (rule.priority or 0) + 1
    audit.record("update", rule, before=before)
    db.session.commit()
    snapshots.update()
    text = admin.get("/manager/").get_data(as_text=True)
    assert f'<td colspan="3">plans [{rule.plan_id}]' in text


def test_run_now_is_for_admins(login, routed):
    """Operators, viewers, resellers' admins get 403; a root admin's Run now finishes and says what it did."""
    for user in (routed.tree.alpha_operator, routed.tree.alpha_viewer, routed.tree.alpha_admin):
        assert login(user).post("/manager/run", headers=HTMX).status_code == 403
    factories.rule(routed.plan, "4420", expires_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    admin = login(routed.tree.root_admin)
    assert "Run now" in admin.get("/manager/").get_data(as_text=True)
    response = admin.post("/manager/run", headers=HTMX)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'id="manager-status"' in text and "finished in" in text
    assert "1 expired rules deleted" in text and "A new snapshot was published." in text
    assert 'hx-swap-oob="true"' in text  # the runs table refreshes too
    assert "hx-trigger" not in text.split('id="manager-runs"')[0]  # no more polling
    # Without htmx: back to the page.
    response = admin.post("/manager/run")
    assert response.status_code == 303 and response.headers["Location"].endswith("/manager/")


def test_status_polls_until_a_requested_run_appears(login, routed):
    """The card keeps polling while the requested run has not finished, and gives up after a while."""
    viewer = login(routed.tree.alpha_viewer)
    waiting = viewer.get(f"/manager/status?since=0&asked={time.time()}", headers=HTMX).get_data(as_text=True)
    assert "waiting for the manager lock" in waiting and 'hx-trigger="load delay:500ms"' in waiting
    old = viewer.get(f"/manager/status?since=0&asked={time.time() - 3600}", headers=HTMX).get_data(
        as_text=True
    )
    assert "No run started" in old and "hx-trigger" not in old


# --- calls ------------------------------------------------------------------------------------------------


def test_calls_list_and_totals(login, traffic):
    """The default list covers the last 7 days: attempts, ASR, ACD, minutes, revenue, cost and margin."""
    page = login(traffic.tree.alpha_operator).get("/statistics/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # 4 attempts, 3 answered (75 %), 240 s = 4 minutes, ACD 1.33; Acme pays 44 at 0.10 30/6 + 0.05 setup:
    # 0.15 + 0.15 + 0.25 = 0.55; Vox costs 0.06/min: 0.06 + 0.06 + 0.12 = 0.24; margin 0.31 (56.4 %).
    for figure in ("75.0 %", "1.33", "4.00", "0.55", "0.24", "0.31", "56.4 %"):
        assert figure in text, figure
    assert text.count("<tr>") == 1 + 4  # header and the four calls of the week
    assert "Acme / acme-main" in text and "Vox / vox-gw" in text


def test_calls_filters(login, traffic):
    """Answered, direction and client, dates and number filter the list and the totals."""
    user = login(traffic.tree.alpha_operator)
    failed = user.get("/statistics/?answered=no").get_data(as_text=True)
    assert failed.count("<tr>") == 2 and "Tel / tel-gw" in failed
    as_vendor = user.get(f"/statistics/?client_id={traffic.tel.id}&direction=term").get_data(as_text=True)
    assert as_vendor.count("<tr>") == 2
    as_customer = user.get(f"/statistics/?client_id={traffic.tel.id}&direction=orig").get_data(as_text=True)
    assert "No calls match" in as_customer
    everything = user.get("/statistics/?date_from=&date_to=").get_data(as_text=True)
    assert everything.count("<tr>") == 1 + 5
    assert "Digits only" in user.get("/statistics/?number=44x").get_data(as_text=True)
    fragment = user.get("/statistics/?answered=yes", headers=HTMX)
    assert (
        fragment.get_data(as_text=True).lstrip().startswith('<div id="calls-page">')
        or 'id="calls-page"' in (fragment.get_data(as_text=True)[:200])
    )


def test_calls_are_scoped(login, traffic):
    """Beta sees none of Alpha's calls and gets 404 for Alpha's client; a call from Beta's customer to Alpha's
    vendor shows at Alpha without its originator or its charge."""
    beta = login(traffic.tree.beta_admin)
    assert "No calls match" in beta.get("/statistics/").get_data(as_text=True)
    assert beta.get(f"/statistics/?client_id={traffic.acme.id}").status_code == 404
    assert beta.get(f"/statistics/balancing?plan_id={traffic.plan.id}").status_code == 404

    cdrs.ingest([_cdr(traffic, "beta-1", 60, orig=traffic.beta_acc)], company_id=None)
    alpha = login(traffic.tree.alpha_operator).get("/statistics/").get_data(as_text=True)
    assert "another company" in alpha and "Beta customer" not in alpha
    assert "1 of these calls came from or went to accounts of a company outside yours" in alpha
    assert "0.55" in alpha  # revenue still only Acme's
    root = login(traffic.tree.root_admin).get("/statistics/").get_data(as_text=True)
    assert "Beta customer / beta-acc" in root and "0.70" in root


def test_calls_export(login, traffic):
    """The CSV export has a header and one line per filtered call."""
    response = login(traffic.tree.alpha_operator).get("/statistics/export?answered=yes")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("start,call_id,orig_client,orig_account,number")
    assert len(lines) == 1 + 3
    assert any(",a3,Acme,acme-main,441234567,44,Vox,vox-gw,44,120,1," in line for line in lines)


# --- quality ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"QUALITY_MIN_CALLS": 3}])
def test_vendor_quality_by_destination(login, traffic):
    """Per terminator and vendor code: attempts, ASR, ACD; rows under the minimum calls are marked."""
    text = login(traffic.tree.alpha_operator).get("/statistics/quality").get_data(as_text=True)
    assert "vox-gw" in text and "tel-gw" in text
    assert "100.0" in text and "1.33" in text  # Vox: 3 of 3 answered, 4 minutes
    assert text.count("too few") == 1  # Tel: one attempt
    assert "UK" in text  # the destination name from the vendor's rate table
    only_vox = login(traffic.tree.alpha_operator).get(f"/statistics/quality?client_id={traffic.vox.id}")
    assert "tel-gw" not in only_vox.get_data(as_text=True)
    beta = login(traffic.tree.beta_admin).get("/statistics/quality").get_data(as_text=True)
    assert "vox-gw" not in beta


# --- balancing --------------------------------------------------------------------------------------------


@pytest.fixture
def balanced(routed):
    """Two rules of code 4420 at priority 5 balanced 50/50; 3 answered calls went through Vox's, 1 through
    Tel's (and one failed attempt through Tel's)."""
    vox = factories.rule(
        routed.plan, "4420*", "static_client", priority=5, balancing=50, terminator_client_id=routed.vox.id
    )
    tel = factories.rule(
        routed.plan, "4420", "static_client", priority=5, balancing=50, terminator_client_id=routed.tel.id
    )
    db.session.commit()
    cdrs.ingest(
        [
            _cdr(routed, "b1", 30, rule=vox),
            _cdr(routed, "b2", 30, rule=vox),
            _cdr(routed, "b3", 30, rule=vox),
            _cdr(routed, "b4", 30, term=routed.tel_gw, rule=tel),
            _cdr(routed, "b5", 0, term=routed.tel_gw, rule=tel),
        ],
        company_id=None,
    )
    routed.balanced = (vox, tel)
    return routed


def test_balancing_target_against_answered_share(login, balanced):
    """The plan's balanced group shows 50 % targets against 75 % / 25 % of answered calls, as a chart."""
    user = login(balanced.tree.alpha_operator)
    listing = user.get("/statistics/balancing").get_data(as_text=True)
    assert "Alpha UK" in listing
    text = user.get(f"/statistics/balancing?plan_id={balanced.plan.id}").get_data(as_text=True)
    assert "Code 4420 · priority 5" in text
    assert text.count('<td class="num">50.0 %</td>') == 2
    assert '<td class="num">75.0 %</td>' in text and '<td class="num">25.0 %</td>' in text
    assert "<svg" in text and "75 % answered" in text and "50 % target" in text
    assert "60.0 %" in text and "40.0 %" in text  # shares of attempts (3 of 5, 2 of 5)


def test_balancing_chart_of_one_rule(login, balanced):
    """The small chart of a rule's group (for the plan's rule list); another company's rule is 404."""
    vox_rule, _tel_rule = balanced.balanced
    user = login(balanced.tree.alpha_operator)
    fragment = user.get(f"/statistics/balancing/rules/{vox_rule.id}", headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div class="balancing-rule"')
    assert "<svg" in fragment and "75.0 %" in fragment
    unbalanced = user.get(f"/statistics/balancing/rules/{balanced.vox_rule.id}").get_data(as_text=True)
    assert "is not balanced" in unbalanced
    assert (
        login(balanced.tree.beta_admin).get(f"/statistics/balancing/rules/{vox_rule.id}").status_code == 404
    )


# --- live calls -------------------------------------------------------------------------------------------


def test_live_calls_page(login, routed, app):
    """Live calls per account against capacity; an account at capacity is flagged."""
    routed.vox_gw.term_capacity = 1
    db.session.commit()
    livecalls.apply_events(
        [
            {
                "event": "start",
                "call_id": "l1",
                "orig_account_id": routed.acme_main.id,
                "term_account_id": routed.vox_gw.id,
            },
            {
                "event": "start",
                "call_id": "l2",
                "orig_account_id": routed.acme_main.id,
                "term_account_id": routed.tel_gw.id,
            },
        ],
        company_id=None,
    )
    text = login(routed.tree.alpha_viewer).get("/statistics/live").get_data(as_text=True)
    assert "<strong>2</strong> calls in progress" in text
    assert "At capacity" in text and "no limit" in text
    assert "No live calls." in login(routed.tree.beta_admin).get("/statistics/live").get_data(as_text=True)


def test_balances_reflect_the_charges(login, traffic):
    """The charges of the stored calls are taken from the originator client's balance."""
    db.session.expire_all()
    db.session.refresh(traffic.acme)
    assert traffic.acme.balance == Decimal("-0.70")  # 0.55 this week + 0.15 ten days ago
