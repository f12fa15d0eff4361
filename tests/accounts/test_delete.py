"""Deleting an account: the confirm dialog, the refund arithmetic, one transaction, deactivation instead."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from panel import audit
from panel.extensions import db
from panel.models import Account, AuditEntry, CallStat, Client, LiveCall
from tests import factories
from tests.accounts.conftest import add_call

HX = {"HX-Request": "true"}


@pytest.fixture
def calls(carrier):
    """acme-ip originated three calls (12.50 + 0.333333 + 0) and terminated one."""
    add_call("c1", orig=carrier.acme_ip, term=carrier.acme_term, charge="12.50", cost="8")
    add_call("c2", orig=carrier.acme_ip, term=carrier.bravo_ip, charge="0.333333", cost="0.2")
    add_call("c3", orig=carrier.acme_ip, term=None, charge="0")
    add_call("c4", orig=carrier.bravo_ip, term=carrier.acme_ip, charge="99", cost="50")  # charged to Bravo
    add_call("c5", orig=carrier.bravo_ip, term=carrier.acme_term, charge="7", cost="3")  # not acme-ip's
    db.session.add(LiveCall(call_id="live-1", orig_account_id=carrier.acme_ip.id))
    db.session.commit()
    return carrier


def _stat_ids() -> set[str]:
    return set(db.session.scalars(select(CallStat.call_id)))


def test_confirm_dialog_shows_rows_refund_and_suggests_deactivation(calls, login):
    """4 rows (originated or terminated) go; 12.833333 comes back to Acme (originator charges only)."""
    html = (
        login(calls.tree.alpha_operator)
        .get(f"/accounts/{calls.acme_ip.id}/delete", headers=HX)
        .get_data(as_text=True)
    )
    assert "<dialog" in html
    assert "<strong>4</strong> statistics rows" in html
    assert "<strong>12.83 USD</strong> back to the client's balance" in html
    assert "Deactivate instead" in html and "recommend <strong>deactivating</strong>" in html


def test_delete_removes_statistics_and_credits_the_client_in_one_transaction(calls, login):
    """Rows where the account is originator or terminator go; the balance rises by the originator charges."""
    client = login(calls.tree.alpha_operator)
    response = client.post(f"/accounts/{calls.acme_ip.id}/delete", headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<tr id="account-{calls.acme_ip.id}" hx-swap-oob="delete">' in html
    assert "deleted with 4 statistics rows; 12.83 USD credited to “Acme”" in html
    db.session.expire_all()
    assert db.session.get(Account, calls.acme_ip.id) is None
    assert _stat_ids() == {"c5"}
    assert db.session.get(Client, calls.acme.id).balance == Decimal("112.833333")
    assert db.session.get(Client, calls.bravo.id).balance == Decimal("50")  # Bravo's charges are not refunded
    assert db.session.scalar(select(func.count()).select_from(LiveCall)) == 0  # live calls cascade
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.object_type == "account", AuditEntry.action == "delete")
    )
    assert entry.object_id == calls.acme_ip.id and entry.client_id == calls.acme.id
    assert "4 statistics rows; refunded 12.83 USD" in entry.note
    assert "balance 100.00 → 112.83" in entry.note
    client_entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_type == "client"))
    assert client_entry.before["balance"] == "100" and client_entry.after["balance"] == "112.833333"


def test_delete_without_htmx_redirects_to_the_list(calls, login):
    """A plain form post redirects to the list with the message."""
    client = login(calls.tree.alpha_admin)
    response = client.post(f"/accounts/{calls.acme_term.id}/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/accounts/"
    assert "credited to “Acme”" in client.get("/accounts/").get_data(as_text=True)
    # acme-term only terminated: its two rows go, nothing is refunded.
    db.session.expire_all()
    assert _stat_ids() == {"c2", "c3", "c4"}
    assert db.session.get(Client, calls.acme.id).balance == Decimal("100")


def test_a_failure_midway_changes_nothing(calls, login, monkeypatch):
    """An error after the statistics are deleted and the balance changed rolls all of it back."""
    real_record = audit.record

    def failing_record(action, obj, **kwargs):
        if action == "delete":
            raise RuntimeError("disk full")
        return real_record(action, obj, **kwargs)

    monkeypatch.setattr(audit, "record", failing_record)
    with pytest.raises(RuntimeError, match="disk full"):
        login(calls.tree.alpha_operator).post(f"/accounts/{calls.acme_ip.id}/delete")
    db.session.expire_all()
    assert db.session.get(Account, calls.acme_ip.id) is not None
    assert _stat_ids() == {"c1", "c2", "c3", "c4", "c5"}
    assert db.session.get(Client, calls.acme.id).balance == Decimal("100")
    assert db.session.scalar(select(func.count()).select_from(LiveCall)) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_an_account_that_rules_send_calls_to_is_not_deleted(calls, login):
    """A static_account rule names the account: the dialog says so and a forced post is refused."""
    plan = factories.plan(calls.tree.alpha, "Uses acme-term")
    factories.rule(plan, "44", "static_account", terminator_account_id=calls.acme_term.id)
    db.session.commit()
    client = login(calls.tree.alpha_operator)
    html = client.get(f"/accounts/{calls.acme_term.id}/delete").get_data(as_text=True)
    assert "cannot be deleted: 1 routing rule(s) send calls to it" in html and "Uses acme-term" in html
    assert client.post(f"/accounts/{calls.acme_term.id}/delete").status_code == 422
    db.session.expire_all()
    assert db.session.get(Account, calls.acme_term.id) is not None
    assert "c1" in _stat_ids()


def test_viewer_and_other_companies_cannot_delete(calls, login):
    """403 for the viewer, 404 for another reseller; nothing changes."""
    assert login(calls.tree.alpha_viewer).post(f"/accounts/{calls.acme_ip.id}/delete").status_code == 403
    assert login(calls.tree.beta_admin).post(f"/accounts/{calls.acme_ip.id}/delete").status_code == 404
    db.session.expire_all()
    assert len(_stat_ids()) == 5
