"""The companies section: the tree, creating companies by kind, renaming, deactivating, deleting."""

import html

from sqlalchemy import func, select

from panel.api.auth import hash_token
from panel.extensions import db
from panel.models import ApiToken, AuditEntry, Company
from panel.models.types import utcnow
from tests import factories


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _page_after(client, url: str, data: dict | None = None) -> str:
    """POST `url`: it answers a redirect (303); the text of the page it leads to."""
    response = client.post(url, data=data)
    assert response.status_code == 303
    return _text(client.get(response.headers["Location"]))


def _company(name: str) -> Company | None:
    return db.session.scalar(select(Company).where(Company.name == name))


def test_tree_shows_own_subtree_only(login, tree):
    """A reseller's admin sees its company and the companies below it, never its parent or sibling."""
    page = _text(login(tree.alpha_admin).get("/companies/"))
    assert "Alpha Sub" in page and "Sub-reseller" in page
    assert "Beta" not in page and "Operator" not in page
    assert "New company" in page


def test_search_and_state_filter(login, tree):
    """The search narrows the tree by name; the state filter keeps active or inactive companies."""
    tree.sub.active = False
    db.session.commit()
    client = login(tree.root_admin)
    page = _text(client.get("/companies/?q=sub"))
    assert "Alpha Sub" in page and "Beta" not in page
    page = _text(client.get("/companies/?state=inactive"))
    assert "Alpha Sub" in page and ">Beta<" not in page


def test_admin_creates_companies_by_kind(login, tree):
    """Sub-resellers and managers go under a reseller; a reseller under a reseller is refused, with why."""
    client = login(tree.alpha_admin)
    form = client.get("/companies/new")
    assert form.status_code == 200 and "Alpha Sub" in _text(form)
    response = client.post(
        "/companies/new", data={"name": "Alpha Sales", "parent_id": tree.alpha.id, "kind": "manager"}
    )
    assert response.status_code == 303
    sales = _company("Alpha Sales")
    assert (sales.kind, sales.parent_id, sales.active) == ("manager", tree.alpha.id, True)
    assert f"/companies/{sales.id}" in response.headers["Location"]
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.object_type == "company")).one()
    assert (entry.action, entry.object_id, entry.username) == ("create", sales.id, "alpha_admin")

    response = client.post(
        "/companies/new", data={"name": "Nested", "parent_id": tree.alpha.id, "kind": "reseller"}
    )
    assert response.status_code == 422
    assert "A Reseller holds Sub-resellers and Managers only." in _text(response)
    # A manager holds no companies: it is not offered as a parent and is refused when posted.
    assert "Alpha Sales (Manager)" not in _text(client.get("/companies/new"))
    response = client.post(
        "/companies/new", data={"name": "Under manager", "parent_id": sales.id, "kind": "manager"}
    )
    assert response.status_code == 422
    assert _company("Under manager") is None and _company("Nested") is None


def test_create_refuses_out_of_scope_parent_and_taken_names(login, tree):
    """A parent outside the admin's subtree, a taken name (any case) and an empty name are refused."""
    client = login(tree.alpha_admin)
    response = client.post(
        "/companies/new", data={"name": "Sneaky", "parent_id": tree.beta.id, "kind": "sub_reseller"}
    )
    assert response.status_code == 422
    assert "Choose one of your active companies" in _text(response)
    response = client.post(
        "/companies/new", data={"name": "beta", "parent_id": tree.alpha.id, "kind": "manager"}
    )
    assert response.status_code == 422 and "exists already" in _text(response)
    response = client.post(
        "/companies/new", data={"name": "  ", "parent_id": tree.alpha.id, "kind": "manager"}
    )
    assert response.status_code == 422 and "This field is required." in _text(response)
    assert db.session.scalar(select(func.count()).select_from(Company)) == 4


def test_root_admin_creates_resellers_only_under_root(login, tree):
    """Under the operator only resellers are created."""
    client = login(tree.root_admin)
    response = client.post(
        "/companies/new", data={"name": "Gamma", "parent_id": tree.root.id, "kind": "reseller"}
    )
    assert response.status_code == 303
    response = client.post(
        "/companies/new", data={"name": "Mgr", "parent_id": tree.root.id, "kind": "manager"}
    )
    assert response.status_code == 422
    assert "An Operator holds Resellers only." in _text(response)
    assert _company("Mgr") is None


