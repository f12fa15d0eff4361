"""Scale: how long an edit takes to reach every worker, and what the routing data costs a host.

On the routing benchmark's generated data (`bench/route.py`: `--vendors` vendor rate tables of `--codes`
codes, 10,000 originators, one plan of about 400 rules), in a private SQLite database (or a private
PostgreSQL database next to TEST_DATABASE_URL), it measures:

- `full_build_s`: one full snapshot build in this process, and `snapshot_mb`, the memory that one snapshot
  costs (the growth of this process's proportional set size, PSS, while it is built and held, with every
  page of its mapped rate table files read once: one copy of everything); `rate_files_mb`: the size of those
  files (`panel/routing/ratestore.py`, shared by the host's processes; in a directory of the run, so the
  first build writes them);
- `workers` panel processes started as gunicorn would (the app with its Traffic Rules manager thread, which
  syncs the snapshot every second; `--period` seconds between manager runs, 1 here), each answering route
  queries over a pipe; `worker_start_s`: until every worker routes. The workers start as on a host that
  already ran: from the rate files and manifest this process's full build left (they read everything but
  the rates, and the rates changed since); with `--cold-workers` each finds no files and reads every rate;
- `rule_edit_effect_s`: from the commit of a rule edit (a new longest-match rule sending the probe number to
  one vendor, written as the panel writes it: rule, audit entry, commit) to every worker answering with it;
- `deck_import_effect_s`: from the commit of a `--deck-rows`-row import (replace mode, through
  `panel.rates.importer.import_rates`, the panel's import job) into that vendor's rate table to every worker
  answering with the new price; `deck_import_s` is the import itself;
- `account_edit_effect_s`: the same for an account change (a terminator's tags: the non-rate data re-read);
- `routing_pss_mb`: what the routing data costs the host, read from `/proc/<pid>/smaps_rollup` after the
  edits and after each worker routed `--warm` random calls before and after them (a worker's reads must not
  unshare the data). Workers started on their own: the PSS of all workers together minus what each held
  before its first snapshot. With `--preload` (gunicorn's `preload_app`, `panel/gunicorn_preload.py`: this
  process builds the snapshot once and forks the workers, which share its pages): the PSS of this process
  and its workers together minus what this process held before the build (so everything the workers
  allocated after the fork counts as routing data: an upper bound). `routing_pss_ratio` = routing_pss_mb /
  snapshot_mb;
- `*_update_s`, `*_update_cpu_s`: the longest incremental update among the workers for each edit, by the
  wall clock and by the CPU time of the thread that made it (what the machine's load does not change), and
  `*_changes`: what it read again (`panel.snapshots.last_changes`).

Prints one JSON line (with the load average: the machine may be shared). Example:
`.venv/bin/python bench/scale.py --vendors 100 --workers 4`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
# The probe: a code of its own per run (kept data is edited again by the next run), under 44.
PROBE_CODE = "44" + str(random.Random(time.time_ns()).randrange(10**6, 10**7))
PROBE_NUMBER = PROBE_CODE + "67890"


def pick_probe(universe, vendor_rates: dict, customer_rates: dict) -> None:
    """A probe code under 44 whose longest generated code its vendor prices below the customer's rate (a
    kept database's vendor table holds an earlier run's deck at other prices, and the profit margin would
    reject a vendor dearer than the customer)."""
    global PROBE_CODE, PROBE_NUMBER
    codes = set(universe)
    rnd = random.Random(time.time_ns())
    for _attempt in range(200_000):
        code = "44" + str(rnd.randrange(10**6, 10**7))
        number = code + "67890"
        longest = next(number[:i] for i in range(len(number), 1, -1) if number[:i] in codes)
        if (
            longest in vendor_rates
            and float(vendor_rates[longest]) < float(customer_rates.get(longest, 0)) * 0.9
        ):
            PROBE_CODE, PROBE_NUMBER = code, number
            return
    raise SystemExit("no probe code in the kept data (a smaller deck in its vendor table): generate it again")


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendors", type=int, default=100)
    parser.add_argument("--codes", type=int, default=60_000)
    parser.add_argument("--originators", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--period", type=float, default=1.0, help="seconds between manager runs")
    parser.add_argument("--deck-rows", type=int, default=60_000)
    parser.add_argument("--warm", type=int, default=20_000, help="random routes per worker, before and after")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="build once in this process and fork the workers (gunicorn preload)",
    )
    parser.add_argument(
        "--cold-workers",
        action="store_true",
        help="workers that find no files of the host (each reads every rate) instead of starting from the "
        "files and manifest this process's build leaves",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting for a worker after")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--keep",
        help="SQLite file to keep the generated data in and reuse (with TEST_DATABASE_URL: a PostgreSQL "
        "database named after the file, the data's summary in the file's .json)",
    )
    return parser.parse_args()


def pss_kb(pid: int) -> int:
    """The proportional set size of a process, in KiB."""
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def keep_postgresql(name: str) -> str:
    """A PostgreSQL database `name` next to TEST_DATABASE_URL, created when missing and kept (`--keep`)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from panel.config import normalise_database_url

    url = make_url(normalise_database_url(os.environ["TEST_DATABASE_URL"]))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first():
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def touch(snapshot) -> None:
    """Read one byte of every page of the snapshot's mapped rate table files."""
    for table in snapshot.rate_tables.values():
        if table.file:
            mapped = table.rates.table
            for view in (mapped.slots.cast("B"), mapped.rows):
                sum(view[i] for i in range(0, len(view), 4096))


