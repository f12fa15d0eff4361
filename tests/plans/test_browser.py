"""The rules tab in a real browser: inline editing, the code name filling in, an expired rule in red."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from panel.extensions import db
from panel.models import RoutingRule
from tests import factories
from tests.conftest import wait_for_htmx
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


# ---------------------------------------------------------------- expiry, counts, order, sorting (issue 14)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RED = "rgb(179, 38, 30)"


@pytest.fixture
def fast_marks(monkeypatch):
    """The rules tab refreshes its expiry marks every second (the live server reads Config when it starts).

    The class create_app reads (panel.Config), whatever another test did to the panel.config module."""
    import panel

    monkeypatch.setattr(panel.Config, "EXPIRY_REFRESH_SECONDS", 1, raising=False)


def test_expiring_rules_are_amber_and_turn_red_without_a_reload(fast_marks, world, browser_login):
    """A rule expiring in 3 days is marked amber; one expiring in seconds turns red while the page stays open;
    the "expiring within" filter keeps the first."""
    now = datetime.now(UTC)
    world.rule_uk.expires_at = now + timedelta(days=3, hours=2)
    world.rule_mobile.expires_at = now + timedelta(seconds=8)
    db.session.commit()
    plan_id, uk_id, mobile_id = world.plan.id, world.rule_uk.id, world.rule_mobile.id
    page = browser_login(world.tree.alpha_operator)
    page.set_viewport_size({"width": 1366, "height": 800})
    page.goto(f"/plans/{plan_id}/")
    page.evaluate("window.notReloaded = true")
    uk_mark = page.locator(f"#expiry-{uk_id}")
    expect(uk_mark).to_have_class("expiry soon")
    expect(uk_mark).to_have_text("expires in 3 d")
    expect(uk_mark.locator("strong")).to_have_css("color", "rgb(138, 90, 0)")
    mobile_mark = page.locator(f"#expiry-{mobile_id}")
    expect(mobile_mark).to_have_text("expires in under a minute")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rules-expiring.png"), full_page=True)

    expect(mobile_mark).to_have_class("expiry expired", timeout=20_000)
    expect(mobile_mark).to_contain_text("no longer used")
    expect(page.locator(f"#rule-{mobile_id} td").first).to_have_css("color", RED)
    assert page.evaluate("window.notReloaded") is True

    page.locator("select[name=expiring]").select_option("7")
    expect(page.locator("tbody.rule")).to_have_count(1)
    expect(page.locator(f"#rule-{uk_id}")).to_be_visible()
    assert "expiring=7" in page.url


def test_a_rule_added_inline_is_watched_by_the_expiry_refresh(fast_marks, world, browser_login):
    """A rule added in the editor with an expiry joins the tab's refresh: it turns red without a reload."""
    plan_id, carrier_a = world.plan.id, world.carrier_a.id
    page = browser_login(world.tree.alpha_operator)
    page.goto(f"/plans/{plan_id}/")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Add rule").click()
    settled(page, "tbody.editing")
    new = page.locator("tbody.editing").first
    new.locator("input[name=code]").fill("446")
    new.locator("select[name=terminator]").select_option(str(carrier_a))
    soon = datetime.now(UTC) + timedelta(days=2, hours=3)
    new.get_by_text("Additional parameters").click()
    new.locator("input[name=expires_at]").fill(soon.strftime("%Y-%m-%dT%H:%M"))
    new.get_by_role("button", name="Save").click()
    fresh = page.locator("tbody.rule", has_text="446")
    expect(fresh.locator(".expiry")).to_have_text("expires in 2 d")
    rule = db.session.scalar(
        db.select(RoutingRule).where(RoutingRule.plan_id == plan_id, RoutingRule.code == "446")
    )
    rule.expires_at = past()  # the clock passes (as far as the rule is concerned)
    db.session.commit()
    expect(fresh.locator(".expiry")).to_have_class("expiry expired", timeout=20_000)
    expect(fresh.locator("td").first).to_have_css("color", RED)
    assert page.evaluate("window.notReloaded") is True


