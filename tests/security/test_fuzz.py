"""Bad input on every form (SPEC §1, issue 8): no server error, no stored script, no partial write.

The forms are found by reading the panel's pages (forms.py), so a new section is fuzzed without editing this
file. Each example fills every field of every form with hostile values (long strings, unicode, negative and
huge numbers, bad dates, SQL and HTML meta-characters, odd select values, random CSV files) and submits it as
the operator's admin, who may use every form. For every submission:

- the answer is not a 5xx (nor an exception);
- a refused submission (4xx) changed nothing, and a failed import wrote none of its rows;
- no page shows an injected script or attribute unescaped (checked on the answer and, at the end, on every
  page of the panel).

Uploads larger than MAX_CONTENT_LENGTH are refused with a message and change nothing. The API's POST routes
get hostile JSON with a reseller's token: no 5xx, and nothing of another reseller changes.

The run is deterministic (derandomized) and bounded so CI stays fast: PANEL_FUZZ_EXAMPLES raises the number of
examples and PANEL_FUZZ_RANDOM=1 draws new ones on every run.
"""

import io
import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from panel.extensions import db
from panel.models.system import ImportJob
from tests.security import forms as f
from tests.security import world as w

EXAMPLES = int(os.environ.get("PANEL_FUZZ_EXAMPLES", "6"))
RANDOM = os.environ.get("PANEL_FUZZ_RANDOM") == "1"

# Markers of injected markup: found raw in a page means the output was not escaped.
XSS = [
    "<script>zqxss()</script>",
    '"><img src=x onerror=zqxss()>',
    "' onmouseover='zqxss()",
    "javascript:zqxss()",
]
XSS_RAW = ["<script>zqxss", "<img src=x onerror=zqxss", "onmouseover='zqxss", 'href="javascript:zqxss']
PAYLOADS = XSS + [
    "' OR '1'='1",
    "'; DROP TABLE clients; --",
    '") OR 1=1 --',
    "\x00",
    "%00",
    "../../etc/passwd",
    "{{ 7*7 }}",
    "${7*7}",
    "\u202egnp.exe",
    "ｚｑ１２３",
    "²",
    "١٢٣",
    "1_000",
    "1e309",
    "NaN",
    "-0",
    "9" * 40,
    "-" + "9" * 30,
    "0x1F",
    " ",
    "\t\r\n",
    "🙂" * 40,
    "a;b;;c",
    "10.0.0.1/24",
    "::ffff:999.1.1.1",
]
BAD_NUMBERS = [
    "-1",
    "0",
    "-0.0000001",
    "99999999999999999999",
    "1e309",
    "NaN",
    "inf",
    "1,5",
    "²",
    "12abc",
    "",
]
BAD_DATES = [
    "2024-02-30",
    "0000-00-00",
    "2024-13-01",
    "2024-01-01T25:61",
    "99999-01-01",
    "-2024-01-01",
    "2024-01-01 00:00",
    "1900-01-01T00:00",
    "9999-12-31T23:59",
    "yesterday",
    "",
]
CSV_WORDS = (
    "code name rate effective_from end setup_fee min_time interval country number account notes priority type"
)
CSV_WORDS = CSV_WORDS.split() + ["terminator", "expires_at", "balancing"]

long_text = st.builds(lambda s, n: (s * n)[:6000], st.text(min_size=1, max_size=4), st.integers(200, 2000))
text = st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=30), long_text)
numbers = st.one_of(
    st.sampled_from(BAD_NUMBERS),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    text,
)
dates = st.one_of(
    st.sampled_from(BAD_DATES), st.dates().map(str), st.datetimes().map(lambda d: d.isoformat()), text
)
cell = st.one_of(st.sampled_from(PAYLOADS + BAD_NUMBERS + BAD_DATES), st.text(max_size=12))


