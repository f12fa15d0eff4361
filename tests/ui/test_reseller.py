"""A reseller hits no dead end (issue 14.4, 14.9): what it is offered, it can see; what is hidden says so.

Each test logs in as a reseller's user (Alpha, under the operator) and checks a list, picker or figure
against what the reseller may use and what routing does: the provider's gateways are listed because the
account form offers them; the provider's rate tables are not offered because the Rate tables list hides
them (one the provider assigned stays, marked); calls to the provider's vendors say their cost is hidden
instead of a 100 % margin; an empty static terminator picker says why; the manager page shows the
operator's figures and "Run now" only to the operator.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from panel.extensions import db
from panel.models import AuditEntry, CallStat
from tests import factories

HTMX = {"HX-Request": "true"}


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_gateways_list_shows_what_the_account_form_offers(tree, login):
    """The provider's gateway is listed (marked, read-only) and counts only the reseller's own accounts."""
    provided = factories.gateway(tree.root, "sbc-provider", "198.51.100.1")
    own = factories.gateway(tree.alpha, "gw-alpha", "192.0.2.9")
    mine = factories.account(factories.client(tree.alpha, "Alpha customer"), "a1", gateways=[provided])
    factories.account(factories.client(tree.root, "Operator customer"), "o1", gateways=[provided])
    factories.account(factories.client(tree.beta, "Beta customer"), "b1", gateways=[provided])
    db.session.commit()
    user = login(tree.alpha_operator)

    form = _text(user.get(f"/accounts/{mine.id}/edit"))
    assert "sbc-provider" in form and "gw-alpha" in form  # what the form offers ...
    listing = _text(user.get("/gateways/"))
    assert "No gateways yet" not in listing  # ... the list shows
    assert "sbc-provider" in listing and "gw-alpha" in listing
    provider_row = listing.split(f'id="gateway-{provided.id}"')[1].split("</tr>")[0]
    assert "your provider" in provider_row and "read-only" in provider_row
    assert f"/gateways/{provided.id}/edit" not in listing
    assert '<td class="num">1</td>' in provider_row  # Alpha's one account, not the operator's or Beta's
    assert "Operator" not in provider_row
    own_row = listing.split(f'id="gateway-{own.id}"')[1].split("</tr>")[0]
    assert f"/gateways/{own.id}/edit" in own_row
    assert user.get(f"/gateways/{provided.id}/edit").status_code == 404  # still the provider's to edit
    # A sibling reseller sees the provider's gateway too, never Alpha's.
    beta = _text(login(tree.beta_admin).get("/gateways/"))
    assert "sbc-provider" in beta and "gw-alpha" not in beta


def test_account_form_offers_only_rate_tables_the_reseller_sees(tree, login):
    """The provider's vendor tables are not offered; one the provider assigned stays, marked, and is kept."""
    factories.rate_table(tree.root, "Operator vendor costs", rates=[("44", "0.0100")])
    assigned = factories.rate_table(tree.root, "Operator retail", rates=[("44", "0.0200")])
    own = factories.rate_table(tree.alpha, "Alpha sell", rates=[("44", "0.0300")])
    customer = factories.client(tree.alpha, "Alpha customer")
    account = factories.account(
        customer, "a1", ident_by="name", ident_value="a1", orig_enabled=True, orig_rate_table_id=assigned.id
    )
    db.session.commit()
    user = login(tree.alpha_admin)

    rates_list = _text(user.get("/rate-tables/"))
    assert "Alpha sell" in rates_list and "Operator vendor costs" not in rates_list
    form = _text(user.get(f"/accounts/{account.id}/edit"))
    assert "Alpha sell" in form
    assert "Operator vendor costs" not in form  # hidden from the list, so not offered
    assert "Operator retail (USD) (your provider&#39;s table: kept as it is)" in form
    new_form = _text(user.get(f"/accounts/new?client_id={customer.id}"))
    assert "Operator vendor costs" not in new_form and "Operator retail" not in new_form
    # Posting the provider's hidden table is refused like any table the company may not use.
    options = _text(user.get(f"/accounts/options?client_id={customer.id}", headers=HTMX))
    assert "Operator vendor costs" not in options
    # The operator's admin, who sees both, is offered both for the same client.
    operator = _text(login(tree.root_admin).get(f"/accounts/{account.id}/edit"))
    assert "Operator vendor costs" in operator and "Alpha sell" in operator
    assert own.id  # Alpha's own table is usable as before