def test_non_admins_read_only(login, tree):
    """Operators and viewers see the companies but every change answers 403."""
    for user in (tree.alpha_operator, tree.alpha_viewer):
        client = login(user)
        page = _text(client.get(f"/companies/{tree.sub.id}"))
        assert "Alpha Sub" in page and "Rename" not in page and "Deactivate" not in page
        assert client.get("/companies/new").status_code == 403
        assert (
            client.post(
                "/companies/new", data={"name": "X", "parent_id": tree.alpha.id, "kind": "manager"}
            ).status_code
            == 403
        )
        assert client.post(f"/companies/{tree.sub.id}/deactivate").status_code == 403
    assert _company("X") is None and tree.sub.active


def test_sibling_and_parent_companies_are_404(login, tree):
    """An admin of Alpha gets 404 for Beta and for the operator, on pages and on writes."""
    client = login(tree.alpha_admin)
    for company in (tree.beta, tree.root):
        assert client.get(f"/companies/{company.id}").status_code == 404
        assert client.post(f"/companies/{company.id}/edit", data={"name": "Pwned"}).status_code == 404
        assert client.post(f"/companies/{company.id}/deactivate").status_code == 404
        assert client.post(f"/companies/{company.id}/delete").status_code == 404
    assert _company("Pwned") is None and tree.beta.active


def test_rename_with_audit(login, tree):
    """Renaming records the difference; the own company is renamed by the parent's admins only."""
    client = login(tree.alpha_admin)
    response = client.post(f"/companies/{tree.sub.id}/edit", data={"name": "Alpha South", "notes": "renamed"})
    assert response.status_code == 303
    assert _company("Alpha South").notes == "renamed"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "update")).one()
    assert entry.before["name"] == "Alpha Sub" and entry.after["name"] == "Alpha South"
    page = _page_after(client, f"/companies/{tree.alpha.id}/edit", {"name": "Alpha Prime"})
    assert "changed by the admins of its parent" in page
    assert _company("Alpha Prime") is None
    # The root has no parent: its own admins may rename it.
    root_client = login(tree.root_admin)
    assert root_client.post(f"/companies/{tree.root.id}/edit", data={"name": "Carrier"}).status_code == 303
    assert _company("Carrier") is not None


def test_deactivate_cascades_and_logs_out(login, tree):
    """Deactivating a company deactivates the companies below it; their users are logged out."""
    sub_session = login(tree.sub_operator)
    alpha_session = login(tree.alpha_operator)
    assert sub_session.get("/").status_code == 200
    response = login(tree.root_admin).post(f"/companies/{tree.alpha.id}/deactivate")
    assert response.status_code == 303
    db.session.expire_all()
    assert not tree.alpha.active and not tree.sub.active and tree.beta.active
    assert sub_session.get("/").status_code == 302
    assert alpha_session.get("/").status_code == 302
    actions = {(e.object_id, e.action) for e in db.session.scalars(select(AuditEntry))}
    assert actions == {(tree.alpha.id, "deactivate"), (tree.sub.id, "deactivate")}


def test_deactivated_company_tokens_stop(app, login, tree):
    """A deactivated company's API tokens are refused by the API's authentication."""
    from panel.api.auth import token_required

    token = "rp_test-token-alpha"
    db.session.add(
        ApiToken(company_id=tree.alpha.id, name="switch", token_hash=hash_token(token), prefix="rp_test")
    )
    db.session.commit()

    def status() -> int:
        with app.test_request_context("/api/v1/probe", headers={"Authorization": f"Bearer {token}"}):
            result = token_required(lambda: "ok")()
            return result[1] if isinstance(result, tuple) else 200

    assert status() == 200
    login(tree.root_admin).post(f"/companies/{tree.alpha.id}/deactivate")
    db.session.expire_all()
    assert status() == 401


