"""The accounts list at scale, as a user sees it: the client filter that finds clients by name (never the
whole list of clients), and the quick search's two ways of matching (starts with, contains) with the same
rows on SQLite and PostgreSQL, whichever plan the list takes."""

import re

import pytest

from panel import paging
from panel.accounts import listing, pickers
from panel.extensions import db
from tests import factories

HX = {"HX-Request": "true"}


def _names(html: str) -> set[str]:
    return set(re.findall(r'class="account-link">([^<]+)</a>', html))


def _options(html: str) -> list[str]:
    """The client filter's option labels, in order."""
    select = html[html.index('id="client-filter"') :]
    select = select[: select.index("</select>")] if "</select>" in select else select
    return re.findall(r"<option [^>]*>([^<]+)</option>", select)


def test_client_filter_offers_a_bounded_list_and_finds_clients_by_name(carrier, login, monkeypatch):
    """The page offers the first clients only, says more exist, and finds the others by a part of the name;
    the chosen client stays offered and selected; the filter still narrows the list."""
    monkeypatch.setattr(pickers, "CLIENT_FILTER_LIMIT", 2)
    client = login(carrier.tree.alpha_operator)
    html = client.get("/accounts/").get_data(as_text=True)
    assert _options(html) == [
        "All clients",
        "Acme — Alpha",
        "Empty — Alpha",
        "… more clients: type a part of the name",
    ]
    assert "SubCo — Alpha Sub" not in _options(html)
    # Typing a part of the name (htmx asks for the options only).
    found = client.get("/accounts/clients?client_q=bco", headers=HX).get_data(as_text=True)
    assert "<html" not in found
    assert re.findall(r"<option [^>]*>([^<]+)</option>", found) == ["All clients", "SubCo — Alpha Sub"]
    # Without JavaScript the same text in the page's form narrows the options the same way.
    html = client.get("/accounts/?client_q=bco").get_data(as_text=True)
    assert _options(html) == ["All clients", "SubCo — Alpha Sub"]
    # A chosen client outside the first ones is offered and selected, and the list is its accounts.
    html = client.get(f"/accounts/?client_id={carrier.subco.id}").get_data(as_text=True)
    assert f'<option value="{carrier.subco.id}" selected>SubCo — Alpha Sub</option>' in html
    assert _names(html) == {"sub-login"}
    # A client of another company is never offered, whatever is typed.
    other = client.get("/accounts/clients?client_q=Bravo", headers=HX).get_data(as_text=True)
    assert "Bravo" not in other


def test_a_chosen_client_does_not_push_a_match_out_of_the_filter(carrier, login, monkeypatch):
    """With as many matches as the limit and the chosen client not among them, every match is offered, the
    chosen client too, and no "more clients" line claims others exist."""
    monkeypatch.setattr(pickers, "CLIENT_FILTER_LIMIT", 2)
    client = login(carrier.tree.alpha_operator)
    # "m" matches Acme and Empty (two, the limit), not the chosen SubCo.
    html = client.get(f"/accounts/?client_id={carrier.subco.id}&client_q=m").get_data(as_text=True)
    assert _options(html) == ["All clients", "SubCo — Alpha Sub", "Acme — Alpha", "Empty — Alpha"]


def test_client_filter_names_the_company_when_the_user_sees_several(carrier, login):
    """The operator sees every company's clients: each option says whose client it is."""
    html = (
        login(carrier.tree.root_admin)
        .get("/accounts/clients?client_q=Bravo", headers=HX)
        .get_data(as_text=True)
    )
    assert "Bravo — Beta" in html


