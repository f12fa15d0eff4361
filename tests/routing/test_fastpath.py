"""The switch endpoints' fast path (panel.api.fastpath): the Flask views' answers, scoping, stored CDRs.

Every answer is compared with the one the Flask view gives for the same request (status, headers, body), for
valid and hostile input; writes are acknowledged only once committed; many threads posting events and CDRs
get every acknowledged record stored exactly once; a batch of call events, applied in two statements, does
what its events one by one do.
"""

import base64
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask.globals import _cv_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError
from werkzeug.test import EnvironBuilder

from panel import livecalls
from panel.api import fastpath, worker
from panel.extensions import db
from panel.models import ApiToken, CallStat, LiveCall
from tests.manager.conftest import alpha_token, bearer, carrier, make_token, routed  # noqa: F401

TAG = "{tag}"


@pytest.fixture
def answered(monkeypatch):
    """The paths the fast path answered itself, in order."""
    seen: list[str] = []
    original = fastpath.FastPath._answer

    def spy(answer, environ, data):
        seen.append(environ["PATH_INFO"])
        return original(answer, environ, data)

    monkeypatch.setattr(fastpath.FastPath, "_answer", staticmethod(spy))
    return seen


def _flask_only(app):
    """The app's WSGI entry without the fast path (what Flask alone answers)."""
    assert isinstance(app.wsgi_app, fastpath.FastPath)
    return app.wsgi_app.wsgi_app


def _post(client, path: str, body: bytes, headers: dict):
    return client.post(path, data=body, headers={"Content-Type": "application/json", **headers})


def _both(app, client, path: str, body: str, headers: dict):
    """The fast path's and Flask's answers to the same request (call ids tagged `f` and `s` apart)."""
    fast = _post(client, path, body.replace(TAG, "f").encode(), headers)
    wrapped = app.wsgi_app
    app.wsgi_app = _flask_only(app)
    try:
        slow = _post(client, path, body.replace(TAG, "s").encode(), headers)
    finally:
        app.wsgi_app = wrapped
    return fast, slow


def _same(fast, slow) -> None:
    """Same status, headers and body (the route answer's `at` is the moment it was asked: left out)."""
    assert fast.status == slow.status
    moment = re.compile(rb'"at":"[^"]*"')
    assert moment.sub(b"", fast.get_data().replace(b"-f", b"-s")) == moment.sub(b"", slow.get_data())
    assert sorted(fast.headers.items()) == sorted(slow.headers.items())


def _cases(c) -> list[tuple[str, object]]:
    """(path, body) pairs: valid requests and hostile ones; `{tag}` keeps the two runs' call ids apart."""
    start = {"event": "start", "orig_account_id": c.acme_main.id, "term_account_id": c.vox_gw.id}
    cdr = {
        "orig_account_id": c.acme_main.id,
        "term_account_id": c.vox_gw.id,
        "number": "441234567",
        "start": "2026-01-01T12:00:00Z",
        "duration": 61,
    }
    return [
        ("/api/v1/route", {"number": "441234567", "src_ip": "198.51.100.10"}),
        ("/api/v1/route", {"number": "+441234567", "src_ip": "198.51.100.10", "explain": True}),
        ("/api/v1/route", {"number": "441234567", "src_ip": "198.51.100.10", "brief": True}),
        ("/api/v1/route", {"number": "441234567", "src_ip": "192.0.2.50"}),  # Beta's account: not Alpha's
        ("/api/v1/route", {"number": "44x"}),
        ("/api/v1/route", {"number": "441", "bogus": 1}),
        ("/api/v1/route", {"number": "441", "src_ip": "300.1.1.1", "at": "9999-12-31T23:59:59-14:00"}),
        ("/api/v1/route", ["not", "an", "object"]),
        ("/api/v1/route", "{not json"),
        ("/api/v1/route", "[" * 100_000),
        ("/api/v1/route", {"number": "44\u0000"}),
        ("/api/v1/calls", [{**start, "call_id": "a-{tag}"}, {"event": "end", "call_id": "a-{tag}"}]),
        (
            "/api/v1/calls",
            [{"event": "end", "call_id": "never-{tag}"}, {"event": "end", "call_id": "x-{tag}"}],
        ),
        ("/api/v1/calls", {**start, "call_id": "b-{tag}", "orig_account_id": c.beta_acc.id}),
        ("/api/v1/calls", {"event": "pause", "call_id": "\u0000"}),
        ("/api/v1/calls", [{"event": "end", "call_id": f"n{i}"} for i in range(1001)]),
        ("/api/v1/calls", []),
        ("/api/v1/cdrs", {**cdr, "call_id": "c-{tag}"}),
        ("/api/v1/cdrs", [{**cdr, "call_id": "d-{tag}"}, {**cdr, "call_id": "d-{tag}"}]),
        ("/api/v1/cdrs", {**cdr, "call_id": "e-{tag}", "orig_account_id": c.beta_acc.id}),
        ("/api/v1/cdrs", {**cdr, "call_id": "g-{tag}", "duration": -1, "sip_code": 99, "extra": True}),
        ("/api/v1/cdrs", 42),
    ]