def files_mb(snapshot) -> float:
    """The size of the snapshot's mapped rate table files, in MiB."""
    return sum(t.rates.table.path.stat().st_size for t in snapshot.rate_tables.values() if t.file) / 2**20


# --- a worker -----------------------------------------------------------------------------------------------


def worker_settings(database_url: str, period: float, data_dir: str) -> dict:
    """The settings of the app in a worker (and in the preloading master)."""
    return {
        "ROUTING_DATA_DIR": data_dir,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "MANAGER_ENABLED": False,
        "TESTING": False,
        "MANAGER_PERIOD_SECONDS": period,
        "QUALITY_MIN_CALLS": 10,
    }


def answer(app, message: dict) -> dict:
    """A worker's answer: the probe's first routes, or how long `warm` random queries took to route."""
    from panel import snapshots
    from panel.routing.engine import RouteQuery, route

    rng = random.Random(1)
    with app.app_context():
        if message.get("warm"):
            queries = json.loads(Path(message["warm"]).read_text())
            started = time.perf_counter()
            for query in queries:
                route(snapshots.get_snapshot(), RouteQuery(at=datetime.now(UTC), **query), rng=rng)
            return {"routed": len(queries), "seconds": time.perf_counter() - started}
        snap = snapshots.get_snapshot()
        at = datetime.now(UTC)
        result = route(snap, RouteQuery(number=message["number"], src_ip=message["src_ip"], at=at), rng=rng)
        return {
            "routes": [[r.terminator_id, r.vendor_row[0]] for r in result.routes[:3]],
            "changes": snapshots.last_changes(),
            "update_s": round(snap.build_seconds, 3),
            "update_cpu_s": round(snapshots.last_cpu_seconds(), 3),
        }


def worker(database_url: str, period: float, data_dir: str) -> None:
    """A panel process started on its own: the app, its first snapshot, its manager thread; answers the
    messages read from stdin, one a line."""
    os.environ["DATABASE_URL"] = database_url
    from panel import create_app, manager, snapshots

    app = create_app(worker_settings(database_url, period, data_dir))
    base = pss_kb(os.getpid())
    started = time.perf_counter()
    with app.app_context():
        manager.sync_snapshot(app)
        snapshots.get_snapshot()
    manager.start(app)
    with app.app_context():
        how = snapshots.last_changes()
    ready = {"ready": True, "base_pss_kb": base, "build_s": time.perf_counter() - started, "start": how}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("stop"):
            break
        print(json.dumps(answer(app, message), default=str), flush=True)
    manager.stop(app)


