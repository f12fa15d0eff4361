"""Routing > Route test: the form, the answer as a fragment, sharing, scope and refreshing routing data."""

import pytest

from panel.extensions import db
from tests import factories as f
from tests.routing.conftest import vendor


@pytest.fixture
def carrier(tree):
    """Alpha's customer (198.51.100.10) on the operator's plan; vendors V1 (0.05), V2 (0.09, over margin)."""
    plan = f.plan(tree.root, "Main", pm_value=20, pm_percent=True)
    rates = f.rate_table(
        tree.root, "Customer rates", [{"code": "44", "rate": "0.10", "name": "United Kingdom"}]
    )
    customer = f.client(tree.alpha, "Alpha customer", orig_rate_table_id=rates.id, routing_plan_id=plan.id)
    account = f.account(customer, "alpha-sip", ident_value="198.51.100.10", orig_enabled=True)
    v1 = vendor(tree.root, "V1", [("44", "0.05")], ip="203.0.113.1")
    v2 = vendor(tree.root, "V2", [("44", "0.09")], ip="203.0.113.2")
    lcr = f.policy(tree.root, "Simple LCR", rate_weight=1)
    rule = f.rule(plan, "44", "dynamic", policy_id=lcr.id)
    beta_client = f.client(tree.beta, "Beta customer", orig_rate_table_id=rates.id, routing_plan_id=plan.id)
    beta_account = f.account(beta_client, "beta-sip", ident_value="192.0.2.77", orig_enabled=True)
    db.session.commit()
    tree.plan, tree.account, tree.beta_account, tree.v1, tree.v2, tree.rule = (
        plan,
        account,
        beta_account,
        v1,
        v2,
        rule,
    )
    return tree


def test_empty_form(carrier, login):
    page = login(carrier.alpha_viewer).get("/route-test/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Type a number to see its routes." in html
    assert "Alpha customer / alpha-sip" in html  # the account picker
    assert "Beta customer" not in html  # a sibling's accounts are not offered


def test_routes_and_rejections_for_a_picked_account(carrier, login):
    client = login(carrier.alpha_operator)
    html = client.get(
        f"/route-test/?account_id={carrier.account.id}&number=447700900123&at=2024-03-04T12:00"
    ).get_data(as_text=True)
    assert "routed</span> 1 route" in html
    assert "V1 / v1" in html and "0.05" in html  # the route with its vendor rate and margin
    assert "United Kingdom" in html  # the customer code's name
    assert "<code>profit_margin</code> — The vendor rate leaves less than the profit margin." in html
    assert "V2 / v2" in html
    assert "Matched rules, in order" in html and "Simple LCR" in html


def test_identifies_by_source_ip_within_the_users_companies(carrier, login):
    client = login(carrier.alpha_operator)
    html = client.get("/route-test/?src_ip=198.51.100.10&number=4477").get_data(as_text=True)
    assert "Alpha customer / alpha-sip" in html and "routed" in html
    # Beta's account answers for its address only to users who may see Beta.
    html = client.get("/route-test/?src_ip=192.0.2.77&number=4477").get_data(as_text=True)
    assert "unknown_originator" in html
    html = login(carrier.root_admin).get("/route-test/?src_ip=192.0.2.77&number=4477").get_data(as_text=True)
    assert "Beta customer / beta-sip" in html


def test_account_outside_scope_is_refused(carrier, login):
    html = (
        login(carrier.alpha_operator)
        .get(f"/route-test/?account_id={carrier.beta_account.id}&number=4477")
        .get_data(as_text=True)
    )
    assert "No such account in your companies." in html
    assert "beta-sip" not in html


@pytest.mark.parametrize(
    "query, message",
    [
        ("number=44a&src_ip=198.51.100.10", "Digits only"),
        ("number=4477&src_ip=300.1.1.1", "is not an IPv4 or IPv6 address"),
        ("number=4477", "Pick an account, or give the source IP"),
        ("number=4477&src_ip=198.51.100.10&at=tomorrow", "ISO 8601"),
    ],
)
def test_bad_input_is_explained(carrier, login, query, message):
    response = login(carrier.alpha_operator).get(f"/route-test/?{query}")
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)


def test_htmx_gets_the_result_fragment(carrier, login):
    response = login(carrier.alpha_operator).get(
        "/route-test/?src_ip=198.51.100.10&number=4477", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]
    assert "<html" not in html
    assert 'id="route-result"' in html and "V1 / v1" in html


def test_refresh_reads_an_edit_made_since_the_last_snapshot(carrier, login):
    client = login(carrier.alpha_operator)
    url = "/route-test/?src_ip=198.51.100.10&number=4477"
    assert "V3 / v3" not in client.get(url).get_data(as_text=True)
    v3 = vendor(carrier.root, "V3", [("44", "0.04")], ip="203.0.113.3")
    db.session.commit()
    html = client.get(url + "&refresh=1", headers={"HX-Request": "true"})
    assert "V3 / v3" in html.get_data(as_text=True)
    assert html.headers["HX-Push-Url"] == "/route-test/?src_ip=198.51.100.10&number=4477"
    assert v3.account.name == "v3"


def test_shows_when_the_routing_data_was_read(carrier, login):
    url = "/route-test/?src_ip=198.51.100.10&number=4477"
    html = login(carrier.alpha_operator).get(url).get_data(as_text=True)
    assert "Routing data as of" in html and "Refresh now" in html and "Link to this test" in html
    # Issue 13.3: refreshing is for writers; a viewer is not offered it.
    html = login(carrier.alpha_viewer).get(url).get_data(as_text=True)
    assert "Routing data as of" in html and "Refresh now" not in html and "Link to this test" in html


def test_a_viewers_refresh_never_builds(carrier, login, monkeypatch):
    """Issue 13.3: `refresh=1` from a viewer reads nothing from the database and says why."""
    from panel import snapshots

    url = "/route-test/?src_ip=198.51.100.10&number=4477"
    viewer = login(carrier.alpha_viewer)
    viewer.get(url)  # the first test builds the snapshot (every reader needs one)
    vendor(carrier.root, "V3", [("44", "0.04")], ip="203.0.113.3")
    db.session.commit()
    calls = []
    monkeypatch.setattr(snapshots, "update", lambda **kw: calls.append(kw))
    monkeypatch.setattr(snapshots, "rebuild", lambda: calls.append("rebuild"))
    response = viewer.get(url + "&refresh=1", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and calls == []
    assert "Refreshing the routing data is for operators and admins" in html
    assert "V3 / v3" not in html and "V1 / v1" in html


@pytest.mark.browser
def test_answers_as_you_type_and_the_url_follows(carrier, browser_login):
    page = browser_login(carrier.alpha_operator)
    page.goto("/route-test/")
    page.fill("#src_ip", "198.51.100.10")
    page.fill("#number", "447700900123")
    page.wait_for_selector("#routes")
    assert "V1 / v1" in page.inner_text("#routes")
    assert "profit_margin" in page.inner_text("#rejections")
    assert "number=447700900123" in page.url and "src_ip=198.51.100.10" in page.url
    # The pushed URL is a whole page that shows the same answer.
    shared = page.url
    page.goto(shared)
    assert "V1 / v1" in page.inner_text("#routes")
    page.fill("#number", "44x")
    page.wait_for_selector("text=Digits only")
