"""The manager page and the calls list in a real browser: Run now over htmx, filters as you change them."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from panel import cdrs
from panel.extensions import db
from panel.models.types import utcnow
from tests import factories

pytestmark = pytest.mark.browser


def test_run_now_shows_the_run_finish(routed, browser_login):
    """A root admin presses Run now: the card says the run finished and what it did; runs table too."""
    factories.rule(routed.plan, "4420", expires_at=utcnow() - timedelta(minutes=1))
    db.session.commit()
    page = browser_login(routed.tree.root_admin)
    page.goto("/manager/")
    expect(page.locator("#manager-runs")).to_contain_text("The manager has not run yet.")
    page.get_by_role("button", name="Run now").click()
    status = page.locator("#manager-status [role=status]")
    # The run is a background thread: on a loaded 2-CPU machine it took more than expect's 5 s default once.
    expect(status).to_contain_text("finished in", timeout=30_000)
    expect(status).to_contain_text("1 expired rules deleted")
    expect(page.locator("#manager-runs tbody tr")).to_have_count(1)
    expect(page.locator("#manager-runs")).to_contain_text("published")


def test_calls_filter_as_you_change_it(routed, browser_login):
    """Choosing "not answered" narrows the calls and the totals without a page load; the URL follows."""
    start = (utcnow() - timedelta(hours=1)).isoformat()
    base = {"orig_account_id": routed.acme_main.id, "number": "441234567", "start": start}
    cdrs.ingest(
        [
            {**base, "call_id": "ok", "term_account_id": routed.vox_gw.id, "duration": 60},
            {**base, "call_id": "busy", "term_account_id": routed.tel_gw.id, "duration": 0, "sip_code": 486},
        ],
        company_id=None,
    )
    page = browser_login(routed.tree.alpha_operator)
    page.goto("/statistics/")
    expect(page.locator("#calls-table tbody tr")).to_have_count(2)
    page.select_option("select[name=answered]", "no")
    expect(page.locator("#calls-table tbody tr")).to_have_count(1)
    expect(page.locator("#calls-table")).to_contain_text("486")
    expect(page.locator(".tiles")).to_contain_text("0.0 %")
    assert "answered=no" in page.url