def forked_worker(app, conn) -> None:
    """A worker forked from the preloading master (as gunicorn's preload_app): it starts with the master's
    snapshot, brings it up to date and starts its manager thread."""
    from panel import manager

    app.extensions.pop("panel_manager", None)  # as panel.manager does after a fork
    started = time.perf_counter()
    with app.app_context():
        manager.sync_snapshot(app)
    manager.start(app)
    conn.send({"ready": True, "base_pss_kb": pss_kb(os.getpid()), "build_s": time.perf_counter() - started})
    while True:
        message = conn.recv()
        if message.get("stop"):
            break
        conn.send(answer(app, message))
    manager.stop(app)


class Worker:
    """A worker process started on its own, and its pipe."""

    def __init__(self, database_url: str, period: float, data_dir: str):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", database_url, str(period), data_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.pid = self.proc.pid
        self.info: dict = {}

    def wait_ready(self) -> None:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a worker stopped before it was ready")
        self.info = json.loads(line)

    def ask(self, message: dict) -> dict:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"stop": True}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class ForkedWorker:
    """A worker forked from this process, and its pipe."""

    def __init__(self, app):
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=forked_worker, args=(app, child), daemon=True)
        self.proc.start()
        self.pid = self.proc.pid
        self.info: dict = {}

    def wait_ready(self) -> None:
        self.info = self.conn.recv()

    def ask(self, message: dict) -> dict:
        self.conn.send(message)
        return self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send({"stop": True})
            self.proc.join(30)
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.kill()


def wait_all(workers: list[Worker], query: dict, check, timeout: float) -> tuple[float, list[dict]]:
    """Ask every worker until each answer passes `check`; returns (seconds since now, last answers)."""
    started = time.perf_counter()
    pending = list(workers)
    answers = {}
    while pending:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{len(pending)} worker(s) did not answer with the edit in {timeout:g} s")
        for w in list(pending):
            reply = w.ask(query)
            if check(reply):
                answers[w.pid] = reply
                pending.remove(w)
        if pending:
            time.sleep(0.02)
    return time.perf_counter() - started, list(answers.values())


# --- the edits --------------------------------------------------------------------------------------------


def mark_loaded() -> None:
    """An audit entry for generated data that has none (a panel's database always has some): the manifest
    of the host's files is anchored to the newest entry, and with none a process that starts builds whole."""
    from panel import audit
    from panel.extensions import db
    from panel.models import AuditEntry, Company

    if db.session.query(AuditEntry.id).first() is None:
        audit.record("update", db.session.query(Company).order_by(Company.id).first())
        db.session.commit()


def add_rule(app, vendor_account_id: int) -> None:
    """A rule for the probe's code sending it to one vendor, written as the panel writes it."""
    from panel import audit
    from panel.extensions import db
    from panel.models import RoutingPlan, RoutingRule

    with app.app_context():
        plan = db.session.query(RoutingPlan).first()
        rule = RoutingRule(
            plan_id=plan.id, code=PROBE_CODE, type="static_account", terminator_account_id=vendor_account_id
        )
        db.session.add(rule)
        audit.record("create", rule)
        db.session.commit()


def import_deck(app, table_id: int, rows: int, price: str) -> float:
    """Replace a vendor table with a `rows`-row deck, as a vendor's new price list: its codes at new prices
    (the probe's code at `price`, 44 kept for the next run's rule), topped up with new codes; returns the
    import's seconds."""
    from sqlalchemy import select

    from panel.extensions import db
    from panel.models import Rate
    from panel.rates.importer import import_rates

    with app.app_context():
        codes = db.session.scalars(select(Rate.code).where(Rate.rate_table_id == table_id).distinct()).all()
        db.session.remove()
    rnd = random.Random(price)
    lines = ["code,rate", f"{PROBE_CODE},{price}", "44,0.0001"]
    lines += [f"{code},0.{rnd.randrange(1000, 9999)}" for code in codes if code not in (PROBE_CODE, "44")]
    lines += [f"{9_000_000 + i},0.{1000 + i % 9000}" for i in range(max(0, rows + 1 - len(lines)))]
    data = ("\n".join(lines[: rows + 1]) + "\n").encode()
    started = time.perf_counter()
    with app.app_context():
        import_rates(table_id, data, "replace", default_effective_from=EPOCH, filename="bench.csv")
    return time.perf_counter() - started


