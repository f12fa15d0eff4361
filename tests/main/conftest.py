"""Traffic for the home page tests: an operator vendor, customers of three companies, calls old and new."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from panel.extensions import db
from panel.models import CallStat
from tests import factories


def call(
    n: int, orig, term, *, ago: timedelta, seconds: int = 0, charge="0", cost="0", rule=None
) -> CallStat:
    """A stored call record `ago` before now; answered when it lasted."""
    row = CallStat(
        call_id=f"t-{n}",
        orig_account_id=orig.id,
        orig_client_id=orig.client_id,
        term_account_id=term.id if term else None,
        term_client_id=term.client_id if term else None,
        rule_id=rule.id if rule else None,
        number="4420794600123",
        start_at=datetime.now(UTC) - ago,
        duration=seconds,
        answered=seconds > 0,
        customer_charge=Decimal(charge),
        vendor_cost=Decimal(cost),
        sip_code=200 if seconds else 486,
    )
    db.session.add(row)
    return row


@pytest.fixture
def traffic(tree):
    """Operator: vendor Root Vendor (rv1), customer Root Customer (rc1, balance 500); Alpha: customer Alpha
    Customer (ac1, balance -12.5, capacity 20); Beta: customer Beta Customer (bc1).

    Calls in the last 24 h: rc1 -> rv1: 3 answered (60, 120, 180 s; charge 1.00, cost 0.60 each), 1 failed;
    ac1 -> rv1: 2 answered (30 s each; charge 0.50, cost 0.40), 2 failed; bc1 -> rv1: 1 answered.
    Older than 24 h: 5 answered calls rc1 -> rv1 (not counted).
    """
    ns = SimpleNamespace(tree=tree)
    ns.vendor = factories.client(tree.root, "Root Vendor")
    ns.rv1 = factories.account(ns.vendor, "rv1", ident_value="198.51.100.5", term_enabled=True)
    ns.root_customer = factories.client(tree.root, "Root Customer", balance=Decimal("500"))
    ns.rc1 = factories.account(
        ns.root_customer, "rc1", ident_value="192.0.2.1", orig_enabled=True, orig_capacity=100
    )
    ns.alpha_customer = factories.client(tree.alpha, "Alpha Customer", balance=Decimal("-12.5"))
    ns.ac1 = factories.account(
        ns.alpha_customer, "ac1", ident_value="192.0.2.2", orig_enabled=True, orig_capacity=20
    )
    ns.beta_customer = factories.client(tree.beta, "Beta Customer", balance=Decimal("1000"))
    ns.bc1 = factories.account(ns.beta_customer, "bc1", ident_value="192.0.2.3", orig_enabled=True)
    # Calls 1-8: (originator, seconds, age, (charge, cost) when answered); 0 seconds is a failed call.
    recent = [(ns.rc1, s, timedelta(hours=n), ("1.00", "0.60")) for n, s in enumerate((60, 120, 180, 0), 1)]
    recent += [
        (ns.ac1, s, timedelta(minutes=10 * n), ("0.50", "0.40")) for n, s in enumerate((30, 30, 0, 0), 5)
    ]
    for n, (orig, seconds, ago, money) in enumerate(recent, 1):
        charge, cost = money if seconds else ("0", "0")
        call(n, orig, ns.rv1, ago=ago, seconds=seconds, charge=charge, cost=cost)
    call(9, ns.bc1, ns.rv1, ago=timedelta(hours=2), seconds=90, charge="2", cost="1")
    for n in range(10, 15):
        call(n, ns.rc1, ns.rv1, ago=timedelta(days=3), seconds=600, charge="9", cost="1")
    db.session.commit()
    return ns