@st.composite
def csv_files(draw) -> bytes:
    """A small CSV file: a plausible or hostile header and a few hostile rows (sometimes not UTF-8 at all)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(min_size=1, max_size=300))
    header = draw(st.lists(st.one_of(st.sampled_from(CSV_WORDS), cell), min_size=1, max_size=8, unique=True))
    rows = draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header) + 1), max_size=6))
    lines = [",".join(_quote(v) for v in line) for line in [header, *rows]]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def _quote(value: str) -> str:
    """A CSV cell, quoted when needed."""
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


def value_for(draw, field: f.Field):
    """A hostile value for one field by its kind; None leaves the field out."""
    if field.kind == "file":
        return (
            io.BytesIO(draw(csv_files())),
            draw(st.sampled_from(["fuzz.csv", "x.txt", "../../a.csv", ""])),
        )
    if field.kind in ("checkbox", "radio"):
        return draw(st.sampled_from([None, field.value or "y", draw(text)]))
    if field.kind == "select":
        return draw(st.one_of(st.sampled_from(field.options or [""]), text)) if field.options else draw(text)
    if field.kind == "number":
        return draw(numbers)
    if field.kind in ("date", "datetime-local", "time", "month"):
        return draw(dates)
    if field.kind == "hidden":
        return draw(st.one_of(st.just(field.value), text, numbers))
    return draw(st.one_of(text, numbers, dates))


def _unescaped(html: str) -> list[str]:
    """The injected markers found raw in a page."""
    return [marker for marker in XSS_RAW if marker in html]


def _failed_imports() -> int:
    """How many import jobs have failed (a failed import must write none of its rows)."""
    return db.session.scalar(select(func.count()).select_from(ImportJob).where(ImportJob.status == "failed"))


# The import pipeline's bookkeeping: a failed import records its job (with the errors) and keeps the file
# for a retry (panel.imports.uploads); its rows are never written.
IMPORT_BOOKKEEPING = {"import_jobs", "import_workers", "import_uploads"}


def _data_tables_print() -> tuple:
    """The data fingerprint without the import pipeline's bookkeeping (jobs, their workers, kept files)."""
    names = [t.name for t in w._tables()] + ["newest audit entry"]
    return tuple(v for name, v in zip(names, w.fingerprint(), strict=True) if name not in IMPORT_BOOKKEEPING)


@pytest.fixture
def fuzz_setup(app, login):
    """The world, the operator's admin (sees every form), the forms of the panel, the login form."""
    world = w.build()
    admin = login(world.tree.root_admin)
    forms = [
        form
        for form in f.discover(app, admin, world)
        if f.endpoint_of(app, form) not in ("auth.logout", None) and form.fuzzable
    ]
    anonymous_forms = f.parse_forms(
        app.test_client().get("/auth/login").get_data(as_text=True), "/auth/login"
    )
    return world, admin, forms, anonymous_forms


def _submit(client, form: f.Form, data: dict, htmx: bool):
    """Send the form as the browser or htmx would; (response, error)."""
    headers = {"HX-Request": "true"} if htmx else {}
    try:
        if form.method == "GET":
            query = {k: v for k, v in data.items() if not isinstance(v, tuple)}
            return client.get(form.action, query_string=query, headers=headers, buffered=True), None
        return client.open(form.action, method=form.method, data=data, headers=headers, buffered=True), None
    except Exception as exc:  # noqa: BLE001 - an exception in a view is a 500 for the user
        return None, f"raised {type(exc).__name__}: {exc}"


def _short(value) -> str:
    """A submitted value, shortened for a failure message."""
    if isinstance(value, tuple):
        content = value[0].getvalue()
        return f"<file {value[1]!r}: {content[:80]!r}{'...' if len(content) > 80 else ''}>"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}...({len(value)} chars)"


