"""Composable fixtures: a database per test run (SQLite or PostgreSQL), the app, a company tree, logins.

PANEL_TEST_DB chooses the database: `sqlite` (default) or a PostgreSQL URL; for PostgreSQL a database of
its own is created for this run (so parallel runs never collide) and dropped at the end. The schema is created
once per run; every test starts with empty tables.
"""

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from panel import create_app
from panel.databases import private_postgres as _create_postgres_database
from panel.extensions import db
from tests import factories

TEST_DB = os.environ.get("PANEL_TEST_DB", "sqlite")
IS_POSTGRES = TEST_DB.startswith("postgres")

# Property tests: fresh random examples in development; in CI (.ci/run sets HYPOTHESIS_PROFILE=ci, as does
# CI=1) the same derandomised examples every run, so a failure there is reproducible by running it again.
# Known edge cases are explicit @example()s in the tests themselves.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("dev")
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_collection_modifyitems(config, items):
    """On the PostgreSQL pass, skip tests marked sqlite_only."""
    if IS_POSTGRES:
        skip = pytest.mark.skip(reason="runs in the SQLite pass only")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """The URL of this run's empty database (schema not created)."""
    if IS_POSTGRES:
        url, drop = _create_postgres_database(TEST_DB)
        yield url
        drop()
    else:
        path: Path = tmp_path_factory.mktemp("db") / "panel.sqlite3"
        yield f"sqlite:///{path}"


def make_test_app(database_url: str, **overrides):
    """A panel app for tests: manager off, CSRF off unless asked, cheap password hashing."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "MANAGER_ENABLED": False,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "IMPORTS_SYNCHRONOUS": True,
        "SECRET_KEY": "test-secret",
        "ACCOUNT_PASSWORD_KEY": "test-account-key",
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="session")
def _schema(database_url):
    """Create every table once for the run."""
    app = make_test_app(database_url)
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return database_url


def _empty_tables() -> None:
    """Delete every row (fast on both databases) so the next test starts clean."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            )
        else:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for table in tables:
                conn.exec_driver_sql(f'DELETE FROM "{table}"')  # noqa: S608 - names from the metadata
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'").first():
                conn.exec_driver_sql("DELETE FROM sqlite_sequence")
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


@pytest.fixture
def app_config():
    """Override this fixture (or parametrize it) to change the app's settings for a test."""
    return {}


@pytest.fixture
def app(_schema, app_config):
    """The app with an empty database and an app context pushed."""
    app = make_test_app(_schema, **app_config)
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """An anonymous test client."""
    return app.test_client()


@pytest.fixture
def tree(app):
    """A company tree: Operator (root) > Alpha (reseller) > Alpha Sub (sub-reseller), Operator > Beta.

    Returns a namespace with the companies and a user of each role: root_admin, alpha_admin, alpha_operator,
    alpha_viewer, sub_operator, beta_admin.
    """
    return factories.company_tree()


@pytest.fixture
def login(app):
    """`login(user)` returns a test client logged in as that user."""

    def _login(user):
        test_client = app.test_client()
        with test_client.session_transaction() as session:
            session["_user_id"] = user.get_id()
            session["_fresh"] = True
        return test_client

    return _login


@pytest.fixture
def live_server(app, _schema):
    """The panel served over HTTP on a free port (CSRF on, as in production), against the test database.

    Data the test creates must be committed to be seen. Returns the base URL.
    """
    import threading

    from werkzeug.serving import make_server

    served = make_test_app(_schema, WTF_CSRF_ENABLED=True, IMPORTS_SYNCHRONOUS=False)
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    with served.app_context():
        db.engine.dispose()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright; tests using it are skipped when chromium is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser page; `page.base_url` is the live server."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


def wait_for_htmx(page, selector: str) -> None:
    """Wait until htmx has wired the element (a person cannot act before that; a script can)."""
    page.wait_for_function(
        "sel => { const e = document.querySelector(sel);"
        " return !!(e && e['htmx-internal-data'] && e['htmx-internal-data'].initHash); }",
        arg=selector,
    )


@pytest.fixture
def browser_login(page):
    """`browser_login(user)` logs the page in through the real login form."""

    def _login(user, password: str = factories.PASSWORD):
        page.goto("/auth/login")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        return page

    return _login
