"""The security matrix (SPEC §1): every route of the app, found from the URL map, as every kind of visitor.

For each rule and method, with URL variables filled by name from objects of the Alpha reseller (world.py):

- anonymous: a login redirect (302 to /auth/login), or 401 with HX-Redirect for htmx; API routes: 401;
- viewer of Alpha: GET 200 (or 403 on the form of a write, see WRITE_VERBS); any write 403;
- operator of Alpha: GET 200; a write (empty form) is answered without an error of the server, never 403
  unless the route is admin-only (ADMIN_ONLY), never 404 (the object is in scope);
- admin of Beta (a sibling reseller): 404 for every route that names an Alpha object, on every method, also
  when the URL mixes a Beta object with an Alpha one; its own (Beta) objects answer 200, which shows the 404
  comes from the scope; pages without objects show no Alpha data;
- admin of the operator (Alpha's parent): GET 200 (also as htmx); writes as for the operator, admin-only too;
  an id that names no object (or is too large for the database) answers 404.

Everywhere: no 5xx, GETs change nothing, a refused write (4xx) changes nothing, and no page of Alpha shows
Beta's data. A route whose URL variable is unknown, that does not use `<int:...>`, or that belongs to no
known blueprint fails with a message saying what to add. Exceptions are listed below with their reason.

Run it: `.venv/bin/python -m pytest -q tests/security/test_matrix.py` (add `PANEL_TEST_DB=postgresql://...`
for PostgreSQL). A failure lists every cell that disagrees, with a hint.
"""

from dataclasses import dataclass, field

import pytest
from werkzeug.routing import IntegerConverter

from panel import BLUEPRINTS, PUBLIC_ENDPOINTS, VIEWER_WRITES
from tests.security import world as w

