"""The users section: list, create with password rules, role and company, password reset, deactivation."""

import html

from sqlalchemy import func, select

from panel import audit
from panel.extensions import db
from panel.models import AuditEntry, User
from tests import factories

NEW_PASSWORD = "fresh-pass-2024"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def _new_user(company, **fields) -> dict:
    data = {
        "username": "carol",
        "full_name": "Carol Jones",
        "email": "carol@example.com",
        "company_id": company.id,
        "role": "operator",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }
    data.update(fields)
    return data


def test_list_is_scoped_filtered_and_paged(login, tree):
    """Alpha's users see Alpha's and Alpha Sub's users; filters and paging narrow the list."""
    client = login(tree.alpha_viewer)
    page = _text(client.get("/users/"))
    assert all(name in page for name in ("alpha_admin", "alpha_operator", "alpha_viewer", "sub_operator"))
    assert "root_admin" not in page and "beta_admin" not in page
    assert "Read only" in page and "New user" not in page
    page = _text(client.get(f"/users/?company_id={tree.sub.id}"))
    assert "sub_operator" in page and "alpha_admin" not in page
    page = _text(client.get("/users/?role=admin"))
    assert "alpha_admin" in page and "alpha_operator" not in page
    page = _text(client.get("/users/?q=VIEW"))
    assert "alpha_viewer" in page and "alpha_admin" not in page
    assert client.get(f"/users/?company_id={'9' * 30}&page={'9' * 30}").status_code == 200
    table = _text(client.get("/users/?per_page=2&sort=-username")).split('id="users-table"')[1]
    assert "4 found" in table and "page 1 of 2" in table
    assert "sub_operator" in table and "alpha_viewer" in table and "alpha_admin" not in table
    assert table.index("sub_operator") < table.index("alpha_viewer")


def test_admin_creates_user_who_can_log_in(app, login, tree):
    """A created user is stored with a hash, audited without its password, and logs in."""
    client = login(tree.alpha_admin)
    assert client.get("/users/new").status_code == 200
    response = client.post("/users/new", data=_new_user(tree.sub))
    assert response.status_code == 303
    carol = _user("carol")
    assert (carol.company_id, carol.role, carol.email) == (tree.sub.id, "operator", "carol@example.com")
    assert NEW_PASSWORD not in carol.password_hash
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.object_type == "user")).one()
    assert entry.action == "create" and entry.after["password_hash"] == "(set)"
    assert NEW_PASSWORD not in str(entry.after)
    fresh = app.test_client()
    assert fresh.post("/auth/login", data={"username": "carol", "password": NEW_PASSWORD}).status_code == 302


def test_create_refuses_bad_input(login, tree):
    """Weak or mismatched passwords, a taken username (any case), bad names, foreign companies: refused."""
    client = login(tree.alpha_admin)
    cases = [
        (_new_user(tree.alpha, password="short1", confirm="short1"), "Use at least 10 characters."),
        (
            _new_user(tree.alpha, password="onlyletters", confirm="onlyletters"),
            "Mix letters with digits or symbols.",
        ),
        (_new_user(tree.alpha, confirm="something-else-1"), "The passwords differ."),
        (_new_user(tree.alpha, username="ALPHA_ADMIN"), "This username is taken."),
        (_new_user(tree.alpha, username="bad name!"), "Use letters, digits and . _ @ - only."),
        (_new_user(tree.alpha, email="not-an-address"), "Enter an e-mail address"),
        (_new_user(tree.beta), "Choose one of your active companies."),
        (_new_user(tree.alpha, role="superuser"), "Not a valid choice"),
    ]
    for data, message in cases:
        response = client.post("/users/new", data=data)
        assert response.status_code == 422, message
        assert message in _text(response)
    assert db.session.scalar(select(func.count()).select_from(User)) == 6


def test_non_admins_cannot_manage_users(login, tree):
    """Operators get 403 on every change; viewers too (globally)."""
    for user in (tree.alpha_operator, tree.alpha_viewer):
        client = login(user)
        assert client.get(f"/users/{tree.sub_operator.id}").status_code == 200
        assert client.post("/users/new", data=_new_user(tree.alpha)).status_code == 403
        assert client.post(f"/users/{tree.sub_operator.id}/edit", data={"role": "admin"}).status_code == 403
        assert client.post(f"/users/{tree.sub_operator.id}/deactivate").status_code == 403
        assert client.get(f"/users/{tree.sub_operator.id}/password").status_code == 403
    db.session.expire_all()
    assert _user("carol") is None and tree.sub_operator.role == "operator" and tree.sub_operator.active


