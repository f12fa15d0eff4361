"""Fixtures of the accounts, clients and gateways tests: a small carrier on top of the company tree."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from panel.extensions import db
from panel.models import CallStat
from tests import factories


@pytest.fixture
def carrier(tree):
    """Alpha's clients and accounts, Beta's (another reseller) and the operator's gateways and rate tables.

    - Alpha: client "Acme" with originator `acme-ip` (10.0.0.0/24; 198.51.100.7) and terminator `acme-term`
      (203.0.113.5, SIP 5060, gateway gw-a); client "Empty" without accounts.
    - Alpha Sub: client "SubCo" with account `sub-login` (login sub1).
    - Beta: client "Bravo" with account `bravo-ip` (192.0.2.0/28).
    - Operator: gateways gw-a and gw-b, rate table "Operator retail", plan "Operator plan".
    """
    ns = SimpleNamespace(tree=tree)
    ns.gw_a = factories.gateway(tree.root, "gw-a", "192.0.2.1")
    ns.gw_b = factories.gateway(tree.root, "gw-b", "192.0.2.2")
    ns.gw_beta = factories.gateway(tree.beta, "gw-beta", "192.0.2.3")
    ns.root_table = factories.rate_table(tree.root, "Operator retail")
    ns.alpha_table = factories.rate_table(tree.alpha, "Alpha retail")
    ns.beta_table = factories.rate_table(tree.beta, "Beta retail")
    ns.root_plan = factories.plan(tree.root, "Operator plan")
    ns.alpha_plan = factories.plan(tree.alpha, "Alpha plan")
    ns.beta_plan = factories.plan(tree.beta, "Beta plan")
    ns.acme = factories.client(
        tree.alpha, "Acme", balance=Decimal("100"), orig_rate_table_id=ns.alpha_table.id
    )
    ns.empty = factories.client(tree.alpha, "Empty")
    ns.subco = factories.client(tree.sub, "SubCo")
    ns.bravo = factories.client(tree.beta, "Bravo", balance=Decimal("50"))
    ns.acme_ip = factories.account(
        ns.acme, "acme-ip", ident_value="10.0.0.0/24; 198.51.100.7", orig_enabled=True, orig_tags="gold"
    )
    ns.acme_term = factories.account(
        ns.acme,
        "acme-term",
        ident_value="203.0.113.5",
        term_enabled=True,
        gateways=[ns.gw_a],
        term_rate_table_id=ns.alpha_table.id,
    )
    ns.sub_login = factories.account(
        ns.subco, "sub-login", ident_by="name", ident_value="sub1", orig_enabled=True
    )
    ns.bravo_ip = factories.account(ns.bravo, "bravo-ip", ident_value="192.0.2.0/28", orig_enabled=True)
    db.session.commit()
    return ns


def add_call(call_id: str, orig=None, term=None, charge: str = "0", cost: str = "0", start=None) -> CallStat:
    """A statistics row between two accounts (either may be None)."""
    stat = CallStat(
        call_id=call_id,
        orig_account_id=orig.id if orig else None,
        orig_client_id=orig.client_id if orig else None,
        term_account_id=term.id if term else None,
        term_client_id=term.client_id if term else None,
        number="4420700000",
        start_at=start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        duration=60,
        orig_billed=60,
        term_billed=60,
        customer_charge=Decimal(charge),
        vendor_cost=Decimal(cost),
        answered=True,
        sip_code=200,
    )
    db.session.add(stat)
    db.session.flush()
    return stat


def account_data(client, **overrides) -> dict:
    """A complete, valid account form post for `client`."""
    data = {
        "client_id": str(client.id),
        "name": "new-account",
        "ident_by": "ip",
        "ident_value": "172.16.0.0/24",
        "tech_prefix": "",
        "password": "",
        "notes": "",
        "orig_enabled": "y",
        "orig_rate_table_id": "",
        "orig_routing_plan_id": "",
        "orig_tags": "",
        "orig_capacity": "",
        "term_rate_table_id": "",
        "term_tags": "",
        "term_capacity": "",
        "protocol": "sip",
        "proxy": "",
        "port": "5060",
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data
