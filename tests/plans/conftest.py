"""Data for the Routing Plans tests: vendors, a code deck, policies and a plan with rules in the tree."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from panel.extensions import db
from panel.models import AuditEntry
from tests import factories


@pytest.fixture
def world(tree):
    """Alpha owns a plan with a deck and rules; vendors and policies around the tree; Beta owns its own plan.

    Alpha: code deck "Alpha deck" (44 United Kingdom, 447 UK Mobile, 4479 UK Mobile Vodafone), clients
    Carrier A (terminator account a1, and a disabled one a2) and Carrier B (terminator account b1), policy
    Cheapest, time profile Office hours, plan "Alpha Main" with three rules. Operator: policy Simple LCR,
    client Root Vendor. Beta: client Beta Vendor, plan "Beta Plan" with a rule.
    """
    ns = SimpleNamespace(tree=tree)
    ns.deck = factories.code_deck(
        tree.alpha,
        "Alpha deck",
        [("44", "United Kingdom"), ("447", "UK Mobile"), ("4479", "UK Mobile Vodafone")],
    )
    ns.carrier_a = factories.client(tree.alpha, "Carrier A")
    ns.a1 = factories.account(ns.carrier_a, "a1", ident_value="198.51.100.1", term_enabled=True)
    ns.a2 = factories.account(ns.carrier_a, "a2", ident_value="198.51.100.2", term_enabled=False)
    ns.carrier_b = factories.client(tree.alpha, "Carrier B")
    ns.b1 = factories.account(ns.carrier_b, "b1", ident_value="198.51.100.3", term_enabled=True)
    ns.sub_vendor = factories.client(tree.sub, "Sub Vendor")
    ns.sub_v1 = factories.account(ns.sub_vendor, "sv1", ident_value="198.51.100.4", term_enabled=True)
    ns.root_vendor = factories.client(tree.root, "Root Vendor")
    factories.account(ns.root_vendor, "rv1", ident_value="198.51.100.5", term_enabled=True)
    ns.beta_vendor = factories.client(tree.beta, "Beta Vendor")
    factories.account(ns.beta_vendor, "bv1", ident_value="198.51.100.6", term_enabled=True)
    ns.cheapest = factories.policy(tree.alpha, "Cheapest", rate_weight=1)
    ns.simple_lcr = factories.policy(tree.root, "Simple LCR", rate_weight=1)
    ns.beta_policy = factories.policy(tree.beta, "Beta Policy", rate_weight=1)
    ns.office = factories.time_profile(tree.alpha, "Office hours")
    ns.plan = factories.plan(tree.alpha, "Alpha Main", code_deck_id=ns.deck.id)
    ns.rule_uk = factories.rule(
        ns.plan, "44", "static_client", priority=10, terminator_client_id=ns.carrier_a.id
    )
    ns.rule_mobile = factories.rule(
        ns.plan, "447*", "static_account", priority=5, terminator_account_id=ns.b1.id, capacity=30
    )
    ns.rule_dyn = factories.rule(
        ns.plan, "4479", "dynamic", priority=1, policy_id=ns.cheapest.id, term_tags="gold", stop_hunt=True
    )
    ns.beta_plan = factories.plan(tree.beta, "Beta Plan")
    ns.beta_rule = factories.rule(ns.beta_plan, "33", "static_client", terminator_client_id=ns.beta_vendor.id)
    db.session.commit()
    return ns


def past(hours: int = 1) -> datetime:
    """A moment in the past (UTC, whole minutes)."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(second=0, microsecond=0)


def future(days: int = 30) -> datetime:
    """A moment in the future (UTC, whole minutes)."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(second=0, microsecond=0)


def audit_entries(object_type: str, action: str | None = None) -> list[AuditEntry]:
    """The audit entries of an object type (and action), oldest first."""
    stmt = db.select(AuditEntry).where(AuditEntry.object_type == object_type).order_by(AuditEntry.id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(db.session.scalars(stmt))


def rule_fields(**overrides) -> dict:
    """The form fields of a rule row as the browser posts them."""
    data = {
        "priority": "0",
        "code": "",
        "type": "static_client",
        "terminator": "",
        "profit_margin": "",
        "orig_tags": "",
        "orig_tags_mode": "all",
        "term_tags": "",
        "time_profile_id": "",
        "expires_at": "",
        "balancing": "",
        "min_length": "",
        "max_length": "",
        "min_asr": "",
        "min_acd": "",
        "capacity": "",
    }
    data.update(overrides)
    return data


def typed_form(rows) -> dict:
    """The form data of `rows` (field, text typed, attribute, value stored): each field's text."""
    return {field: text for field, text, _attribute, _stored in rows}


def stored_wrong(obj, rows) -> list[tuple]:
    """The (attribute, value, expected) of each of `rows` (field, text typed, attribute, value stored) whose
    attribute of `obj` is not the stored value, or not of its type."""
    wrong = []
    for _field, _text, attribute, expected in rows:
        value = getattr(obj, attribute)
        if value != expected or type(value) is not type(expected):
            wrong.append((attribute, value, expected))
    return wrong
