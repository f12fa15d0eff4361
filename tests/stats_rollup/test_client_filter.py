"""The Calls and Quality pages' client filter at a carrier with many clients: the first 50 by name, a "find a
client" box that narrows them by name (the accounts list's filter, /accounts/clients), the chosen client kept,
and only clients of the user's companies (SPEC §8)."""

import re

import pytest

from panel.models import Client
from tests import factories


def offered(html: str) -> list[str]:
    """The client filter's offered clients (labels, the "every ..." choice left out)."""
    select = re.search(r'<select id="client-filter" name="client_id"[^>]*>(.*?)</select>', html, re.S)
    assert select, "the page has the client filter"
    labels = re.findall(r'<option value="\d+"[^>]*>([^<]*)</option>', select.group(1))
    return [label.split(" — ")[0] for label in labels]  # the company is named when the user sees several


@pytest.fixture
def many(carrier):
    """60 more clients of Alpha (Bulk 00..59) and one of Beta."""
    clients = [factories.client(carrier.tree.alpha, f"Bulk {i:02d}") for i in range(60)]
    factories.client(carrier.tree.beta, "Bulk of Beta")
    return clients


@pytest.mark.parametrize("page", ["/statistics/", "/statistics/quality"])
def test_the_filter_offers_50_clients_and_finds_the_others(login, carrier, many, page):
    browser = login(carrier.tree.alpha_admin)
    html = browser.get(page).get_data(as_text=True)
    names = offered(html)
    assert len(names) == 50
    assert names == sorted(names)
    assert "more clients: type a part of the name" in html
    assert 'id="client-find"' in html and 'hx-get="/accounts/clients"' in html
    # Typed text narrows the choices (the form sent without JavaScript; with it, /accounts/clients).
    narrowed = offered(browser.get(page + "?client_q=Bulk 5").get_data(as_text=True))
    assert narrowed == [f"Bulk 5{i}" for i in range(10)]
    # A client beyond the first 50 stays chosen and offered.
    last = many[-1]
    html = browser.get(f"{page}?client_id={last.id}").get_data(as_text=True)
    assert "Bulk 59" in offered(html)
    assert re.search(rf'<option value="{last.id}"\s+selected>', html)


def test_the_filter_offers_only_the_users_clients(login, carrier, many):
    """Beta's admin is offered Beta's clients only, whatever is typed."""
    browser = login(carrier.tree.beta_admin)
    names = offered(browser.get("/statistics/?client_q=Bulk").get_data(as_text=True))
    assert names == ["Bulk of Beta"]
    alpha_client = Client.query.filter_by(name="Bulk 07").one()
    assert browser.get(f"/statistics/?client_id={alpha_client.id}").status_code == 404
