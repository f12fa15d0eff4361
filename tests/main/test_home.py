"""The home page answers "is my routing healthy right now" with the Calls page's figures, per company."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from panel.extensions import db
from panel.models import LiveCall, ManagerRun
from tests import factories

HX = {"HX-Request": "true"}


def tile(html: str, tile_id: str) -> str:
    """The big figure of a home page tile."""
    found = re.search(rf'id="{tile_id}"[^>]*>\s*<span class="tile-count[^"]*">([^<]*)</span>', html)
    assert found, f"no tile {tile_id}"
    return found.group(1).strip()


def stats_tile(html: str, label: str) -> str:
    """The big figure above a label on the Calls page."""
    found = re.search(
        rf'<span class="tile-count[^"]*">([^<]*)</span>\s*<span class="tile-label">\s*{label}', html
    )
    assert found, f"no stats tile {label}"
    return found.group(1).strip()


def calls_page(client) -> str:
    """The Calls page over the home page's window (the link of its Calls tile)."""
    return client.get("/statistics/?hours=24").data.decode()


def test_operator_home_shows_the_last_24_hours_as_the_calls_page_computes_them(traffic, login):
    """Calls, ASR, ACD, revenue and margin of the last 24 h; older calls are not counted."""
    client = login(traffic.tree.root_admin)
    html = client.get("/").data.decode()
    assert tile(html, "tile-calls") == "9"
    assert "6 answered" in html
    assert tile(html, "tile-asr") == "66.7 %"
    assert tile(html, "tile-acd") == "1.42"  # 510 s / 6 answered calls
    assert tile(html, "tile-revenue") == "6.00"
    assert tile(html, "tile-margin") == "2.40"
    assert "Margin (40.0 %)" in html

    assert 'href="/statistics/?hours=24"' in html
    stats = calls_page(client)
    assert "Calls of the last 24 hours" in stats
    assert stats_tile(stats, "Attempts") == tile(html, "tile-calls")
    assert stats_tile(stats, "ASR") == tile(html, "tile-asr")
    assert stats_tile(stats, "ACD") == tile(html, "tile-acd")
    assert stats_tile(stats, "Revenue") == tile(html, "tile-revenue")
    assert stats_tile(stats, "Margin") == tile(html, "tile-margin")


def test_reseller_home_counts_its_own_calls_and_hides_the_operators_costs(traffic, login):
    """Alpha sees its customer's calls only; their cost is the operator's: no margin, not a false 100 %."""
    client = login(traffic.tree.alpha_admin)
    html = client.get("/").data.decode()
    assert tile(html, "tile-calls") == "4"
    assert tile(html, "tile-asr") == "50.0 %"
    assert tile(html, "tile-revenue") == "1.00"
    assert tile(html, "tile-margin") == "—"
    assert "not shown: the cost of 4 calls is set by your provider" in html
    assert "0.80" not in html and "0.20" not in html  # neither the cost nor a margin leaks
    # The operator's customer is not Alpha's to see; its own negative one is listed.
    assert "Root Customer" not in html and "Beta Customer" not in html
    assert "Alpha Customer" in html and "-12.50" in html

    stats = calls_page(client)
    assert stats_tile(stats, "Attempts") == "4"
    assert stats_tile(stats, "Revenue") == tile(html, "tile-revenue")


def test_sub_reseller_home_sees_none_of_its_parents_calls(traffic, login):
    """A company below Alpha sees no call of Alpha's customer."""
    html = login(traffic.tree.sub_operator).get("/").data.decode()
    assert tile(html, "tile-calls") == "0"
    assert tile(html, "tile-asr") == "—"
    assert "Alpha Customer" not in html


def test_per_hour_chart_is_drawn_from_the_calls(traffic, login):
    """24 bars, each titled with its calls; the hour ten minutes ago holds Alpha's recent calls."""
    html = login(traffic.tree.root_admin).get("/").data.decode()
    chart = html[html.index('<svg class="chart"') : html.index("</svg>")]
    assert chart.count('<g class="bar">') == 24
    titles = re.findall(r"<title>([^<]*)</title>", chart)
    counts = [int(re.search(r": (\d+) calls", t).group(1)) for t in titles]
    assert sum(counts) == 9
    assert max(counts) >= 2
    assert "<polyline" in chart  # the ASR line