def test_answers_are_the_flask_views_answers(app, client, routed, alpha_token, answered):  # noqa: F811
    """Valid and hostile requests: the fast path answers each exactly as the Flask view does."""
    cases = _cases(routed)
    for path, body in cases:
        text = body if isinstance(body, str) else json.dumps(body)
        fast, slow = _both(app, client, path, text, bearer(alpha_token))
        _same(fast, slow)
    assert len(answered) == len(cases)  # every one of them went through the fast path
    # Some of each kind succeeded and some were refused, so both branches were compared.
    assert {r for r in answered} == {"/api/v1/route", "/api/v1/calls", "/api/v1/cdrs"}


def test_tokens_are_checked_as_the_views_check_them(app, client, routed, alpha_token, answered):  # noqa: F811
    """No token, a wrong one, a revoked company's, and Kamailio's HTTP Basic form."""
    basic = base64.b64encode(f"switch:{alpha_token}".encode()).decode()
    body = json.dumps({"number": "441234567", "src_ip": "198.51.100.10"})
    answers = []
    for headers in ({}, {"Authorization": "Bearer rp_wrong"}, {"Authorization": f"Basic {basic}"}):
        fast, slow = _both(app, client, "/api/v1/route", body, headers)
        _same(fast, slow)
        answers.append(fast.status_code)
    assert answers == [401, 401, 200]
    assert fast.json["routes"], "the Basic token routes the call"


def test_unusual_requests_are_left_to_flask(app, client, routed, alpha_token, answered):  # noqa: F811
    """Another method, a trailing slash, a body over the limit: Flask answers (405, 404, 413 as JSON)."""
    app.config["MAX_CONTENT_LENGTH"] = 1000
    big = _post(client, "/api/v1/cdrs", b" " * 2000, bearer(alpha_token))
    assert big.status_code == 413 and big.json["error"] == "request body too large"
    assert client.get("/api/v1/route", headers=bearer(alpha_token)).status_code == 405
    assert _post(client, "/api/v1/route/", b"{}", bearer(alpha_token)).status_code == 404
    assert answered == []


def _stored(call_ids) -> int:
    return db.session.scalar(select(func.count()).select_from(CallStat).where(CallStat.call_id.in_(call_ids)))


