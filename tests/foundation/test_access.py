"""The one access module (panel/access.py): role decorators and the owner declaration of every model."""

import pytest
from sqlalchemy import select

from panel import access, audit
from panel.extensions import db
from panel.models import Account, AccountNetwork, CallStat, Client, Did, LiveCall, ManagerRun, RoutingRule
from tests import factories


def test_every_scoped_model_declares_its_owner_once():
    """Every model with a company declares `__owner__`; scope and audit owner both come from it."""
    for mapper in db.Model.registry.mappers:
        model = mapper.class_
        if "company_id" in mapper.columns or model in (Account, AccountNetwork, Did, RoutingRule):
            assert getattr(model, "__owner__", None), f"{model.__name__} declares no __owner__"
    with pytest.raises(TypeError, match="ManagerRun"):
        access.scope_condition(ManagerRun, frozenset({1}))


def test_scope_and_audit_owner_agree_for_nested_objects(tree):
    """A DID three steps from its company: scoped for its company only; the audit entry names the client."""
    client = factories.client(tree.sub, "Sub client")
    account = factories.account(client, "a1", ident_by="ip", ident_value="192.0.2.10")
    did = factories.did(account, "4420000001")
    db.session.commit()
    assert access.owner_of(did) == (tree.sub.id, client.id)
    assert audit.owner(account) == (tree.sub.id, client.id)
    assert access.owner_of(client) == (tree.sub.id, client.id)
    for company, seen in ((tree.alpha, True), (tree.sub, True), (tree.beta, False)):
        found = db.session.scalar(access.scoped(Did, company_id=company.id).where(Did.id == did.id))
        assert (found is not None) is seen, company.name


def test_pending_object_owner_is_read_through_its_foreign_key(tree):
    """A new account with only `client_id` set (relationship not loaded) still has an owner."""
    client = factories.client(tree.beta, "Beta client")
    db.session.commit()
    account = Account(client_id=client.id, name="new", ident_by="name", ident_value="x")
    assert access.owner_of(account) == (tree.beta.id, client.id)


def test_either_side_owns_calls_and_statistics(tree):
    """CallStat and LiveCall declare two owner paths (originator, terminator): either one keeps the row."""
    alpha = factories.client(tree.alpha, "A")
    beta = factories.client(tree.beta, "B")
    alpha_account = factories.account(alpha, "a", ident_by="name", ident_value="a")
    db.session.add(LiveCall(call_id="c1", orig_account_id=alpha_account.id))
    db.session.commit()
    assert db.session.scalars(access.scoped(LiveCall, company_id=tree.alpha.id)).all()
    assert not db.session.scalars(access.scoped(LiveCall, company_id=tree.beta.id)).all()
    text = str(access.scope_condition(CallStat, frozenset({beta.company_id})))
    assert "orig_client_id" in text and "term_client_id" in text
    assert db.session.scalar(select(Client.id).where(access.scope_condition(Client, frozenset()))) is None


def _add_view(app, decorator):
    """Add one decorated test view to the app (before its first request); its URL."""

    def probe():
        return "ok"

    view = decorator(probe)
    app.add_url_rule("/probe-access", "probe_access", view, methods=["GET", "POST"])
    return view


@pytest.mark.parametrize(
    ("decorator", "allowed"),
    [
        (access.reader_required, {"viewer", "operator", "admin", "root"}),
        (access.writer_required, {"operator", "admin", "root"}),
        (access.admin_required, {"admin", "root"}),
        (access.root_required, {"root"}),
    ],
)
def test_role_decorators(app, tree, login, decorator, allowed):
    """Each decorator lets exactly its roles through, on GET and POST alike; the others get 403."""
    view = _add_view(app, decorator)
    assert access.view_roles(view)[0] == access.view_roles(view)[1]
    users = {
        "viewer": tree.alpha_viewer,
        "operator": tree.alpha_operator,
        "admin": tree.alpha_admin,
        "root": tree.root_admin,
    }
    for name, user in users.items():
        client = login(user)
        expected = 200 if name in allowed else 403
        assert client.get("/probe-access").status_code == expected, name
        if name != "viewer":  # a viewer's POST is refused by the global safety net as well
            assert client.post("/probe-access").status_code == expected, name


def test_read_only_form_lets_viewers_read_but_not_write(app, tree, login):
    """`writer_required(reads="reader")`: a viewer GETs the form (200); its POST is refused (403)."""
    view = _add_view(app, access.writer_required(reads="reader"))
    assert access.view_roles(view) == ("reader", "writer")
    client = login(tree.alpha_viewer)
    assert client.get("/probe-access").status_code == 200
    assert client.post("/probe-access").status_code == 403
    assert login(tree.alpha_operator).post("/probe-access").status_code == 200


def test_every_panel_view_declares_its_role(app):
    """Every route of a panel section (not the API, not the public pages) carries one of the decorators."""
    from panel import PUBLIC_ENDPOINTS

    missing = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint not in PUBLIC_ENDPOINTS and not endpoint.startswith("api.") and endpoint != "static"
        if access.view_roles(view) is None
    ]
    assert not missing, f"declare a role with a panel.access decorator on: {sorted(missing)}"