def _call(orig_account, term_account, call_id: str, charge: str, cost: str) -> CallStat:
    """One answered call of a minute."""
    stat = CallStat(
        call_id=call_id, orig_account_id=orig_account.id, orig_client_id=orig_account.client_id,
        term_account_id=term_account.id, term_client_id=term_account.client_id, number="441234567",
        orig_code="44", term_code="44", start_at=datetime.now(UTC) - timedelta(hours=1), duration=60,
        orig_billed=60, term_billed=60, customer_rate=Decimal(charge), vendor_rate=Decimal(cost),
        customer_charge=Decimal(charge), vendor_cost=Decimal(cost), answered=True, sip_code=200,
    )  # fmt: skip
    db.session.add(stat)
    return stat


def test_calls_say_the_providers_cost_is_hidden_instead_of_a_full_margin(tree, login):
    """A reseller's calls to its provider's vendors: cost "hidden", no "Margin (100.0 %)"."""
    customer = factories.account(factories.client(tree.alpha, "Alpha customer"), "a1", orig_enabled=True)
    provider_vendor = factories.account(factories.client(tree.root, "Globex"), "g1", term_enabled=True)
    own_vendor = factories.account(factories.client(tree.alpha, "Alpha vendor"), "v1", term_enabled=True)
    _call(customer, provider_vendor, "c1", "1.0000", "0.4000")
    db.session.commit()
    user = login(tree.alpha_operator)

    page = _text(user.get("/statistics/"))
    cost = page.split('id="tile-cost"')[1].split("</div>")[0]
    margin = page.split('id="tile-margin"')[1].split("</div>")[0]
    assert "100.0 %" not in margin and "hidden" in cost and "0.40" not in cost
    assert "cost hidden: set by your provider" in margin and "1.00" not in margin
    assert "your provider's vendor" in page and "Globex" not in page
    # The operator sees the real cost and margin of the same call.
    operator = _text(login(tree.root_admin).get("/statistics/"))
    assert "60.0 %" in operator.split('id="tile-margin"')[1].split("</div>")[0]

    # With a call to its own vendor as well, the margin covers the calls whose cost Alpha sees.
    _call(customer, own_vendor, "c2", "2.0000", "1.5000")
    db.session.commit()
    page = _text(user.get("/statistics/"))
    margin = page.split('id="tile-margin"')[1].split("</div>")[0]
    assert "0.50" in margin and "25.0 %" in margin and "of the calls whose cost you see" in margin
    assert "1 calls: set by your provider" in page.split('id="tile-cost"')[1].split("</div>")[0]


def test_empty_static_terminator_picker_says_why(tree, login):
    """A reseller without terminators of its own: the static pickers point to dynamic rules."""
    plan = factories.plan(tree.alpha, "Alpha plan")
    factories.account(factories.client(tree.root, "Globex"), "g1", term_enabled=True)
    db.session.commit()
    user = login(tree.alpha_operator)
    for rule_type in ("static_client", "static_account"):
        row = _text(user.get(f"/plans/{plan.id}/rules/new?refresh=1&type={rule_type}", headers=HTMX))
        assert "none of your clients has a terminator account: use a dynamic rule" in row, rule_type
        assert "Globex" not in row
    own = factories.account(factories.client(tree.alpha, "Alpha vendor"), "v1", term_enabled=True)
    db.session.commit()
    row = _text(user.get(f"/plans/{plan.id}/rules/new?refresh=1&type=static_account", headers=HTMX))
    assert "Alpha vendor / v1" in row and "use a dynamic rule" not in row
    assert own.id


def test_manager_page_is_scoped_for_resellers(tree, login, app):
    """No "Run now" and no system-wide figures for a reseller's admin; its own expired rules are counted."""
    from panel import manager

    plan = factories.plan(tree.alpha, "Alpha plan")
    beta_plan = factories.plan(tree.beta, "Beta plan")
    past = datetime.now(UTC) - timedelta(minutes=5)
    factories.rule(plan, "44", expires_at=past)
    factories.rule(beta_plan, "44", expires_at=past)
    factories.rule(beta_plan, "49", expires_at=past)
    db.session.commit()
    manager.run_once(app)
    assert db.session.query(AuditEntry).filter_by(action="delete").count() == 3

    reseller = _text(login(tree.alpha_admin).get("/manager/"))
    assert "Run now" not in reseller
    assert "Quality rows" not in reseller and "Snapshot size" not in reseller
    assert "Last update read" not in reseller
    assert "PANEL_MANAGER_PERIOD_SECONDS" not in reseller and "Errors in 24 h" not in reseller
    assert "Your rules expired" in reseller
    own = reseller.split("Your rules expired")[1].split("</tr>")[0]
    assert "1 in 24 h" in own  # Alpha's one rule, not Beta's two
    assert login(tree.alpha_admin).post("/manager/run", headers=HTMX).status_code == 403

    operator = _text(login(tree.root_admin).get("/manager/"))
    assert "Run now" in operator and "Quality rows" in operator and "3 in 24 h" in operator
