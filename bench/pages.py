"""Benchmark of the accounts list at scale: 100,000 accounts, list / quick search / paging through Flask.

Loads a carrier with ACCOUNTS accounts (bulk inserts) into a temporary database, then times requests through
the Flask test client as the operator's admin (who sees everything) and as a reseller's operator (who sees
its subtree). Prints one JSON line per database: SQLite always (a file in a temporary directory),
PostgreSQL too when TEST_DATABASE_URL is set (a private database is created and dropped, as the tests do).

Besides wall-clock times, `*_cpu_ms_p95` give the app process's CPU time (on SQLite that includes the
database's work): the part of a request that contention from other processes cannot inflate.

    .venv/bin/python bench/pages.py                 # SQLite
    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/pages.py

Deep pages are reached as the pager links them: `last=1` and keyset cursors (`after` / `before`) from rows
anywhere in the table. BENCH_ACCOUNTS=1000000 loads a million accounts (a few minutes; generated in batches).

Environment: BENCH_SKIP_SQLITE=1 (PostgreSQL only), BENCH_ACCOUNTS (default 100000), BENCH_REPEAT
(requests per measure, default 60), BENCH_ROUNDS (rounds per measure, the fastest counts, default 3). The
JSON line also gives the machine's load average and CPU count at the end of the run, since other work on the
machine slows every figure.

BENCH_KEEP_DB=1 keeps the generated database for the next run instead of dropping it (for iterating on the
queries: a million accounts take minutes to load). The kept database is `panel_bench_pages_<ACCOUNTS>` next to
TEST_DATABASE_URL on PostgreSQL and `panel_bench_pages_<ACCOUNTS>.sqlite3` in the system's temporary directory
on SQLite; a run that finds it loaded skips the load (`load_s` is then 0) and first deletes the accounts an
earlier run created through the form. It is not migrated: after a change of the models, drop it
(`DROP DATABASE panel_bench_pages_1000000`, or delete the file) and let the next run load it again.
"""

import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, insert, make_url, select, text  # noqa: E402

from panel import create_app  # noqa: E402
from panel.config import normalise_database_url  # noqa: E402
from panel.databases import private_postgres  # noqa: E402
from panel.extensions import db  # noqa: E402
from panel.models import (  # noqa: E402
    Account,
    AccountNetwork,
    Client,
    Company,
    Gateway,
    RateTable,
    RoutingPlan,
    User,
    account_gateways,
)
from panel.paging import encode_cursor  # noqa: E402

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "60"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENTS = max(10, ACCOUNTS // 100)
RESELLERS = 10
BATCH = 5000
KEEP = os.environ.get("BENCH_KEEP_DB") == "1"


def make_app(url: str):
    """The panel against the benchmark database (no manager, no CSRF: requests come from the test client)."""
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "WTF_CSRF_ENABLED": False,
            "MANAGER_ENABLED": False,
            "SECRET_KEY": "bench",
            "ACCOUNT_PASSWORD_KEY": "bench",
        }
    )


def _account(rng: random.Random, i: int, accounts: list, networks: list, links: list, network_id: int) -> int:
    """Account `i` (an address, a login or an ANI) with its networks and gateways; the last network id."""
    kind = rng.random()
    client_id = 1 + (i * 7919) % CLIENTS
    if kind < 0.6:
        ident_by = "ip"
        a, b, c = i // 65536 % 256, i // 256 % 256, i % 256
        if rng.random() < 0.5:
            parts = [f"10.{a}.{b}.{c}"]
            canon = [f"10.{a}.{b}.{c}/32"]
        else:
            parts = [f"172.{16 + a % 16}.{b}.{c & 0xF8}/29", f"100.{a}.{b}.{c}"]
            canon = [f"172.{16 + a % 16}.{b}.{c & 0xF8}/29", f"100.{a}.{b}.{c}/32"]
        value = "; ".join(parts)
        for position, network in enumerate(canon):
            network_id += 1
            networks.append({"id": network_id, "account_id": i, "network": network, "position": position})
    elif kind < 0.85:
        ident_by, value = "name", f"login{i:06d}"
    else:
        ident_by, value = "ani", f"4420{i:07d}"
    orig = rng.random() < 0.8
    term = rng.random() < 0.3
    accounts.append(
        {
            "id": i,
            "client_id": client_id,
            "name": f"acc-{i:06d}",
            "ident_by": ident_by,
            "ident_value": value,
            "tech_prefix": f"{rng.randint(1, 999)}#" if rng.random() < 0.2 else "",
            "orig_enabled": orig,
            "orig_rate_table_id": 1 + i % 20 if rng.random() < 0.3 else None,
            "orig_routing_plan_id": 1 + i % 10 if rng.random() < 0.3 else None,
            "orig_tags": rng.choice(["", "", "gold", "silver", "gold wholesale"]),
            "orig_capacity": rng.choice([None, 30, 100]),
            "term_enabled": term,
            "term_rate_table_id": 1 + i % 20 if term and rng.random() < 0.5 else None,
            "term_tags": "",
            "protocol": "sip",
            "proxy": "",
            "port": 5060,
            "notes": "",
            "password_encrypted": "",
        }
    )
    if rng.random() < 0.3:
        links.append({"account_id": i, "gateway_id": 1 + i % 5})
    return network_id


