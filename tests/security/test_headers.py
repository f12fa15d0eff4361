"""Security headers (issue 13.13) on every route of the URL map, and no inline script in any template.

Every answer — page, fragment, redirect, refusal, API error, static file — says `nosniff`, refuses framing
(`X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`) and carries the Content-Security-Policy; every
answer but a static file is `Cache-Control: no-store` (pages show balances, account passwords on demand and
new API tokens). The policy is only worth something if the pages satisfy it: the templates hold no inline
<script> and no on*= handler (checked here), and tests/ui/test_pages.py visits every main page in a browser
and fails on any violation it reports.
"""

import re
from pathlib import Path

import pytest

from panel.security_headers import CONTENT_SECURITY_POLICY
from tests import factories
from tests.security import world as w
from tests.security.test_matrix import NOT_PAGES, WRITES, _kind, _rules

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _directives(policy: str) -> dict[str, list[str]]:
    """A CSP header as {directive: [sources]}."""
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _header_problems(response, static: bool = False) -> list[str]:
    """What is missing or wrong in one response's security headers."""
    h = response.headers
    problems = []
    if h.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"X-Content-Type-Options={h.get('X-Content-Type-Options')!r}")
    if h.get("X-Frame-Options") != "DENY":
        problems.append(f"X-Frame-Options={h.get('X-Frame-Options')!r}")
    csp = _directives(h.get("Content-Security-Policy", ""))
    if csp.get("frame-ancestors") != ["'none'"]:
        problems.append(f"CSP frame-ancestors={csp.get('frame-ancestors')}")
    if csp.get("script-src") != ["'self'"]:
        problems.append(f"CSP script-src={csp.get('script-src')} (only 'self': no inline, no eval)")
    if csp.get("object-src") != ["'none'"] or csp.get("base-uri") != ["'none'"]:
        problems.append("CSP object-src / base-uri not 'none'")
    if not static and "no-store" not in h.get("Cache-Control", ""):
        problems.append(f"Cache-Control={h.get('Cache-Control')!r}, expected no-store")
    return problems


def test_policy_allows_no_inline_script_and_no_eval():
    """The policy itself: scripts only from the panel, never 'unsafe-inline' or 'unsafe-eval'."""
    csp = _directives(CONTENT_SECURITY_POLICY)
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"], "a <style> element must come from the panel's CSS"
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


@pytest.mark.slow
def test_every_route_answers_with_the_security_headers(app, login):
    """Every rule and method of the URL map, as an anonymous visitor, a viewer and the operator's admin."""
    world = w.build()
    anonymous = app.test_client()
    viewer = login(world.tree.alpha_viewer)
    admin = login(world.tree.root_admin)
    failures, checked = [], 0
    for rule in _rules(app):
        if rule.endpoint in NOT_PAGES:
            continue
        if any(name not in w.URL_VARIABLES for name in rule.arguments):
            continue  # the matrix (test_matrix_knows_every_url_variable) names the route to fix
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **w.fill(rule, world.alpha))
        for method in sorted((rule.methods or set()) & ({"GET"} | WRITES)):
            kind = _kind(rule)
            # Writes are sent by users who may not make them (anonymous, viewer): the world stays as it is.
            visitors = [("anonymous", anonymous)]
            if kind != "api":
                visitors.append(("viewer", viewer) if method in WRITES else ("admin", admin))
            for who, client in visitors:
                for headers in ({}, {"HX-Request": "true"}):
                    kwargs = {"json": {}} if kind == "api" and method in WRITES else {}
                    response = client.open(url, method=method, headers=headers, buffered=True, **kwargs)
                    checked += 1
                    problems = _header_problems(response)
                    if problems:
                        failures.append(
                            f"{method} {url} [{rule.endpoint}] as {who}"
                            f"{' (htmx)' if headers else ''} -> {response.status_code}: {', '.join(problems)}"
                        )
    for path in ("/no-such-page", "/api/v1/no-such-call"):
        response = admin.get(path)
        problems = _header_problems(response)
        if problems:
            failures.append(f"GET {path} -> {response.status_code}: {', '.join(problems)}")
    assert checked > 100, "the URL map gave almost no routes"
    assert not failures, "\n" + "\n".join(failures)