def _check(app, client, form: f.Form, data: dict, htmx: bool, failures: list[str]) -> None:
    """Submit once and record what went wrong."""
    endpoint = f.endpoint_of(app, form)
    before, failed_before, full_before = _data_tables_print(), _failed_imports(), w.fingerprint()
    shown = ", ".join(f"{k}={_short(v)}" for k, v in data.items())
    where = f"{form.method} {form.action} [{endpoint}] with {shown}"
    response, error = _submit(client, form, data, htmx)
    if error:
        failures.append(f"{where}: {error}")
        return
    status = response.status_code
    if status >= 500:
        failures.append(f"{where}: answered {status}")
    elif form.method != "GET" and status >= 400 and _data_tables_print() != before:
        # A refused import may record its failed job (with the errors), never its rows.
        failures.append(
            f"{where}: refused with {status} but changed {w.describe_change(full_before, w.fingerprint())}"
        )
    elif _failed_imports() > failed_before and _data_tables_print() != before:
        failures.append(f"{where}: a failed import wrote rows")
    body = response.get_data(as_text=True)
    if status < 500 and response.mimetype == "text/html" and _unescaped(body):
        failures.append(f"{where}: the answer shows {_unescaped(body)} unescaped")


@pytest.mark.slow
def test_every_form_survives_hostile_input(app, fuzz_setup):
    """Every form found on the panel's pages answers hostile input without 5xx, script or partial write."""
    world, admin, forms, anonymous_forms = fuzz_setup
    endpoints = {f.endpoint_of(app, form) for form in forms}
    assert len(forms) >= 10 and {"companies.create", "users.create"} <= endpoints, sorted(endpoints)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data):
        failures: list[str] = []
        for form, client in [(form, admin) for form in forms] + [
            (form, app.test_client()) for form in anonymous_forms
        ]:
            values = {}
            for field in form.fuzzable:
                value = value_for(data.draw, field)
                if value is not None:
                    values[field.name] = value
            _check(app, client, form, values, data.draw(st.booleans()), failures)
        assert not failures, "\n".join(failures)

    run()
    # Whatever was stored, every page still renders it escaped.
    problems = []
    for url in f.page_urls(app, world):
        response = admin.get(url, buffered=True)
        if response.status_code >= 500:
            problems.append(f"GET {url}: {response.status_code} after the fuzzing")
        elif response.mimetype == "text/html" and _unescaped(response.get_data(as_text=True)):
            # Only HTML is rendered by a browser; CSV downloads carry the stored text as it is.
            problems.append(f"GET {url} shows {_unescaped(response.get_data(as_text=True))} unescaped")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 4096}])
def test_uploads_over_the_limit_are_refused(app, fuzz_setup):
    """Every form with a file field refuses a file over MAX_CONTENT_LENGTH with a message, storing nothing."""
    _world, admin, forms, _anonymous = fuzz_setup
    upload_forms = [form for form in forms if any(fl.kind == "file" for fl in form.fields)]
    if not upload_forms:
        pytest.skip("no form of the panel takes a file yet")
    big = ("code,name,rate\n" + "44,United Kingdom,0.0100\n" * 400).encode()
    assert len(big) > 4096
    failures = []
    for form in upload_forms:
        for htmx in (False, True):
            data = {fl.name: fl.value for fl in form.fuzzable if fl.kind not in ("file", "checkbox")}
            data.update(
                {fl.name: fl.options[-1] for fl in form.fuzzable if fl.kind == "select" and fl.options}
            )
            data.update({fl.name: (io.BytesIO(big), "big.csv") for fl in form.fields if fl.kind == "file"})
            before = w.fingerprint()
            response, error = _submit(admin, form, data, htmx)
            where = f"{form.method} {form.action} [{f.endpoint_of(app, form)}] htmx={htmx}"
            if error:
                failures.append(f"{where}: {error}")
                continue
            text = response.get_data(as_text=True).lower()
            if response.status_code not in (400, 413, 422):
                failures.append(f"{where}: answered {response.status_code}, expected 413 (or 400/422)")
            if "limit" not in text or not any(word in text for word in ("too large", "larger than")):
                failures.append(f"{where}: no message about the size limit in {text[:300]!r}")
            if w.fingerprint() != before:
                failures.append(f"{where}: changed {w.describe_change(before, w.fingerprint())}")
    assert not failures, "\n".join(failures)


