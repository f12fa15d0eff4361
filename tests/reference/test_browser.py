"""In a real browser: the rates grid's inline edit (with a refused value) and a deck import's progress."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from panel.extensions import db
from panel.models import Rate
from tests import factories
from tests.conftest import wait_for_htmx

pytestmark = pytest.mark.browser


@pytest.fixture
def table(tree):
    """Alpha's table with two rates, committed for the live server."""
    table = factories.rate_table(tree.alpha, "Vendor A", [("44", "0.02"), ("4420", "0.03")])
    db.session.commit()
    return table


def test_inline_edit_refuses_then_saves(browser_login, tree, table):
    """Edit a row, see a bad value refused in place, correct it, and see the saved row."""
    page = browser_login(tree.alpha_operator)
    page.goto(f"/rate-tables/{table.id}")
    rate_id = db.session.scalar(select(Rate.id).where(Rate.rate_table_id == table.id, Rate.code == "4420"))
    row = page.locator(f"#rate-{rate_id}")
    row.get_by_role("button", name="Edit").click()
    rate_input = row.locator("input[name=rate]")
    expect(rate_input).to_have_value("0.03")

    rate_input.fill("0.12345678")
    row.get_by_role("button", name="Save").click()
    expect(row.get_by_role("alert")).to_contain_text("more than 6 decimals")
    expect(row.locator("input[name=rate]")).to_have_value("0.12345678")  # still in edit mode
    wait_for_htmx(page, f"#rate-{rate_id}")

    row.locator("input[name=rate]").fill("0.0375")
    row.locator("input[name=rate]").press("Enter")
    expect(row.locator("input")).to_have_count(0)
    expect(row).to_contain_text("0.0375")
    db.session.expire_all()
    assert str(db.session.get(Rate, rate_id).rate.normalize()) == "0.0375"


def test_import_shows_progress_and_the_outcome(browser_login, tree, table, tmp_path):
    """Upload a deck: the status polls itself until it says what was imported; the page stays usable."""
    deck = tmp_path / "deck.csv"
    deck.write_text("code,name,rate\n" + "".join(f"49{i:05d},Germany,0.01{i % 10}\n" for i in range(3000)))
    page = browser_login(tree.alpha_operator)
    page.goto(f"/rate-tables/{table.id}/import")
    page.set_input_files("input[name=file]", str(deck))
    page.get_by_label("Replace table").check()
    page.get_by_role("button", name="Import").click()
    # A replace first shows what it would do; nothing is written until the operator confirms.
    expect(page.get_by_text("3,000 added")).to_be_visible(timeout=20_000)
    page.get_by_role("button", name="Confirm: apply this import").click()
    status = page.locator(".import-status")
    expect(status).to_contain_text("Replaced the table's 2 rates with 3,000 rates", timeout=20_000)
    expect(status.locator("progress")).to_have_attribute("value", "100")
    page.get_by_role("link", name="Back to the rates").click()
    expect(page.locator(".pager")).to_contain_text("3,000 found")


def test_import_errors_are_listed(browser_login, tree, table):
    """A deck with a bad line lists it and keeps the table unchanged."""
    page = browser_login(tree.alpha_operator)
    page.goto(f"/rate-tables/{table.id}/import")
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"code,rate\n49,0.1\n4x,0.2\n"}],
    )
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".import-errors")).to_contain_text("line 3, code: '4x' is not a code", timeout=20_000)
    expect(page.locator(".import-status")).to_contain_text("nothing was imported")


def test_sorting_and_search_swap_only_the_grid(browser_login, tree, table):
    """Sort headers and the search box update the grid in place and keep the address in step."""
    page = browser_login(tree.alpha_operator)
    page.goto(f"/rate-tables/{table.id}")
    codes = page.locator("#rates-grid tbody tr td:first-child")
    expect(codes).to_have_text(["44", "4420"])
    page.locator("#rates-grid thead").get_by_role("link", name="Code ▲").click()
    expect(codes).to_have_text(["4420", "44"])
    expect(page).to_have_url(re.compile(r"sort=-code"))
    page.get_by_placeholder("Code prefix or name").fill("442")
    expect(codes).to_have_text(["4420"])
    expect(page).to_have_url(re.compile(r"q=442"))