def test_a_cdr_is_acknowledged_only_once_committed(app, client, routed, alpha_token, monkeypatch):  # noqa: F811
    """A commit that fails answers 503 and stores nothing; the retry is acknowledged and stored."""
    cdr = {
        "call_id": "commit-1",
        "orig_account_id": routed.acme_main.id,
        "number": "441234567",
        "start": "2026-01-01T12:00:00Z",
        "duration": 30,
    }
    real_commit = db.session.commit

    def locked():
        raise OperationalError("COMMIT", (), Exception("database is locked"))

    monkeypatch.setattr(db.session, "commit", locked)
    refused = client.post("/api/v1/cdrs", json=cdr, headers=bearer(alpha_token))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json == {"error": "the database is busy; try again in a moment", "field": None}
    monkeypatch.setattr(db.session, "commit", real_commit)
    db.session.rollback()
    assert _stored(["commit-1"]) == 0
    taken = client.post("/api/v1/cdrs", json=cdr, headers=bearer(alpha_token))
    assert taken.status_code == 200 and taken.json["stored"] == 1
    # Read through a connection of its own: committed, not merely in the request's session.
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(CallStat)) == 1


def test_concurrent_events_and_cdrs_are_stored_exactly_once(app, routed, alpha_token):  # noqa: F811
    """Eight threads post events and CDRs (each CDR twice, from two threads): every acknowledged record is
    stored once, the second copy is a duplicate, and every call that started and ended is no longer live."""
    db.session.commit()
    orig, term = routed.acme_main.id, routed.vox_gw.id
    headers = bearer(alpha_token)
    errors: list[str] = []
    acknowledged: list[str] = []
    duplicates: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = app.test_client()
        for batch in range(6):
            ids = [f"t{n % 4}-b{batch}-{i}" for i in range(10)]  # threads n and n+4 share their call ids
            start = [
                {"event": "start", "call_id": f"{c}/{n}", "orig_account_id": orig, "term_account_id": term}
                for c in ids
            ]
            end = [{"event": "end", "call_id": f"{c}/{n}"} for c in ids]
            cdrs = [
                {
                    "call_id": c,
                    "orig_account_id": orig,
                    "number": "441234567",
                    "start": "2026-01-01T12:00:00Z",
                }
                | {"duration": 30}
                for c in ids
            ]
            for path, body in (("/api/v1/calls", start), ("/api/v1/calls", end), ("/api/v1/cdrs", cdrs)):
                response = client.post(path, json=body, headers=headers)
                if response.status_code != 200:
                    errors.append(f"{path} {response.status_code} {response.get_data(as_text=True)}")
                elif path == "/api/v1/cdrs":
                    with lock:
                        acknowledged.extend(c for c in ids if c not in response.json["duplicates"])
                        duplicates.extend(response.json["duplicates"])
                elif body is end:
                    assert response.json["ended"] == 10, response.json

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert errors == []
    assert len(acknowledged) == len(set(acknowledged)) == 4 * 6 * 10
    assert sorted(duplicates) == sorted(acknowledged)
    db.session.rollback()
    stored = db.session.execute(select(CallStat.call_id)).scalars().all()
    assert sorted(stored) == sorted(acknowledged)
    assert db.session.scalar(select(func.count()).select_from(LiveCall)) == 0


def test_events_of_another_token_stay_in_their_company(app, client, routed, alpha_token):  # noqa: F811
    """Through the fast path an end with another company's call id ends nothing of theirs."""
    beta_token = make_token(routed.tree.beta, "beta switch")
    beta_start = {"event": "start", "call_id": "shared", "orig_account_id": routed.beta_acc.id}
    assert client.post("/api/v1/calls", json=beta_start, headers=bearer(beta_token)).status_code == 200
    end = {"event": "end", "call_id": "shared"}
    foreign = client.post("/api/v1/calls", json=end, headers=bearer(alpha_token))
    assert foreign.json == {"started": 0, "ended": 0, "not_live": ["shared"]}
    assert db.session.scalar(select(func.count()).select_from(LiveCall)) == 1
    own = client.post("/api/v1/calls", json=end, headers=bearer(beta_token))
    assert own.json == {"started": 0, "ended": 1, "not_live": []}