SEARCHES = [
    # (text, starts with, contains)
    ("acme", {"acme-ip", "acme-term"}, {"acme-ip", "acme-term"}),
    ("Acme-IP", {"acme-ip"}, {"acme-ip"}),  # case does not matter
    ("term", set(), {"acme-term"}),  # inside a name: contains only
    ("198.51.100", {"acme-ip"}, {"acme-ip"}),  # the start of the account's second address
    ("51.100", set(), {"acme-ip"}),
    ("10.0.0.77", {"acme-ip"}, {"acme-ip"}),  # an address inside one of its networks
    ("sub", {"sub-login"}, {"sub-login"}),
    ("4455", {"prefixed"}, {"prefixed"}),  # a tech prefix
    ("100%", set(), set()),  # wildcards taken literally
]


@pytest.mark.parametrize(("text", "starting", "containing"), SEARCHES)
@pytest.mark.parametrize("limit", [listing.COUNT_LIMIT, 1])
def test_both_ways_of_matching_give_the_same_rows_on_both_databases(
    carrier, login, monkeypatch, text, starting, containing, limit
):
    """Starts-with and contains find the same accounts on SQLite and PostgreSQL; on SQLite also when the
    matches are too many to collect (a limit of 1 forces the plan that checks row by row)."""
    monkeypatch.setattr(listing, "COUNT_LIMIT", limit)
    monkeypatch.setattr(paging, "COUNT_LIMIT", limit)
    factories.account(carrier.acme, "prefixed", ident_value="172.20.0.1", tech_prefix="4455#")
    db.session.commit()
    client = login(carrier.tree.alpha_operator)
    for match, expected in (("start", starting), ("contains", containing)):
        html = client.get("/accounts/", query_string={"q": text, "match": match}, headers=HX).get_data(
            as_text=True
        )
        assert _names(html) == expected, (match, text)


def test_the_default_match_is_the_one_an_index_serves(carrier, login):
    """PostgreSQL (trigram indexes) searches inside the text by default, SQLite by the start."""
    client = login(carrier.tree.alpha_operator)
    html = client.get("/accounts/?q=term").get_data(as_text=True)
    postgres = db.engine.dialect.name == "postgresql"
    assert _names(html) == ({"acme-term"} if postgres else set())
    select = html[html.index('name="match"') :]
    select = select[: select.index("</select>")]
    assert re.findall(r'<option selected value="(\w+)"', select) == ["contains" if postgres else "start"]


@pytest.mark.sqlite_only
def test_contains_search_on_sqlite_reads_the_newest_accounts_and_says_so(carrier, login, monkeypatch):
    """Beyond CONTAINS_BUDGET accounts, a contains-search on SQLite reads the newest ones and says so."""
    monkeypatch.setattr(listing, "CONTAINS_BUDGET", 2)
    client = login(carrier.tree.root_admin)
    html = client.get("/accounts/?q=-&match=contains", headers=HX).get_data(as_text=True)
    assert "looked through the newest 2 accounts only" in html
    assert _names(html) == {"sub-login", "bravo-ip"}  # the two newest; acme-ip and acme-term are older
    html = client.get("/accounts/?q=acme&match=start", headers=HX).get_data(as_text=True)
    assert "looked through" not in html
    assert _names(html) == {"acme-ip", "acme-term"}


def test_a_dense_search_is_counted_as_more_than_the_limit_only_when_nothing_else_narrows_it(
    carrier, login, monkeypatch
):
    """Many matches of the text alone: the operator's whole list says "more than"; a reseller's list, which
    its scope narrows, is still counted exactly."""
    monkeypatch.setattr(listing, "COUNT_LIMIT", 1)
    monkeypatch.setattr(paging, "COUNT_LIMIT", 1)
    html = (
        login(carrier.tree.root_admin).get("/accounts/?q=acme&match=start", headers=HX).get_data(as_text=True)
    )
    assert _names(html) == {"acme-ip", "acme-term"}
    if db.engine.dialect.name == "sqlite":
        assert "more than 1 found" in html
    html = (
        login(carrier.tree.sub_operator).get("/accounts/?q=s&match=start", headers=HX).get_data(as_text=True)
    )
    assert _names(html) == {"sub-login"}
    assert "1 found" in html
    assert "more than" not in html