def load(rng: random.Random) -> dict:
    """Companies, gateways, rate tables, plans, clients and ACCOUNTS accounts with networks, in bulk."""
    session = db.session
    session.execute(insert(Company), [{"id": 1, "name": "Operator", "kind": "root", "parent_id": None}])
    companies = [
        {"id": 1 + i, "name": f"Reseller {i}", "kind": "reseller", "parent_id": 1} for i in range(1, 11)
    ]
    session.execute(insert(Company), companies)
    company_ids = [1] + [c["id"] for c in companies]
    session.execute(
        insert(User),
        [
            {"id": 1, "company_id": 1, "username": "bench_admin", "role": "admin", "password_hash": "x"},
            {
                "id": 2,
                "company_id": 2,
                "username": "bench_reseller",
                "role": "operator",
                "password_hash": "x",
            },
        ],
    )
    session.execute(
        insert(Gateway),
        [{"id": i, "company_id": 1, "name": f"gw{i}", "address": f"192.0.2.{i}"} for i in range(1, 6)],
    )
    session.execute(
        insert(RateTable),
        [{"id": i, "company_id": 1, "name": f"Rates {i}", "currency": "USD"} for i in range(1, 21)],
    )
    session.execute(
        insert(RoutingPlan), [{"id": i, "company_id": 1, "name": f"Plan {i}"} for i in range(1, 11)]
    )
    clients = [
        {
            "id": i,
            "company_id": company_ids[i % len(company_ids)],
            "name": f"Client {i:05d}",
            "currency": "USD",
            "balance": 0,
            "orig_rate_table_id": 1 + i % 20,
            "routing_plan_id": 1 + i % 10,
        }
        for i in range(1, CLIENTS + 1)
    ]
    session.execute(insert(Client), clients)

    network_id = 0
    # Generated and inserted a batch at a time: a million accounts never sit in memory at once.
    for first in range(1, ACCOUNTS + 1, BATCH):
        accounts, networks, links = [], [], []
        for i in range(first, min(first + BATCH, ACCOUNTS + 1)):
            network_id = _account(rng, i, accounts, networks, links, network_id)
        session.execute(insert(Account), accounts)
        if networks:
            session.execute(insert(AccountNetwork), networks)
        if links:
            session.execute(account_gateways.insert(), links)
    session.commit()
    if db.engine.dialect.name == "postgresql":
        # The rows were inserted with their ids: move the sequences past them.
        for model in (Company, User, Gateway, RateTable, RoutingPlan, Client, Account, AccountNetwork):
            table = model.__table__
            top = select(func.max(table.c.id)).scalar_subquery()
            session.execute(select(func.setval(func.pg_get_serial_sequence(table.name, "id"), top)))
        session.commit()
    analyze()
    return {"accounts": ACCOUNTS, "clients": CLIENTS}


def analyze() -> None:
    """What autovacuum does after a bulk load: statistics for the planner (and on PostgreSQL the visibility
    map for index-only scans)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def p95(samples: list[float]) -> float:
    """The 95th percentile in milliseconds, rounded."""
    ordered = sorted(samples)
    return round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 1)


class Samples(list):
    """Wall-clock milliseconds of each request, with the app process's CPU milliseconds in `cpu`."""

    cpu: list[float]


