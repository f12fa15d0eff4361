"""Every main page in a real browser, as the operator's admin and as a reseller's admin, at three widths.

A page fails when the browser reports a Content-Security-Policy violation (the policy of
panel/security_headers.py blocks inline scripts, handlers and eval), an htmx error event (htmx:syntax:error,
htmx:evalDisallowedError, a failed request, ...), a console error or a failed request of its own (a 404 icon),
when the navigation takes more than one row at 1366 and 1920 px, or when anything but a table's own box
scrolls sideways at 390 px. A 390 px screenshot of the accounts list is saved to tests/artifacts/.
"""

from pathlib import Path

import pytest
from flask import url_for

from panel.templating import NAVIGATION
from tests import factories
from tests.conftest import CHROMIUM_ARGS  # noqa: F401 - the browser fixture launches with them
from tests.security import world as w

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

# Listens before any page script runs: CSP violations and htmx's error events end up in window.__problems.
WATCH = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__problems.push("CSP " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                         " at " + (e.sourceFile || "") + ":" + e.lineNumber);
});
document.addEventListener("htmx:error", function (e) {
  var info = (e.detail && e.detail.errorInfo) || {};
  window.__problems.push("htmx " + (info.error || "error") + " " + String(info.source || ""));
});
"""

# One row: the top bar of the wide layout is one line of menus (about 45 px); three rows were 179 px.
ONE_ROW_PX = 60


def _pages(world) -> list[str]:
    """The main pages: every navigation entry, the home page and the detail page of each kind of object."""
    a = world.alpha
    with world.app.test_request_context():
        pages = [url_for("main.index")]
        pages += [url_for(endpoint) for _group, items in NAVIGATION for _label, endpoint in items]
        pages += [
            url_for("clients.show", client_id=a.client.id),
            url_for("accounts.show", account_id=a.account.id),
            url_for("accounts.update", account_id=a.account.id),
            url_for("plans.show", plan_id=a.plan.id),
            url_for("rates.show", rate_table_id=a.rate_table.id),
            url_for("codedecks.show", code_deck_id=a.code_deck.id),
            url_for("timeprofiles.show", time_profile_id=a.time_profile.id),
            url_for("companies.show", company_id=a.company.id),
            url_for("users.show", user_id=a.user.id),
            url_for("routetest.index", account_id=a.account.id, number="4412345678"),
            url_for("plans.update", plan_id=a.plan.id),
            url_for("stats.quality"),
            url_for("stats.balancing"),
            url_for("stats.live"),
        ]
    return pages


@pytest.fixture
def world(app):
    """The security tests' world: one object of each kind for two resellers (Alpha and Beta)."""
    built = w.build()
    built.app = app
    return built


def _open(browser, live_server, width: int, user):
    """A logged-in page of the given width that records problems."""
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text[:300]}"))
    page.on("pageerror", lambda e: page.problems.append(f"script error: {e}"))
    page.on("response", lambda r: _failed_request(page, live_server, r))
    page.goto("/auth/login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    return context, page


def _failed_request(page, live_server: str, response) -> None:
    """Record an answer of the panel's own that failed (a missing icon, a fragment that errors)."""
    if response.status >= 400 and response.url.startswith(live_server):
        page.problems.append(f"{response.status} {response.url}")


def _visit(page, path: str) -> list[str]:
    """Load a page, let htmx settle, and return what went wrong on it."""
    page.problems.clear()
    response = page.goto(path)
    page.wait_for_load_state("networkidle")
    problems = list(page.problems) + page.evaluate("window.__problems")
    if response.status != 200:
        problems.append(f"answered {response.status}")
    return problems


@pytest.mark.parametrize("who", ["root_admin", "alpha_admin"])
def test_every_page_satisfies_the_policy_and_fits(world, browser, live_server, who):
    """No CSP violation, htmx error or failed request on any main page; the layout holds at every width."""
    user = getattr(world.tree, who)
    pages = _pages(world)
    failures = []
    for width in (1920, 1366, 390):
        context, page = _open(browser, live_server, width, user)
        try:
            # 1920 px only adds room: the navigation's height is checked on two pages there.
            for path in pages if width != 1920 else pages[:2]:
                for problem in _visit(page, path):
                    failures.append(f"{who} {width}px {path}: {problem}")
                nav = page.evaluate("document.querySelector('header.topbar').getBoundingClientRect().height")
                if width >= 1366 and nav > ONE_ROW_PX:
                    failures.append(f"{who} {width}px {path}: the navigation is {nav:.0f} px high (one row)")
                if width == 390:
                    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                    if scroll != inner:
                        failures.append(f"{who} 390px {path}: page {scroll} px wide, screen {inner} px")
            if width == 390 and who == "alpha_admin":
                ARTIFACTS.mkdir(exist_ok=True)
                page.goto("/accounts/")
                page.screenshot(path=str(ARTIFACTS / "accounts-390px.png"), full_page=True)
        finally:
            context.close()
    assert not failures, "\n" + "\n".join(failures)


def test_navigation_menus_work_by_pointer_and_on_a_phone(world, browser, live_server):
    """Wide: a section menu opens and its link navigates. 390 px: the Menu button shows every section."""
    context, page = _open(browser, live_server, 1366, world.tree.alpha_admin)
    try:
        menu = page.locator(".mainnav .navgroup", has_text="Routing")
        link = menu.get_by_role("link", name="Route test")
        assert not link.is_visible()
        menu.locator(".navgroup-title").click()
        assert menu.locator(".navgroup-title").get_attribute("aria-expanded") == "true"
        link.click()
        page.wait_for_url("**/route-test/")
        current = page.locator(".mainnav .navgroup.current .navgroup-title")
        assert current.inner_text().startswith("Routing")
    finally:
        context.close()
    context, page = _open(browser, live_server, 390, world.tree.alpha_admin)
    try:
        accounts = page.locator(".mainnav").get_by_role("link", name="Accounts")
        assert not accounts.is_visible()
        toggle = page.get_by_role("button", name="Menu")
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        accounts.click()
        page.wait_for_url("**/accounts/")
        assert page.evaluate("document.documentElement.scrollWidth") == 390
    finally:
        context.close()


def test_filters_leave_empty_fields_out_of_the_address(world, browser, live_server):
    """Choosing a client in the accounts filter pushes `?client_id=N`, not `&q=&ident_by=&...`."""
    context, page = _open(browser, live_server, 1366, world.tree.alpha_admin)
    try:
        page.goto("/accounts/")
        page.wait_for_load_state("networkidle")
        page.select_option("#account-search select[name=client_id]", str(world.alpha.client.id))
        page.wait_for_url(f"**client_id={world.alpha.client.id}*")
        page.wait_for_load_state("networkidle")
        query = page.url.split("?", 1)[1]
        assert "=&" not in query + "&" and not query.endswith("="), page.url
        assert f"client_id={world.alpha.client.id}" in query
        # An emptied "From" is the one empty field kept: it means all time (absent means the default days).
        page.goto("/statistics/")
        page.wait_for_load_state("networkidle")
        page.fill("input[name=date_from]", "")
        page.dispatch_event("input[name=date_from]", "change")
        page.wait_for_url("**date_from=*")
        query = page.url.split("?", 1)[1]
        assert query.split("&").count("date_from=") == 1, page.url
        assert "date_to=" not in query and "number=" not in query and "client_id=" not in query, page.url
    finally:
        context.close()
