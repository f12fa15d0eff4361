"""The one write path (panel/writes.py): change, entry and commit together; stale edits are conflicts."""

import pytest
from sqlalchemy import delete, func, select, update

from panel import writes
from panel.extensions import db
from panel.models import AuditEntry, Client, RoutingRule
from tests import factories


def _entries() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


def test_change_writes_the_entry_with_the_change(tree):
    """One block: the before-state, the change, the entry with both states, one commit."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    with writes.change(client, note="renamed", user=tree.alpha_operator) as unit:
        client.name = "Acme Telecom"
    db.session.rollback()  # nothing left to roll back: it was committed
    entry = db.session.scalars(select(AuditEntry)).one()
    assert unit.entry is entry and unit.changed
    assert (entry.before["name"], entry.after["name"], entry.note) == ("Acme", "Acme Telecom", "renamed")
    assert db.session.get(Client, client.id).name == "Acme Telecom"


def test_unchanged_state_writes_nothing_when_asked(tree):
    """`skip_unchanged`: saving the same values writes no entry."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    with writes.change(client, skip_unchanged=True) as unit:
        client.name = "Acme"
    assert not unit.changed and _entries() == 0


def test_error_in_the_block_rolls_everything_back(tree):
    """An exception inside the block: no change and no entry."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    with pytest.raises(RuntimeError), writes.change(client):
        client.name = "Half done"
        raise RuntimeError("boom")
    assert db.session.get(Client, client.id).name == "Acme" and _entries() == 0


def test_stale_form_version_is_a_conflict_before_anything_is_written(tree):
    """A form drawn from version 1 after someone saved version 2: Conflict, the object as it is now."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    drawn = client.version
    with writes.change(client):
        client.name = "Saved first"
    assert client.version == drawn + 1
    with pytest.raises(writes.Conflict) as caught, writes.change(client, version=str(drawn)):
        client.name = "Stale"
    assert not caught.value.deleted and caught.value.current.name == "Saved first"
    db.session.rollback()
    assert db.session.get(Client, client.id).name == "Saved first" and _entries() == 1


def test_concurrent_commit_in_between_is_a_conflict(tree):
    """Someone commits between our read and our write (the version moved in the database): Conflict."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    with pytest.raises(writes.Conflict) as caught, writes.change(client):
        client.name = "Ours"
        with db.engine.begin() as other:  # another worker's transaction
            other.execute(update(Client).where(Client.id == client.id).values(name="Theirs", version=9))
    assert not caught.value.deleted and caught.value.current.name == "Theirs"
    assert db.session.get(Client, client.id).name == "Theirs" and _entries() == 0


def test_object_deleted_meanwhile_is_a_conflict_that_says_so(tree):
    """The row is gone when we save (a replace import removed it): Conflict.deleted, nothing written."""
    plan = factories.plan(tree.alpha, "P")
    rule = factories.rule(plan, "44")
    db.session.commit()
    with pytest.raises(writes.Conflict) as caught, writes.change(rule):
        rule.code = "4478"
        with db.engine.begin() as other:
            other.execute(delete(RoutingRule).where(RoutingRule.id == rule.id))
    assert caught.value.deleted and "deleted" in caught.value.message and _entries() == 0


def test_conflict_page_without_htmx_shows_current_values(tree, app, login):
    """A full-page form: 409 with the message and the current values in the form's words."""
    client_obj = factories.client(tree.alpha, "Acme")
    db.session.commit()

    def probe():
        with writes.change(client_obj, version="0"):
            client_obj.name = "Stale"
        return "saved"

    app.add_url_rule("/probe-conflict", "probe_conflict", probe, methods=["POST"])
    response = login(tree.alpha_operator).post("/probe-conflict")
    page = response.data.decode()
    assert response.status_code == 409 and "Someone else saved this client" in page
    assert "Acme" in page and "Stale" not in page