def timed(client, urls: list[str], htmx: bool, method: str = "GET", data=None) -> Samples:
    """Time each request in ROUNDS rounds; the samples of the fastest round (by p95) are returned.

    The machine may be shared with other work: the best of a few rounds damps bursts of foreign load, while
    the p95 within a round still shows the slow requests of the workload itself. `data(i)` gives the form of
    the i-th POST.
    """
    headers = {"HX-Request": "true"} if htmx else {}
    rounds = []
    for round_ in range(ROUNDS):
        samples = Samples()
        samples.cpu = []
        for i, url in enumerate(urls):
            start, cpu = time.perf_counter(), time.process_time()
            if method == "POST":
                response = client.post(url, data=data(round_ * len(urls) + i), headers=headers)
            else:
                response = client.get(url, headers=headers)
            samples.append((time.perf_counter() - start) * 1000)
            samples.cpu.append((time.process_time() - cpu) * 1000)
            if response.status_code not in (200, 303):
                raise SystemExit(f"{method} {url}: {response.status_code}")
        rounds.append(samples)
    return min(rounds, key=p95)


def account_form(client_id: int, i: int) -> dict:
    """A valid new account (a fresh address and login), as the form posts it."""
    return {
        "client_id": str(client_id),
        "name": f"bench-new-{i}",
        "ident_by": "ip",
        "ident_value": f"198.18.{i // 256}.{i % 256}; 198.19.{i % 256}.0/24",
        "orig_enabled": "y",
        "protocol": "sip",
        "port": "5060",
    }


def deep_urls(rng: random.Random, count: int) -> list[str]:
    """Pages anywhere in the list as the pager reaches them: the last page, and Next / Previous cursors
    (keyset) from rows all over the table, in several sorts."""
    urls = ["/accounts/?last=1", "/accounts/?sort=name&last=1"]
    while len(urls) < count:
        i = rng.randint(1, ACCOUNTS)
        direction = rng.choice(["after", "before"])
        sort, values = rng.choice(
            [("-id", [i]), ("name", [f"acc-{i:06d}", i]), ("-name", [f"acc-{i:06d}", i])]
        )
        urls.append(f"/accounts/?sort={sort}&{direction}={encode_cursor(sort, values)}")
    return urls