def edit_account(app, account_id: int) -> None:
    """A terminator's tags changed, as the panel writes it."""
    from panel import audit
    from panel.extensions import db
    from panel.models import Account

    with app.app_context():
        account = db.session.get(Account, account_id)
        before = audit.state(account)
        account.term_tags = (account.term_tags or "") + " benchmark"
        audit.record("update", account, before=before)
        db.session.commit()


# --- main -------------------------------------------------------------------------------------------------


def main() -> None:
    """Generate, measure, print one JSON line."""
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], float(sys.argv[3]), sys.argv[4])
        return
    args = parse_args()
    from route import generate, make_database, make_queries  # bench/route.py: the same generated data

    workdir = Path(tempfile.mkdtemp(prefix="panel-scale-"))
    if args.keep and os.environ.get("TEST_DATABASE_URL"):
        database_url, drop = keep_postgresql(Path(args.keep).stem), lambda: None
    elif args.keep:
        database_url, drop = f"sqlite:///{Path(args.keep).resolve()}", lambda: None
    else:
        database_url, drop = make_database(workdir)
    os.environ["DATABASE_URL"] = database_url
    os.environ["PANEL_MANAGER_ENABLED"] = "0"
    workers: list = []
    try:
        from sqlalchemy import select

        from panel import create_app, snapshots
        from panel.extensions import db
        from panel.models import Account, Rate, RateTable
        from panel.routing.build import build_snapshot
        from panel.routing.ratestore import RateStore

        # The host's shared rate table files (panel/routing/ratestore.py): the workers' directory, and for a
        # run without --preload another one for this process's build (the workers then write their own).
        data_dir = workdir / "routing"
        app = create_app(worker_settings(database_url, args.period, str(data_dir)))
        kept = Path(f"{args.keep}.json") if args.keep else None
        if kept and kept.exists():
            data = json.loads(kept.read_text())
        else:
            with app.app_context():
                db.create_all()
                gen_args = argparse.Namespace(
                    vendors=args.vendors, codes=args.codes, originators=args.originators, seed=args.seed
                )
                data = generate(app, gen_args)
            if kept:
                kept.write_text(json.dumps(data))

        warm_file = workdir / "warm.json"
        warm_file.write_text(json.dumps(make_queries(data, args.warm, args.seed)))
        with app.app_context():
            vendors = db.session.query(Account).filter(Account.term_enabled.is_(True)).order_by(Account.id)
            other_id = vendors[7].id
            # The probe's vendor: one whose table prices 44 (kept data may hold an earlier run's deck).
            for vendor in vendors[5:]:
                vendor_table = vendor.term_rate_table_id or vendor.client.term_rate_table_id
                prices_44 = select(Rate.id).where(Rate.rate_table_id == vendor_table, Rate.code == "44")
                if db.session.scalar(prices_44):
                    break
            vendor_id = vendor.id
            customer_table = db.session.scalar(select(RateTable.id).where(RateTable.name == "Customer rates"))

            def prices(table_id) -> dict:
                rows = select(Rate.code, Rate.rate).where(
                    Rate.rate_table_id == table_id, Rate.code.like("44%")
                )
                return dict(db.session.execute(rows).all())

            pick_probe(data["universe"], prices(vendor_table), prices(customer_table))
            db.session.remove()
            db.engine.dispose()

        query = next(dict(q, number=PROBE_NUMBER) for q, tech in data["originators"] if not tech)
        # What generating the data allocated and freed is given back first: one snapshot's cost is what
        # the build adds to this process.
        gc.collect()
        snapshots._trim()
        before = pss_kb(os.getpid())
        started = time.perf_counter()
        if args.preload:  # as gunicorn's master with panel/gunicorn_preload.py: build here, fork the workers
            snapshot = snapshots.preload(app)
        elif args.cold_workers:  # this build's files apart: every worker reads every rate itself
            with app.app_context():
                snapshot = build_snapshot(db.engine, store=RateStore.at(workdir / "build-routing"))
                db.engine.dispose()
        else:  # as a host's first process: the files and the manifest the workers start from
            with app.app_context():
                mark_loaded()
                snapshot = snapshots.rebuild()
                app.extensions.pop("routing_snapshot")  # dropped below: the workers alone map the files
                db.engine.dispose()
        full_build_s = time.perf_counter() - started
        # One copy: everything the build holds, the mapped files' pages included (read once here: a mapping
        # costs nothing until its pages are read).
        touch(snapshot)
        snapshot_mb = (pss_kb(os.getpid()) - before) / 1024
        figures = {
            "vendors": args.vendors,
            "rates": snapshot.counts["rates"],
            "rules": snapshot.counts["rules"],
            "database": database_url.split(":", 1)[0].split("+", 1)[0],
            "full_build_s": round(full_build_s, 2),
            "snapshot_mb": round(snapshot_mb, 1),
            "rate_files_mb": round(files_mb(snapshot), 1),
            "preload": args.preload,
            "cold_workers": args.cold_workers,
        }
        del snapshot
        gc.collect()  # this process maps no file any more: the workers' PSS carries the files alone

        started = time.perf_counter()
        if args.preload:
            workers = [ForkedWorker(app) for _ in range(args.workers)]
        else:
            workers = [Worker(database_url, args.period, str(data_dir)) for _ in range(args.workers)]
        for w in workers:
            w.wait_ready()
        figures["workers"] = args.workers
        figures["worker_start_s"] = round(time.perf_counter() - started, 2)
        figures["manager_period_s"] = args.period
        warm = [w.ask({"warm": str(warm_file)}) for w in workers]
        figures["warm_routes_per_worker"] = args.warm
        figures["warm_routes_s"] = round(max(r["seconds"] for r in warm), 2)

        add_rule(app, vendor_id)
        seconds, answers = wait_all(
            workers, query, lambda a: [r[0] for r in a["routes"]] == [vendor_id], args.timeout
        )
        figures["rule_edit_effect_s"] = round(seconds, 2)
        figures["rule_edit_changes"] = sorted({a["changes"] for a in answers})
        figures["rule_edit_update_s"] = max(a["update_s"] for a in answers)
        figures["rule_edit_update_cpu_s"] = max(a["update_cpu_s"] for a in answers)

        price = f"0.000{random.randrange(100, 999)}"
        figures["deck_rows"] = args.deck_rows
        figures["deck_import_s"] = round(import_deck(app, vendor_table, args.deck_rows, price), 2)
        seconds, answers = wait_all(
            workers,
            query,
            lambda a: bool(a["routes"]) and a["routes"][0][1] == round(float(price) * 1_000_000),
            args.timeout,
        )
        figures["deck_import_effect_s"] = round(seconds, 2)
        figures["deck_import_changes"] = sorted({a["changes"] for a in answers})
        figures["deck_import_update_s"] = max(a["update_s"] for a in answers)
        figures["deck_import_update_cpu_s"] = max(a["update_cpu_s"] for a in answers)

        edit_account(app, other_id)
        seconds, answers = wait_all(workers, query, lambda a: a["changes"] == "base", args.timeout)
        figures["account_edit_effect_s"] = round(seconds, 2)
        figures["account_edit_update_s"] = max(a["update_s"] for a in answers)
        figures["account_edit_update_cpu_s"] = max(a["update_cpu_s"] for a in answers)

        for w in workers:  # route again after the edits, as a worker keeps doing
            w.ask({"warm": str(warm_file)})
        if args.preload:
            # The master and its workers share the snapshot's pages: what the host spends on routing data
            # is all their PSS together minus what the master held before it built the snapshot.
            total = (pss_kb(os.getpid()) + sum(pss_kb(w.pid) for w in workers) - before) / 1024
        else:
            total = sum(pss_kb(w.pid) - w.info["base_pss_kb"] for w in workers) / 1024
        figures["routing_pss_mb"] = round(total, 1)
        figures["routing_pss_ratio"] = round(total / snapshot_mb, 2) if snapshot_mb else None
        figures["worker_build_s"] = round(max(w.info["build_s"] for w in workers), 2)
        figures["worker_starts"] = sorted({w.info.get("start", "") for w in workers})
        figures["loadavg_1m"] = round(os.getloadavg()[0], 2)
        figures["cpus"] = os.cpu_count()
        print(json.dumps(figures), flush=True)
    finally:
        for w in workers:
            w.stop()
        drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
