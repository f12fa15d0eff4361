"""Fixtures of the manager, CDR, live-call and statistics tests: a small carrier and API tokens."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from panel.api.auth import new_token
from panel.extensions import db
from panel.models import ApiToken
from tests import factories

# Rates in force from 2020 (factories.EPOCH); a price change on 2026-03-01 for the UK.
PRICE_CHANGE = datetime(2026, 3, 1, tzinfo=UTC)


def make_token(company, name: str = "switch") -> str:
    """An API token of the company; returns the token text."""
    token, token_hash = new_token()
    db.session.add(ApiToken(company_id=company.id, name=name, token_hash=token_hash, prefix=token[:8]))
    db.session.commit()
    return token


def bearer(token: str) -> dict:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def carrier(tree):
    """Under Alpha: a customer (Acme) and two vendors (Vox, Tel) with rate tables of known increments.

    Customer table (Acme's client default): 44 at 0.10/min 30/6 with setup fee 0.05; 447 at 0.20/min 60/60;
    4420 at 0.15/min 1/1 until PRICE_CHANGE, then 0.12/min 1/1.
    Vox (account default): 44 at 0.06/min 1/1; 447 at 0.11/min 60/60. Tel: 44 at 0.07/min 60/1.
    """
    alpha = tree.alpha
    c = SimpleNamespace(tree=tree)
    c.customer_rates = factories.rate_table(
        alpha,
        "Acme retail",
        [
            {"code": "44", "name": "UK", "rate": "0.10", "min_time": 30, "interval": 6, "setup_fee": "0.05"},
            {"code": "447", "name": "UK mobile", "rate": "0.20", "min_time": 60, "interval": 60},
            {
                "code": "4420",
                "name": "London",
                "rate": "0.15",
                "min_time": 1,
                "interval": 1,
                "end": PRICE_CHANGE,
            },
            {
                "code": "4420",
                "name": "London",
                "rate": "0.12",
                "min_time": 1,
                "interval": 1,
                "effective_from": PRICE_CHANGE,
            },
        ],
    )
    c.vox_rates = factories.rate_table(
        alpha,
        "Vox buy",
        [
            {"code": "44", "name": "UK", "rate": "0.06", "min_time": 1, "interval": 1},
            {"code": "447", "name": "UK mobile", "rate": "0.11", "min_time": 60, "interval": 60},
        ],
    )
    c.tel_rates = factories.rate_table(
        alpha, "Tel buy", [{"code": "44", "name": "UK", "rate": "0.07", "min_time": 60, "interval": 1}]
    )
    c.acme = factories.client(alpha, "Acme", orig_rate_table_id=c.customer_rates.id)
    c.acme_main = factories.account(c.acme, "acme-main", ident_value="198.51.100.10", orig_enabled=True)
    c.vox = factories.client(alpha, "Vox")
    c.vox_gw = factories.account(
        c.vox, "vox-gw", ident_value="203.0.113.5", term_enabled=True, term_rate_table_id=c.vox_rates.id
    )
    c.tel = factories.client(alpha, "Tel", term_rate_table_id=c.tel_rates.id)
    c.tel_gw = factories.account(c.tel, "tel-gw", ident_value="203.0.113.6", term_enabled=True)
    c.beta_client = factories.client(tree.beta, "Beta customer", orig_rate_table_id=c.customer_rates.id)
    c.beta_acc = factories.account(c.beta_client, "beta-acc", ident_value="192.0.2.50", orig_enabled=True)
    db.session.commit()
    return c


@pytest.fixture
def alpha_token(carrier):
    """An API token of Alpha."""
    return make_token(carrier.tree.alpha)


@pytest.fixture
def routed(carrier):
    """Acme routed by Alpha's plan: code 44 to Vox (priority 1), then to Tel (priority 2)."""
    plan = factories.plan(carrier.tree.alpha, "Alpha UK")
    carrier.vox_rule = factories.rule(
        plan, "44", "static_client", priority=1, terminator_client_id=carrier.vox.id
    )
    carrier.tel_rule = factories.rule(
        plan, "44", "static_client", priority=2, terminator_client_id=carrier.tel.id
    )
    carrier.acme.routing_plan_id = plan.id
    carrier.plan = plan
    db.session.commit()
    return carrier


def route_now(number: str, account, live=None):
    """Route a call of `account` on this process's current snapshot."""
    from panel import snapshots
    from panel.routing.engine import RouteQuery, route

    return route(snapshots.get_snapshot(), RouteQuery(number=number, account_id=account.id), live=live)