READS = {"GET"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
HTMX = {"HX-Request": "true"}

# Routes only admins use: operators and viewers get 403 on them, also on their GET forms.
ADMIN_ONLY = {
    "companies.create",
    "companies.update",
    "companies.deactivate",
    "companies.activate",
    "companies.delete",
    "users.create",
    "users.update",
    "users.password",
    "users.deactivate",
    "users.activate",
    # SPEC §6 / issue 7: "Run now" is for admins.
    "manager_views.run",
    # API tokens are credentials of the whole company: admins create and revoke them.
    "tokens.create",
    "tokens.revoke",
}

# GETs that may write, with the reason (every other GET must change nothing).
GET_MAY_WRITE: dict[str, str] = {}

# Accepted statuses that differ from the defaults, per endpoint: {(role, method): statuses}; role "*" means
# every logged-in role in scope (viewer, operator, parent_admin). Each with its reason.
EXCEPTIONS: dict[str, dict[tuple[str, str], set[int]]] = {
    # SPEC §2: the account password is shown only to users who may edit the account.
    "accounts.password": {("viewer", "GET"): {403}},
    # The pickers of the account form (rate tables and plans usable by a client) serve the form, not viewers.
    "accounts.options": {("viewer", "GET"): {200, 403}},
}

# Views named by these verbs (alone, or as `rule_edit`, `generate_password`) are forms of a write: a viewer
# may get 403 on their GET as well as 200 (a read-only form), as the section prefers.
WRITE_VERBS = ("create", "update", "delete", "new", "edit", "import_", "import", "copy", "generate")

# Routes that are not pages of the application.
NOT_PAGES = {"static"}
PANEL_BLUEPRINTS = {module.rsplit(".", 1)[1] for module, _prefix in BLUEPRINTS}


@dataclass
class Matrix:
    """The app, the world and the failures collected so far."""

    app: object
    login: object
    world: object = None
    dirty: bool = True
    failures: list[str] = field(default_factory=list)
    clients: dict = field(default_factory=dict)
    builds: int = 0

    def fresh_world(self) -> None:
        """Build the world again when a write changed what the matrix relies on (ids are refilled)."""
        if self.dirty and self.world is not None and w.signature(self.world) == self.world.signature:
            self.dirty = False
        if self.dirty:
            self.world = w.build()
            self.clients = {}
            self.dirty = False
            self.builds += 1

    def users(self) -> dict:
        """The logged-in roles of the matrix."""
        t = self.world.tree
        return {
            "viewer": t.alpha_viewer,
            "operator": t.alpha_operator,
            "sibling_admin": t.beta_admin,
            "parent_admin": t.root_admin,
        }

    def client(self, role: str, fresh: bool = False):
        """A test client for the role (a new one for writes, which may log the session out)."""
        if role == "anonymous":
            return self.app.test_client()
        if fresh or role not in self.clients:
            client = self.login(self.users()[role])
            if fresh:
                return client
            self.clients[role] = client
        return self.clients[role]

    def fail(self, rule, method: str, role: str, message: str) -> None:
        """Record one disagreeing cell."""
        self.failures.append(f"{method} {rule.rule} [{rule.endpoint}] as {role}: {message}")


def _call(client, method: str, url: str, *, headers=None, api: bool = False, token: str | None = None):
    """Send a request with an empty form (or empty JSON for the API); (response, error text)."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    kwargs = {"json": {}} if api and method in WRITES else ({"data": {}} if method in WRITES else {})
    try:
        # Buffered: a streamed download is read inside its request, not when the response is collected.
        return client.open(url, method=method, headers=headers, buffered=True, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - an exception in a view is a 500 for the user
        return None, f"raised {type(exc).__name__}: {exc}"


def _kind(rule) -> str:
    """public | api | panel | unknown."""
    if rule.endpoint in PUBLIC_ENDPOINTS:
        return "public"
    blueprint = rule.endpoint.split(".", 1)[0] if "." in rule.endpoint else ""
    if blueprint == "api":
        return "api"
    return "panel" if blueprint in PANEL_BLUEPRINTS else "unknown"


def _expected(rule, role: str, method: str) -> set[int] | None:
    """An exception's statuses for this cell, or None for the default."""
    cells = EXCEPTIONS.get(rule.endpoint, {})
    return cells.get((role, method)) or (cells.get(("*", method)) if role != "sibling_admin" else None)


def _is_form_of_a_write(rule) -> bool:
    """A GET whose view is named by a write verb (the form of create, update, delete, import, ...)."""
    view = rule.endpoint.rsplit(".", 1)[-1]
    return any(
        view == verb or view.endswith("_" + verb) or view.startswith(verb + "_") for verb in WRITE_VERBS
    )


def _check_url_variables(m: Matrix, rule) -> bool:
    """Every URL variable is `<int:...>` and named after a model the matrix knows."""
    ok = True
    for name, converter in rule._converters.items():
        if name not in w.URL_VARIABLES:
            m.fail(rule, "*", "-", f"unknown URL variable <{name}>: name it after the model it loads "
                   f"({', '.join(sorted(w.URL_VARIABLES))}) or add it to URL_VARIABLES in "
                   "tests/security/world.py with an object in _objects()")  # fmt: skip
            ok = False
        elif not isinstance(converter, IntegerConverter):
            m.fail(rule, "*", "-", f"<{name}> must be <int:{name}>")
            ok = False
    return ok


def _anonymous(m: Matrix, rule, method: str, url: str) -> None:
    """Anonymous visitors are sent to the login page; htmx gets 401 with HX-Redirect."""
    client = m.client("anonymous")
    response, error = _call(client, method, url)
    if error:
        return m.fail(rule, method, "anonymous", error)
    if response.status_code != 302 or "/auth/login" not in response.headers.get("Location", ""):
        m.fail(rule, method, "anonymous", f"got {response.status_code}, expected 302 to /auth/login")
    response, error = _call(client, method, url, headers=HTMX)
    if error:
        return m.fail(rule, method, "anonymous htmx", error)
    if response.status_code != 401 or "/auth/login" not in response.headers.get("HX-Redirect", ""):
        m.fail(rule, method, "anonymous htmx", f"got {response.status_code}, expected 401 with HX-Redirect")


def _read_cells(m: Matrix, rule) -> None:
    """GET as every role; nothing may change."""
    before = w.fingerprint()
    alpha = w.fill(rule, m.world.alpha)
    url = _url(m, rule, alpha)
    _anonymous(m, rule, "GET", url)
    for role, headers in (
        ("viewer", None),
        ("operator", None),
        ("parent_admin", None),
        ("parent_admin", HTMX),
    ):
        label = role + (" htmx" if headers else "")
        default = {403} if rule.endpoint in ADMIN_ONLY and role in ("viewer", "operator") else {200}
        if role == "viewer" and _is_form_of_a_write(rule):
            default = {200, 403}
        expected = _expected(rule, role, "GET") or default
        response, error = _call(m.client(role), "GET", url, headers=headers)
        if error:
            m.fail(rule, "GET", label, error)
        elif response.status_code not in expected:
            hint = (
                f" If only admins may use it, add {rule.endpoint!r} to ADMIN_ONLY; if this status is "
                f"intended, add it to EXCEPTIONS in tests/security/test_matrix.py with the reason."
            )
            m.fail(rule, "GET", label, f"got {response.status_code}, expected {sorted(expected)}.{hint}")
        elif role != "parent_admin" and w.BETA_MARK in response.get_data(as_text=True):
            m.fail(rule, "GET", label, "shows Beta's data (marker zqbeta) to a user of Alpha")
    _sibling(m, rule, "GET", alpha)
    _missing(m, rule, "GET", alpha)
    after = w.fingerprint()
    if after != before:
        if rule.endpoint not in GET_MAY_WRITE:
            m.fail(rule, "GET", "any", f"a GET changed data: {w.describe_change(before, after)}")
        m.dirty = True


def _url(m: Matrix, rule, values: dict) -> str:
    """Build the URL of a rule with its variables."""
    with m.app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def _sibling(m: Matrix, rule, method: str, alpha: dict) -> None:
    """Beta's admin: 404 on Alpha's objects (also mixed with Beta's); its own objects work."""
    client = m.client("sibling_admin", fresh=method in WRITES)
    if not rule.arguments:
        if method in READS:
            response, error = _call(client, method, _url(m, rule, {}))
            if error:
                m.fail(rule, method, "sibling_admin", error)
            elif response.status_code >= 500:
                m.fail(rule, method, "sibling_admin", f"got {response.status_code}")
            elif w.ALPHA_MARK in response.get_data(as_text=True):
                m.fail(rule, method, "sibling_admin", "shows Alpha's data (marker zqalpha) to Beta's admin")
        return
    beta = w.fill(rule, m.world.beta)
    mixes = [alpha] + [{**beta, name: alpha[name]} for name in rule.arguments] if len(alpha) > 1 else [alpha]
    for values in mixes:
        response, error = _call(client, method, _url(m, rule, values))
        if error:
            m.fail(rule, method, "sibling_admin", error)
        elif response.status_code != 404:
            alpha_names = [k for k in values if values[k] == alpha[k] and values[k] != beta[k]]
            m.fail(
                rule,
                method,
                "sibling_admin",
                f"got {response.status_code} for Alpha's {alpha_names}, expected 404",
            )
    if method in READS:
        expected = _expected(rule, "parent_admin", method) or {200}
        response, error = _call(client, method, _url(m, rule, beta))
        if error:
            m.fail(rule, method, "sibling_admin (own)", error)
        elif response.status_code not in expected:
            m.fail(rule, method, "sibling_admin (own)", f"got {response.status_code} for Beta's own objects, "
                   f"expected {sorted(expected)}: the 404 above may not come from the scope")  # fmt: skip


def _missing(m: Matrix, rule, method: str, alpha: dict) -> None:
    """An id that names no object, or one beyond a 64-bit integer, answers 404 (never a server error)."""
    for name in rule.arguments:
        for absent in (987_654_321, 10**30):
            response, error = _call(m.client("parent_admin", fresh=method in WRITES), method,
                                    _url(m, rule, {**alpha, name: absent}))  # fmt: skip
            if error or response.status_code != 404:
                got = error or f"got {response.status_code}"
                m.fail(
                    rule,
                    method,
                    "parent_admin",
                    f"{got} for <{name}> = {absent} (no such object), expected 404",
                )


def _write_cells(m: Matrix, rule, method: str) -> None:
    """A write with an empty form as every role."""
    m.fresh_world()
    alpha = w.fill(rule, m.world.alpha)
    url = _url(m, rule, alpha)
    before = w.fingerprint()
    _anonymous(m, rule, method, url)
    if rule.endpoint in VIEWER_WRITES:
        viewer_expected = {200, 302, 303, 400, 422}  # their own session and password
    else:
        viewer_expected = _expected(rule, "viewer", method) or {403}
    response, error = _call(m.client("viewer", fresh=True), method, url)
    if error:
        m.fail(rule, method, "viewer", error)
    elif response.status_code not in viewer_expected:
        m.fail(rule, method, "viewer", f"got {response.status_code}, expected {sorted(viewer_expected)}")
    after = w.fingerprint()
    if after != before:
        m.fail(rule, method, "anonymous/viewer", f"changed data: {w.describe_change(before, after)}")
    _sibling(m, rule, method, alpha)
    _missing(m, rule, method, alpha)
    final = w.fingerprint()
    if final != after and rule.arguments:
        m.fail(rule, method, "sibling_admin", f"changed Alpha's data: {w.describe_change(after, final)}")
    m.dirty = m.dirty or final != before
    for role in ("operator", "parent_admin"):
        m.fresh_world()
        url = _url(m, rule, w.fill(rule, m.world.alpha))
        before = w.fingerprint()
        response, error = _call(m.client(role, fresh=True), method, url)
        after = w.fingerprint()
        m.dirty = after != before
        if error:
            m.fail(rule, method, role, error)
            continue
        status = response.status_code
        admin_only = rule.endpoint in ADMIN_ONLY and role == "operator"
        expected = _expected(rule, role, method)
        if expected is not None:
            if status not in expected:
                m.fail(rule, method, role, f"got {status}, expected {sorted(expected)}")
        elif admin_only:
            if status != 403:
                m.fail(rule, method, role, f"got {status}, expected 403 (the route is in ADMIN_ONLY)")
        elif status >= 500 or status in (401, 403, 404, 405):
            hint = (
                f" If only admins may use it, add {rule.endpoint!r} to ADMIN_ONLY." if status == 403 else ""
            )
            m.fail(rule, method, role, f"got {status} for an object in scope.{hint}")
        if status >= 400 and after != before:
            m.fail(
                rule,
                method,
                role,
                f"refused with {status} but changed data: {w.describe_change(before, after)}",
            )


def _api_cells(m: Matrix, rule, method: str) -> None:
    """API: 401 without a token or with a wrong one; Alpha's token is answered; Beta's token gets 404."""
    m.fresh_world()
    alpha = w.fill(rule, m.world.alpha)
    url = _url(m, rule, alpha)
    client = m.client("anonymous")
    for token in (None, "rp_wrong"):
        before = w.fingerprint()
        response, error = _call(client, method, url, api=True, token=token)
        if error:
            m.fail(rule, method, f"api token={token}", error)
        elif response.status_code != 401:
            m.fail(rule, method, f"api token={token}", f"got {response.status_code}, expected 401")
        if w.fingerprint() != before:
            m.fail(rule, method, f"api token={token}", "changed data without a valid token")
    before = w.fingerprint()
    response, error = _call(client, method, url, api=True, token=m.world.alpha.token_secret)
    after = w.fingerprint()
    m.dirty = after != before
    if error:
        m.fail(rule, method, "api alpha token", error)
    elif response.status_code >= 500:
        m.fail(rule, method, "api alpha token", f"got {response.status_code}")
    elif response.status_code >= 400 and after != before:
        m.fail(
            rule, method, "api alpha token", f"refused but changed data: {w.describe_change(before, after)}"
        )
    if rule.arguments:
        m.fresh_world()
        response, error = _call(client, method, url, api=True, token=m.world.beta.token_secret)
        if error or response.status_code != 404:
            m.fail(
                rule,
                method,
                "api beta token",
                error or f"got {response.status_code} for Alpha's objects, expected 404",
            )


def _public_cells(m: Matrix, rule, method: str) -> None:
    """Public routes answer anonymous visitors without a server error."""
    response, error = _call(m.client("anonymous"), method, _url(m, rule, {}))
    if error or response.status_code >= 500:
        m.fail(rule, method, "anonymous", error or f"got {response.status_code}")


def _rules(app) -> list:
    """Every rule of the app in a stable order."""
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


@pytest.mark.slow
def test_security_matrix(app, login):
    """Every route, method and role answers as the module docstring says."""
    m = Matrix(app=app, login=login)
    m.fresh_world()
    known = {r.endpoint for r in _rules(app)}
    for endpoint in sorted(set(EXCEPTIONS) | ADMIN_ONLY | set(GET_MAY_WRITE)):
        if endpoint not in known:
            m.failures.append(
                f"{endpoint} is listed in ADMIN_ONLY or EXCEPTIONS but no route has it: remove it"
            )
    checked = []
    for rule in _rules(app):
        if rule.endpoint in NOT_PAGES:
            continue
        kind = _kind(rule)
        if kind == "unknown":
            hint = "register it in a section's blueprint (or make it public on purpose)"
            m.fail(rule, "*", "-", f"in no blueprint of panel.BLUEPRINTS nor in PUBLIC_ENDPOINTS: {hint}")
            continue
        if not _check_url_variables(m, rule):
            continue
        methods = sorted((rule.methods or set()) & (READS | WRITES))
        for method in methods:
            if kind == "public":
                _public_cells(m, rule, method)
            elif kind == "api":
                _api_cells(m, rule, method)
            elif method in READS:
                m.fresh_world()
                _read_cells(m, rule)
            else:
                _write_cells(m, rule, method)
            checked.append((rule.endpoint, method))
    print(f"matrix: {len(checked)} route methods, {m.builds} worlds built")
    assert len(checked) > 20, "the matrix found almost no routes"
    assert not m.failures, "\n" + "\n".join(m.failures)


def test_matrix_knows_every_url_variable(app):
    """Every URL variable of every route is one the matrix can fill (also reported by the matrix itself)."""
    unknown = {
        (rule.endpoint, name)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in NOT_PAGES
        for name in rule.arguments
        if name not in w.URL_VARIABLES
    }
    assert not unknown, f"name URL variables after their model (see HELPERS.md): {sorted(unknown)}"
