"""Benchmark of the statistics calls page at scale: 10,000,000 call records, the list and its pages.

Generates BENCH_CALLS call records (default 10,000,000) over BENCH_DAYS days (default 60) between 200 of
BENCH_CLIENTS clients (default 10,000: the client filter offers them) with one set-based INSERT ... SELECT
(generate_series on PostgreSQL, a recursive CTE on SQLite; the non-unique indexes are built after the load),
then times the calls page through the Flask test client as the operator's admin:

- `list_ms_p95`: the calls list alone (filter, keyset page, names; the totals computed before the clock
  starts, as the view passes them to the pager), first and numbered pages;
- `deep_ms_p95`: the last page and Next / Previous cursors from calls anywhere in the window;
- `filter_ms_p95`: a number prefix, a client, one day;
- `page_ms_p95`: the whole page as a browser gets it, totals of the default window included (read from the
  daily and hourly figures, panel.stats.rollup, rebuilt once after the bulk load: `rollup_s`);
- `page_windows_ms_p95`: the whole page for the last 24 hours (its first, partial hour added up call by
  call), one client, and every call of the table.

Prints one JSON line per database (SQLite always, PostgreSQL too when TEST_DATABASE_URL is set), with the
app process's CPU per request and the machine's load average.

    .venv/bin/python bench/stats.py
    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/stats.py
"""

import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    select,
    true,
)  # noqa: E402

