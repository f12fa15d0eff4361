"""Routing speed on generated data: snapshot build, in-process routes per second, and over HTTP.

Generates a carrier in a private temporary SQLite database (or a private PostgreSQL database next to
TEST_DATABASE_URL when it is set; never instance/): `--vendors` vendor clients with one terminator account and
a rate table of `--codes` codes each, a customer rate table, `--originators` originator accounts (IP, network,
login and ANI identification, some with tech prefixes) and one routing plan with dynamic rules (pools of ten
vendors chosen by terminator tags, Simple LCR and Proportional policies), static balanced rules, stop hunt,
`*` codes and a catch-all.

Then it measures:
- the snapshot build (seconds) and its memory (`snapshot_mb`, traced with tracemalloc in a second build),
  its rate tables mapped from the host's files as the panel routes (`rate_files_mb`, the files' size;
  `--in-memory`: held as dicts instead);
- `route()` in this process on one core over pre-made queries: routes per second, p50 and p99, by the
  thread's CPU time (`inprocess_*`: the work of one core, whatever else the machine runs) and by the wall
  clock (`inprocess_wall_*`: what a caller waits, including time the process was not scheduled);
- `POST /api/v1/route` over HTTP: gunicorn with two workers on 127.0.0.1 (each builds its snapshot at start),
  loaded by a second process with a bounded number of keep-alive connections for a bounded time: `wrk`
  (Debian's package; the script installs it with apt-get when missing and allowed) or, without it, a Python
  load generator (threads with http.client).

Prints one JSON line. Example: `.venv/bin/python bench/route.py --vendors 100 --codes 60000`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "rp_bench_token_0123456789abcdefghijklmnopqrstuvwxyz"
EPOCH_TEXT = "2020-01-01 00:00:00.000000"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
COUNTRIES = (
    "1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 "
    "64 65 66 81 82 84 86 90 91 92 93 94 95 98"
).split()


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendors", type=int, default=100)
    parser.add_argument("--codes", type=int, default=60_000, help="codes per vendor rate table")
    parser.add_argument("--originators", type=int, default=10_000)
    parser.add_argument("--routes", type=int, default=50_000, help="in-process routes to time")
    parser.add_argument("--http-seconds", type=float, default=15.0)
    parser.add_argument("--http-connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (as `make run`)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurement")
    parser.add_argument("--no-memory", action="store_true", help="skip the traced second build")
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="rate tables as dicts in this process instead of mapped from the host's files",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--keep", help="SQLite file to keep the generated data in and reuse (development aid)"
    )
    return parser.parse_args()


# --- the database ------------------------------------------------------------------------------------------


def make_database(workdir: Path) -> tuple[str, callable]:
    """A private database URL and a function that drops it."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{workdir / 'bench.sqlite3'}", lambda: None
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from panel.config import normalise_database_url

    url = make_url(normalise_database_url(base))
    name = f"panel_bench_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def generate(app, args: argparse.Namespace) -> dict:
    """Fill the database; return what the queries need (originators and codes)."""
    from sqlalchemy import insert

    from panel.api.auth import hash_token
    from panel.extensions import db
    from panel.models import (
        Account,
        AccountNetwork,
        ApiToken,
        Client,
        Company,
        Policy,
        Quality,
        RateTable,
        RoutingPlan,
        RoutingRule,
    )

    rnd = random.Random(args.seed)
    engine = db.engine
    postgres = engine.dialect.name == "postgresql"

    # Codes: country codes and longer codes under them; each vendor prices every country and a sample.
    universe = set(COUNTRIES)
    target = int(args.codes * 1.2)
    while len(universe) < target:
        country = rnd.choice(COUNTRIES)
        universe.add(country + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 5))))
    universe = sorted(universe)
    extra = [c for c in universe if c not in COUNTRIES]
    base_rate = {c: rnd.randint(20, 3000) / 10_000 for c in universe}

    with engine.begin() as conn:
        root_id = conn.execute(
            insert(Company).values(name="Operator", kind="root").returning(Company.id)
        ).scalar()
        lcr = conn.execute(
            insert(Policy).values(company_id=root_id, name="Simple LCR", rate_weight=1).returning(Policy.id)
        ).scalar()
        proportional = conn.execute(
            insert(Policy)
            .values(company_id=root_id, name="Proportional", rate_weight=2, asr_weight=1, acd_weight=1)
            .returning(Policy.id)
        ).scalar()
        conn.execute(
            insert(ApiToken).values(
                company_id=root_id, name="bench", token_hash=hash_token(TOKEN), prefix=TOKEN[:8]
            )
        )
        table_ids = []
        for i in range(args.vendors + 1):
            name = "Customer rates" if i == args.vendors else f"V{i:04d} rates"
            table_ids.append(
                conn.execute(
                    insert(RateTable).values(company_id=root_id, name=name).returning(RateTable.id)
                ).scalar()
            )
        customer_table = table_ids[-1]

    # Rates: the bulk. COPY on PostgreSQL, executemany on SQLite.
    def rate_rows():
        for i in range(args.vendors):
            # In code order (as a deck usually is): the unique index is then appended to, not split at
            # random places (the random draws are the same).
            codes = sorted(COUNTRIES + rnd.sample(extra, args.codes - len(COUNTRIES)))
            factor = rnd.uniform(0.6, 1.1)
            increments = (60, 60) if i % 10 == 9 else (1, 1)
            for code in codes:
                yield (table_ids[i], code, round(base_rate[code] * factor, 4), *increments)
        for code in universe:
            yield (customer_table, code, round(base_rate[code] * 1.2, 4), 1, 1)

    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if not postgres:
            # Generated data, made again if lost: a large page cache, no waiting for the disk per batch
            # (30 M rows took 87 minutes with SQLite's defaults).
            cursor.execute("PRAGMA cache_size = -1000000")
            cursor.execute("PRAGMA synchronous = OFF")
        if postgres:
            with cursor.copy(
                "COPY rates (rate_table_id, code, name, rate, effective_from, setup_fee, min_time, interval) "
                "FROM STDIN"
            ) as copy:
                for tid, code, rate, mn, iv in rate_rows():
                    copy.write_row((tid, code, "", rate, EPOCH, 0, mn, iv))
        else:
            batch = []
            sql = (
                "INSERT INTO rates (rate_table_id, code, name, rate, effective_from, setup_fee, min_time, "
                "interval) VALUES (?, ?, '', ?, ?, 0, ?, ?)"
            )
            for tid, code, rate, mn, iv in rate_rows():
                batch.append((tid, code, rate, EPOCH_TEXT, mn, iv))
                if len(batch) >= 100_000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            cursor.executemany(sql, batch)
        raw.commit()
    finally:
        raw.close()
    rates_seconds = time.perf_counter() - started

    with app.app_context():
        session = db.session
        # Vendors: ten untagged (the catch-all's pool), the others in tagged pools of ten.
        pools = max(1, (args.vendors - 10) // 10)
        vendor_clients = []
        for i in range(args.vendors):
            client = Client(company_id=root_id, name=f"Vendor {i:04d}", term_rate_table_id=table_ids[i])
            session.add(client)
            session.flush()
            ip = f"10.200.{i // 250}.{i % 250 + 1}"
            account = Account(
                client_id=client.id,
                name=f"v{i:04d}",
                ident_by="ip",
                ident_value=ip,
                term_enabled=True,
                term_tags="" if i < 10 else f"pool{(i - 10) % pools}",
            )
            account.networks.append(AccountNetwork(network=f"{ip}/32", position=0))
            session.add(account)
            vendor_clients.append(client)
        session.flush()

        plan = RoutingPlan(
            company_id=root_id, name="Wholesale", match_increments="dynamic", pm_value=1, pm_percent=True
        )
        session.add(plan)
        session.flush()
        rules = []
        for n, code in enumerate(COUNTRIES):
            pool = f"pool{n % pools}" if args.vendors > 10 else ""
            policy = proportional if n % 5 == 0 else lcr
            rules.append(dict(code=code, type="dynamic", priority=10, policy_id=policy, term_tags=pool))
        for n, code in enumerate(rnd.sample(extra, 300)):
            pool = f"pool{n % pools}" if args.vendors > 10 else ""
            rules.append(dict(code=code, type="dynamic", priority=10, policy_id=lcr, term_tags=pool))
        for n, code in enumerate(COUNTRIES[:30]):
            a, b = rnd.sample(vendor_clients, 2)
            for client in (a, b):
                rules.append(
                    dict(
                        code=code,
                        type="static_client",
                        priority=5,
                        terminator_client_id=client.id,
                        balancing=50,
                        stop_hunt=(n % 10 == 0),
                    )
                )
        rules.append(dict(code="44*9", type="dynamic", priority=10, policy_id=lcr, term_tags="pool0"))
        rules.append(dict(code="*", type="dynamic", priority=100, policy_id=lcr, term_tags=""))
        for fields in rules:
            session.add(RoutingRule(plan_id=plan.id, **fields))

        # Originators: 1,000 clients (or fewer) of ten accounts.
        originators = []
        clients_needed = max(1, args.originators // 10)
        for c in range(clients_needed):
            client = Client(
                company_id=root_id,
                name=f"Customer {c:05d}",
                orig_rate_table_id=customer_table,
                routing_plan_id=plan.id,
            )
            session.add(client)
            session.flush()
            for k in range(10):
                i = c * 10 + k
                if i >= args.originators:
                    break
                tech = f"{10 + i % 90}#" if i % 20 == 0 else ""
                fields = dict(client_id=client.id, name=f"o{i:05d}", orig_enabled=True, tech_prefix=tech)
                if k < 7:
                    ip = f"100.{64 + i // 65536}.{(i // 256) % 256}.{i % 256}"
                    account = Account(ident_by="ip", ident_value=ip, **fields)
                    account.networks.append(AccountNetwork(network=f"{ip}/32", position=0))
                    query = {"src_ip": ip}
                elif k == 7:
                    net = f"172.{16 + i // 65536 % 16}.{(i // 256) % 256}.{i % 256 // 8 * 8}"
                    account = Account(ident_by="ip", ident_value=f"{net}/29", **fields)
                    account.networks.append(AccountNetwork(network=f"{net}/29", position=0))
                    query = {"src_ip": net[: net.rfind(".") + 1] + str(int(net.rsplit(".", 1)[1]) + 3)}
                elif k == 8:
                    account = Account(ident_by="name", ident_value=f"login{i}", **fields)
                    query = {"login": f"login{i}", "src_ip": "192.0.2.200"}
                else:
                    account = Account(ident_by="ani", ident_value=f"1555{i:07d}", **fields)
                    query = {"ani": f"1555{i:07d}", "src_ip": "192.0.2.201"}
                session.add(account)
                originators.append((query, tech))
        # Quality figures for every vendor on the country codes (Proportional uses ASR and ACD).
        session.flush()
        vendor_accounts = session.query(Account.id).filter(Account.term_enabled.is_(True)).all()
        for (account_id,) in vendor_accounts:
            for code in COUNTRIES:
                answered = rnd.randint(10, 90)
                session.add(
                    Quality(
                        term_account_id=account_id,
                        code=code,
                        attempts=100,
                        answered=answered,
                        asr=answered,
                        acd=round(rnd.uniform(0.5, 6), 2),
                        pdd_ms=rnd.randint(800, 4000),
                    )
                )
        session.commit()
    return {"originators": originators, "universe": universe, "rates_seconds": rates_seconds}


def make_queries(data: dict, count: int, seed: int) -> list[dict]:
    """Requests as the switch would send them: an originator's identity and a number with its tech prefix."""
    rnd = random.Random(seed + 1)
    universe = data["universe"]
    queries = []
    for _ in range(count):
        identity, tech = rnd.choice(data["originators"])
        code = rnd.choice(universe)
        number = code + "".join(rnd.choice("0123456789") for _ in range(max(4, 12 - len(code))))
        queries.append({"number": tech + number, **identity})
    return queries


# --- measurements ------------------------------------------------------------------------------------------


def measure_build(app, traced: bool, store_dir: Path | None = None) -> tuple:
    """Build a snapshot (its rate tables mapped from files in `store_dir`, as the panel routes, or held in
    memory without it); with `traced`, also the memory it holds (MiB, the files' pages not included)."""
    from panel.extensions import db
    from panel.routing.build import build_snapshot
    from panel.routing.ratestore import RateStore

    with app.app_context():
        gc.collect()
        if traced:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        store = RateStore.at(store_dir) if store_dir is not None else None
        snapshot = build_snapshot(db.engine, store=store)
        seconds = time.perf_counter() - started
        megabytes = None
        if traced:
            gc.collect()
            megabytes = (tracemalloc.get_traced_memory()[0] - before) / 1024 / 1024
            tracemalloc.stop()
    return snapshot, seconds, megabytes


def measure_inprocess(snapshot, queries: list[dict], count: int) -> dict:
    """Route `count` pre-made queries one after another; routes per second and latency percentiles."""
    from panel.routing.engine import RouteQuery, route

    at = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
    prepared = [RouteQuery(at=at, **q) for q in queries]
    rng = random.Random(1)
    for query in prepared[:2000]:  # warm up
        route(snapshot, query, rng=rng)
    # Two clocks: the thread's CPU time (what one core does, unaffected by other processes of a shared
    # machine) and the wall clock (what a caller waits, including time this process was not running).
    cpu_timings, wall_timings = [], []
    statuses = {}
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    size = len(prepared)
    wall_started, cpu_started = wall(), cpu()
    for i in range(count):
        query = prepared[i % size]
        w0, c0 = wall(), cpu()
        result = route(snapshot, query, rng=rng)
        c1, w1 = cpu(), wall()
        cpu_timings.append(c1 - c0)
        wall_timings.append(w1 - w0)
        statuses[result.reason or "ok"] = statuses.get(result.reason or "ok", 0) + 1
    cpu_total = (cpu() - cpu_started) / 1e9
    wall_total = (wall() - wall_started) / 1e9
    cpu_timings.sort()
    wall_timings.sort()
    sample = [route(snapshot, q, rng=rng) for q in prepared[:2000]]
    return {
        "inprocess_routes_per_s": round(count / cpu_total),
        "inprocess_p50_us": round(cpu_timings[len(cpu_timings) // 2] / 1000, 1),
        "inprocess_p99_us": round(cpu_timings[int(len(cpu_timings) * 0.99)] / 1000, 1),
        "inprocess_wall_routes_per_s": round(count / wall_total),
        "inprocess_wall_p50_us": round(wall_timings[len(wall_timings) // 2] / 1000, 1),
        "inprocess_wall_p99_us": round(wall_timings[int(len(wall_timings) * 0.99)] / 1000, 1),
        "inprocess_mean_routes": round(statistics.mean(len(r.routes) for r in sample), 2),
        "inprocess_mean_rejections": round(statistics.mean(len(r.rejections) for r in sample), 2),
        "inprocess_statuses": statuses,
    }


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str | None:
    """The wrk binary, installing Debian's package when missing and possible; None otherwise."""
    found = shutil.which("wrk")
    if found or os.environ.get("BENCH_NO_APT"):
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, check=False)
    return shutil.which("wrk")


def measure_http(database_url: str, workdir: Path, queries: list[dict], args: argparse.Namespace) -> dict:
    """gunicorn (2 workers) on 127.0.0.1, loaded by a second process; routes per second and p99."""
    port = free_port()
    (workdir / "bench_wsgi.py").write_text(
        "from panel import create_app\n"
        "from panel import snapshots\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    snapshots.get_snapshot()  # each worker builds its snapshot before it serves\n"
    )
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        PANEL_MANAGER_ENABLED="0",
        PYTHONPATH=f"{workdir}:{ROOT}",
        SECRET_KEY="bench",
        PANEL_ROUTING_DATA_DIR=str(workdir / "routing"),
    )
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers",
            "2",
            "--threads",
            str(args.threads),
            "--timeout",
            "900",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench_wsgi:app",
        ],
        env=env,
        cwd=str(workdir),
    )
    try:
        _wait_ready(port, server)
        bodies = [json.dumps({**q, "at": "2024-03-04T12:00:00Z"}) for q in queries[:5000]]
        wrk = ensure_wrk()
        if wrk:
            figures = _load_wrk(wrk, port, bodies, args, workdir)
        else:
            figures = _load_python(port, bodies, args, workdir)
        return figures
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _wait_ready(port: int, server: subprocess.Popen) -> None:
    """Wait until gunicorn answers a route (both workers build their snapshot while booting)."""
    import http.client

    deadline = time.time() + 1800
    body = json.dumps({"number": "4420", "src_ip": "192.0.2.1"})
    ready = 0
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/api/v1/route", body, {"Authorization": f"Bearer {TOKEN}"})
            if conn.getresponse().status == 200:
                ready += 1
                if ready >= 20:
                    time.sleep(2)
                    return
            conn.close()
        except OSError:
            time.sleep(1)
    raise RuntimeError("gunicorn did not become ready")


def _load_wrk(wrk: str, port: int, bodies: list[str], args, workdir: Path) -> dict:
    """wrk with a Lua script cycling through the request bodies."""
    script = workdir / "route.lua"
    lines = ["local bodies = {"]
    lines += [f"  [[{body}]]," for body in bodies]
    lines += [
        "}",
        "local i = 0",
        'wrk.method = "POST"',
        f'wrk.headers["Authorization"] = "Bearer {TOKEN}"',
        'wrk.headers["Content-Type"] = "application/json"',
        "request = function()",
        "  i = i + 1",
        "  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])",
        "end",
    ]
    script.write_text("\n".join(lines))
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{args.http_connections}",
            f"-d{int(args.http_seconds)}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/api/v1/route",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {
        "http_load": f"wrk, 1 thread, {args.http_connections} connections, {int(args.http_seconds)} s, "
        f"gunicorn 2 workers x {args.threads} threads"
    }
    errors = 0
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith("99%"):
            figures["http_p99_ms"] = _ms(parts[1])
        elif line.strip().startswith("50%"):
            figures["http_p50_ms"] = _ms(parts[1])
        elif line.startswith("Requests/sec:"):
            figures["http_routes_per_s"] = round(float(parts[1]))
        elif "Non-2xx" in line:
            errors = int(parts[-1])
    figures["http_errors"] = errors
    return figures


def _ms(text: str) -> float:
    """wrk's latency (`812.00us`, `2.31ms`, `1.02s`) in milliseconds."""
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 3)
    return float(text)


def _load_python(port: int, bodies: list[str], args, workdir: Path) -> dict:
    """The fallback load generator: a second Python process, one keep-alive connection per thread."""
    (workdir / "bodies.json").write_text(json.dumps(bodies))
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load-worker",
            str(port),
            str(workdir / "bodies.json"),
            str(args.http_connections),
            str(args.http_seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def load_worker(port: int, bodies_path: str, connections: int, seconds: float) -> None:
    """Run in the second process: `connections` threads post routes for `seconds`; print the figures."""
    import http.client

    bodies = json.loads(Path(bodies_path).read_text())
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop = time.perf_counter() + seconds

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        i = n
        while time.perf_counter() < stop:
            body = bodies[i % len(bodies)]
            i += connections
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/route", body, headers)
            response = conn.getresponse()
            response.read()
            latencies[n].append(time.perf_counter() - t0)
            if response.status != 200:
                errors[n] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    merged = sorted(x for part in latencies for x in part)
    print(
        json.dumps(
            {
                "http_load": f"python http.client, {connections} connections, {seconds} s",
                "http_routes_per_s": round(len(merged) / elapsed),
                "http_p50_ms": round(merged[len(merged) // 2] * 1000, 3),
                "http_p99_ms": round(merged[int(len(merged) * 0.99)] * 1000, 3),
                "http_errors": sum(errors),
            }
        )
    )


def main() -> None:
    """Generate, measure, print one JSON line."""
    if len(sys.argv) > 1 and sys.argv[1] == "--load-worker":
        load_worker(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="panel-bench-"))
    if args.keep:
        database_url, drop = f"sqlite:///{Path(args.keep).resolve()}", lambda: None
    else:
        database_url, drop = make_database(workdir)
    os.environ["DATABASE_URL"] = database_url
    os.environ["PANEL_MANAGER_ENABLED"] = "0"
    try:
        from panel import create_app
        from panel.extensions import db

        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": database_url, "MANAGER_ENABLED": False, "TESTING": False}
        )
        kept = Path(f"{args.keep}.json") if args.keep else None
        started = time.perf_counter()
        if kept and kept.exists():
            data = json.loads(kept.read_text())
        else:
            with app.app_context():
                db.create_all()
                data = generate(app, args)
            if kept:
                kept.write_text(json.dumps(data))
        generate_seconds = time.perf_counter() - started
        queries = make_queries(data, 20_000, args.seed)

        store_dir = None if args.in_memory else workdir / "routing"
        snapshot, build_seconds, _ = measure_build(app, traced=False, store_dir=store_dir)
        figures = {
            "vendors": args.vendors,
            "codes": args.codes,
            "rates": snapshot.counts["rates"],
            "originators": args.originators,
            "rules": snapshot.counts["rules"],
            "database": database_url.split(":", 1)[0].split("+", 1)[0],
            "generate_s": round(generate_seconds, 1),
            "snapshot_build_s": round(build_seconds, 2),
            "rate_tables": "in memory" if args.in_memory else "mapped files",
        }
        if store_dir is not None:
            figures["rate_files_mb"] = round(
                sum(p.stat().st_size for p in store_dir.iterdir()) / 1024 / 1024, 1
            )
        gc.collect()
        gc.freeze()  # as a worker does after publishing (panel.snapshots): the collector skips the snapshot
        figures.update(measure_inprocess(snapshot, queries, args.routes))
        del snapshot
        gc.unfreeze()
        gc.collect()
        if not args.no_memory:
            snapshot, _, megabytes = measure_build(app, traced=True, store_dir=store_dir)
            figures["snapshot_mb"] = round(megabytes, 1)
            del snapshot
            gc.collect()
        if not args.no_http:
            with app.app_context():
                db.engine.dispose()
            figures.update(measure_http(database_url, workdir, queries, args))
        figures["loadavg_1m"] = round(os.getloadavg()[0], 2)
        figures["cpus"] = os.cpu_count()
        print(json.dumps(figures), flush=True)
    finally:
        drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
