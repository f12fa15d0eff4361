"""Logins: log in, log out, wrong password, rate limit, CSRF, viewers read only, session invalidation."""

import re

import pytest

from panel.extensions import db
from tests import factories
from tests.conftest import make_test_app


def _login_post(client, username, password):
    return client.post("/auth/login", data={"username": username, "password": password})


def test_pages_require_login(client, tree):
    """An anonymous visitor is sent to the login page, and htmx requests get HX-Redirect."""
    response = client.get("/accounts/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
    response = client.get("/accounts/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert "/auth/login" in response.headers["HX-Redirect"]


def test_login_and_logout(client, tree):
    """The right password logs in and shows the user and company; logout ends the session."""
    response = _login_post(client, "alpha_operator", factories.PASSWORD)
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert b"alpha_operator" in home.data and b"Alpha" in home.data
    response = client.post("/auth/logout")
    assert response.status_code == 303
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client, tree):
    """A wrong password answers 401 with a message and no session."""
    response = _login_post(client, "alpha_operator", "nope-nope-nope")
    assert response.status_code == 401
    assert b"Wrong username or password" in response.data
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("app_config", [{"LOGIN_MAX_FAILURES_PER_USER": 3}])
def test_login_rate_limited_per_user(client, tree):
    """After the allowed failures even the right password is refused with a clear message."""
    for _ in range(3):
        assert _login_post(client, "alpha_operator", "wrong-password-1").status_code == 401
    response = _login_post(client, "alpha_operator", factories.PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed logins for this user" in response.data
    # Another user from another address is not affected.
    other = client.application.test_client()
    response = other.post(
        "/auth/login",
        data={"username": "beta_admin", "password": factories.PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.9"},
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    "app_config", [{"LOGIN_MAX_FAILURES_PER_ADDRESS": 4, "LOGIN_MAX_FAILURES_PER_USER": 100}]
)
def test_login_rate_limited_per_address(client, tree):
    """Failures for many usernames from one address block that address."""
    for i in range(4):
        _login_post(client, f"nobody{i}", "wrong-password-1")
    response = _login_post(client, "alpha_operator", factories.PASSWORD)
    assert response.status_code == 429
    assert b"from your address" in response.data


def test_viewer_cannot_write(login, tree):
    """A viewer's write answers 403 on routes that take writes (an operator's same post is not refused), and
    nothing is created."""
    from panel.models import Client

    viewer, operator = login(tree.alpha_viewer), login(tree.alpha_operator)
    assert viewer.get("/").status_code == 200
    data = {"name": "Viewer made", "company_id": tree.alpha.id}
    assert viewer.post("/clients/new", data=data).status_code == 403
    assert viewer.post("/accounts/new", data={"name": "x"}).status_code == 403
    assert db.session.query(Client).filter_by(name="Viewer made").count() == 0
    assert operator.post("/clients/new", data=data).status_code not in (403, 405)


def test_password_change_ends_other_sessions(login, tree):
    """Changing one's password logs out the user's other sessions but keeps this one."""
    first, second = login(tree.alpha_operator), login(tree.alpha_operator)
    response = first.post(
        "/auth/password",
        data={"current": factories.PASSWORD, "new": "new-password-42", "confirm": "new-password-42"},
    )
    assert response.status_code == 303
    assert first.get("/").status_code == 200
    assert second.get("/").status_code == 302


def test_deactivated_user_is_logged_out(login, tree):
    """Deactivating a user ends its sessions."""
    session = login(tree.alpha_operator)
    assert session.get("/").status_code == 200
    tree.alpha_operator.active = False
    db.session.commit()
    assert session.get("/").status_code == 302


@pytest.fixture
def csrf_app(_schema):
    """An app with CSRF protection on, as in production."""
    from tests.conftest import _empty_tables

    app = make_test_app(_schema, WTF_CSRF_ENABLED=True)
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def test_csrf_required_on_forms_and_htmx(csrf_app):
    """A write without the token is refused; with the token from the page (as htmx sends it) it passes."""
    tree = factories.company_tree()
    client = csrf_app.test_client()
    # Without a token the login form is refused.
    response = client.post("/auth/login", data={"username": "alpha_operator", "password": factories.PASSWORD})
    assert response.status_code == 400
    page = client.get("/auth/login")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    response = client.post(
        "/auth/login",
        data={"username": "alpha_operator", "password": factories.PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    # Logged in: an htmx POST without the header is refused, with the header from <body hx-headers> accepted.
    home = client.get("/")
    header_token = re.search(rb'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', home.data).group(1).decode()
    assert client.post("/auth/logout", headers={"HX-Request": "true"}).status_code == 400
    response = client.post("/auth/logout", headers={"HX-Request": "true", "X-CSRFToken": header_token})
    assert response.status_code == 303
    assert tree.alpha_operator.username == "alpha_operator"
