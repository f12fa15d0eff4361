"""Route test by source IP, login or ANI: `unknown_originator` says which account has the identity and why.

Issue 14.9: an address that belongs to an account accepting calls only from a gateway gave a bare
`unknown_originator`. The page now names the visible accounts that have the address, login or ANI and what
stopped each (originator off, gateway list, tech prefix); accounts of other companies are never named.
"""

from panel.extensions import db
from tests import factories


def _page(client, **args) -> str:
    response = client.get("/route-test/", query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_unknown_originator_names_the_account_and_why(tree, login):
    """Gateway list, originator off and tech prefix are each explained; Beta's account stays unnamed."""
    gateway = factories.gateway(tree.alpha, "sbc-1", "192.0.2.50")
    trunk = factories.client(tree.alpha, "Alpha Trunks")
    factories.account(trunk, "gw-only", ident_value="203.0.113.0/28", orig_enabled=True, gateways=[gateway])
    factories.account(trunk, "switched-off", ident_by="name", ident_value="pbx-7", orig_enabled=False)
    factories.account(trunk, "prefixed", ident_by="ani", ident_value="+4930123", orig_enabled=True,
                      tech_prefix="77#")  # fmt: skip
    factories.account(factories.client(tree.beta, "Beta Secret"), "b-1", ident_value="203.0.113.5",
                      orig_enabled=True)  # fmt: skip
    db.session.commit()
    user = login(tree.alpha_operator)

    page = _page(user, src_ip="203.0.113.5", number="4412345678")
    assert "unknown_originator" in page
    misses = page.split('id="originator-misses"')[1].split("</div>")[0]
    assert "Alpha Trunks / gw-only" in misses and "address 203.0.113.5" in misses
    assert "accepts calls only from the gateway sbc-1; this test named no gateway" in misses
    assert "Beta Secret" not in page and "b-1" not in misses
    page = _page(user, src_ip="203.0.113.5", gateway="sbc-9", number="4412345678")
    assert "not from gateway sbc-9" in page

    page = _page(user, login="pbx-7", number="4412345678")
    assert "switched-off" in page and "Originator is off for this account" in page
    page = _page(user, ani="4930123", number="4412345678")
    assert "prefixed" in page and "Its tech prefix 77# does not start the number" in page


def test_no_explanation_when_nobody_has_the_identity_or_it_matched(tree, login):
    """An address nobody visible has: the plain reason; a picked account: no identification to explain."""
    factories.account(factories.client(tree.beta, "Beta Secret"), "b-1", ident_value="198.51.100.9",
                      orig_enabled=True)  # fmt: skip
    db.session.commit()
    page = _page(login(tree.alpha_operator), src_ip="198.51.100.9", number="4412345678")
    assert "unknown_originator" in page and "originator-misses" not in page and "Beta Secret" not in page
    # The operator's admin sees Beta's account, and why it did not match (no plan is not identification:
    # identification worked, so the answer is another reason and nothing is listed).
    page = _page(login(tree.root_admin), src_ip="198.51.100.9", number="4412345678")
    assert "unknown_originator" not in page and "originator-misses" not in page
