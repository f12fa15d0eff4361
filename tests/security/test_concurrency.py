"""Concurrency probes of issue 13 (4, 5, 9): many clients at once over loopback HTTP, bounded in time.

Each test serves the panel with werkzeug's threaded server on 127.0.0.1 (a worker answering requests in
parallel, as gunicorn's threads do), fires the probe's load from threads and checks that no answer is a 5xx
and that the data is exact afterwards. They run on SQLite and on PostgreSQL (PANEL_TEST_DB).
"""

import http.client
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from panel import manager
from panel.auth.passwords import check_password
from panel.extensions import db
from panel.models import CallStat, Client, User
from tests import factories
from tests.conftest import make_test_app
from tests.manager.conftest import carrier, make_token  # noqa: F401 - the carrier fixture

# Every test must finish well within this (a hang is a failure, not a stuck run).
TIMEOUT_SECONDS = 120


@contextmanager
def serve(database_url: str, **config) -> Iterator[tuple[object, int]]:
    """The panel served over HTTP on a free loopback port; yields (app, port)."""
    from werkzeug.serving import make_server

    served = make_test_app(database_url, **config)
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with served.app_context():
            db.engine.dispose()


def post_json(port: int, path: str, body, headers: dict | None = None) -> tuple[int, dict, dict]:
    """POST a JSON body over a connection of its own; (status, headers, JSON answer or {})."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        try:
            answer = json.loads(data)
        except ValueError:
            answer = {"raw": data[:300].decode(errors="replace")}
        return response.status, dict(response.getheaders()), answer
    finally:
        conn.close()


def run_threads(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start every worker at once (a barrier), wait for all within the time bound; their exceptions."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def wrap(work):
        def run():
            try:
                barrier.wait(timeout=30)
                work()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(work), daemon=True) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "the load did not finish in time"
    return errors


def _shorten_pooled_lock_waits(app) -> None:
    """What a background import did (imports/jobs.py): 50 ms lock waits left on pooled connections."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            return
        connections = [db.engine.connect() for _ in range(5)]
        for conn in connections:
            conn.exec_driver_sql("PRAGMA busy_timeout=50")
        for conn in connections:
            conn.close()


def _record(account_id: int, call_id: str, duration: int = 30) -> dict:
    return {
        "call_id": call_id,
        "orig_account_id": account_id,
        "number": "441234567",
        "start": "2026-05-01T10:00:00Z",
        "duration": duration,
    }


def _balance(client) -> Decimal:
    db.session.expire_all()
    return db.session.get(Client, client.id).balance


def _stored() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(CallStat))


def test_concurrent_cdr_posts_never_fail(_schema, carrier):  # noqa: F811
    """Issue 13.4: 16 threads posting single CDRs and 4 posting batches, after a job left 50 ms lock waits
    on the pool, while admins log in and the manager runs: zero 5xx, every record stored once and charged
    exactly, every login and every manager run succeeds (SQLite: 169 of 4,854 posts failed, and logins and
    manager runs with them)."""
    token = make_token(carrier.tree.alpha)
    auth = {"Authorization": f"Bearer {token}"}
    acme_main = carrier.acme_main.id
    statuses: Counter = Counter()
    lock = threading.Lock()

    logins: Counter = Counter()
    runs: Counter = Counter()
    with serve(_schema, MANAGER_PERIOD_SECONDS=0) as (served, port):
        _shorten_pooled_lock_waits(served)

        def admin_logins():
            for _ in range(5):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
                body = f"username=alpha_admin&password={factories.PASSWORD}"
                conn.request(
                    "POST", "/auth/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
                )
                status = conn.getresponse().status
                conn.close()
                with lock:
                    logins[status] += 1

        def manager_runs():
            for _ in range(5):
                run = manager.run_once(served)
                runs[run.outcome if run else "skipped"] += 1

        def singles(n: int):
            def work():
                for i in range(12):
                    record = _record(acme_main, f"s{n}-{i}")
                    status, _h, _answer = post_json(port, "/api/v1/cdrs", record, auth)
                    with lock:
                        statuses[status] += 1

            return work

        def batches(n: int):
            def work():
                for b in range(4):
                    batch = [_record(acme_main, f"b{n}-{b}-{i}") for i in range(25)]
                    status, _h, _answer = post_json(port, "/api/v1/cdrs", batch, auth)
                    with lock:
                        statuses[status] += 1

            return work

        errors = run_threads(
            [singles(n) for n in range(16)]
            + [batches(n) for n in range(4)]
            + [admin_logins, admin_logins]
            + [manager_runs]
        )
    assert not errors
    assert statuses == {200: 16 * 12 + 4 * 4}, statuses
    assert logins == {302: 10}, logins
    assert runs["ok"] >= 1 and set(runs) <= {"ok", "skipped"}, runs
    assert _stored() == 16 * 12 + 4 * 4 * 25
    # 30 s on Acme's 44 rate (0.10/min, 30 s minimum, setup fee 0.05) costs 0.10; exact on both databases.
    assert _balance(carrier.acme) == Decimal("-0.10") * (16 * 12 + 4 * 4 * 25)


