"""The gateways section: list, create, edit, delete (refused while accounts use the gateway)."""

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import AuditEntry, Gateway


def test_list_shows_gateways_of_the_scope_with_usage(carrier, login):
    """The operator sees its gateways and how many accounts use each."""
    html = login(carrier.tree.root_admin).get("/gateways/").get_data(as_text=True)
    row = html[html.index(f'id="gateway-{carrier.gw_a.id}"') :]
    row = row[: row.index("</tr>")]
    assert "gw-a" in row and "192.0.2.1" in row and '<td class="num">1</td>' in row
    beta = login(carrier.tree.beta_admin).get("/gateways/").get_data(as_text=True)
    # The operator's gateway is Beta's provider's: listed read-only, as the account form offers it (14.4).
    assert "gw-beta" in beta and "gw-a" in beta and f"/gateways/{carrier.gw_a.id}/edit" not in beta


def test_create_edit_delete(carrier, login):
    """Create, rename, delete an unused gateway; each audited."""
    client = login(carrier.tree.beta_admin)
    data = {
        "company_id": str(carrier.tree.beta.id),
        "name": "sbc-2",
        "address": "sbc2.example.net:5060",
        "notes": "",
    }
    assert client.post("/gateways/new", data=data).status_code == 303
    gateway = db.session.scalar(select(Gateway).where(Gateway.name == "sbc-2"))
    assert gateway.address == "sbc2.example.net:5060"
    data.update(name="sbc-two", address="198.51.100.20")
    assert client.post(f"/gateways/{gateway.id}/edit", data=data).status_code == 303
    db.session.refresh(gateway)
    assert (gateway.name, gateway.address) == ("sbc-two", "198.51.100.20")
    assert client.post(f"/gateways/{gateway.id}/delete").status_code == 303
    db.session.expire_all()
    assert db.session.get(Gateway, gateway.id) is None
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "gateway")).all()
    assert sorted(actions) == ["create", "delete", "update"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "gw-beta"}, "This company already has a gateway with this name."),
        ({"address": "not a host"}, "is not a host name"),
        ({"name": ""}, "Enter a name."),
        ({"company_id": "ALPHA"}, "Not a valid choice"),
    ],
)
def test_bad_gateway_input(carrier, login, overrides, message):
    """422 with the reason."""
    data = {"company_id": str(carrier.tree.beta.id), "name": "new-gw", "address": "", "notes": ""}
    data.update({k: str(carrier.tree.alpha.id) if v == "ALPHA" else v for k, v in overrides.items()})
    response = login(carrier.tree.beta_admin).post("/gateways/new", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_delete_refused_while_accounts_use_it(carrier, login):
    """gw-a is used by acme-term (an account of another company): refused with the count."""
    client = login(carrier.tree.root_admin)
    assert "1 account(s) use it" in client.get(f"/gateways/{carrier.gw_a.id}/delete").get_data(as_text=True)
    assert client.post(f"/gateways/{carrier.gw_a.id}/delete").status_code == 409
    assert db.session.get(Gateway, carrier.gw_a.id) is not None


def test_scope_and_roles(carrier, login):
    """Another company's gateway is 404; a viewer gets 403 on forms and writes."""
    alpha = login(carrier.tree.alpha_admin)
    assert alpha.get(f"/gateways/{carrier.gw_a.id}/edit").status_code == 404
    assert alpha.post(f"/gateways/{carrier.gw_beta.id}/delete").status_code == 404
    viewer = login(carrier.tree.alpha_viewer)
    assert viewer.get("/gateways/").status_code == 200
    assert viewer.get("/gateways/new").status_code == 403
    assert viewer.post("/gateways/new", data={"name": "x"}).status_code == 403
