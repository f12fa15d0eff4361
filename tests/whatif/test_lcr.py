"""The LCR sheet (issue 15.3): per destination the customer rate and routes; flags, filters, CSV, scope."""

from decimal import Decimal

import pytest

from panel.extensions import db
from panel.models import Rate
from tests import factories as f
from tests.factories import EPOCH

AT = "at=2024-03-04+12:00"


@pytest.fixture
def sheet_world(world):
    """`world` with a deck (44, 447, 1, 49, 33); rules 44 -> V1-V3, 1 -> V3, 49 -> V3 at 0.09 (over 0.08)."""
    deck = f.code_deck(
        world.root,
        "World",
        [
            ("44", "United Kingdom", "GB"),
            ("447", "UK mobile", "GB"),
            ("1", "USA", "US"),
            ("49", "Germany", "DE"),
            ("33", "France", "FR"),
        ],
    )
    world.plan.code_deck_id = deck.id
    for v in (world.v1, world.v2, world.v3):
        f.rule(world.plan, "44", "static_client", terminator_client_id=v.client.id)
    f.rule(world.plan, "1", "static_client", terminator_client_id=world.v3.client.id)
    f.rule(world.plan, "49", "static_client", terminator_client_id=world.v3.client.id)
    db.session.add(
        Rate(rate_table_id=world.v3.table.id, code="49", rate=Decimal("0.09"), effective_from=EPOCH)
    )
    world.admin = f.user(world.root, "admin", "root_admin")
    world.viewer = f.user(world.root, "viewer", "root_viewer")
    db.session.commit()
    return world


def _url(world, **extra):
    query = f"plan_id={world.plan.id}&account_id={world.cust.id}&{AT}"
    return "/whatif/lcr?" + query + "".join(f"&{k}={v}" for k, v in extra.items())


def test_sheet_lists_routes_in_order_with_margins_and_flags(sheet_world, login):
    html = login(sheet_world.viewer).get(_url(sheet_world)).get_data(as_text=True)
    assert "5 destinations" in html
    uk = html.split('data-code="44"')[1].split("</tr>")[0]
    assert uk.index("V1 / v1") < uk.index("V2 / v2") < uk.index("V3 / v3")
    assert 'margin <span class="">0.05</span>' in uk  # 0.10 - 0.05
    usa = html.split('data-code="1"')[1].split("</tr>")[0]
    assert "V3 / v3 · 0.012 · margin" in usa and "negative margin" not in usa
    germany = html.split('data-code="49"')[1].split("</tr>")[0]
    assert "negative margin" in germany and "-0.01" in germany
    france = html.split('data-code="33"')[1].split("</tr>")[0]
    assert "no route" in france and "no_customer_rate" in france


def test_prefix_and_country_filters(sheet_world, login):
    web = login(sheet_world.viewer)
    html = web.get(_url(sheet_world, prefix="44")).get_data(as_text=True)
    assert "2 destinations" in html and 'data-code="49"' not in html
    html = web.get(_url(sheet_world, country="DE")).get_data(as_text=True)
    assert "1 destinations" in html and 'data-code="49"' in html


def test_drained_vendor_leaves_the_sheet(sheet_world, login):
    from panel.whatif import drain

    drain.drain(sheet_world.v1.account, "outage", None, None)
    db.session.commit()
    html = login(sheet_world.viewer).get(_url(sheet_world, prefix="44")).get_data(as_text=True)
    uk = html.split('data-code="44"')[1].split("</tr>")[0]
    assert "V1 / v1" not in uk and "V2 / v2" in uk


def test_rate_table_only(sheet_world, login):
    query = f"plan_id={sheet_world.plan.id}&rate_table_id={sheet_world.customer_rates.id}&{AT}&prefix=49"
    html = login(sheet_world.viewer).get("/whatif/lcr?" + query).get_data(as_text=True)
    assert "V3 / v3" in html and "0.08" in html and "(rate table only)" not in html


def test_a_plan_alone_prices_with_its_customers_usual_rate_table(sheet_world, login):
    """Choosing only the plan shows the sheet with the rate table the plan's customers have, and says so."""
    web = login(sheet_world.viewer)
    html = web.get(f"/whatif/lcr?plan_id={sheet_world.plan.id}&{AT}&prefix=49").get_data(as_text=True)
    assert "rate table Customer rates (the one most of the plan's" in html
    germany = html.split('data-code="49"')[1].split("</tr>")[0]
    assert "0.08" in germany and "negative margin" in germany  # priced with Customer rates' 0.08
    # A plan no customer uses: the form asks for an originator.
    other = f.plan(sheet_world.root, "Unused", code_deck_id=sheet_world.plan.code_deck_id)
    db.session.commit()
    html = web.get(f"/whatif/lcr?plan_id={other.id}&{AT}").get_data(as_text=True)
    assert "No customer of this plan has a rate table: choose an originator account or a rate table." in html
    assert 'id="lcr-sheet"' not in html
    # Nothing chosen yet: the page says what to do.
    assert "Choose a routing plan and press Show" in web.get("/whatif/lcr").get_data(as_text=True)


def test_csv_export_has_one_line_per_route_and_neutralises_formulas(sheet_world, login):
    from panel.models import Code

    db.session.query(Code).filter_by(code="49").update({"name": "=HYPERLINK(1)"})
    db.session.commit()
    response = login(sheet_world.viewer).get(_url(sheet_world).replace("/lcr?", "/lcr.csv?"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("code,name,country,customer_rate")
    assert sum(1 for line in lines if line.startswith("44,")) == 3
    assert any(line.startswith("49,'=HYPERLINK(1)") for line in lines)
    assert any(line.startswith("33,") and "no_route" in line for line in lines)


def test_sheet_is_scoped(tree, login):
    plan = f.plan(tree.beta, "Beta plan")
    db.session.commit()
    web = login(tree.alpha_viewer)
    assert web.get(f"/whatif/lcr?plan_id={plan.id}").status_code == 404
    assert web.get(f"/whatif/lcr.csv?plan_id={plan.id}").status_code == 404
    assert web.get("/whatif/lcr").status_code == 200
