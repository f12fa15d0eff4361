"""The rules tab in a real browser: inline editing, the code name filling in, an expired rule in red."""

import pytest
from playwright.sync_api import expect

from panel.extensions import db
from panel.models import RoutingRule
from tests.plans.conftest import past

pytestmark = pytest.mark.browser


def settled(page, selector: str) -> None:
    """Wait until htmx has swapped in `selector` and wired it up (it is marked htmx-added until then)."""
    expect(page.locator(f"{selector}:not(.htmx-added)").first).to_be_visible()


def test_edit_a_rule_inline(world, browser_login):
    """Click a row, type a code (its name fills in), fix a bad value, save; the expired rule is red."""
    world.rule_uk.expires_at = past()
    db.session.commit()
    plan_id, mobile_id, uk_id = world.plan.id, world.rule_mobile.id, world.rule_uk.id
    page = browser_login(world.tree.alpha_operator)
    page.goto(f"/plans/{plan_id}/")

    expired = page.locator(f"#rule-{uk_id} tr")
    expect(expired).to_have_class("expired")
    expect(expired).to_contain_text("no longer used; the Traffic Rules manager deletes it at its next run")
    expect(expired.locator("td").first).to_have_css("color", "rgb(179, 38, 30)")
    expect(page.locator(f"#rule-{mobile_id} tr td").first).not_to_have_css("color", "rgb(179, 38, 30)")

    row = page.locator(f"#rule-{mobile_id}")
    row.locator("td.code").click()
    settled(page, f"#rule-{mobile_id}.editing")
    code = row.locator("input[name=code]")
    expect(code).to_have_value("447*")
    code.fill("")
    code.press_sequentially("4479", delay=30)
    expect(row.locator("td.code-name")).to_have_text("UK Mobile Vodafone")
    code.fill("44")
    expect(row.locator("td.code-name")).to_have_text("United Kingdom")

    row.locator("input[name=priority]").fill("soon")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".error").first).to_contain_text("'soon' is not a whole number.")
    expect(row.locator("input[name=code]")).to_have_value("44")  # still editing, nothing lost

    row.locator("input[name=priority]").fill("3")
    row.get_by_role("button", name="Save").click()
    expect(row.locator("input[name=code]")).to_have_count(0)
    expect(row.locator("td.code")).to_have_text("44")
    expect(row.locator("td.code-name")).to_have_text("United Kingdom")
    expect(page.locator("#rules-notice")).to_contain_text(
        "takes effect at the next run of the Traffic Rules manager"
    )

    db.session.expire_all()
    rule = db.session.get(RoutingRule, mobile_id)
    assert (rule.code, rule.priority, rule.terminator_account_id) == ("44", 3, world.b1.id)


def test_add_a_did_rule_and_cancel_an_edit(world, browser_login):
    """Add rule opens a new row; choosing DID removes code and terminator; Escape cancels an edit."""
    plan_id, uk_id = world.plan.id, world.rule_uk.id
    page = browser_login(world.tree.alpha_operator)
    page.goto(f"/plans/{plan_id}/")
    page.get_by_role("button", name="Add rule").click()
    settled(page, "tbody.editing")
    new = page.locator("tbody.editing").first
    new.locator("select[name=type]").select_option("did")
    expect(new.locator("input[name=code]")).to_have_count(0)
    expect(new.locator("select[name=terminator]")).to_have_count(0)
    settled(page, "tbody.editing")
    new.locator("input[name=priority]").fill("-1")
    new.get_by_role("button", name="Save").click()
    expect(page.locator("tbody.rule:not(.editing)", has_text="DID list")).to_have_count(1)

    row = page.locator(f"#rule-{uk_id}")
    row.locator("td.code").click()
    settled(page, f"#rule-{uk_id}.editing")
    row.locator("input[name=code]").fill("99")
    row.locator("input[name=code]").press("Escape")
    expect(row.locator("td.code")).to_have_text("44")
    db.session.expire_all()
    assert db.session.get(RoutingRule, uk_id).code == "44"