from bench.pages import Samples, analyze, make_app, on_each_database, p95, result_line, timed  # noqa: E402
from panel.extensions import db  # noqa: E402
from panel.models import Account, CallDay, CallStat, Client, Company, User  # noqa: E402
from panel.paging import encode_cursor  # noqa: E402
from panel.stats import rollup  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "10000000"))
DAYS = int(os.environ.get("BENCH_DAYS", "60"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "40"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENTS = 200  # the clients with calls: 150 originators, 50 terminators
ALL_CLIENTS = max(CLIENTS, int(os.environ.get("BENCH_CLIENTS", "10000")))
# The last call is a minute ago: the default window (the last 7 days) holds DAYS-th parts of the table.
END = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
START = END - timedelta(days=DAYS)


def _series(dialect: str):
    """A table of i = 1..CALLS: generate_series on PostgreSQL, a recursive CTE on SQLite."""
    if dialect == "postgresql":
        return func.generate_series(cast(1, BigInteger), CALLS).table_valued("i").render_derived()
    seed = select(literal(1).label("i")).cte("series", recursive=True)
    return seed.union_all(select(seed.c.i + 1).where(seed.c.i < CALLS))


def load() -> dict:
    """Companies, 200 clients with an account each, CALLS call records in time order (set-based)."""
    session = db.session
    dialect = db.engine.dialect.name
    session.execute(insert(Company), [{"id": 1, "name": "Operator", "kind": "root", "parent_id": None}])
    session.execute(
        insert(Company),
        [{"id": 1 + i, "name": f"Reseller {i}", "kind": "reseller", "parent_id": 1} for i in (1, 2)],
    )
    session.execute(
        insert(User),
        [{"id": 1, "company_id": 1, "username": "bench_admin", "role": "admin", "password_hash": "x"}],
    )
    session.execute(
        insert(Client),
        [
            {"id": i, "company_id": 1 + i % 3, "name": f"Client {i:05d}", "currency": "USD"}
            for i in range(1, ALL_CLIENTS + 1)
        ],
    )
    session.execute(
        insert(Account),
        [
            {"id": i, "client_id": i, "name": f"trunk-{i}", "ident_value": f"10.9.{i // 256}.{i % 256}"}
            for i in range(1, CLIENTS + 1)
        ],
    )
    session.commit()

    table = CallStat.__table__
    indexes = list(table.indexes)
    for index in indexes:  # built once after the load: much faster than maintained row by row
        index.drop(db.engine)
    series = _series(dialect)
    i = series.c.i
    step = DAYS * 86400 / CALLS
    epoch = START.timestamp()
    if dialect == "postgresql":
        start_at = func.to_timestamp(epoch + i * step)
        money = cast(i % 600, Integer) * literal(0.0001)
    else:
        start_at = func.strftime("%Y-%m-%d %H:%M:%f", epoch + i * step, "unixepoch") + literal("000")
        money = (i % 600) * 100  # millionths (MoneyType on SQLite)
    answered = i % 3 != 0
    orig = 1 + i % 150
    term = 151 + i % 50
    columns = {
        "id": i,
        "company_id": literal(1),
        "call_id": literal("bench-") + cast(i, String),
        "orig_account_id": orig,
        "orig_client_id": orig,
        "term_account_id": term,
        "term_client_id": term,
        "number": literal("447") + cast(100_000_000 + (i * 7919) % 900_000_000, String),
        "orig_code": literal("44"),
        "term_code": literal("447"),
        "start_at": start_at,
        "duration": case((answered, i % 600), else_=0),
        "orig_billed": case((answered, i % 600), else_=0),
        "term_billed": case((answered, i % 600), else_=0),
        "customer_rate": literal(0.01),
        "vendor_rate": literal(0.008),
        "customer_charge": case((answered, money), else_=0),
        "vendor_cost": case((answered, money), else_=0),
        "answered": case((answered, true()), else_=false()),
        "sip_code": case((answered, 200), else_=486),
        "pdd_ms": i % 3000,
        "created_at": start_at,
    }
    columns = {k: v for k, v in columns.items() if k in table.c}
    source = select(*columns.values()).select_from(series)
    started = time.perf_counter()
    session.execute(insert(table).from_select(list(columns), source))
    session.commit()
    insert_s = time.perf_counter() - started
    for index in indexes:
        index.create(db.engine)
    # The hourly figures the totals read (the ingest keeps them; a bulk load rebuilds them once).
    started = time.perf_counter()
    hour_rows = rollup.rebuild()
    session.commit()
    rollup_s = time.perf_counter() - started
    if dialect == "postgresql":
        session.execute(select(func.setval(func.pg_get_serial_sequence("call_stats", "id"), CALLS)))
        session.commit()
    analyze()
    return {
        "calls": CALLS,
        "clients": ALL_CLIENTS,
        "days": DAYS,
        "insert_s": round(insert_s, 1),
        "rollup_s": round(rollup_s, 1),
        "hour_rows": hour_rows,
        "day_rows": db.session.scalar(select(func.count()).select_from(CallDay)),
    }


def timed_list(app, urls: list[str]) -> Samples:
    """The calls list alone (what the view does besides the totals), inside a request of each URL."""
    from flask_login import login_user

    from panel.stats.queries import filter_totals
    from panel.stats.views import _call_filter, call_page

    rounds = []
    for _ in range(ROUNDS):
        samples = Samples()
        samples.cpu = []
        for url in urls:
            with app.test_request_context(url):
                login_user(db.session.get(User, 1))
                _form, _conditions, context = _call_filter()
                total = filter_totals(context["query"]).attempts  # the view's count, not timed here
                start, cpu = time.perf_counter(), time.process_time()
                _form, _conditions, context = _call_filter()
                page, names = call_page(context["base"], context["query"], total)
                [(names["account"].get(c.orig_account_id), c.number) for c in page.items]  # noqa: B018
                samples.append((time.perf_counter() - start) * 1000)
                samples.cpu.append((time.process_time() - cpu) * 1000)
                db.session.remove()
        rounds.append(samples)
    return min(rounds, key=p95)


def measure(app, rng: random.Random) -> dict:
    """Pages of the calls list as the operator's admin sees them."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1:1"
    step = DAYS * 86400 / CALLS
    window = 7 * CALLS // DAYS  # calls in the default window (the newest ones)

    def cursor_url() -> str:
        n = CALLS - rng.randint(1, window)
        at = datetime.fromtimestamp(START.timestamp() + n * step, UTC)
        direction = rng.choice(["after", "before"])
        return f"/statistics/?{direction}={encode_cursor('-start', [at, n])}"

    day = (END - timedelta(days=2)).date().isoformat()
    lists = ["/statistics/"] + [f"/statistics/?page={rng.randint(2, 20)}" for _ in range(REPEAT - 1)]
    deeps = ["/statistics/?last=1"] + [cursor_url() for _ in range(REPEAT - 1)]
    filters = [
        rng.choice(
            [
                f"/statistics/?number=447{100_000_000 + rng.randint(0, 899_999_999) // 1000}",
                f"/statistics/?client_id={rng.randint(1, CLIENTS)}",
                f"/statistics/?date_from={day}&date_to={day}",
            ]
        )
        for _ in range(REPEAT)
    ]
    timed(client, ["/statistics/", "/statistics/?page=2"], True)  # warm-up
    with app.app_context():
        list_ms = timed_list(app, lists)
        deep_list_ms = timed_list(app, deeps)
        filter_list_ms = timed_list(app, filters)
    page_ms = timed(client, lists[: REPEAT // 4], True)
    # The whole page over other windows: the last 24 hours (its first hour partly, from the calls), a client,
    # every call of the table (no date).
    windows = [
        "/statistics/?hours=24",
        f"/statistics/?client_id={rng.randint(1, CLIENTS)}",
        "/statistics/?date_from=",
    ]
    window_ms = timed(client, windows * (REPEAT // 8), True)
    return {
        "list_ms_p95": p95(list_ms),
        "list_cpu_ms_p95": p95(list_ms.cpu),
        "deep_ms_p95": p95(deep_list_ms),
        "deep_cpu_ms_p95": p95(deep_list_ms.cpu),
        "filter_ms_p95": p95(filter_list_ms),
        "filter_cpu_ms_p95": p95(filter_list_ms.cpu),
        "page_ms_p95": p95(page_ms),
        "page_cpu_ms_p95": p95(page_ms.cpu),
        "page_windows_ms_p95": p95(window_ms),
        "page_windows_cpu_ms_p95": p95(window_ms.cpu),
        "calls_in_default_window": window,
    }


def run(database: str, url: str) -> dict:
    """Load, measure, return the figures of one database."""
    app = make_app(url)
    with app.app_context():
        db.create_all()
        start = time.perf_counter()
        counts = load()
        load_s = round(time.perf_counter() - start, 1)
        figures = measure(app, random.Random(7))
        db.session.remove()
        db.engine.dispose()
    return {"benchmark": "stats", **result_line(database, counts, figures, load_s)}


def main() -> None:
    """SQLite (unless BENCH_SKIP_SQLITE=1); PostgreSQL when TEST_DATABASE_URL is set."""
    on_each_database(run)


if __name__ == "__main__":
    main()
