"""What-if in a browser: preview a rule edit inline and apply it; drain and restore a vendor."""

import pytest
from playwright.sync_api import expect

from panel.extensions import db
from panel.models import Account, RoutingRule
from tests.whatif.conftest import alpha_plan

pytestmark = pytest.mark.browser


@pytest.fixture
def alpha(tree):
    """Alpha's plan (deck 44) with a customer; vendors V1 (0.05) and V2 (0.06); rule 44 -> V1."""
    return alpha_plan(tree, [("44", "UK")])


def test_preview_then_apply_a_rule_edit(alpha, browser_login):
    rule_id = alpha.rule.id
    page = browser_login(alpha.alpha_operator)
    page.goto(f"/plans/{alpha.plan.id}/")
    row = page.locator(f"#rule-{rule_id}")
    row.locator("td.code").click()
    expect(page.locator(f"#rule-{rule_id}.editing:not(.htmx-added)")).to_be_visible()
    row.locator("select[name=terminator]").select_option(label="V2")
    row.get_by_role("button", name="Preview").click()
    dialog = page.locator("dialog#whatif-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("td.first-route")).to_have_text("V1 / v1 → V2 / v2")
    expect(dialog.locator("td.margin")).to_have_text("0.05 → 0.04")
    db.session.expire_all()
    assert db.session.get(RoutingRule, rule_id).terminator_client_id == alpha.v1.client.id  # nothing written
    dialog.get_by_role("button", name="Apply").click()
    expect(page.locator("#flash")).to_contain_text("Rule saved")
    db.session.expire_all()
    assert db.session.get(RoutingRule, rule_id).terminator_client_id == alpha.v2.client.id


def test_drain_then_restore_a_vendor(alpha, browser_login):
    account_id = alpha.v1.account.id
    page = browser_login(alpha.alpha_operator)
    page.goto(f"/accounts/{account_id}")
    page.get_by_role("link", name="Drain…").click()
    page.get_by_label("Reason").fill("vendor outage, ticket 42")
    page.get_by_role("button", name="Drain").click()
    expect(page.locator("#flash")).to_contain_text("drained")
    badge = page.locator(".badge.drained").first
    expect(badge).to_be_visible()
    title = badge.get_attribute("title")
    assert title.startswith("Drained by alpha_operator since ") and title.endswith(
        ": vendor outage, ticket 42"
    )
    page.goto("/")
    expect(page.locator("#drained")).to_contain_text("vendor outage, ticket 42")
    page.goto(f"/accounts/{account_id}")
    page.get_by_role("button", name="Restore").click()
    expect(page.locator("#flash")).to_contain_text("restored")
    expect(page.locator(".badge.drained")).to_have_count(0)
    db.session.expire_all()
    assert not db.session.get(Account, account_id).is_drained
