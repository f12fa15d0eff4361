"""The home page in a real browser: the demo carrier's health at a glance, as operator and as reseller."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from panel import demo
from panel.extensions import db

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _demo_login(page, username: str) -> None:
    """Log in as a demo user through the login form."""
    password = dict((u, p) for u, p, _c, _r in demo.DEMO_USERS)[username]
    page.goto("/auth/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_operator_sees_the_demo_carriers_health_and_follows_it_to_the_calls(app, page):
    """Calls, ASR, margin, live calls, the chart, expiring rules and low balances; the Calls tile opens the
    Calls page with the same number."""
    demo.load(if_empty=True)
    db.session.commit()
    page.set_viewport_size({"width": 1366, "height": 900})
    _demo_login(page, "admin")
    calls = page.locator("#tile-calls .tile-count")
    expect(calls).not_to_have_text("0")
    count = calls.inner_text()
    expect(page.locator("#tile-asr .tile-count")).to_contain_text("%")
    expect(page.locator("#tile-margin .tile-label")).to_contain_text("Margin (")
    expect(page.locator("#calls-chart g.bar")).to_have_count(24)
    expect(page.locator("#home-expiring")).to_contain_text("Standard LCR")
    expect(page.locator("#home-expiring .expiry.soon")).to_contain_text("within 7 d")
    expect(page.locator("#home-manager")).to_contain_text("Traffic Rules manager")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)

    page.locator("#tile-calls").click()
    page.wait_for_url("**/statistics/**")
    expect(page.locator("section.tiles")).to_contain_text(count)

    page.goto("/")
    page.locator("#home-expiring .expiry.soon").first.click()
    page.wait_for_url("**/plans/*/?expiring=7")
    expect(page.locator("tbody.rule .expiry.soon").first).to_contain_text("expires in")


def test_reseller_sees_its_own_health_without_the_operators_costs(app, page):
    """Atlas's home page counts Atlas's calls and says why no margin is shown; a low balance links on."""
    demo.load(if_empty=True)
    db.session.commit()
    page.set_viewport_size({"width": 1366, "height": 900})
    _demo_login(page, "atlas")
    expect(page.locator("#tile-calls .tile-count")).not_to_have_text("0")
    margin = page.locator("#tile-margin")
    expect(margin.locator(".tile-count")).to_have_text("—")
    expect(margin).to_contain_text("not shown")
    expect(page.locator("#home-balances")).not_to_contain_text("Acme Calls")  # the operator's customer
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-reseller.png"), full_page=True)
    link = page.locator("#home-balances a", has_text="Retail Shop Ltd")
    expect(link).to_be_visible()
    link.click()
    page.wait_for_url("**/clients/*")
    expect(page.locator("h1")).to_contain_text("Retail Shop Ltd")