def test_a_new_rule_counts_and_lands_where_it_sorts(world, browser_login):
    """Add rule: the priority offered is the plan's usual one, "N found" follows, the rule moves to its place
    marked new; deleting counts down; columns keep their widths and Edit · Delete stays on one line."""
    factories.rule(world.plan, "45", priority=10, terminator_client_id=world.carrier_a.id)
    factories.rule(world.plan, "46", priority=10, terminator_client_id=world.carrier_a.id)
    db.session.commit()
    plan_id, carrier_a = world.plan.id, world.carrier_a.id
    page = browser_login(world.tree.alpha_operator)
    page.set_viewport_size({"width": 1366, "height": 800})
    page.goto(f"/plans/{plan_id}/")
    found = page.locator("#rules-table-found")
    expect(found).to_have_text("5 found")
    widths = page.eval_on_selector_all("#rules-head th", "ths => ths.map(th => Math.round(th.offsetWidth))")
    actions = page.locator("tbody.rule td.actions").first
    edit_box = actions.get_by_role("button", name="Edit").bounding_box()
    delete_box = actions.get_by_role("button", name="Delete").bounding_box()
    assert abs(edit_box["y"] - delete_box["y"]) < 2  # one line

    page.get_by_role("button", name="Add rule").click()
    settled(page, "tbody.editing")
    new = page.locator("tbody.editing").first
    expect(new.locator("input[name=priority]")).to_have_value("10")
    after = page.eval_on_selector_all("#rules-head th", "ths => ths.map(th => Math.round(th.offsetWidth))")
    assert after == widths  # an open editor does not move the columns
    new.locator("input[name=code]").fill("446")
    new.locator("select[name=terminator]").select_option(str(carrier_a))
    new.get_by_role("button", name="Save").click()
    expect(found).to_have_text("6 found")
    fresh = page.locator("tbody.rule.new")
    expect(fresh.locator(".badge.new")).to_have_text("new")
    codes = page.locator("tbody.rule td.code")
    expect(codes).to_have_text(["44", "446 new", "447*", "4479", "45", "46"])

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tbody.rule", has_text="4479").get_by_role("button", name="Delete").click()
    expect(found).to_have_text("5 found")
    expect(page.locator("tbody.rule", has_text="4479")).to_have_count(0)


def test_sorting_swaps_the_table_and_keeps_the_url(world, browser_login):
    """Clicking a column header re-sorts in place (no reload); the address says the sort; Back restores."""
    plan_id = world.plan.id
    page = browser_login(world.tree.alpha_operator)
    page.goto(f"/plans/{plan_id}/")
    page.evaluate("window.notReloaded = true")
    wait_for_htmx(page, "#rules-head a")
    page.locator("#rules-head a", has_text="Priority").click()
    page.wait_for_url("**sort=priority**")
    expect(page.locator("tbody.rule td.code")).to_have_text(["4479", "447*", "44"])
    assert page.evaluate("window.notReloaded") is True
    page.locator("#rules-head a", has_text="Priority").click()
    page.wait_for_url("**sort=-priority**")
    expect(page.locator("tbody.rule td.code")).to_have_text(["44", "447*", "4479"])
    page.reload()
    expect(page.locator("tbody.rule td.code")).to_have_text(["44", "447*", "4479"])


def test_plans_page_has_no_htmx_syntax_error_and_a_new_plan_says_how_to_use_it(world, browser_login):
    """The plans list's search triggers parse; after creating a plan the page says how to assign it."""
    page = browser_login(world.tree.alpha_operator)
    page.add_init_script(
        "document.addEventListener('htmx:syntax:error',"
        " () => { window.syntaxErrors = (window.syntaxErrors || 0) + 1 })"
    )
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto("/plans/")
    wait_for_htmx(page, "form[role=search]")
    page.locator("details.advanced summary").click()
    page.locator("#plans-q").fill("Alpha")
    expect(page.locator("#plans-table")).to_contain_text("Alpha Main")
    assert page.evaluate("window.syntaxErrors || 0") == 0
    assert not [e for e in errors if "syntax" in e.lower()]

    page.get_by_role("link", name="New routing plan").click()
    page.fill("input[name=name]", "Fresh Plan")
    page.get_by_role("button", name="Create routing plan").click()
    expect(page.locator("#plan-usage")).to_contain_text("No client or account uses this plan yet.")
    expect(page.locator("#plan-usage a", has_text="client's form")).to_have_attribute("href", "/clients/")
