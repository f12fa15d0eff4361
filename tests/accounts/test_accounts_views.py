"""The accounts section as each role sees it: list, search, paging, create, edit, password."""

import re

import pytest
from sqlalchemy import select

from panel import crypto
from panel.extensions import db
from panel.models import Account, AuditEntry
from tests import factories
from tests.accounts.conftest import account_data

HX = {"HX-Request": "true"}


def _names(html: str) -> list[str]:
    """Account names in the order the list shows them."""
    return re.findall(r'class="account-link">([^<]+)</a>', html)


def test_list_shows_the_seed_columns_and_links(carrier, login):
    """ID, Client, Account, Name/ANI/IP, Tech Prefix, Orig and Term details; links to profile and history."""
    html = login(carrier.tree.alpha_operator).get("/accounts/").get_data(as_text=True)
    for column in ("ID", "Client", "Account", "Name/ANI/IP", "Tech Prefix", "Orig Details", "Term Details"):
        assert f">{column}" in html
    assert sorted(_names(html)) == ["acme-ip", "acme-term", "sub-login"]  # Alpha and its sub-reseller
    assert f'href="/clients/{carrier.acme.id}"' in html
    assert f'href="/audit/?client_id={carrier.acme.id}"' in html
    # acme-term has its own terminator rate table: the icon says so; acme-ip inherits the client's default.
    row = html[html.index(f'id="account-{carrier.acme_term.id}"') :]
    assert "Rate table assigned to the account" in row[: row.index("</tr>")]
    assert "SIP 203.0.113.5:5060" in row[: row.index("</tr>")]
    ip_row = html[html.index(f'id="account-{carrier.acme_ip.id}"') :]
    assert "The client's default rate table" in ip_row[: ip_row.index("</tr>")]


