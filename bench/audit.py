"""Benchmark of the audit log at scale: ENTRIES entries, the list and its filters through Flask.

Loads ENTRIES audit entries (bulk inserts) for an operator with ten resellers and their clients and accounts
into a temporary database, then times the audit log pages through the Flask test client: the first page as
the operator's admin (sees everything) and as a reseller's operator (its subtree), a client's history
(`?client_id=`, the link of the clients list), an account's history (`?object_type=account&object_id=`), a
user filter, a date range and a deep page. Prints one JSON line per database: SQLite always, PostgreSQL too
when TEST_DATABASE_URL is set (a private database is created and dropped).

    .venv/bin/python bench/audit.py
    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/audit.py

Environment: BENCH_AUDIT_ENTRIES (default 300000), BENCH_REPEAT (requests per measure, default 20).
"""

import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text  # noqa: E402

from bench.pages import make_app  # noqa: E402
from panel.databases import private_postgres  # noqa: E402
from panel.extensions import db  # noqa: E402
from panel.models import AuditEntry, Client, Company, User  # noqa: E402

ENTRIES = int(os.environ.get("BENCH_AUDIT_ENTRIES", "300000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
CLIENTS = 2000
BATCH = 5000
START = datetime(2025, 1, 1, tzinfo=UTC)


def load(rng: random.Random) -> None:
    """Companies, users, clients and ENTRIES audit entries about clients and accounts, over a year."""
    session = db.session
    session.execute(insert(Company), [{"id": 1, "name": "Operator", "kind": "root", "parent_id": None}])
    session.execute(
        insert(Company),
        [{"id": 1 + i, "name": f"Reseller {i}", "kind": "reseller", "parent_id": 1} for i in range(1, 11)],
    )
    users = [{"id": 1, "company_id": 1, "username": "bench_admin", "role": "admin", "password_hash": "x"}]
    users += [
        {
            "id": 1 + i,
            "company_id": 1 + i,
            "username": f"reseller{i}_op",
            "role": "operator",
            "password_hash": "x",
        }
        for i in range(1, 11)
    ]
    session.execute(insert(User), users)
    session.execute(
        insert(Client),
        [
            {"id": i, "company_id": 1 + i % 11, "name": f"Client {i:05d}", "currency": "USD", "balance": 0}
            for i in range(1, CLIENTS + 1)
        ],
    )
    rows = []
    step = timedelta(days=365) / ENTRIES
    for i in range(ENTRIES):
        client_id = 1 + (i * 7919) % CLIENTS
        is_account = rng.random() < 0.7
        user = rng.choice(users)
        rows.append(
            {
                "at": START + step * i,
                "user_id": user["id"],
                "username": user["username"],
                "company_id": 1 + client_id % 11,
                "client_id": client_id,
                "object_type": "account" if is_account else "client",
                "object_id": client_id * 10 + rng.randint(0, 9) if is_account else client_id,
                "object_label": f"acc-{i}" if is_account else f"Client {client_id:05d}",
                "action": rng.choice(["create", "update", "update", "update", "delete"]),
                "before": {"name": "old", "orig_capacity": 30, "tech_prefix": ""},
                "after": {"name": "new", "orig_capacity": 60, "tech_prefix": "99#"},
                "note": "",
            }
        )
        if len(rows) == BATCH:
            session.execute(insert(AuditEntry), rows)
            rows = []
    if rows:
        session.execute(insert(AuditEntry), rows)
    session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        session.execute(text("ANALYZE"))
        session.commit()


def measure(client, url: str) -> float:
    """Median milliseconds of REPEAT requests (after one warm-up); the page must answer 200."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return round(statistics.median(samples), 1)


def logged_in(app, user_id: int):
    """A test client with a session for the user."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{user_id}:1"
        session["_fresh"] = True
    return client


def run(url: str, database: str) -> dict:
    """Load, then time every page; returns the JSON figures."""
    app = make_app(url)
    with app.app_context():
        db.create_all()
        started = time.perf_counter()
        load(random.Random(7))
        load_s = round(time.perf_counter() - started, 1)
        admin, reseller = logged_in(app, 1), logged_in(app, 2)
        figures = {
            "database": database,
            "entries": ENTRIES,
            "load_s": load_s,
            "first_page_admin_ms": measure(admin, "/audit/"),
            "first_page_reseller_ms": measure(reseller, "/audit/"),
            "client_history_ms": measure(admin, "/audit/?client_id=1234"),
            "account_history_ms": measure(admin, "/audit/?object_type=account&object_id=12345"),
            "user_filter_ms": measure(admin, "/audit/?user=reseller3_op"),
            "date_range_ms": measure(admin, "/audit/?since=2025-06-01&until=2025-06-07"),
            "page_500_ms": measure(admin, "/audit/?page=500"),
            "entry_ms": measure(admin, f"/audit/{ENTRIES // 2}"),
        }
        db.session.remove()
        db.engine.dispose()
    return figures


def main() -> None:
    """SQLite in a temporary directory; PostgreSQL when TEST_DATABASE_URL is set."""
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(f"sqlite:///{tmp}/audit.sqlite3", "sqlite")), flush=True)
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url, drop = private_postgres(base, "panel_bench")
        try:
            print(json.dumps(run(url, "postgresql")))
        finally:
            drop()


if __name__ == "__main__":
    main()
