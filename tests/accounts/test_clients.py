"""The clients section: list, profile, create, edit, balance adjustment, delete; scoped by company."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import AuditEntry, Client
from tests import factories
from tests.accounts.conftest import add_call

HX = {"HX-Request": "true"}


def _client_data(**overrides) -> dict:
    empty = dict.fromkeys(("orig_rate_table_id", "term_rate_table_id", "routing_plan_id", "notes"), "")
    return {"name": "Delta Telecom", "currency": "eur", **empty, **overrides}


def test_list_shows_company_balance_accounts_and_defaults(carrier, login):
    """Name, company, balance, accounts count (linked to the filtered accounts list), defaults."""
    html = login(carrier.tree.alpha_operator).get("/clients/").get_data(as_text=True)
    assert "Acme" in html and "SubCo" in html and "Bravo" not in html
    row = html[html.index(f'id="client-{carrier.acme.id}"') :]
    row = row[: row.index("</tr>")]
    assert "100.00 USD" in row and "Alpha retail" in row
    assert f'<a href="/accounts/?client_id={carrier.acme.id}">2</a>' in row
    assert f"/audit/?client_id={carrier.acme.id}" in row


def test_list_search_and_company_filter(carrier, login):
    """Search by name as you type; filter by company."""
    client = login(carrier.tree.alpha_operator)
    html = client.get("/clients/?q=sub", headers=HX).get_data(as_text=True)
    assert "SubCo" in html and "Acme" not in html and "<html" not in html
    html = client.get(f"/clients/?company_id={carrier.tree.sub.id}").get_data(as_text=True)
    assert "SubCo" in html and "Acme" not in html


def test_profile_shows_details_balance_accounts_and_recent_calls(carrier, login):
    """The profile: balance, accounts (as list rows), recent calls sent or received, history link."""
    may = [datetime(2024, 5, day, tzinfo=UTC) for day in (1, 2)]
    add_call("p1", orig=carrier.acme_ip, term=carrier.bravo_ip, charge="1.5", start=may[0])
    add_call("p2", orig=carrier.bravo_ip, term=carrier.acme_term, charge="2", start=may[1])
    add_call("p3", orig=carrier.bravo_ip, term=None, charge="3")  # not Acme's
    db.session.commit()
    html = login(carrier.tree.alpha_viewer).get(f"/clients/{carrier.acme.id}").get_data(as_text=True)
    assert "100.00 USD" in html
    assert f'id="account-{carrier.acme_ip.id}"' in html and f'id="account-{carrier.acme_term.id}"' in html
    assert html.index("2024-05-02") < html.index("2024-05-01")  # newest first
    assert html.count("4420700000") == 2
    assert f"/audit/?client_id={carrier.acme.id}" in html
    assert "Adjust the balance" not in html  # viewer


@pytest.mark.parametrize("user", ["beta_admin", "sub_operator"])
def test_other_companies_clients_answer_404(carrier, login, user):
    """A client outside the scope: every page and action is 404."""
    client = login(getattr(carrier.tree, user))
    for url in (
        f"/clients/{carrier.acme.id}",
        f"/clients/{carrier.acme.id}/edit",
        f"/clients/{carrier.acme.id}/delete",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/clients/{carrier.acme.id}/edit", data=_client_data()).status_code == 404
    assert (
        client.post(f"/clients/{carrier.acme.id}/balance", data={"amount": "5", "note": "x"}).status_code
        == 404
    )
    assert client.post(f"/clients/{carrier.acme.id}/delete").status_code == 404


def test_viewer_cannot_write(carrier, login):
    """Viewers read clients; forms and writes answer 403."""
    client = login(carrier.tree.alpha_viewer)
    assert client.get("/clients/").status_code == 200
    assert client.get("/clients/new").status_code == 403
    assert client.get(f"/clients/{carrier.empty.id}/edit").status_code == 403
    assert (
        client.post("/clients/new", data=_client_data(company_id=str(carrier.tree.alpha.id))).status_code
        == 403
    )
    assert client.post(f"/clients/{carrier.empty.id}/delete").status_code == 403
    assert (
        client.post(f"/clients/{carrier.acme.id}/balance", data={"amount": "5", "note": "x"}).status_code
        == 403
    )


def test_create_client_with_defaults(carrier, login):
    """A new client of a company in scope, with usable defaults; audited."""
    data = _client_data(
        company_id=str(carrier.tree.sub.id),
        orig_rate_table_id=str(carrier.alpha_table.id),
        term_rate_table_id=str(carrier.root_table.id),
        routing_plan_id=str(carrier.alpha_plan.id),
    )
    # The operator's tables are offered to the operator's users (a reseller's pickers hold the tables its
    # Rate tables list shows, issue 14.4; tests/ui/test_reseller.py).
    response = login(carrier.tree.root_admin).post("/clients/new", data=data)
    assert response.status_code == 303
    created = db.session.scalar(select(Client).where(Client.name == "Delta Telecom"))
    assert response.headers["Location"] == f"/clients/{created.id}"
    assert (created.company_id, created.currency, created.balance) == (
        carrier.tree.sub.id,
        "EUR",
        Decimal("0"),
    )
    assert (created.orig_rate_table_id, created.term_rate_table_id) == (
        carrier.alpha_table.id,
        carrier.root_table.id,
    )
    assert created.routing_plan_id == carrier.alpha_plan.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_type == "client"))
    assert entry.action == "create" and entry.client_id == created.id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Acme"}, "The company already has a client of this name."),
        ({"currency": "dollars"}, "A currency is a three-letter code"),
        ({"orig_rate_table_id": "BETA_TABLE"}, "may not be used by the client&#39;s company"),
        ({"routing_plan_id": "BETA_PLAN"}, "may not be used by the client&#39;s company"),
        ({"company_id": "BETA"}, "Not a valid choice"),
    ],
)
def test_bad_client_input_is_refused(carrier, login, overrides, message):
    """422 with the reason; nothing stored."""
    ids = {
        "BETA_TABLE": carrier.beta_table.id,
        "BETA_PLAN": carrier.beta_plan.id,
        "BETA": carrier.tree.beta.id,
    }
    data = _client_data(company_id=str(carrier.tree.alpha.id), name="Fresh")
    data.update({k: str(ids.get(v, v)) for k, v in overrides.items()})
    response = login(carrier.tree.alpha_operator).post("/clients/new", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert (
        db.session.scalar(select(Client).where(Client.name == data["name"], Client.id > carrier.bravo.id))
        is None
    )


def test_edit_client(carrier, login):
    """Rename and change defaults; the company stays; audited with before and after."""
    data = _client_data(
        name="Acme Ltd", currency="USD", routing_plan_id=str(carrier.root_plan.id), company_id="999"
    )
    response = login(carrier.tree.alpha_admin).post(f"/clients/{carrier.acme.id}/edit", data=data)
    assert response.status_code == 303
    db.session.refresh(carrier.acme)
    assert (carrier.acme.name, carrier.acme.routing_plan_id) == ("Acme Ltd", carrier.root_plan.id)
    assert carrier.acme.company_id == carrier.tree.alpha.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update"))
    assert entry.before["name"] == "Acme" and entry.after["name"] == "Acme Ltd"


def test_balance_adjustment(carrier, login):
    """A credit or debit with its reason, audited; zero and nonsense refused."""
    client = login(carrier.tree.alpha_operator)
    response = client.post(
        f"/clients/{carrier.acme.id}/balance", data={"amount": "-25.125", "note": "Wire fee"}
    )
    assert response.status_code == 303
    db.session.refresh(carrier.acme)
    assert carrier.acme.balance == Decimal("74.875")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_type == "client"))
    assert entry.note == "Balance adjusted by -25.125: Wire fee"
    for amount, message in (
        ("0", "changes nothing"),
        ("abc", "Not a valid decimal"),
        ("1.1234567", "At most 6"),
    ):
        response = client.post(f"/clients/{carrier.acme.id}/balance", data={"amount": amount, "note": "x"})
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    response = client.post(f"/clients/{carrier.acme.id}/balance", data={"amount": "5", "note": ""})
    assert "Say why" in response.get_data(as_text=True)
    db.session.refresh(carrier.acme)
    assert carrier.acme.balance == Decimal("74.875")


def test_delete_is_refused_while_the_client_has_accounts(carrier, login):
    """A client with accounts stays, and the page says why; one without is deleted and audited."""
    client = login(carrier.tree.alpha_operator)
    page = client.get(f"/clients/{carrier.acme.id}/delete").get_data(as_text=True)
    assert "cannot be deleted" in page and "it has 2 account(s)" in page
    assert client.post(f"/clients/{carrier.acme.id}/delete").status_code == 409
    assert db.session.get(Client, carrier.acme.id) is not None
    response = client.post(f"/clients/{carrier.empty.id}/delete")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Client, carrier.empty.id) is None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "delete"))
    assert entry.object_type == "client" and entry.object_label == "Empty"


def test_delete_is_refused_while_rules_send_calls_to_the_client(carrier, login):
    """A static_client rule naming the client blocks the delete."""
    plan = factories.plan(carrier.tree.alpha, "To Empty")
    factories.rule(plan, "1", "static_client", terminator_client_id=carrier.empty.id)
    db.session.commit()
    response = login(carrier.tree.alpha_operator).post(f"/clients/{carrier.empty.id}/delete")
    assert response.status_code == 409
    assert "routing rule(s) send calls to it" in response.get_data(as_text=True)
