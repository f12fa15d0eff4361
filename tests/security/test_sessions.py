"""Sessions and CSRF: cookie flags behind HTTPS, sessions ended by admins, roles at once, CSRF on writes.

The login rate limit and the password change by the user itself are tested in tests/foundation/test_auth.py.
"""

import importlib
from decimal import Decimal

import pytest
from flask import url_for

from panel import config
from panel.extensions import db
from panel.models import Client
from tests import factories
from tests.security import world as w


def _config_flags(monkeypatch, value: str | None) -> tuple[bool, bool]:
    """The cookie settings as the panel reads them from the environment (panel.config read afresh)."""
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    if value is None:
        monkeypatch.delenv("PANEL_SECURE_COOKIES", raising=False)
    else:
        monkeypatch.setenv("PANEL_SECURE_COOKIES", value)
    fresh = importlib.reload(config)
    return fresh.Config.SESSION_COOKIE_SECURE, fresh.Config.REMEMBER_COOKIE_SECURE


def test_secure_cookies_setting(monkeypatch):
    """PANEL_SECURE_COOKIES=1 (behind HTTPS) marks the session and remember cookies Secure; off by default."""
    original = config.Config
    try:
        assert _config_flags(monkeypatch, None) == (False, False)
        assert _config_flags(monkeypatch, "1") == (True, True)
        assert _config_flags(monkeypatch, "0") == (False, False)
    finally:
        monkeypatch.undo()
        importlib.reload(config)
        config.Config = original  # the class the app and other tests hold, not a fresh copy


def _session_cookie(response) -> str:
    """The Set-Cookie header of the session cookie."""
    cookies = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert cookies, response.headers
    return cookies[0]


@pytest.mark.parametrize(
    ("app_config", "secure"), [({"SESSION_COOKIE_SECURE": True}, True), ({}, False)], ids=["https", "http"]
)
def test_session_cookie_flags(client, tree, secure):
    """The session cookie is HttpOnly and SameSite=Lax always, and Secure when the setting is on."""
    response = client.post("/auth/login", data={"username": "alpha_admin", "password": factories.PASSWORD})
    assert response.status_code == 302
    cookie = _session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


def test_role_change_applies_to_open_sessions(login, tree):
    """A user demoted to viewer is refused writes in the session it already has."""
    session = login(tree.alpha_operator)
    assert session.post("/users/new").status_code == 403  # operators do not manage users
    admin = login(tree.alpha_admin)
    data = {"company_id": tree.alpha.id, "role": "viewer", "full_name": "", "email": ""}
    assert admin.post(f"/users/{tree.alpha_operator.id}/edit", data=data).status_code == 303
    assert session.get("/").status_code == 200
    assert session.post("/clients/new", data={"name": "Acme"}).status_code == 403


def test_admin_reset_and_deactivation_end_sessions(login, tree):
    """A password reset and a deactivation by an admin log the user out everywhere (session_version)."""
    first, second = login(tree.sub_operator), login(tree.alpha_viewer)
    admin = login(tree.alpha_admin)
    password = "brand-new-pass-7"
    admin.post(f"/users/{tree.sub_operator.id}/password", data={"new": password, "confirm": password})
    admin.post(f"/users/{tree.alpha_viewer.id}/deactivate")
    assert first.get("/").status_code == 302 and second.get("/").status_code == 302
    db.session.expire_all()
    assert tree.sub_operator.session_version == 2 and tree.alpha_viewer.session_version == 2


