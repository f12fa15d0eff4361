"""The accounts list in a real browser: search as you type, open an account, edit it in the modal, and see the
row change without a page reload."""

import re

import pytest
from playwright.sync_api import expect

from panel.extensions import db
from panel.models import Account
from tests.conftest import wait_for_htmx

pytestmark = pytest.mark.browser


def test_search_open_edit_and_see_the_row_change(carrier, browser_login):
    """Quick search (URL kept), the account's modal, its edit form, a refused value, then the saved row."""
    account_id, term_id = carrier.acme_ip.id, carrier.acme_term.id
    page = browser_login(carrier.tree.alpha_operator)
    page.goto("/accounts/")
    page.evaluate("window.__noReload = 42")  # survives only if the page is never reloaded
    expect(page.locator(".account-link")).to_have_count(3)

    page.get_by_label("Quick search").press_sequentially("acme-i", delay=40)
    expect(page.locator(".account-link")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/accounts/\?q=acme-i"))

    page.locator(".account-link", has_text="acme-ip").click()
    dialog = page.locator("dialog#panel-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("10.0.0.0/24")
    dialog.get_by_role("link", name="Edit").click()
    expect(dialog.locator("input[name=name]")).to_have_value("acme-ip")

    dialog.locator("input[name=ident_value]").fill("10.0.0.1/24; 198.51.100.7")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator(".error")).to_contain_text(
        "10.0.0.1/24 has host bits set; the network is 10.0.0.0/24."
    )
    expect(dialog.locator("input[name=orig_tags]")).to_have_value("gold")  # nothing typed is lost

    dialog.locator("input[name=ident_value]").fill("10.0.0.0/24; 198.51.100.7; 198.51.100.8")
    dialog.locator("input[name=name]").fill("acme-main")
    dialog.locator("input[name=orig_tags]").fill("gold premium")
    dialog.get_by_role("button", name="Save").click()

    expect(page.locator("dialog")).to_have_count(0)
    row = page.locator(f"#account-{account_id}")
    expect(row).to_contain_text("acme-main")
    expect(row).to_contain_text("198.51.100.8")
    expect(row.locator(".tag")).to_have_text(["gold", "premium"])
    expect(page.locator("#flash")).to_contain_text("Account “acme-main” saved.")
    assert page.evaluate("window.__noReload") == 42

    # The generated password appears in the form on demand and is stored with it.
    page.locator(f"#account-{account_id}").get_by_role("link", name="Edit").click()
    dialog.get_by_role("button", name="Generate").click()
    password = dialog.locator("input[name=password]")
    expect(password).to_have_attribute("type", "text")
    expect(password).to_have_value(re.compile(r"^[A-Za-z0-9]{16}$"))
    generated = password.input_value()
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("dialog")).to_have_count(0)
    assert page.evaluate("window.__noReload") == 42

    db.session.expire_all()
    saved = db.session.get(Account, account_id)
    assert saved.name == "acme-main" and saved.orig_tags == "gold premium"
    from panel import crypto

    assert crypto.decrypt(saved.password_encrypted) == generated
    assert db.session.get(Account, term_id).name == "acme-term"


def test_new_account_pickers_follow_the_client_and_delete_refunds(carrier, browser_login):
    """Choosing the client refreshes the pickers; the delete dialog shows the refund and removes the row."""
    from tests.accounts.conftest import add_call

    add_call("b1", orig=carrier.acme_ip, charge="3.5")
    db.session.commit()
    account_id = carrier.acme_ip.id
    page = browser_login(carrier.tree.root_admin)
    page.goto("/accounts/")
    page.evaluate("window.__noReload = 7")

    page.get_by_role("link", name="New account").click()
    dialog = page.locator("dialog")
    wait_for_htmx(page, "dialog select[name=client_id]")
    dialog.locator("select[name=client_id]").select_option(label="Bravo — Beta")
    expect(dialog.locator("select[name=orig_rate_table_id] option", has_text="Beta retail")).to_have_count(1)
    dialog.locator("select[name=client_id]").select_option(label="Acme — Alpha")
    expect(dialog.locator("select[name=orig_rate_table_id] option", has_text="Beta retail")).to_have_count(0)
    expect(dialog.locator("select[name=orig_rate_table_id] option").first).to_have_text(
        "— client default: Alpha retail —"
    )
    dialog.locator("input[name=name]").fill("brand-new")
    dialog.locator("input[name=ident_value]").fill("172.22.0.1")
    dialog.get_by_role("button", name="Create account").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(page.locator(".account-link").first).to_have_text("brand-new")

    page.locator(f"#account-{account_id}").get_by_role("link", name="Delete").click()
    expect(page.locator("dialog")).to_contain_text("1 statistics row (calls it originated or terminated)")
    page.get_by_role("button", name="Delete and refund 3.50 USD").click()
    expect(page.locator(f"#account-{account_id}")).to_have_count(0)
    expect(page.locator("#flash")).to_contain_text("3.50 USD credited to “Acme”")
    assert page.evaluate("window.__noReload") == 7