API_KEYS = (
    "number src_ip login ani gateway at explain event call_id orig_account_id term_account_id rule_id".split()
)
API_KEYS += ["start", "duration", "answered", "sip_code", "pdd", "brief"]


def _beta_state(world) -> tuple:
    """Beta's calls, live calls and balance: nothing sent with Alpha's token may touch them."""
    from panel.models import CallStat, Client, LiveCall

    accounts = [world.beta.ids["account"][1]]
    client_id = world.beta.ids["client"][1]
    db.session.rollback()
    return (
        db.session.scalar(
            select(func.count())
            .select_from(CallStat)
            .where((CallStat.orig_client_id == client_id) | (CallStat.term_client_id == client_id))
        ),
        db.session.scalar(
            select(func.count())
            .select_from(LiveCall)
            .where(LiveCall.orig_account_id.in_(accounts) | LiveCall.term_account_id.in_(accounts))
        ),
        db.session.scalar(select(Client.balance).where(Client.id == client_id)),
    )


@pytest.mark.slow
def test_api_survives_hostile_json(app):
    """Every POST route of the API answers hostile JSON without 5xx, and Alpha's token never reaches Beta."""
    world = w.build()
    routes = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and "POST" in rule.methods
    ]
    if not routes:
        pytest.skip("the API has no POST route yet")
    ids = st.sampled_from(
        [world.alpha.ids[k][1] for k in ("account", "rule")]
        + [world.beta.ids[k][1] for k in ("account", "rule")]
    )
    scalar = st.one_of(text, numbers, dates, st.integers(-(2**70), 2**70), st.booleans(), st.none(), ids)
    hostile = st.dictionaries(st.one_of(st.sampled_from(API_KEYS), st.text(max_size=8)), scalar, max_size=12)
    # Plausible records (a call record, a call event, a route query) naming Alpha's or Beta's objects, with
    # some fields replaced by hostile values: they reach the scope checks behind the validation.
    plausible = st.builds(
        lambda base, changes: {**base, **changes},
        st.fixed_dictionaries(
            {
                "call_id": st.uuids().map(str),
                "event": st.sampled_from(["start", "end"]),
                "orig_account_id": ids,
                "term_account_id": ids,
                "rule_id": ids,
                "number": st.sampled_from(["441234567", "+441234567", "44"]),
                "login": st.sampled_from(["login-zqalpha", "login-zqbeta"]),
                "start": st.just("2024-01-01T00:00:00Z"),
                "at": st.just("2024-01-01T00:00:00Z"),
                "duration": st.integers(0, 3600),
                "answered": st.booleans(),
                "sip_code": st.just(200),
            }
        ),
        st.dictionaries(st.sampled_from(API_KEYS), scalar, max_size=2),
    )
    record = st.one_of(hostile, plausible)
    payload = st.one_of(record, st.lists(record, max_size=4), scalar, st.lists(scalar, max_size=3))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world.alpha.token_secret}"}

    @settings(
        max_examples=EXAMPLES * 5,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.sampled_from(routes), payload)
    def run(url, body):
        beta, before = _beta_state(world), w.fingerprint()
        try:
            response = client.post(url, json=body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - an exception in a view is a 500 for the switch
            raise AssertionError(f"POST {url} {body!r:.300}: raised {type(exc).__name__}: {exc}") from exc
        assert response.status_code < 500, f"POST {url} {body!r:.300}: {response.status_code}"
        assert response.is_json, f"POST {url}: the API answered {response.mimetype}"
        if response.status_code >= 400:
            assert w.fingerprint() == before, f"POST {url} {body!r:.300}: refused but changed data"
        assert _beta_state(world) == beta, f"POST {url} {body!r:.300}: Alpha's token changed Beta's data"

    run()
