"""The security matrix (SPEC §1): every route of the app, found from the URL map, as every kind of visitor.

For each rule and method, with URL variables filled by name from objects of the Alpha reseller (world.py):

- anonymous: a login redirect (302 to /auth/login), or 401 with HX-Redirect for htmx; API routes: 401;
- viewer, operator of Alpha and the operator's admin: ONE expected answer per role, from the route's role
  in ACCESS (the same role its view declares with a panel.access decorator, which the matrix checks):

      role            viewer          operator        operator's admin (root)
      reader          allowed         allowed         allowed
      writer          403             allowed         allowed
      reader/writer   GET allowed,    allowed         allowed
                      writes 403
      admin, root     403             403             allowed

  "allowed" is 200 for a GET; for a write with an empty form it is an answer that is not an error of the
  server and not 401/403/404/405 (the object is in scope; the form's own 303/422/409 depends on the view);
- admin of Beta (a sibling reseller): 404 for every route that names an Alpha object, on every method, also
  when the URL mixes a Beta object with an Alpha one; its own (Beta) objects answer 200, which shows the 404
  comes from the scope; pages without objects show no Alpha data;
- admin of the operator (Alpha's parent): also as htmx; an id that names no object (or is too large for the
  database) answers 404.

Everywhere: no 5xx, GETs change nothing, a refused write (4xx) changes nothing, and no page of Alpha shows
Beta's data. A route whose URL variable is unknown, that does not use `<int:...>`, or that belongs to no
known blueprint fails with a message saying what to add. Exceptions are listed below with their reason.

Run it: `.venv/bin/python -m pytest -q tests/security/test_matrix.py` (add `PANEL_TEST_DB=postgresql://...`
for PostgreSQL). A failure lists every cell that disagrees, with a hint.
"""

from dataclasses import dataclass, field

import pytest
from werkzeug.routing import IntegerConverter

from panel import BLUEPRINTS, PUBLIC_ENDPOINTS
from panel.access import view_roles
from tests.security import world as w