def test_batches_over_the_same_call_ids_in_different_orders(_schema, carrier):  # noqa: F811
    """Issue 13.5: 8 concurrent batches naming the same 150 call ids (two customers) in different orders:
    no deadlock answers 500 (PostgreSQL: 7 of 8 did); each call is stored and charged exactly once."""
    auth = {"Authorization": f"Bearer {make_token(carrier.tree.alpha)}"}
    other = factories.account(carrier.vox, "vox-orig", ident_value="203.0.113.77", orig_enabled=True)
    carrier.vox.orig_rate_table_id = carrier.customer_rates.id
    db.session.commit()
    records = [_record(carrier.acme_main.id if i % 2 else other.id, f"same-{i:03d}") for i in range(150)]
    answers: list = []

    with serve(_schema) as (served, port):
        _shorten_pooled_lock_waits(served)

        def poster(n: int):
            def work():
                batch = records[:]
                random.Random(n).shuffle(batch)
                answers.append(post_json(port, "/api/v1/cdrs", batch, auth))

            return work

        errors = run_threads([poster(n) for n in range(8)])
    assert not errors
    assert [status for status, _h, _a in answers] == [200] * 8, [a for _s, _h, a in answers]
    assert sum(a["stored"] for _s, _h, a in answers) == 150
    assert sum(len(a["duplicates"]) for _s, _h, a in answers) == 7 * 150
    assert _stored() == 150
    assert _balance(carrier.acme) == Decimal("-0.10") * 75
    assert _balance(carrier.vox) == Decimal("-0.10") * 75


def _slow_password_checks(monkeypatch) -> None:
    """Each password check takes 50 ms, as a real hash does: it widens the window a race needs."""
    import time

    from panel.auth import views

    real_check = views.check_password

    def slow_check(password_hash, password):
        time.sleep(0.05)
        return real_check(password_hash, password)

    monkeypatch.setattr(views, "check_password", slow_check)


