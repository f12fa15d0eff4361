"""Concurrent edits of one rule (issue 13 item 7): a stale save is a conflict with the current values, and an
edit of a rule removed meanwhile (a replace import) says so; never a silent overwrite, never a 500."""

import re

from sqlalchemy import delete, func, select

from panel.extensions import db
from panel.models import AuditEntry, RoutingRule
from tests.plans.conftest import rule_fields

HX = {"HX-Request": "true"}


def _entries() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


def _version(page: str) -> str:
    """The version carried by an open rule row."""
    return re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)


def test_stale_rule_edit_answers_the_conflict_with_current_values(world, login):
    """Two users open one rule; the second save answers 422 with the message and the first one's values."""
    first, second = login(world.tree.alpha_operator), login(world.tree.alpha_admin)
    rule_id = world.rule_uk.id
    opened = _version(first.get(f"/plans/rules/{rule_id}/edit", headers=HX).data.decode())
    assert _version(second.get(f"/plans/rules/{rule_id}/edit", headers=HX).data.decode()) == opened
    fields = {"type": "static_client", "terminator": str(world.carrier_b.id), "version": opened}
    saved = first.post(
        f"/plans/rules/{rule_id}", data=rule_fields(code="4478", priority="7", **fields), headers=HX
    )
    assert saved.status_code == 200
    before = _entries()
    stale = second.post(
        f"/plans/rules/{rule_id}", data=rule_fields(code="4479", priority="9", **fields), headers=HX
    )
    page = stale.data.decode()
    assert stale.status_code == 422
    assert "Someone else saved this routing rule" in page
    assert 'value="4478"' in page and 'value="7"' in page  # the current values, ready to edit again
    assert _version(page) == str(int(opened) + 1)
    db.session.expire_all()
    assert db.session.get(RoutingRule, rule_id).code == "4478" and _entries() == before


def test_edit_of_a_rule_removed_meanwhile_says_so(world, login):
    """The rule was removed (e.g. by a replace import) while its row was open: 422 saying so, never a 500."""
    client = login(world.tree.alpha_operator)
    rule_id = world.rule_uk.id
    opened = _version(client.get(f"/plans/rules/{rule_id}/edit", headers=HX).data.decode())
    with db.engine.begin() as other:
        other.execute(delete(RoutingRule).where(RoutingRule.id == rule_id))
    data = rule_fields(code="4478", type="static_client", terminator=str(world.carrier_b.id), version=opened)
    response = client.post(f"/plans/rules/{rule_id}", data=data, headers=HX)
    # Loaded fresh by this request, the rule is simply not found; in flight, it is a conflict that says so.
    assert response.status_code in (404, 422)
    if response.status_code == 422:
        assert "was deleted" in response.data.decode()


def test_rule_removed_between_load_and_save_is_a_conflict_not_a_500(world, login, monkeypatch):
    """An import commits between the view's read and its write: 422 "was deleted", not a StaleDataError."""
    from panel.plans import forms

    client = login(world.tree.alpha_operator)
    rule_id = world.rule_uk.id
    apply = forms.RuleForm.apply

    def apply_then_removed(self, rule):
        apply(self, rule)
        with db.engine.begin() as other:  # the import's transaction
            other.execute(delete(RoutingRule).where(RoutingRule.id == rule_id))

    monkeypatch.setattr(forms.RuleForm, "apply", apply_then_removed)
    data = rule_fields(code="4478", type="static_client", terminator=str(world.carrier_b.id))
    response = client.post(f"/plans/rules/{rule_id}", data=data, headers=HX)
    assert response.status_code == 422
    assert "was deleted by someone else (or removed by an import)" in response.data.decode()


def test_delete_of_a_rule_removed_meanwhile_is_done_not_a_500(world, login, monkeypatch):
    """The rule disappears between the view's read and its delete (an import): the delete answers as done."""
    from panel import writes

    client = login(world.tree.alpha_operator)
    rule_id = world.rule_uk.id
    record = writes.audit.record

    def removed_first(action, obj, **kwargs):
        with db.engine.begin() as other:
            other.execute(delete(RoutingRule).where(RoutingRule.id == rule_id))
        return record(action, obj, **kwargs)

    monkeypatch.setattr(writes.audit, "record", removed_first)
    before = _entries()
    response = client.post(f"/plans/rules/{rule_id}/delete", headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(RoutingRule, rule_id) is None and _entries() == before