def test_forged_session_id_is_refused(app, tree):
    """A session naming a user with a wrong version (or no version) is not logged in."""
    for forged in (f"{tree.alpha_admin.id}:99", f"{tree.alpha_admin.id}", "x:y"):
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = forged
        assert client.get("/").status_code == 302


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_every_write_needs_the_csrf_token(app, login):
    """Every write route of the panel (found from the URL map) refuses a request without the CSRF token."""
    world = w.build()
    admin = login(world.tree.root_admin)
    failures, checked = [], 0
    with app.test_request_context():
        targets = [
            (rule, url_for(rule.endpoint, **w.fill(rule, world.alpha)))
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            and not rule.endpoint.startswith("api.")
            and rule.arguments <= set(w.URL_VARIABLES)
        ]
    for rule, url in targets:
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            before = w.fingerprint()
            for headers in ({}, {"HX-Request": "true"}):
                response = admin.open(
                    url, method=method, data={"name": "csrf"}, headers=headers, buffered=True
                )
                if response.status_code != 400:
                    failures.append(
                        f"{method} {url} [{rule.endpoint}] htmx={bool(headers)}: {response.status_code}"
                    )
            if w.fingerprint() != before:
                failures.append(f"{method} {url}: changed {w.describe_change(before, w.fingerprint())}")
            checked += 1
    assert checked > 10
    assert not failures, "writes accepted without the CSRF token:\n" + "\n".join(failures)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_csrf_token_from_the_page_is_accepted(app, login, tree):
    """With the token of the page (as forms and htmx send it) an admin's write goes through."""
    import re

    admin = login(tree.alpha_admin)
    page = admin.get("/companies/new").get_data(as_text=True)
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    data = {"name": "Gamma", "parent_id": tree.alpha.id, "kind": "manager"}
    assert admin.post("/companies/new", data=data).status_code == 400
    response = admin.post("/companies/new", data=data, headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/companies/")


def _login_from(client, password: str, forwarded: str):
    """A login post arriving through a proxy at 10.0.0.1 for the visitor `forwarded`."""
    return client.post(
        "/auth/login",
        data={"username": "alpha_operator", "password": password},
        headers={"X-Forwarded-For": forwarded},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )


LIMITS = {"LOGIN_MAX_FAILURES_PER_ADDRESS": 2, "LOGIN_MAX_FAILURES_PER_USER": 100}


@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXIES": 1, **LIMITS}])
def test_rate_limit_behind_a_proxy_counts_the_visitor(app, tree):
    """With PANEL_TRUSTED_PROXIES the per-address limit blocks the visitor, not everyone behind the proxy."""
    for _ in range(2):
        assert _login_from(app.test_client(), "wrong-password-1", "203.0.113.5").status_code == 401
    response = _login_from(app.test_client(), factories.PASSWORD, "203.0.113.5")
    assert response.status_code == 429 and b"from your address" in response.data
    assert _login_from(app.test_client(), factories.PASSWORD, "203.0.113.6").status_code == 302


@pytest.mark.parametrize("app_config", [LIMITS])
def test_forwarded_header_ignored_without_trusted_proxies(app, tree):
    """Without trusted proxies a forged X-Forwarded-For does not dodge the per-address limit."""
    for visitor in ("203.0.113.7", "203.0.113.8"):
        assert _login_from(app.test_client(), "wrong-password-1", visitor).status_code == 401
    assert _login_from(app.test_client(), factories.PASSWORD, "203.0.113.9").status_code == 429


def test_api_tokens_are_stored_hashed_and_revocable(app, tree):
    """A token is kept as its SHA-256 only; a revoked token, or one of a deactivated company, answers 401."""
    import hashlib

    from panel.api.auth import new_token, token_required
    from panel.models import ApiToken
    from panel.models.types import utcnow

    token, digest = new_token()
    assert digest == hashlib.sha256(token.encode()).hexdigest() and token not in digest
    row = ApiToken(company_id=tree.beta.id, name="switch", token_hash=digest, prefix=token[:8])
    db.session.add(row)
    db.session.commit()

    def status() -> int:
        with app.test_request_context("/api/v1/x", headers={"Authorization": f"Bearer {token}"}):
            result = token_required(lambda: "ok")()
            return result[1] if isinstance(result, tuple) else 200

    assert status() == 200
    row.revoked_at = utcnow()
    db.session.commit()
    assert status() == 401


# --- issue 13.8: ending a session ends every copy of it, in every worker ---------------------------------


@pytest.fixture
def workers(app, _schema):
    """Two panel processes on the test database (each its own app, engine, caches; each request its own
    database session, as in production), apart from the test's own app."""
    from tests.conftest import make_test_app

    pair = (make_test_app(_schema), make_test_app(_schema))
    yield pair
    for worker in pair:
        with worker.app_context():
            db.engine.dispose()


def _logged_in(app, username: str):
    """A client of `app` logged in through the login form (a real session cookie)."""
    client = app.test_client()
    response = client.post("/auth/login", data={"username": username, "password": factories.PASSWORD})
    assert response.status_code == 302
    return client


def _copy(cookie_from, into):
    """A stolen copy of a session: the same cookie in another client."""
    into.set_cookie("session", cookie_from.get_cookie("session").value)
    return into


def test_logout_ends_every_copy_of_the_session_in_every_worker(tree, workers):
    """A copied session cookie stops working once its user logs out, in this worker and in another one;
    a write through the copy after logout is refused (it went through and was audited under the user)."""
    acme = factories.client(tree.alpha, "Acme")
    db.session.commit()
    credit = {"amount": "5", "note": "payment"}
    one, two = workers
    session = _logged_in(one, "alpha_operator")
    here = _copy(session, one.test_client())
    there = _copy(session, two.test_client())
    assert here.get("/").status_code == 200 and there.get("/").status_code == 200
    assert there.post(f"/clients/{acme.id}/balance", data=credit).status_code < 400
    assert _balance(acme) == 5
    assert session.post("/auth/logout").status_code == 303
    assert here.get("/").status_code == 302 and there.get("/").status_code == 302
    assert there.post(f"/clients/{acme.id}/balance", data=credit).status_code == 302  # to the login page
    assert _balance(acme) == 5


def _balance(client) -> Decimal:
    db.session.expire_all()
    return db.session.get(Client, client.id).balance


@pytest.mark.parametrize("change", ["own password", "admin deactivation"])
def test_password_change_and_deactivation_end_sessions_in_every_worker(tree, workers, change):
    """A session open in one worker ends when the password is changed, or the user deactivated, through
    another worker."""
    one, two = workers
    victim = _logged_in(one, "alpha_operator")
    assert victim.get("/").status_code == 200
    if change == "own password":
        other = _logged_in(two, "alpha_operator")
        new = "brand-new-pass-8"
        data = {"current": factories.PASSWORD, "new": new, "confirm": new}
        assert other.post("/auth/password", data=data).status_code == 303
        assert other.get("/").status_code == 200  # the session that changed it continues
    else:
        admin = _logged_in(two, "alpha_admin")
        assert admin.post(f"/users/{tree.alpha_operator.id}/deactivate").status_code in (200, 204, 302, 303)
    assert victim.get("/").status_code == 302
