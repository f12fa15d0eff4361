"""Routing policies: the shipped four, list, create/edit with checked weights, copy, delete unless used."""

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import Policy
from panel.policies.defaults import ensure_default_policies
from tests import factories
from tests.reference.conftest import audit_entries

SHIPPED = {
    "Simple LCR": (1, 0, 0, 0),
    "Simple Quality": (0, 1, 1, 0),
    "Proportional": (2, 1, 1, 0),
    "Random": (0, 0, 0, 0),
}


def _weights(policy: Policy) -> tuple[int, int, int, int]:
    return (policy.rate_weight, policy.asr_weight, policy.acd_weight, policy.pdd_weight)


def _policies(company_id: int) -> dict[str, Policy]:
    db.session.expire_all()
    return {p.name: p for p in db.session.scalars(select(Policy).where(Policy.company_id == company_id))}


def test_ensure_default_policies_creates_the_four_once(tree):
    """The four shipped policies with SPEC's weights; a second call creates nothing."""
    created = ensure_default_policies(tree.root.id)
    db.session.commit()
    assert {p.name for p in created} == set(SHIPPED)
    assert {name: _weights(p) for name, p in _policies(tree.root.id).items()} == SHIPPED
    assert ensure_default_policies(tree.root.id) == []
    entries = audit_entries("policy", "create")
    assert len(entries) == 4 and {e.username for e in entries} == {"system"}


def test_ensure_default_policies_fills_in_missing_ones(tree):
    """A root that kept only some of them gets the others back; its own policies are untouched."""
    factories.policy(tree.root, "Simple LCR", rate_weight=5)
    created = ensure_default_policies(tree.root.id)
    assert sorted(p.name for p in created) == ["Proportional", "Random", "Simple Quality"]
    assert _policies(tree.root.id)["Simple LCR"].rate_weight == 5


def test_list_shows_the_shipped_policies(login, tree, text_of):
    """The shipped policies (created by create-admin and the demo data) are listed with their weights."""
    ensure_default_policies(tree.root.id)
    db.session.commit()
    page = text_of(login(tree.root_admin).get("/policies/"))
    for name in SHIPPED:
        assert name in page
    assert "Rate 2 · ASR 1 · ACD 1" in page and "no factor: routes are shuffled" in page


def test_resellers_see_only_their_own_policies(login, tree, text_of):
    """Alpha's users do not list the operator's policies (they use them in rule pickers) nor Beta's."""
    ensure_default_policies(tree.root.id)
    factories.policy(tree.alpha, "Alpha LCR", rate_weight=1)
    factories.policy(tree.beta, "Beta LCR", rate_weight=1)
    db.session.commit()
    page = text_of(login(tree.alpha_operator).get("/policies/"))
    assert "Alpha LCR" in page and "Beta LCR" not in page and "Simple Quality" not in page
    client = login(tree.alpha_operator)
    root_policy = db.session.scalar(select(Policy).where(Policy.company_id == tree.root.id))
    assert client.get(f"/policies/{root_policy.id}/edit").status_code == 404
    assert client.post(f"/policies/{root_policy.id}/copy").status_code == 404


def test_create_and_edit_check_the_weights(login, tree, text_of):
    """Weights are whole numbers from 0 to 100; a valid policy is saved and audited."""
    client = login(tree.alpha_operator)
    data = {
        "name": "Quality first",
        "company_id": tree.alpha.id,
        "rate_weight": "1",
        "asr_weight": "3",
        "acd_weight": "2",
        "pdd_weight": "1",
    }
    response = client.post("/policies/new", data=data | {"asr_weight": "-1"})
    assert response.status_code == 422 and "from 0 to 100" in text_of(response)
    response = client.post("/policies/new", data=data | {"pdd_weight": "1.5"})
    assert response.status_code == 422
    assert client.post("/policies/new", data=data).status_code == 303
    policy = _policies(tree.alpha.id)["Quality first"]
    assert _weights(policy) == (1, 3, 2, 1)
    response = client.post(f"/policies/{policy.id}/edit", data=data | {"pdd_weight": "0"})
    assert response.status_code == 303
    assert _policies(tree.alpha.id)["Quality first"].factors == {"rate": 1, "asr": 3, "acd": 2}
    assert [e.action for e in audit_entries("policy")] == ["create", "update"]


def test_copy_names_the_copy_and_opens_it(login, tree):
    """Copy creates `<name> (copy)`, then `(copy 2)`, with the same weights, in the same company."""
    ensure_default_policies(tree.root.id)
    db.session.commit()
    client = login(tree.root_admin)
    proportional = _policies(tree.root.id)["Proportional"]
    response = client.post(f"/policies/{proportional.id}/copy")
    assert response.status_code == 303
    copy = _policies(tree.root.id)["Proportional (copy)"]
    assert response.headers["Location"].endswith(f"/policies/{copy.id}/edit")
    assert _weights(copy) == (2, 1, 1, 0)
    client.post(f"/policies/{proportional.id}/copy")
    assert "Proportional (copy 2)" in _policies(tree.root.id)
    assert "Copy of policy Proportional" in audit_entries("policy", "create")[-1].note


def test_delete_refused_while_a_rule_uses_it(login, tree, text_of):
    """The message names the rule's plan; an unused policy is deleted."""
    used = factories.policy(tree.alpha, "Used", rate_weight=1)
    unused = factories.policy(tree.alpha, "Unused")
    plan = factories.plan(tree.alpha, "Retail")
    factories.rule(plan, "49", type="dynamic", policy_id=used.id, priority=5)
    db.session.commit()
    client = login(tree.alpha_operator)
    page = text_of(client.post(f"/policies/{used.id}/delete", follow_redirects=True))
    assert "is not deleted" in page and "plan Retail rule 49 (priority 5)" in page
    assert client.post(f"/policies/{unused.id}/delete").status_code == 303
    assert set(_policies(tree.alpha.id)) == {"Used"}


@pytest.mark.parametrize("path", ["/policies/{id}/edit"])
def test_viewer_reads_only(login, tree, path, text_of):
    """A viewer sees the list without actions and cannot write."""
    policy = factories.policy(tree.alpha, "Alpha LCR", rate_weight=1)
    db.session.commit()
    client = login(tree.alpha_viewer)
    page = text_of(client.get("/policies/"))
    assert "Alpha LCR" in page and "New policy" not in page and ">Copy<" not in page
    assert client.post(f"/policies/{policy.id}/copy").status_code == 403
    assert client.post(path.format(id=policy.id), data={}).status_code == 403