def test_route_requests_in_the_switch_workers_main_thread(app, client, routed, alpha_token):  # noqa: F811
    """A route request that panel.api.worker answers in its main thread (marked in the environ): the view's
    answer, in one app context that thread keeps, its database session ended after each request that used
    one, and no write: the token's last_used_at waits for the next request a pool thread answers."""
    body = json.dumps({"number": "441234567", "src_ip": "198.51.100.10"}).encode()
    headers = {**bearer(alpha_token), "Content-Type": "application/json"}
    expected = client.post("/api/v1/route", data=body, headers=headers)
    assert expected.status_code == 200 and expected.json["routes"]
    token = db.session.scalar(select(ApiToken).where(ApiToken.company_id == routed.tree.alpha.id))
    token.last_used_at = None  # the touch is due, and the token is read from the database again
    db.session.commit()
    livecalls.invalidate(app)
    seen = []

    def main_thread() -> None:
        for _ in range(3):
            environ = EnvironBuilder(path="/api/v1/route", method="POST", data=body, headers=headers)
            environ = {**environ.get_environ(), worker.INLINE: True}
            started: list = []
            chunks = app(
                environ, lambda status, headers, exc_info=None, s=started: s.append((status, headers))
            )
            seen.append((*started[0], b"".join(chunks), _cv_app.get(None), db.session.registry.has()))

    thread = threading.Thread(target=main_thread)
    thread.start()
    thread.join()
    moment = re.compile(rb'"at":"[^"]*"')
    for status, answer_headers, data, context, has_session in seen:
        assert status == "200 OK" and moment.sub(b"", data) == moment.sub(b"", expected.get_data())
        assert sorted(answer_headers) == sorted(expected.headers.items())
        assert context is seen[0][3] and context.app is app and not has_session
    db.session.expire_all()
    assert token.last_used_at is None
    assert client.post("/api/v1/route", data=body, headers=headers).status_code == 200
    db.session.expire_all()
    assert token.last_used_at is not None


_EVENT = st.tuples(
    st.sampled_from(["start", "end"]),
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(0, 1),  # which terminator (and rule)
    st.integers(0, 59),  # minute of the start
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(_EVENT, max_size=4), events=st.lists(_EVENT, min_size=1, max_size=12))
def test_a_batch_of_events_does_what_its_events_one_by_one_do(app, routed, before, events):  # noqa: F811
    """A batch is applied in two statements (panel.livecalls._Batch); whatever the order of its starts and
    ends, the live calls it leaves and its answer are those of posting its events one at a time."""
    terms = [(routed.vox_gw.id, routed.vox_rule.id), (routed.tel_gw.id, routed.tel_rule.id)]
    company = routed.tree.alpha.id

    def payload(spec) -> list[dict]:
        out = []
        for kind, call_id, which, minute in spec:
            event = {"event": kind, "call_id": call_id}
            if kind == "start":
                term, rule = terms[which]
                event |= {"orig_account_id": routed.acme_main.id, "term_account_id": term, "rule_id": rule}
                event["at"] = f"2026-01-01T12:{minute:02d}:00Z"
            out.append(event)
        return out

    def live() -> list[tuple]:
        db.session.expire_all()
        columns = (LiveCall.call_id, LiveCall.orig_account_id, LiveCall.term_account_id, LiveCall.rule_id)
        return sorted(db.session.execute(select(*columns, LiveCall.started_at)).all())

    def run(one_by_one: bool) -> tuple[dict, list]:
        db.session.execute(delete(LiveCall))
        db.session.commit()
        if before:
            livecalls.apply_events(payload(before), company_id=company)
        if not one_by_one:
            return livecalls.apply_events(payload(events), company_id=company), live()
        answer = {"started": 0, "ended": 0, "not_live": []}
        for event in payload(events):
            each = livecalls.apply_events(event, company_id=company)
            answer = {key: answer[key] + each[key] for key in answer}
        return answer, live()

    assert run(one_by_one=False) == run(one_by_one=True)


KAMAILIO_ROUTE = (
    b"POST /api/v1/route HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: Basic c3dpdGNoOnJwX3g=\r\n"
    b"User-Agent: routing-panel-kamailio\r\nAccept: */*\r\nContent-Type: application/json\r\n"
    b'Content-Length: 16\r\n\r\n{"number":"441"}'
)