def test_live_calls_against_capacity(traffic, login):
    """Calls in progress of the user's accounts against its originators' capacity."""
    for n in range(3):
        db.session.add(
            LiveCall(call_id=f"live-{n}", orig_account_id=traffic.ac1.id, term_account_id=traffic.rv1.id)
        )
    db.session.commit()
    html = login(traffic.tree.alpha_admin).get("/").data.decode()
    assert tile(html, "tile-live") == "3"
    assert "of 20 originator capacity (15 %)" in html
    assert tile(login(traffic.tree.beta_admin).get("/").data.decode(), "tile-live") == "0"


def test_manager_error_expiring_rules_and_low_balances_link_to_their_pages(traffic, login):
    """The manager's failed run, a plan's rules expiring soon and a negative balance, each with its link."""
    now = datetime.now(UTC)
    db.session.add(ManagerRun(started_at=now - timedelta(minutes=1), outcome="error", error="disk full"))
    plan = factories.plan(traffic.tree.root, "Main")
    factories.rule(plan, "44", terminator_client_id=traffic.vendor.id, expires_at=now + timedelta(days=2))
    factories.rule(plan, "49", terminator_client_id=traffic.vendor.id, expires_at=now - timedelta(minutes=5))
    factories.rule(plan, "33", terminator_client_id=traffic.vendor.id, expires_at=now + timedelta(days=30))
    traffic.root_customer.balance = Decimal("40")
    db.session.commit()
    html = login(traffic.tree.root_admin).get("/").data.decode()
    manager = html[html.index('id="home-manager"') :]
    assert "disk full" in manager and "1 failed run in the last 24 hours" in manager
    expiring = html[html.index('id="home-expiring"') : html.index('id="home-balances"')]
    assert f'href="/plans/{plan.id}/?expiring=7"' in expiring and "1 within 7 d" in expiring
    assert f'href="/plans/{plan.id}/?state=expired"' in expiring and "1 expired" in expiring
    balances = html[html.index('id="home-balances"') :]
    assert f'href="/clients/{traffic.root_customer.id}"' in balances and "40.00" in balances
    assert f'href="/clients/{traffic.alpha_customer.id}"' in balances
    assert "Root Vendor" not in balances  # a vendor's zero balance is not a customer's low balance
    assert "Beta Customer" not in balances  # 1,000 is enough
    assert 'href="/clients/?sort=balance"' in balances


def test_a_reseller_sees_that_the_manager_failed_but_not_the_operators_error_text(traffic, login):
    """The manager works for the whole system: its error may name anything, so only the operator reads it."""
    now = datetime.now(UTC)
    db.session.add(
        ManagerRun(
            started_at=now - timedelta(minutes=1), outcome="error", error="plan Beta Wholesale: disk full"
        )
    )
    db.session.commit()
    for user in (traffic.tree.alpha_admin, traffic.tree.sub_operator):
        manager = login(user).get("/").data.decode().split('id="home-manager"', 1)[1]
        assert "disk full" not in manager and "Beta Wholesale" not in manager
        assert "the run is retried within seconds and the operator sees the cause" in manager
        assert "1 failed run in the last 24 hours" in manager
    # Any user of the operator's company reads it, not only its admins.
    root_viewer = factories.user(traffic.tree.root, "viewer", "root_viewer")
    db.session.commit()
    assert "plan Beta Wholesale: disk full" in login(root_viewer).get("/").data.decode()


@pytest.mark.parametrize("app_config", [{"EXPIRY_HORIZON_DAYS": 1, "LOW_BALANCE": 0}])
def test_horizon_and_low_balance_are_settings(traffic, login):
    """A 1-day horizon leaves out a rule expiring in 2 days; a 0 threshold lists only negative balances."""
    plan = factories.plan(traffic.tree.root, "Main")
    expires = datetime.now(UTC) + timedelta(days=2)
    factories.rule(plan, "44", terminator_client_id=traffic.vendor.id, expires_at=expires)
    db.session.commit()
    html = login(traffic.tree.root_admin).get("/").data.decode()
    assert "No rule expires within 1 days." in html
    balances = html[html.index('id="home-balances"') :]
    assert "Alpha Customer" in balances and "Root Customer" not in balances


def test_health_refreshes_itself_as_a_fragment(traffic, login):
    """The health section polls the home page; htmx gets only the section back."""
    client = login(traffic.tree.root_admin)
    page = client.get("/").data.decode()
    assert 'id="health"' in page and 'hx-trigger="every 60s"' in page
    fragment = client.get("/", headers=HX).data.decode()
    assert fragment.lstrip().startswith("{#") is False and '<section id="health"' in fragment
    assert "What you hold" not in fragment
