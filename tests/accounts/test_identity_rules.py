"""The identity-conflict rules of SPEC §2 and the seed's notes, through the account form."""

import pytest
from sqlalchemy import func, select

from panel.extensions import db
from panel.models import Account
from tests import factories
from tests.accounts.conftest import account_data


def _post(login, user, data, account=None):
    client = login(user)
    url = f"/accounts/{account.id}/edit" if account else "/accounts/new"
    return client.post(url, data=data)


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Account))


def test_exact_duplicate_originator_identity_is_refused_naming_the_account(carrier, login):
    """Same address, same tech prefix, overlapping gateways (both empty): refused, and the error names it."""
    before = _count()
    data = account_data(carrier.acme, name="dup", ident_value="198.51.100.7")
    response = _post(login, carrier.tree.alpha_operator, data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f"Account #{carrier.acme_ip.id} “acme-ip” of client “Acme”" in page
    assert "the address 198.51.100.7" in page
    assert _count() == before


def test_same_ip_with_other_tech_prefix_or_gateways_is_accepted(carrier, login):
    """The identity includes the tech prefix and the gateways: a different one makes it unambiguous."""
    gw_client = factories.client(carrier.tree.alpha, "Gw Co")
    first = factories.account(
        gw_client, "on-a", ident_value="192.0.2.50", orig_enabled=True, gateways=[carrier.gw_a]
    )
    db.session.commit()
    user = carrier.tree.alpha_operator
    other_gateway = account_data(
        carrier.acme, name="on-b", ident_value="192.0.2.50", gateway_ids=str(carrier.gw_b.id)
    )
    assert _post(login, user, other_gateway).status_code == 303
    with_prefix = account_data(carrier.acme, name="prefixed", ident_value="198.51.100.7", tech_prefix="77#")
    assert _post(login, user, with_prefix).status_code == 303
    # An account on every gateway (none chosen) overlaps gw-a: refused.
    everywhere = account_data(carrier.acme, name="everywhere", ident_value="192.0.2.50")
    response = _post(login, user, everywhere)
    assert response.status_code == 422
    assert f"Account #{first.id} “on-a”" in response.get_data(as_text=True)


def test_nested_network_in_another_account_is_allowed(carrier, login):
    """10.0.0.0/24 is acme-ip's; an address or a smaller network inside it may be another account's."""
    user = carrier.tree.alpha_operator
    assert (
        _post(login, user, account_data(carrier.acme, name="inside", ident_value="10.0.0.9")).status_code
        == 303
    )
    assert (
        _post(login, user, account_data(carrier.acme, name="half", ident_value="10.0.0.128/25")).status_code
        == 303
    )


def test_deactivated_originator_does_not_conflict(carrier, login):
    """Only originator-enabled accounts must be unambiguous: an account with originator off may share."""
    data = account_data(carrier.acme, name="standby", ident_value="198.51.100.7", orig_enabled=None)
    assert _post(login, carrier.tree.alpha_operator, data).status_code == 303
    # Switching it on later is checked again.
    standby = db.session.scalar(select(Account).where(Account.name == "standby"))
    response = _post(
        login,
        carrier.tree.alpha_operator,
        account_data(carrier.acme, name="standby", ident_value="198.51.100.7"),
        standby,
    )
    assert response.status_code == 422
    assert "acme-ip" in response.get_data(as_text=True)


def test_login_and_ani_identities(carrier, login):
    """Equal logins conflict; a login equal to an ANI (another kind of identity) does not."""
    user = carrier.tree.alpha_operator
    same_login = account_data(carrier.acme, name="l2", ident_by="name", ident_value="sub1")
    response = _post(login, user, same_login)
    assert response.status_code == 422
    assert f"Account #{carrier.sub_login.id} “sub-login” of client “SubCo”" in response.get_data(as_text=True)
    as_ani = account_data(carrier.acme, name="a1", ident_by="ani", ident_value="4412345")
    assert _post(login, user, as_ani).status_code == 303
    login_like_ani = account_data(carrier.acme, name="l3", ident_by="name", ident_value="4412345")
    assert _post(login, user, login_like_ani).status_code == 303


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, False),  # same IP, protocol, port and gateways
        ({"protocol": "h323"}, True),
        ({"port": "5080"}, True),
        ({"gateway_ids": "GW_B"}, True),
        ({"gateway_ids": "GW_A"}, False),
    ],
)
def test_terminators_share_an_ip_only_with_other_protocol_port_or_gateways(carrier, login, change, accepted):
    """The seed: several accounts with the same IP and different protocols/ports or gateways."""
    change = {
        k: {"GW_A": str(carrier.gw_a.id), "GW_B": str(carrier.gw_b.id)}.get(v, v) for k, v in change.items()
    }
    data = account_data(
        carrier.acme, name="term-2", ident_value="203.0.113.5", orig_enabled=None, term_enabled="y", **change
    )
    response = _post(login, carrier.tree.alpha_operator, data)
    if accepted:
        assert response.status_code == 303
    else:
        assert response.status_code == 422
        text = response.get_data(as_text=True)
        assert f"Account #{carrier.acme_term.id} “acme-term” of client “Acme” (terminator)" in text
        assert "Use a different protocol, port or gateways." in text


def test_conflict_with_another_company_does_not_reveal_its_account(carrier, login):
    """Identification is global (one switch), but a reseller never learns another reseller's account names."""
    data = account_data(carrier.acme, name="clash", ident_value="192.0.2.0/28")
    response = _post(login, carrier.tree.alpha_operator, data)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "An account of another company (originator) already uses the network 192.0.2.0/28" in text
    assert "bravo" not in text.lower()


def test_same_name_twice_within_a_client_is_refused(carrier, login):
    """Account names are unique within the client."""
    data = account_data(carrier.acme, name="acme-ip", ident_value="172.31.0.1")
    response = _post(login, carrier.tree.alpha_operator, data)
    assert response.status_code == 422
    assert "The client already has an account of this name." in response.get_data(as_text=True)


def test_editing_an_account_does_not_conflict_with_itself(carrier, login):
    """The account's own identity is not a conflict when it is saved again."""
    data = account_data(
        carrier.acme, name="acme-ip", ident_value="10.0.0.0/24; 198.51.100.7", orig_tags="gold platinum"
    )
    response = _post(login, carrier.tree.alpha_operator, data, carrier.acme_ip)
    assert response.status_code == 303
    db.session.refresh(carrier.acme_ip)
    assert carrier.acme_ip.orig_tags == "gold platinum"