@pytest.mark.parametrize(
    ("user", "visible"),
    [
        ("root_admin", {"acme-ip", "acme-term", "sub-login", "bravo-ip"}),
        ("alpha_viewer", {"acme-ip", "acme-term", "sub-login"}),
        ("sub_operator", {"sub-login"}),
        ("beta_admin", {"bravo-ip"}),
    ],
)
def test_list_is_scoped_by_company(carrier, login, user, visible):
    """A reseller sees its subtree only; the operator sees everything."""
    html = login(getattr(carrier.tree, user)).get("/accounts/").get_data(as_text=True)
    assert set(_names(html)) == visible


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("acme", {"acme-ip", "acme-term"}),
        ("ACME-IP", {"acme-ip"}),  # case does not matter
        ("198.51.100", {"acme-ip"}),  # part of the ident value
        ("10.0.0.77", {"acme-ip"}),  # an address inside one of its networks
        ("sub1", {"sub-login"}),  # a login
        ("nothing-like-this", set()),
        ("100%", set()),  # LIKE wildcards are taken literally
        ("²", set()),  # a digit to Unicode, not to int(): searched as text, not taken for an ID
    ],
)
def test_quick_search(carrier, login, query, expected):
    """The quick search matches name, ident value, an address inside a network, tech prefix and ID."""
    client = login(carrier.tree.alpha_operator)
    response = client.get("/accounts/", query_string={"q": query}, headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html  # htmx gets the table fragment only
    assert "HX-Request" in response.headers["Vary"]
    assert set(_names(html)) == expected
    if not expected:
        assert "No account matches this search." in html


def test_quick_search_by_id_and_tech_prefix(carrier, login):
    """Typing an ID finds that account; a tech prefix finds accounts whose prefix starts with it."""
    account = factories.account(carrier.acme, "prefixed", ident_value="172.20.0.1", tech_prefix="4455#")
    db.session.commit()
    client = login(carrier.tree.alpha_operator)
    assert "acme-term" in _names(
        client.get(f"/accounts/?q={carrier.acme_term.id}", headers=HX).get_data(as_text=True)
    )
    assert _names(client.get("/accounts/?q=4455", headers=HX).get_data(as_text=True)) == [account.name]


def test_search_url_gives_the_whole_page(carrier, login):
    """A reload or a shared link of a search shows the same list in the whole page, search box filled."""
    html = login(carrier.tree.alpha_operator).get("/accounts/?q=acme-t").get_data(as_text=True)
    assert "<html" in html
    assert 'value="acme-t"' in html
    assert _names(html) == ["acme-term"]


def test_advanced_search(carrier, login):
    """Client, ident by, rate table, routing plan, tag and enabled state narrow the list."""
    client = login(carrier.tree.alpha_operator)

    def names(**args):
        return set(_names(client.get("/accounts/", query_string=args, headers=HX).get_data(as_text=True)))

    assert names(client_id=carrier.subco.id) == {"sub-login"}
    assert names(ident_by="name") == {"sub-login"}
    assert names(rate_table_id=carrier.alpha_table.id) == {"acme-term"}
    assert names(tag="gold") == {"acme-ip"}
    assert names(tag="gol") == set()  # whole tags only
    assert names(state="term") == {"acme-term"}
    assert names(state="orig") == {"acme-ip", "sub-login"}
    assert names(state="off") == set()


def test_client_filter_of_another_company_is_404(carrier, login):
    """Filtering by a client the user may not see answers 404, not an empty list."""
    assert (
        login(carrier.tree.alpha_operator).get(f"/accounts/?client_id={carrier.bravo.id}").status_code == 404
    )


def test_paging_and_sorting(carrier, login):
    """Server-side paging keeps the filters; sorting by name works both ways."""
    for i in range(7):
        factories.account(carrier.empty, f"page-{i}", ident_value=f"172.30.0.{i + 1}")
    db.session.commit()
    client = login(carrier.tree.alpha_operator)
    first = client.get("/accounts/?q=page-&per_page=3&sort=name").get_data(as_text=True)
    assert _names(first) == ["page-0", "page-1", "page-2"]
    assert "7 found" in first and "page 1 of 3" in first
    assert "/accounts/?q=page-&amp;per_page=3&amp;sort=name&amp;page=2" in first
    third = client.get("/accounts/?q=page-&per_page=3&sort=name&page=3", headers=HX).get_data(as_text=True)
    assert _names(third) == ["page-6"]
    descending = client.get("/accounts/?q=page-&per_page=3&sort=-name", headers=HX).get_data(as_text=True)
    assert _names(descending) == ["page-6", "page-5", "page-4"]
    by_client = client.get("/accounts/?sort=client&per_page=50", headers=HX).get_data(as_text=True)
    assert _names(by_client)[:2] == ["acme-ip", "acme-term"]  # Acme before Empty before SubCo
    assert _names(by_client)[-1] == "sub-login"


def test_unfiltered_paging_counts_exactly(carrier, login):
    """Without a search the total is exact."""
    for i in range(4):
        factories.account(carrier.empty, f"more-{i}", ident_value=f"172.30.1.{i + 1}")
    db.session.commit()
    html = login(carrier.tree.alpha_operator).get("/accounts/?per_page=2&page=2").get_data(as_text=True)
    assert "7 found" in html and "page 2 of 4" in html
    assert len(_names(html)) == 2


def test_show_account_page_and_modal(carrier, login):
    """The account's page shows its settings; htmx gets the same in a modal dialog."""
    client = login(carrier.tree.alpha_viewer)
    page = client.get(f"/accounts/{carrier.acme_ip.id}").get_data(as_text=True)
    assert "<code>10.0.0.0/24</code>" in page and "<code>198.51.100.7</code>" in page
    assert f"/audit/?object_type=account&amp;object_id={carrier.acme_ip.id}" in page
    assert "Edit" not in page  # a viewer gets no edit button
    modal = client.get(f"/accounts/{carrier.acme_ip.id}", headers=HX).get_data(as_text=True)
    assert "<dialog" in modal and "<html" not in modal


@pytest.mark.parametrize("user", ["beta_admin", "sub_operator"])
def test_another_companys_account_answers_404(carrier, login, user):
    """Every page and fragment of an account outside the scope is 404 (never 403)."""
    client = login(getattr(carrier.tree, user))
    account = carrier.acme_ip
    for url in (f"/accounts/{account.id}", f"/accounts/{account.id}/edit", f"/accounts/{account.id}/delete"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/accounts/{account.id}/edit", data=account_data(carrier.acme)).status_code == 404
    assert client.post(f"/accounts/{account.id}/delete").status_code == 404
    assert client.post(f"/accounts/{account.id}/deactivate").status_code == 404
    if user == "sub_operator":
        assert client.get(f"/accounts/{account.id}/password").status_code == 404


def test_viewer_reads_but_never_writes(carrier, login):
    """Viewers see the list and accounts; forms, the password and every write answer 403."""
    client = login(carrier.tree.alpha_viewer)
    account = carrier.acme_ip
    assert client.get("/accounts/").status_code == 200
    for url in (
        "/accounts/new",
        f"/accounts/{account.id}/edit",
        f"/accounts/{account.id}/delete",
        f"/accounts/{account.id}/password",
        "/accounts/password/generate",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post("/accounts/new", data=account_data(carrier.acme)).status_code == 403
    assert client.post(f"/accounts/{account.id}/edit", data=account_data(carrier.acme)).status_code == 403
    assert client.post(f"/accounts/{account.id}/delete").status_code == 403
    assert client.post(f"/accounts/{account.id}/deactivate").status_code == 403


@pytest.mark.parametrize("user", ["alpha_admin", "alpha_operator", "root_admin"])
def test_create_account_with_every_field(carrier, login, user):
    """Every field of the seed's table is stored, normalised, with an audit entry."""
    orig_table = carrier.root_table if user == "root_admin" else carrier.alpha_table
    data = account_data(
        carrier.acme,
        name="full",
        ident_value="172.16.5.0/24;172.16.6.1",
        tech_prefix="123#",
        password="S3cret-pass",
        gateway_ids=[str(carrier.gw_a.id), str(carrier.gw_b.id)],
        notes="Main trunk",
        # The operator's table is offered to the operator's users only (issue 14.4: a reseller is offered
        # the rate tables its Rate tables list shows); tests/ui/test_reseller.py checks the reseller's side.
        orig_rate_table_id=str(orig_table.id),
        orig_routing_plan_id=str(carrier.alpha_plan.id),
        orig_tags="gold, cli",
        orig_capacity="30",
        term_enabled="y",
        term_rate_table_id=str(carrier.alpha_table.id),
        term_tags="premium",
        term_capacity="60",
        protocol="h323",
        proxy="sbc.example.net:5070",
        port="1720",
    )
    response = login(getattr(carrier.tree, user)).post("/accounts/new", data=data)
    assert response.status_code == 303
    account = db.session.scalar(select(Account).where(Account.name == "full"))
    assert response.headers["Location"] == f"/accounts/{account.id}"
    assert account.ident_value == "172.16.5.0/24; 172.16.6.1"
    assert [n.network for n in account.networks] == ["172.16.5.0/24", "172.16.6.1/32"]
    assert [n.position for n in account.networks] == [0, 1]
    assert account.tech_prefix == "123#"
    assert crypto.decrypt(account.password_encrypted) == "S3cret-pass"
    assert account.password_encrypted != "S3cret-pass"
    assert {g.name for g in account.gateways} == {"gw-a", "gw-b"}
    assert (account.orig_rate_table_id, account.orig_routing_plan_id) == (
        orig_table.id,
        carrier.alpha_plan.id,
    )
    assert (account.orig_tags, account.orig_capacity) == ("gold cli", 30)
    assert account.term_enabled and account.term_rate_table_id == carrier.alpha_table.id
    assert (account.term_tags, account.term_capacity, account.protocol) == ("premium", 60, "h323")
    assert (account.proxy, account.port, account.notes) == ("sbc.example.net:5070", 1720, "Main trunk")
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.object_type == "account", AuditEntry.object_id == account.id)
    )
    assert entry.action == "create" and entry.client_id == carrier.acme.id
    assert entry.after["networks"] == ["172.16.5.0/24", "172.16.6.1/32"]
    assert entry.after["password_encrypted"] == "(set)"  # never the secret itself


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ident_value", "10.0.0.1/24", "has host bits set"),
        ("ident_value", "10.1.1.1; 10.1.1.1", "is listed twice"),
        ("ident_value", "300.1.1.1", "is not an IPv4 or IPv6 address"),
        ("tech_prefix", "12a", "A tech prefix is digits"),
        ("name", "", "Enter a name."),
        ("port", "70000", "Number must be between 1 and 65535"),
        ("orig_capacity", "0", "Number must be between 1 and 1000000"),
        ("proxy", "bad host", "is not a host name"),
        ("orig_tags", "<script>", "is not a tag"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_saved(carrier, login, field, value, message):
    """422 with the form, the message at the field, the typed values kept, nothing stored."""
    data = account_data(carrier.acme, **{"name": "bad-one", field: value})
    response = login(carrier.tree.alpha_operator).post("/accounts/new", data=data, headers=HX)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert "Nothing was saved" in html
    assert db.session.scalar(select(Account).where(Account.name == "bad-one")) is None


def test_terminator_needs_an_address(carrier, login):
    """A terminator identified by networks only, without a proxy, has nowhere to send calls: refused."""
    data = account_data(
        carrier.acme, name="t-net", ident_value="172.18.0.0/24", term_enabled="y", orig_enabled=None
    )
    response = login(carrier.tree.alpha_operator).post("/accounts/new", data=data)
    assert response.status_code == 422
    assert "A terminator needs an address" in response.get_data(as_text=True)
    data["proxy"] = "sbc.example.net"
    assert login(carrier.tree.alpha_operator).post("/accounts/new", data=data).status_code == 303


def test_pickers_offer_and_accept_only_what_the_company_may_use(carrier, login):
    """Beta's rate table and plan are neither offered to Alpha's client nor accepted when posted."""
    client = login(carrier.tree.alpha_operator)
    form = client.get(f"/accounts/new?client_id={carrier.acme.id}").get_data(as_text=True)
    # The operator's (provider's) table is not offered to a reseller: its Rate tables list hides it (14.4).
    assert "Operator retail" not in form and "Alpha retail" in form and "Alpha plan" in form
    assert "Beta retail" not in form and "Beta plan" not in form and "gw-beta" not in form
    for field, value in (
        ("orig_rate_table_id", carrier.beta_table.id),
        ("term_rate_table_id", carrier.beta_table.id),
        ("orig_routing_plan_id", carrier.beta_plan.id),
    ):
        response = client.post(
            "/accounts/new", data=account_data(carrier.acme, name="picky", **{field: str(value)})
        )
        assert response.status_code == 422, field
        assert "may not be used by the client&#39;s company" in response.get_data(as_text=True)
    response = client.post(
        "/accounts/new", data=account_data(carrier.acme, name="picky", gateway_ids=str(carrier.gw_beta.id))
    )
    assert response.status_code == 422
    # A sub-reseller's client may use Alpha's (its parent's) rate table, not the reverse.
    sub_form = client.get(f"/accounts/options?client_id={carrier.subco.id}", headers=HX).get_data(
        as_text=True
    )
    assert "Alpha retail" in sub_form and 'hx-swap-oob="true"' in sub_form
    response = client.post(
        "/accounts/new", data=account_data(carrier.acme, name="other-client", client_id=str(carrier.bravo.id))
    )
    assert response.status_code == 422  # Bravo is not a client Alpha may choose


@pytest.mark.parametrize("user", ["alpha_admin", "alpha_operator", "root_admin"])
def test_edit_through_htmx_returns_the_row_and_closes_the_modal(carrier, login, user):
    """Saving the modal answers with the updated row (out of band) and a message, and audits the change."""
    client = login(getattr(carrier.tree, user))
    modal = client.get(f"/accounts/{carrier.acme_ip.id}/edit", headers=HX).get_data(as_text=True)
    assert "<dialog" in modal and 'value="10.0.0.0/24; 198.51.100.7"' in modal
    data = account_data(
        carrier.acme, name="acme-renamed", ident_value="10.0.0.0/24; 198.51.100.7", orig_tags="gold"
    )
    response = client.post(f"/accounts/{carrier.acme_ip.id}/edit", data=data, headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<tr id="account-{carrier.acme_ip.id}" hx-swap-oob="true">' in html
    assert "acme-renamed" in html and "<dialog" not in html
    assert "Account “acme-renamed” saved." in html
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.object_id == carrier.acme_ip.id, AuditEntry.action == "update")
    )
    assert entry.before["name"] == "acme-ip" and entry.after["name"] == "acme-renamed"


def test_password_is_generated_shown_on_demand_and_kept_when_left_empty(carrier, login):
    """Generate fills a strong password; Show reveals the stored one; an empty field keeps it."""
    client = login(carrier.tree.alpha_operator)
    generated = client.get("/accounts/password/generate", headers=HX).get_data(as_text=True)
    value = re.search(r'name="password" type="text" value="([^"]+)"', generated).group(1)
    assert len(value) >= 16
    data = account_data(carrier.acme, name="acme-ip", ident_value="10.0.0.0/24; 198.51.100.7", password=value)
    assert client.post(f"/accounts/{carrier.acme_ip.id}/edit", data=data).status_code == 303
    shown = client.get(f"/accounts/{carrier.acme_ip.id}/password", headers=HX).get_data(as_text=True)
    assert f'value="{value}"' in shown
    edit_page = client.get(f"/accounts/{carrier.acme_ip.id}/edit").get_data(as_text=True)
    assert value not in edit_page  # never sent unless asked for
    data["password"] = ""
    assert client.post(f"/accounts/{carrier.acme_ip.id}/edit", data=data).status_code == 303
    db.session.refresh(carrier.acme_ip)
    assert crypto.decrypt(carrier.acme_ip.password_encrypted) == value
    notes = db.session.scalars(
        select(AuditEntry.note).where(AuditEntry.object_id == carrier.acme_ip.id)
    ).all()
    assert notes.count("password changed") == 1
    data["clear_password"] = "y"
    assert client.post(f"/accounts/{carrier.acme_ip.id}/edit", data=data).status_code == 303
    db.session.refresh(carrier.acme_ip)
    assert carrier.acme_ip.password_encrypted == ""


def test_deactivate_keeps_the_account(carrier, login):
    """Deactivation unticks Originator and Terminator, with an audit entry."""
    client = login(carrier.tree.alpha_operator)
    response = client.post(f"/accounts/{carrier.acme_ip.id}/deactivate", headers=HX)
    assert response.status_code == 200
    assert f'id="account-{carrier.acme_ip.id}" hx-swap-oob="true"' in response.get_data(as_text=True)
    db.session.refresh(carrier.acme_ip)
    assert not carrier.acme_ip.orig_enabled and not carrier.acme_ip.term_enabled
    note = db.session.scalar(select(AuditEntry.note).where(AuditEntry.object_id == carrier.acme_ip.id))
    assert note == "deactivated"


@pytest.mark.parametrize("share", [0.0, 1.1])
def test_both_shapes_of_the_scope_condition_list_the_same_accounts(carrier, login, monkeypatch, share):
    """Walking the primary key (most clients in scope) or the client_id index (few): the same rows."""
    from panel.accounts import listing

    monkeypatch.setattr(listing, "SCAN_SHARE", share)
    for user, visible in (
        ("alpha_viewer", {"acme-ip", "acme-term", "sub-login"}),
        ("sub_operator", {"sub-login"}),
    ):
        client = login(getattr(carrier.tree, user))
        assert set(_names(client.get("/accounts/", headers=HX).get_data(as_text=True))) == visible
        contains = client.get("/accounts/?q=-&match=contains", headers=HX).get_data(as_text=True)
        assert set(_names(contains)) == visible
        starts = client.get("/accounts/?q=ACME&match=start", headers=HX).get_data(as_text=True)
        assert set(_names(starts)) == visible & {"acme-ip", "acme-term"}