def measure(app, rng: random.Random) -> dict:
    """Requests as the operator's admin and as a reseller's operator; p95 of each kind."""
    admin = app.test_client()
    with admin.session_transaction() as session:
        session["_user_id"] = "1:1"
    reseller = app.test_client()
    with reseller.session_transaction() as session:
        session["_user_id"] = "2:1"

    searches = []
    for _ in range(REPEAT):
        i = rng.randint(1, ACCOUNTS)
        searches.append(
            rng.choice(
                [
                    f"acc-{i:06d}",  # an account name
                    f"login{i:06d}",  # a login
                    f"10.{i // 65536 % 256}.{i // 256 % 256}",  # part of an address
                    f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",  # an address (networks too)
                    "gold",  # matches nothing in name/ident: a full scan
                    f"acc-0{i % 10}",  # a broad prefix: thousands of matches
                    f"{i % 999 + 1}#",  # a tech prefix
                ]
            )
        )
    pages = min((ACCOUNTS + 49) // 50, 200)  # numbered pages reach this far; beyond, the cursors

    for _ in range(5):  # warm-up: templates compiled, caches filled
        timed(admin, ["/accounts/", "/accounts/?q=acc-00001"], False)

    list_ms = timed(admin, ["/accounts/"] * REPEAT, False)
    search_ms = timed(admin, [f"/accounts/?q={q}" for q in searches], True)
    search_page_ms = timed(admin, [f"/accounts/?q={q}" for q in searches[: REPEAT // 3]], False)
    page_urls = [f"/accounts/?page={rng.randint(2, pages)}" for _ in range(REPEAT)]
    page_ms = timed(admin, page_urls, True)
    deep_ms = timed(admin, deep_urls(rng, REPEAT // 3), True)
    sort_ms = timed(
        admin, ["/accounts/?sort=name", "/accounts/?sort=-ident", "/accounts/?sort=client"] * 5, True
    )
    filter_ms = timed(
        admin, [f"/accounts/?client_id={rng.randint(1, CLIENTS)}" for _ in range(REPEAT // 3)], True
    )
    reseller_list_ms = timed(reseller, ["/accounts/"] * (REPEAT // 2), False)
    reseller_search_ms = timed(reseller, [f"/accounts/?q={q}" for q in searches[: REPEAT // 2]], True)
    # Saving runs the identity-conflict checks against every account (indexed look-ups).
    create_ms = timed(
        admin, ["/accounts/new"] * (REPEAT // 3), True, "POST", lambda i: account_form(1 + i % CLIENTS, i)
    )
    return {
        "list_ms_p95": p95(list_ms),
        "search_ms_p95": p95(search_ms),
        "page_ms_p95": p95(page_ms),
        "list_cpu_ms_p95": p95(list_ms.cpu),
        "search_cpu_ms_p95": p95(search_ms.cpu),
        "page_cpu_ms_p95": p95(page_ms.cpu),
        "list_ms_median": round(statistics.median(list_ms), 1),
        "search_ms_median": round(statistics.median(search_ms), 1),
        "search_full_page_ms_p95": p95(search_page_ms),
        "deep_page_ms_p95": p95(deep_ms),
        "deep_page_cpu_ms_p95": p95(deep_ms.cpu),
        "sort_cpu_ms_p95": p95(sort_ms.cpu),
        "reseller_search_cpu_ms_p95": p95(reseller_search_ms.cpu),
        "sort_ms_p95": p95(sort_ms),
        "client_filter_ms_p95": p95(filter_ms),
        "reseller_list_ms_p95": p95(reseller_list_ms),
        "reseller_search_ms_p95": p95(reseller_search_ms),
        "create_ms_p95": p95(create_ms),
    }


def loaded() -> bool:
    """Whether a kept database already holds the generated data (see BENCH_KEEP_DB); the accounts an earlier
    run created through the form are deleted first, so every run measures the same table."""
    if db.session.get(User, 1) is None:
        return False
    extra = select(Account.id).where(Account.id > ACCOUNTS)
    db.session.execute(AccountNetwork.__table__.delete().where(AccountNetwork.account_id.in_(extra)))
    db.session.execute(account_gateways.delete().where(account_gateways.c.account_id.in_(extra)))
    db.session.execute(Account.__table__.delete().where(Account.id > ACCOUNTS))
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Account)) == ACCOUNTS


def run(database: str, url: str) -> dict:
    """Load (unless a kept database holds the data already), measure, return the figures of one database."""
    rng = random.Random(42)
    app = make_app(url)
    with app.app_context():
        db.create_all()
        start = time.perf_counter()
        if KEEP and loaded():
            for i in range(1, ACCOUNTS + 1):  # the generator's draws, so the measures draw the same urls
                _account(rng, i, [], [], [], 0)
            counts = {"accounts": ACCOUNTS, "clients": CLIENTS}
        else:
            counts = load(rng)
        load_s = round(time.perf_counter() - start, 1)
        figures = measure(app, rng)
        db.session.remove()
        db.engine.dispose()
    return result_line(database, counts, figures, load_s)


def result_line(database: str, counts: dict, figures: dict, load_s: float) -> dict:
    """One database's JSON line: what was loaded, the figures, and how busy the machine was at the end."""
    return {
        "database": database,
        **counts,
        **figures,
        "load_s": load_s,
        "repeat": REPEAT,
        "rounds": ROUNDS,
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }


def kept_postgres(base_url: str, name: str) -> str:
    """The URL of database `name` next to `base_url`, created when missing (kept after the run)."""
    url = make_url(normalise_database_url(base_url))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}) is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def on_each_database(run, keep: str | None = None) -> None:
    """Print `run(database, url)` as one JSON line on SQLite (unless BENCH_SKIP_SQLITE=1) and on PostgreSQL
    when TEST_DATABASE_URL is set, each in a database of its own that is dropped afterwards, or, with `keep`
    (a name), kept under that name for the next run."""
    if os.environ.get("BENCH_SKIP_SQLITE") != "1":
        if keep:
            path = Path(tempfile.gettempdir()) / f"{keep}.sqlite3"
            print(json.dumps(run("sqlite", f"sqlite:///{path}")), flush=True)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                print(json.dumps(run("sqlite", f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")), flush=True)
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        if keep:
            print(json.dumps(run("postgresql", kept_postgres(base, keep))), flush=True)
            return
        url, drop = private_postgres(base, "panel_bench")
        try:
            print(json.dumps(run("postgresql", url)), flush=True)
        finally:
            drop()


def main() -> None:
    """SQLite (unless BENCH_SKIP_SQLITE=1); PostgreSQL when TEST_DATABASE_URL is set."""
    on_each_database(run, f"panel_bench_pages_{ACCOUNTS}" if KEEP else None)


if __name__ == "__main__":
    main()