def test_other_companies_users_are_404(login, tree):
    """An admin never reaches a user of its parent or sibling company."""
    client = login(tree.alpha_admin)
    for user in (tree.root_admin, tree.beta_admin):
        assert client.get(f"/users/{user.id}").status_code == 404
        assert client.post(f"/users/{user.id}/edit", data={"role": "viewer"}).status_code == 404
        assert (
            client.post(f"/users/{user.id}/password", data={"new": "x" * 12, "confirm": "x" * 12}).status_code
            == 404
        )
        assert client.post(f"/users/{user.id}/deactivate").status_code == 404
    db.session.expire_all()
    assert tree.beta_admin.role == "admin" and tree.beta_admin.active


def test_change_role_and_company(login, tree):
    """An admin changes a user's role and moves it within its subtree; the entry shows the difference."""
    client = login(tree.alpha_admin)
    user = tree.alpha_viewer
    response = client.post(
        f"/users/{user.id}/edit",
        data={"full_name": "Vic", "email": "", "company_id": tree.sub.id, "role": "operator"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert (user.role, user.company_id, user.full_name) == ("operator", tree.sub.id, "Vic")
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == user.id)).one()
    changed = {field for field, _b, _a in audit.changes(entry)}
    assert changed == {"role", "company_id", "full_name"}
    page = _text(client.get(f"/audit/{entry.id}"))
    assert "role" in page and "viewer" in page and "operator" in page


def test_admin_cannot_lock_itself_out(login, tree):
    """An admin cannot change its own role, deactivate itself or reset its own password here."""
    client = login(tree.alpha_admin)
    me = tree.alpha_admin
    response = client.post(f"/users/{me.id}/edit", data={"company_id": tree.alpha.id, "role": "viewer"})
    assert response.status_code == 422 and "You cannot change your own role" in _text(response)
    response = client.post(f"/users/{me.id}/deactivate")
    assert "You cannot deactivate yourself" in _text(client.get(response.headers["Location"]))
    response = client.post(f"/users/{me.id}/password", data={"new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 403 and "Password page" in _text(response)
    db.session.expire_all()
    assert me.role == "admin" and me.active and me.session_version == 1


def test_password_reset(app, login, tree):
    """A reset sets the new password (rules apply), ends the user's sessions, and is audited."""
    target = tree.sub_operator
    session = login(target)
    assert session.get("/").status_code == 200
    admin = login(tree.alpha_admin)
    response = admin.post(f"/users/{target.id}/password", data={"new": "tooshort", "confirm": "tooshort"})
    assert response.status_code == 422 and "Use at least 10 characters." in _text(response)
    assert session.get("/").status_code == 200
    response = admin.post(f"/users/{target.id}/password", data={"new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 303
    assert session.get("/").status_code == 302
    fresh = app.test_client()
    assert (
        fresh.post(
            "/auth/login", data={"username": target.username, "password": factories.PASSWORD}
        ).status_code
        == 401
    )
    assert (
        fresh.post("/auth/login", data={"username": target.username, "password": NEW_PASSWORD}).status_code
        == 302
    )
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == target.id)).one()
    assert entry.note == "password reset by an admin" and NEW_PASSWORD not in str(entry.after)


def test_deactivate_and_activate(app, login, tree):
    """A deactivated user is logged out and cannot log in; activated again it can."""
    target = tree.sub_operator
    session = login(target)
    admin = login(tree.alpha_admin)
    assert admin.post(f"/users/{target.id}/deactivate").status_code == 303
    assert session.get("/").status_code == 302
    fresh = app.test_client()
    response = fresh.post("/auth/login", data={"username": target.username, "password": factories.PASSWORD})
    assert response.status_code == 401
    assert admin.post(f"/users/{target.id}/activate").status_code == 303
    response = fresh.post("/auth/login", data={"username": target.username, "password": factories.PASSWORD})
    assert response.status_code == 302
    actions = [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["deactivate", "activate"]


def test_unchanged_edit_writes_no_entry(login, tree):
    """Saving a form without changes writes no audit entry."""
    client = login(tree.alpha_admin)
    user = tree.alpha_viewer
    data = {"full_name": "", "email": "", "company_id": tree.alpha.id, "role": "viewer"}
    assert client.post(f"/users/{user.id}/edit", data=data).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0