def _form_posts(count: int, path: str, port_of, body_of, headers: dict | None = None) -> Counter:
    """`count` form POSTs to `path` at once, the n-th to port `port_of(n)` with body `body_of(n)`; how many
    answered each status (no request may fail or hang)."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}

    def post(n: int):
        def work():
            conn = http.client.HTTPConnection("127.0.0.1", port_of(n), timeout=60)
            conn.request("POST", path, body_of(n), headers)
            status = conn.getresponse().status
            conn.close()
            with lock:
                statuses[status] += 1

        return work

    errors = run_threads([post(n) for n in range(count)])
    assert not errors
    return statuses


def test_login_limit_holds_under_concurrency_and_across_workers(_schema, tree, monkeypatch):
    """Issue 13.9: 40 wrong passwords at once, spread over two workers, against a limit of 5: at most 5 are
    checked (answered 401), every other one is refused unchecked (429) (11 were checked before)."""
    _slow_password_checks(monkeypatch)
    with (
        serve(_schema, LOGIN_MAX_FAILURES_PER_USER=5) as (_a, port_a),
        serve(_schema, LOGIN_MAX_FAILURES_PER_USER=5) as (_b, port_b),
    ):
        statuses = _form_posts(
            40,
            "/auth/login",
            lambda n: port_a if n % 2 else port_b,
            lambda n: f"username=alpha_operator&password=wrong-guess-{n}",
        )
    assert statuses[401] <= 5 and statuses[401] + statuses[429] == 40, statuses


def test_current_password_guesses_are_limited(login, tree):
    """Issue 13.9: the password form counts wrong current passwords against the login limit: after 5, even
    the right one is refused for the window (429), so the form cannot be used to guess."""
    session = login(tree.alpha_operator)
    new = "brand-new-pass-9"
    for n in range(5):
        data = {"current": f"wrong-{n}-password", "new": new, "confirm": new}
        assert session.post("/auth/password", data=data).status_code == 422
    right = {"current": factories.PASSWORD, "new": new, "confirm": new}
    response = session.post("/auth/password", data=right)
    assert response.status_code == 429 and b"Too many wrong passwords" in response.data
    db.session.expire_all()
    assert check_password(db.session.get(User, tree.alpha_operator.id).password_hash, factories.PASSWORD)
    assert session.get("/").status_code == 200  # the session itself goes on


def test_current_password_guesses_hold_under_concurrency(_schema, tree, monkeypatch):
    """Issue 13.9: 20 parallel wrong current passwords in one session: at most 5 are checked."""
    _slow_password_checks(monkeypatch)
    with serve(_schema) as (served, port):
        client = served.test_client()
        login_form = {"username": "alpha_operator", "password": factories.PASSWORD}
        response = client.post("/auth/login", data=login_form)
        assert response.status_code == 302
        cookie = f"session={client.get_cookie('session').value}"
        # The login cleared the user's attempts: the 20 guesses start from an empty count.
        statuses = _form_posts(
            20,
            "/auth/password",
            lambda n: port,
            lambda n: f"current=wrong-{n}-password&new=brand-new-pass-9&confirm=brand-new-pass-9",
            {"Cookie": cookie},
        )
    assert statuses[422] <= 5 and statuses[422] + statuses[429] == 20, statuses


class _Deadlock(Exception):
    """What the driver raises for a PostgreSQL deadlock (SQLSTATE 40P01)."""

    sqlstate = "40P01"


def test_a_deadlock_is_retried_and_one_that_persists_answers_503(client, carrier, monkeypatch):  # noqa: F811
    """Issue 13.5: a deadlock victim's batch is run again (stored once); when every try fails the answer is
    503 with Retry-After and the JSON error body, never a 500, and nothing is stored or charged."""
    from sqlalchemy.exc import OperationalError

    from panel import cdrs

    token = make_token(carrier.tree.alpha)
    real_insert = cdrs._insert
    failures = {"left": 2}

    def flaky_insert(rows):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT INTO call_stats ...", {}, _Deadlock("deadlock detected"))
        return real_insert(rows)

    monkeypatch.setattr(cdrs, "_insert", flaky_insert)
    auth = {"Authorization": f"Bearer {token}"}
    response = client.post("/api/v1/cdrs", json=_record(carrier.acme_main.id, "retried"), headers=auth)
    assert response.status_code == 200 and response.json["stored"] == 1
    assert failures["left"] == 0 and _stored() == 1

    failures["left"] = 1000
    response = client.post("/api/v1/cdrs", json=_record(carrier.acme_main.id, "refused"), headers=auth)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.mimetype == "application/json" and response.json["error"] and "field" in response.json
    assert _stored() == 1
    assert _balance(carrier.acme) == Decimal("-0.10")


def test_a_write_locked_out_past_the_busy_timeout_answers_503(_schema, carrier, monkeypatch):  # noqa: F811
    """Issue 13.4: on SQLite, while another connection holds the writer lock longer than the busy timeout, a
    CDR post answers 503 with Retry-After as JSON (a login: 503 in words); once the lock is gone the same post
    is stored."""
    import sqlite3

    from sqlalchemy.engine import make_url

    from panel import txn

    if not _schema.startswith("sqlite"):
        pytest.skip("SQLite's writer lock")
    monkeypatch.setattr(txn, "BUSY_TIMEOUT_MS", 200)
    token = make_token(carrier.tree.alpha)
    auth = {"Authorization": f"Bearer {token}"}
    record = _record(carrier.acme_main.id, "waited")
    holder = sqlite3.connect(make_url(_schema).database, isolation_level=None)
    with serve(_schema) as (_app, port):
        holder.execute("BEGIN IMMEDIATE")
        try:
            status, headers, answer = post_json(port, "/api/v1/cdrs", record, auth)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
            form = "username=alpha_operator&password=whatever-it-is"
            conn.request("POST", "/auth/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
            login = conn.getresponse()
            login_body = login.read().decode()
            conn.close()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert status == 503 and headers["Retry-After"] == "1" and answer["error"], answer
        # A page answers the same way, in words (a login while the database is locked).
        assert login.status == 503 and login.getheader("Retry-After") == "1" and "busy" in login_body
        assert post_json(port, "/api/v1/cdrs", record, auth)[0] == 200
    assert _stored() == 1