def test_static_files_are_not_sniffed_and_stay_cacheable(client):
    """Scripts and style sheets: nosniff with their real type; Flask's revalidation, not no-store."""
    for path, kind in (("/static/js/panel.js", "javascript"), ("/static/css/panel.css", "text/css")):
        response = client.get(path)
        assert response.status_code == 200
        assert kind in response.headers["Content-Type"]
        assert _header_problems(response, static=True) == []
        assert "no-store" not in response.headers.get("Cache-Control", "")


def test_favicon_is_shipped_and_linked(client, tree, login):
    """Every page links the panel's icon (no /favicon.ico 404 in the console) and the icon is served."""
    page = login(tree.root_admin).get("/").get_data(as_text=True)
    match = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert match, "base.html links no icon"
    icon = client.get(match.group(1))
    assert icon.status_code == 200
    assert icon.headers["Content-Type"].startswith("image/")


def test_account_password_and_new_token_are_not_stored(app, tree, login):
    """The pages that show a secret: the account password on demand, a generated one, a new API token."""
    customer = factories.client(tree.alpha, "Secretive")
    account = factories.account(customer, "sip-1", ident_by="name", ident_value="sip-1", orig_enabled=True)
    from panel import crypto
    from panel.extensions import db

    account.password_encrypted = crypto.encrypt("s3cret-Pa55")
    db.session.commit()
    admin = login(tree.alpha_admin)
    shown = admin.get(f"/accounts/{account.id}/password", headers={"HX-Request": "true"})
    assert "s3cret-Pa55" in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    generated = admin.get("/accounts/password/generate", headers={"HX-Request": "true"})
    assert generated.status_code == 200 and generated.headers["Cache-Control"] == "no-store"
    created = admin.post("/tokens/new", data={"name": "switch-1", "company_id": tree.alpha.id})
    body = created.get_data(as_text=True)
    assert created.status_code == 200 and "rp_" in body, body[:500]
    assert created.headers["Cache-Control"] == "no-store"
    # htmx keeps snapshots of pages in localStorage for its history: these fragments opt out.
    assert 'hx-history="false"' in body
    assert 'hx-history="false"' in shown.get_data(as_text=True)


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[a-z][^<>]*\son[a-z]+\s*=", re.IGNORECASE)
JS_URL = re.compile(r"""(href|action|src)\s*=\s*["']\s*javascript:""", re.IGNORECASE)
EVAL_TRIGGER = re.compile(r"""hx-trigger\s*=\s*["'][^"']*\[""")
EVAL_ATTRS = re.compile(r"""\bhx-on[:-]|\bhx-vars\b|hx-vals\s*=\s*['"]\s*js:""", re.IGNORECASE)


def _template_sources() -> list[tuple[str, str]]:
    """Every template and Python module that renders HTML, as (path, text)."""
    files = sorted(TEMPLATES.rglob("*.html")) + sorted((TEMPLATES.parent / "panel").rglob("*.py"))
    return [(str(p.relative_to(TEMPLATES.parent)), p.read_text(encoding="utf-8")) for p in files]


def test_no_inline_script_handler_or_eval_in_templates():
    """What the policy would block (and htmx with allowEval off would ignore) appears in no template."""
    found = []
    for path, text in _template_sources():
        html = path.endswith(".html")
        for name, pattern in (
            ("inline <script>", INLINE_SCRIPT),
            ("on*= handler", INLINE_HANDLER),
            ("javascript: URL", JS_URL),
            ("hx-trigger filter [..] (needs eval)", EVAL_TRIGGER),
            ("hx-on / hx-vars / js: (needs eval)", EVAL_ATTRS),
        ):
            if not html and pattern is not INLINE_SCRIPT and pattern is not JS_URL:
                continue  # Python modules: only their HTML strings can hold these two
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path}:{line}: {name}: {match.group(0)[:80]!r}")
    assert not found, "move it into static/js/panel.js (data-* attribute):\n" + "\n".join(found)
