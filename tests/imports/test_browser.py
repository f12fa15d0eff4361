"""The replace preview in a real browser: upload, see what would change, confirm; a failed import's retry."""

from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from panel.extensions import db
from panel.models import RoutingRule
from tests import factories
from tests.conftest import wait_for_htmx

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _upload(page, plan_id: int, text: str, mode: str) -> None:
    page.goto(f"/plans/{plan_id}/import")
    wait_for_htmx(page, "#import-tab form")
    page.set_input_files(
        "input[type=file]", files=[{"name": "rules.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.check(f"input[name=mode][value={mode}]")
    page.click("#import-tab button[type=submit]")


def test_replace_is_previewed_then_confirmed(tree, plan, browser_login):
    """The operator sees 1 added, 1 removed, 1 changed with the rows, nothing written; Confirm applies it."""
    page = browser_login(tree.alpha_admin)
    _upload(page, plan.id, "5,44,Static client,Carrier A\n10,33,Static client,Carrier B\n", "replace")
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("1 added, 1 removed, 1 changed, 0 unchanged")
    expect(preview.locator("table.preview-added")).to_contain_text("Carrier B")
    expect(preview.locator("table.preview-changed del")).to_have_text("10")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "import-preview.png"), full_page=True)
    db.session.rollback()
    assert len(db.session.scalars(select(RoutingRule).where(RoutingRule.plan_id == plan.id)).all()) == 2
    page.click("text=Confirm: apply this import")
    expect(page.locator(".import-status")).to_contain_text("Imported 2 rules (replace, 2 replaced)")
    db.session.rollback()
    codes = db.session.scalars(select(RoutingRule.code).where(RoutingRule.plan_id == plan.id)).all()
    assert sorted(codes) == ["33", "44"]


def test_a_failed_import_is_retried_with_the_kept_file(tree, plan, browser_login):
    """The errors name a missing client; after creating it, one click imports the same file."""
    page = browser_login(tree.alpha_admin)
    _upload(page, plan.id, "1,1,Static client,Carrier C\n", "append")
    expect(page.locator(".import-errors")).to_contain_text("line 1, terminator: no client named 'Carrier C'.")
    factories.account(
        factories.client(tree.alpha, "Carrier C"), "c1", ident_value="198.51.100.3", term_enabled=True
    )
    db.session.commit()
    page.click("text=Retry with the same file (rules.csv)")
    expect(page.locator(".import-status")).to_contain_text("Imported 1 rules (append)")