def test_the_switch_worker_reads_a_plain_switch_request():
    """panel.api.worker.parse: the request Kamailio's http_client sends, also pipelined with the next."""
    path, headers, head, size = worker.parse(KAMAILIO_ROUTE + KAMAILIO_ROUTE[:30])
    assert (path, size, KAMAILIO_ROUTE[head : head + size]) == ("/api/v1/route", 16, b'{"number":"441"}')
    assert headers["HTTP_AUTHORIZATION"] == "Basic c3dpdGNoOnJwX3g="
    assert headers["HTTP_CONTENT_TYPE"] == "application/json"


def test_the_switch_worker_remembers_a_header_block_without_its_values():
    """parse() remembers what it read in a header block by a digest of the block: the same answer the next
    time (a body not all there yet still refused), another token's block read apart, no header value kept."""
    worker._HEADS.clear()
    first = worker.parse(KAMAILIO_ROUTE)
    assert worker.parse(KAMAILIO_ROUTE) == first and len(worker._HEADS) == 1
    assert worker.parse(KAMAILIO_ROUTE[:-3]) is None
    other = KAMAILIO_ROUTE.replace(b"c3dpdGNoOnJwX3g=", b"c3dpdGNoOnJwX3k=")
    assert worker.parse(other)[1]["HTTP_AUTHORIZATION"] == "Basic c3dpdGNoOnJwX3k="
    assert worker.parse(KAMAILIO_ROUTE)[1]["HTTP_AUTHORIZATION"] == "Basic c3dpdGNoOnJwX3g="
    assert len(worker._HEADS) == 2 and "c3dpdGNo" not in repr(worker._HEADS)
    refused = KAMAILIO_ROUTE.replace(b"Accept: */*", b"Accept: */*\r\nAccept: text/plain")
    assert worker.parse(refused) is None and worker.parse(refused) is None  # a repeated header: gunicorn's


# What to change in KAMAILIO_ROUTE, and into what: requests the strict reader must leave to gunicorn.
NOT_PLAIN = {
    b'{"number":"441"}': [b'{"number":"44'],  # the body not all received yet
    b"POST /api/v1/route": [
        b"POST /api/v1/route?x=1",
        b"POST /api/v1/routes",
        b"POST http://127.0.0.1/api/v1/route",
        b"post /api/v1/route",
        b"PUT /api/v1/route",
    ],
    b"HTTP/1.1\r\n": [b"HTTP/1.0\r\n"],
    b"Accept: */*\r\n": [
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Length: 16\r\n",  # two lengths, even equal ones
        b"Expect: 100-continue\r\n",
        b"Connection: close\r\n",
        b"Upgrade: h2c\r\n",
        b"X-Forwarded-For: 10.0.0.1\r\n",
        b"Accept_Encoding: gzip\r\n",  # an underscore: gunicorn drops such headers
        b"Accept: */*\r\n folded\r\n",  # obsolete line folding
        b"Accept : */*\r\n",
        b"Accept: caf\xc3\xa9\r\n",
        b"Accept: */*\n",
    ],
    b"Content-Length: 16": [b"Content-Length: +16", b"Content-Length: 16, 16"],
    b"Content-Length: 16\r\n": [b""],
    b"\r\n\r\n": [b"\r\nX-Padding: " + b"x" * 9000 + b"\r\n\r\n"],
}


@pytest.mark.parametrize(("old", "new"), [(old, new) for old, news in NOT_PLAIN.items() for new in news])
def test_the_switch_worker_leaves_anything_else_to_gunicorn(old, new):
    """A request the strict reader does not take whole is not read at all (gunicorn's parser reads it)."""
    assert KAMAILIO_ROUTE.count(old) == 1
    assert worker.parse(KAMAILIO_ROUTE.replace(old, new)) is None
