"""Fixtures of the what-if tests: the routing tests' `world` (a customer and vendors V1-V3) reused, and
Alpha's plan with one rule to preview edits of."""

from panel.extensions import db
from tests import factories as f
from tests.routing.conftest import vendor, world  # noqa: F401 - a fixture


def alpha_plan(tree, deck: list[tuple[str, str]]):
    """Alpha's plan (code deck `deck`) with a customer; vendors V1 (44 at 0.05) and V2 (44 at 0.06); rule
    44 -> V1. Sets tree.plan, tree.rule, tree.v1, tree.v2 and returns the tree."""
    code_deck = f.code_deck(tree.alpha, "Deck", deck)
    plan = f.plan(tree.alpha, "Alpha plan", code_deck_id=code_deck.id)
    rates = f.rate_table(tree.alpha, "Customer", [("44", "0.10")])
    customer = f.client(tree.alpha, "Cust", orig_rate_table_id=rates.id, routing_plan_id=plan.id)
    f.account(customer, "cust", ident_value="198.51.100.10", orig_enabled=True)
    tree.v1 = vendor(tree.alpha, "V1", [("44", "0.05")], ip="203.0.113.1")
    tree.v2 = vendor(tree.alpha, "V2", [("44", "0.06")], ip="203.0.113.2")
    tree.rule = f.rule(plan, "44", "static_client", terminator_client_id=tree.v1.client.id)
    tree.plan = plan
    db.session.commit()
    return tree
