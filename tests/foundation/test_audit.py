"""The audit mechanism (SPEC §8): entries written in the change's transaction, secrets masked, differences."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from panel import audit
from panel.extensions import db
from panel.models import AuditEntry, Client, Rate
from tests import factories


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


def test_entry_committed_with_the_change(tree):
    """A change and its entry are committed together: who, what, before and after."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    before = audit.state(client)
    client.name = "Acme Telecom"
    client.balance = Decimal("12.50")
    audit.record("update", client, before=before, user=tree.alpha_operator)
    db.session.commit()
    entry = db.session.scalars(select(AuditEntry)).one()
    assert (entry.username, entry.user_id) == ("alpha_operator", tree.alpha_operator.id)
    assert (entry.object_type, entry.object_id, entry.object_label) == ("client", client.id, "Acme Telecom")
    assert (entry.company_id, entry.client_id) == (tree.alpha.id, client.id)
    assert entry.at is not None and entry.at.tzinfo is not None
    assert dict((k, (b, a)) for k, b, a in audit.changes(entry)) == {
        "balance": ("0", "12.5"),
        "name": ("Acme", "Acme Telecom"),
    }


def test_entry_rolled_back_with_the_change(tree):
    """A rollback drops the change and its entry: there is never an entry for a change that did not happen."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    before = audit.state(client)
    client.name = "Renamed"
    audit.record("update", client, before=before, user=tree.alpha_operator)
    db.session.flush()
    assert _count() == 1  # visible inside the transaction
    db.session.rollback()
    assert _count() == 0
    assert db.session.get(Client, client.id).name == "Acme"


def test_failed_commit_leaves_no_entry(tree):
    """When the change itself fails (a unique name taken), neither the object nor its entry is stored."""
    factories.client(tree.alpha, "Taken")
    db.session.commit()
    duplicate = Client(company_id=tree.alpha.id, name="Taken")
    db.session.add(duplicate)
    with pytest.raises(IntegrityError):
        audit.record("create", duplicate, user=tree.alpha_operator)
        db.session.commit()
    db.session.rollback()
    assert _count() == 0
    assert db.session.scalar(select(func.count()).select_from(Client)) == 1


def test_create_and_delete_entries(tree):
    """A create has only an after state; a delete keeps the last state as before and survives the object."""
    client = factories.client(tree.alpha, "Short lived")
    audit.record("create", client, user=tree.alpha_admin)
    db.session.commit()
    before = audit.state(client)
    client_id = client.id
    db.session.delete(client)
    audit.record("delete", client, before=before, user=tree.alpha_admin)
    db.session.commit()
    created, deleted = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert created.before is None and created.after["name"] == "Short lived"
    assert deleted.after is None and deleted.before["name"] == "Short lived"
    assert deleted.object_id == client_id and deleted.client_id == client_id
    assert ("name", "Short lived", None) in audit.changes(deleted)


def test_secrets_are_masked(tree):
    """Password hashes and encrypted account passwords never enter an entry, only whether one is set."""
    state = audit.state(tree.alpha_operator)
    assert state["password_hash"] == "(set)"
    assert "pbkdf2" not in str(state) and "scrypt" not in str(state)
    client = factories.client(tree.alpha, "Acme")
    account = factories.account(
        client, "a1", ident_by="name", ident_value="login1", password_encrypted="ciphertext"
    )
    assert audit.state(account)["password_encrypted"] == "(set)"


def test_entry_owner_of_nested_objects(tree):
    """Accounts and DIDs belong to their client's history; rules and rates to their plan's/table's company."""
    client = factories.client(tree.sub, "Sub client")
    account = factories.account(client, "a1", ident_by="ip", ident_value="192.0.2.10")
    did = factories.did(account, "4420000001")
    plan = factories.plan(tree.alpha, "P")
    rule = factories.rule(plan, "44")
    factories.rate_table(tree.beta, "T", rates=[("44", "0.01")])
    rate = db.session.scalars(select(Rate)).one()
    for obj in (account, did, rule, rate):
        audit.record("update", obj, before={}, user=tree.root_admin)
    db.session.commit()
    entries = {e.object_type: e for e in db.session.scalars(select(AuditEntry))}
    assert (entries["account"].company_id, entries["account"].client_id) == (tree.sub.id, client.id)
    assert (entries["did"].company_id, entries["did"].client_id) == (tree.sub.id, client.id)
    assert entries["routingrule"].company_id == tree.alpha.id
    assert entries["rate"].company_id == tree.beta.id


def test_changes_ignores_equal_fields(tree):
    """changes() lists only the fields whose value differs, sorted by name."""
    entry = AuditEntry(
        object_type="client",
        action="update",
        before={"a": 1, "b": "x", "c": None},
        after={"a": 1, "b": "y", "d": 2},
    )
    assert audit.changes(entry) == [("b", "x", "y"), ("d", None, 2)]


def test_system_entries_without_user(tree):
    """Entries written outside a request (the manager) name no user and read `system`."""
    client = factories.client(tree.alpha, "Acme")
    entry = audit.record("update", client, before={}, note="by the manager")
    db.session.commit()
    assert entry.user_id is None and entry.username == "system" and entry.note == "by the manager"
