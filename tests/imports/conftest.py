"""Fixtures of the import tests: a routing plan to import rules into."""

import pytest

from panel.extensions import db
from tests import factories


@pytest.fixture
def plan(tree):
    """Alpha's plan with two rules (44 and 49, priority 10) to Carrier A; Carrier B exists too."""
    carrier_a = factories.client(tree.alpha, "Carrier A")
    factories.account(carrier_a, "a1", ident_value="198.51.100.1", term_enabled=True)
    carrier_b = factories.client(tree.alpha, "Carrier B")
    factories.account(carrier_b, "b1", ident_value="198.51.100.2", term_enabled=True)
    plan = factories.plan(tree.alpha, "Main")
    factories.rule(plan, "44", "static_client", priority=10, terminator_client_id=carrier_a.id)
    factories.rule(plan, "49", "static_client", priority=10, terminator_client_id=carrier_a.id)
    db.session.commit()
    return plan