READS = {"GET"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
HTMX = {"HX-Request": "true"}

# The role of every panel route: reader, writer, admin, root, or reader/writer (a form viewers see read-only
# and only writers submit). The view declares the same role with its panel.access decorator; the matrix
# checks that they agree, and derives each role's one expected answer from it (see the docstring).
ACCESS: dict[str, str] = {
    "accounts.client_filter": "reader",
    "accounts.create": "writer",
    "accounts.deactivate": "writer",
    "accounts.delete": "writer",
    "accounts.generate_password": "writer",
    "accounts.index": "reader",
    "accounts.options": "writer",
    "accounts.password": "writer",
    "accounts.show": "reader",
    "accounts.update": "writer",
    "audit_views.export": "reader",
    "audit_views.index": "reader",
    "audit_views.show": "reader",
    "auth.logout": "reader",
    "auth.password": "reader",
    "clients.adjust_balance": "writer",
    "clients.create": "writer",
    "clients.delete": "writer",
    "clients.index": "reader",
    "clients.show": "reader",
    "clients.update": "writer",
    "codedecks.code_create": "writer",
    "codedecks.code_delete": "writer",
    "codedecks.code_row": "reader",
    "codedecks.code_update": "reader/writer",
    "codedecks.create": "reader/writer",
    "codedecks.delete": "writer",
    "codedecks.export": "reader",
    "codedecks.import_": "reader/writer",
    "codedecks.index": "reader",
    "codedecks.show": "reader",
    "codedecks.update": "reader/writer",
    "companies.activate": "admin",
    "companies.create": "admin",
    "companies.deactivate": "admin",
    "companies.delete": "admin",
    "companies.index": "reader",
    "companies.show": "reader",
    "companies.update": "admin",
    "dids.create": "reader/writer",
    "dids.delete": "writer",
    "dids.export": "reader",
    "dids.import_": "reader/writer",
    "dids.index": "reader",
    "dids.update": "reader/writer",
    "gateways.create": "writer",
    "gateways.delete": "writer",
    "gateways.index": "reader",
    "gateways.update": "writer",
    "imports.show": "reader",
    "main.index": "reader",
    "manager_views.index": "reader",
    "manager_views.run": "root",
    "manager_views.status": "reader",
    "plans.code_name": "reader",
    "plans.copy": "writer",
    "plans.create": "writer",
    "plans.delete": "writer",
    "plans.expiry_marks": "reader",
    "plans.export": "reader",
    "plans.import_": "reader/writer",
    "plans.index": "reader",
    "plans.rule_create": "writer",
    "plans.rule_delete": "writer",
    "plans.rule_edit": "writer",
    "plans.rule_new": "writer",
    "plans.rule_show": "reader",
    "plans.rule_update": "writer",
    "plans.show": "reader",
    "plans.update": "reader/writer",
    "policies.copy": "writer",
    "policies.create": "reader/writer",
    "policies.delete": "writer",
    "policies.index": "reader",
    "policies.update": "reader/writer",
    "rates.create": "reader/writer",
    "rates.delete": "writer",
    "rates.export": "reader",
    "rates.import_": "reader/writer",
    "rates.index": "reader",
    "rates.rate_create": "writer",
    "rates.rate_delete": "writer",
    "rates.rate_row": "reader",
    "rates.rate_update": "reader/writer",
    "rates.show": "reader",
    "rates.update": "reader/writer",
    "routetest.index": "reader",
    "stats.balancing": "reader",
    "stats.balancing_rule": "reader",
    "stats.export": "reader",
    "stats.index": "reader",
    "stats.live": "reader",
    "stats.quality": "reader",
    "timeprofiles.create": "reader/writer",
    "timeprofiles.delete": "writer",
    "timeprofiles.index": "reader",
    "timeprofiles.show": "reader",
    "timeprofiles.update": "reader/writer",
    "tokens.create": "admin",
    "tokens.index": "reader",
    "tokens.revoke": "admin",
    "users.activate": "admin",
    "users.create": "admin",
    "users.deactivate": "admin",
    "users.index": "reader",
    "users.password": "admin",
    "users.show": "reader",
    "users.update": "admin",
    "whatif.edit_account_drain": "writer",
    "whatif.edit_client_drain": "writer",
    "whatif.import_rates_apply": "writer",
    "whatif.import_rates_preview": "writer",
    "whatif.import_rules_apply": "writer",
    "whatif.import_rules_preview": "writer",
    "whatif.lcr": "reader",
    "whatif.lcr_csv": "reader",
    "whatif.new_rule_apply": "writer",
    "whatif.new_rule_preview": "writer",
    "whatif.restore_account": "writer",
    "whatif.restore_client": "writer",
    "whatif.rule_apply": "writer",
    "whatif.rule_preview": "writer",
}

# GETs that may write, with the reason (every other GET must change nothing).
GET_MAY_WRITE: dict[str, str] = {}

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


ALLOWED = "allowed"


def _role(rule) -> tuple[str, str]:
    """(role for GETs, role for writes) of a route, from ACCESS."""
    read, _, write = ACCESS[rule.endpoint].partition("/")
    return read, write or read


def _expected(rule, role: str, method: str):
    """The one expected answer of `role` (viewer, operator, parent_admin) to `method`: ALLOWED or 403."""
    read, write = _role(rule)
    needed = read if method in READS else write
    holds = {
        "viewer": {"reader"},
        "operator": {"reader", "writer"},
        "parent_admin": {"reader", "writer", "admin", "root"},  # the operator's root company admin
    }[role]
    return ALLOWED if needed in holds else 403


def _check_declared_role(m: "Matrix", rule, app) -> bool:
    """The route is in ACCESS and its view declares the same role with a panel.access decorator."""
    if rule.endpoint not in ACCESS:
        m.fail(rule, "*", "-", f"no role in ACCESS: add {rule.endpoint!r} (reader, writer, admin, root or "
               "reader/writer) to tests/security/test_matrix.py, the role its view declares")  # fmt: skip
        return False
    roles = view_roles(app.view_functions[rule.endpoint])
    declared = None if roles is None else (roles[0] if roles[0] == roles[1] else "/".join(roles))
    if declared != ACCESS[rule.endpoint]:
        m.fail(rule, "*", "-", f"the view declares {declared!r} but ACCESS says {ACCESS[rule.endpoint]!r}")
        return False
    return True


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
        expected = 200 if _expected(rule, role, "GET") == ALLOWED else 403
        response, error = _call(m.client(role), "GET", url, headers=headers)
        if error:
            m.fail(rule, "GET", label, error)
        elif response.status_code != expected:
            hint = f" (role {ACCESS[rule.endpoint]!r} in ACCESS)"
            m.fail(rule, "GET", label, f"got {response.status_code}, expected {expected}.{hint}")
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
        # Beta's admin holds every role but root: its own objects answer 200 (403 on a root route).
        expected = 403 if _role(rule)[0] == "root" else 200
        response, error = _call(client, method, _url(m, rule, beta))
        if error:
            m.fail(rule, method, "sibling_admin (own)", error)
        elif response.status_code != expected:
            m.fail(rule, method, "sibling_admin (own)", f"got {response.status_code} for Beta's own objects, "
                   f"expected {expected}: the 404 above may not come from the scope")  # fmt: skip


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
    # A write may end sessions (logout and a password change end every session of the user): the cached
    # logins of the reads are made again after it.
    m.clients = {}
    alpha = w.fill(rule, m.world.alpha)
    url = _url(m, rule, alpha)
    before = w.fingerprint()
    _anonymous(m, rule, method, url)
    response, error = _call(m.client("viewer", fresh=True), method, url)
    if error:
        m.fail(rule, method, "viewer", error)
    else:
        _check_write_answer(m, rule, method, "viewer", response.status_code)
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
        _check_write_answer(m, rule, method, role, status)
        if status >= 400 and after != before:
            m.fail(
                rule,
                method,
                role,
                f"refused with {status} but changed data: {w.describe_change(before, after)}",
            )


def _check_write_answer(m: Matrix, rule, method: str, role: str, status: int) -> None:
    """A write's answer against the role's one expected answer: 403, or allowed (no refusal, no 5xx)."""
    expected = _expected(rule, role, method)
    if expected == 403:
        if status != 403:
            m.fail(rule, method, role, f"got {status}, expected 403 (role {ACCESS[rule.endpoint]!r})")
    elif status >= 500 or status in (401, 403, 404, 405):
        m.fail(rule, method, role, f"got {status} for an object in scope, expected an allowed answer "
               f"(role {ACCESS[rule.endpoint]!r})")  # fmt: skip


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
    for endpoint in sorted(set(ACCESS) | set(GET_MAY_WRITE)):
        if endpoint not in known:
            m.failures.append(
                f"{endpoint} is listed in ACCESS or GET_MAY_WRITE but no route has it: remove it"
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
        if kind == "panel" and not _check_declared_role(m, rule, app):
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