def test_activate_needs_active_parent(login, tree):
    """A company below an inactive one cannot be activated before its parent."""
    client = login(tree.root_admin)
    client.post(f"/companies/{tree.alpha.id}/deactivate")
    response = client.post(f"/companies/{tree.sub.id}/activate")
    assert "Activate Alpha first" in _text(client.get(response.headers["Location"]))
    db.session.expire_all()
    assert not tree.sub.active
    client.post(f"/companies/{tree.alpha.id}/activate")
    db.session.expire_all()
    assert tree.alpha.active and not tree.sub.active
    client.post(f"/companies/{tree.sub.id}/activate")
    db.session.expire_all()
    assert tree.sub.active


def test_company_with_data_is_never_deleted(login, tree):
    """Delete is refused with what the company holds; an empty company is deleted and its entry kept."""
    factories.client(tree.sub, "Sub client")
    db.session.commit()
    client = login(tree.alpha_admin)
    response = client.post(f"/companies/{tree.sub.id}/delete")
    page = _text(client.get(response.headers["Location"]))
    assert "Alpha Sub holds 1 user and 1 client; it is not deleted. Deactivate it instead." in page
    assert _company("Alpha Sub") is not None

    empty = factories.company("Empty", "manager", tree.alpha)
    db.session.commit()
    response = client.post(f"/companies/{empty.id}/delete")
    assert response.status_code == 303 and response.headers["Location"].endswith("/companies/")
    assert _company("Empty") is None
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "delete")).one()
    assert entry.company_id == tree.alpha.id  # readable by the parent's users
    assert "Empty" in _text(client.get("/audit/?action=delete"))


def test_what_a_company_holds_reads_as_the_operator_names_it(login, tree):
    """Call records it reported count as "call records" (a table name never shows, nor a doubled plural)."""
    from datetime import UTC, datetime

    from panel.models import CallStat

    for n in range(2):
        db.session.add(
            CallStat(company_id=tree.sub.id, call_id=f"c{n}", number="4420", start_at=datetime.now(UTC))
        )
    db.session.commit()
    page = _text(login(tree.alpha_admin).get(f"/companies/{tree.sub.id}"))
    assert "1 user, 2 call records" in page
    assert "call stat" not in page


def test_own_company_not_deactivated_or_deleted(login, tree):
    """An admin cannot deactivate or delete its own company: each answer says so (the delete is refused for
    being its own company, before what it holds is even counted), and Alpha stays, active."""
    client = login(tree.alpha_admin)
    page = _page_after(client, f"/companies/{tree.alpha.id}/deactivate")
    assert "Your own company is deactivated by the admins of its parent company." in page
    page = _page_after(client, f"/companies/{tree.alpha.id}/delete")
    assert "Your own company cannot be deleted here." in page and "it is not deleted" not in page
    db.session.expire_all()
    assert _company("Alpha") is not None and _company("Alpha").active


def test_company_page_lists_users_children_and_tokens(login, tree):
    """The company page shows its users, the companies below and its API tokens with last use (read-only)."""
    tokens = [
        (tree.alpha, "switch-a", "rp_abc", {"last_used_at": utcnow()}),
        (tree.alpha, "old", "rp_old", {"revoked_at": utcnow()}),
        (tree.beta, "beta-token", "rp_bet", {}),
    ]
    for mark, (company, name, prefix, fields) in zip("abc", tokens, strict=True):
        db.session.add(
            ApiToken(company_id=company.id, name=name, token_hash=mark * 64, prefix=prefix, **fields)
        )
    db.session.commit()
    page = _text(login(tree.alpha_viewer).get(f"/companies/{tree.alpha.id}"))
    assert "alpha_operator" in page and "alpha_viewer" in page and "Alpha Sub" in page
    assert "switch-a" in page and "rp_abc" in page and "old" in page
    assert "beta-token" not in page and "sub_operator" not in page
    assert "never" in page  # a user who never logged in


def test_name_is_escaped(login, tree):
    """A company name with markup is shown as text."""
    client = login(tree.alpha_admin)
    client.post(
        "/companies/new", data={"name": "<script>x()</script>", "parent_id": tree.alpha.id, "kind": "manager"}
    )
    raw = client.get("/companies/").get_data(as_text=True)
    assert "<script>x()</script>" not in raw and "&lt;script&gt;x()&lt;/script&gt;" in raw
