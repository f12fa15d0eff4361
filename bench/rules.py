"""Routing rules at scale: import a 50,000-rule file into a plan, then time the plan's rules tab.

Usage: .venv/bin/python bench/rules.py [--rules 50000] [--requests 200]
       .venv/bin/python bench/rules.py --rules 1000000      # a million rules (or BENCH_RULES=1000000)

Runs on a temporary SQLite database and, when TEST_DATABASE_URL is set, on a private PostgreSQL database
created for the run (and dropped after). The import goes through the panel's own upload (POST to the
Import/Export tab, the background job run synchronously); the rules tab is requested like a browser does
(first page, other pages, the last page, Next / Previous cursors from rules all over the plan, sorting,
filters, htmx fragments). Above 200,000 rules the rules are inserted in bulk instead of imported (import_s is
then the bulk insert; no export). Prints one JSON line per database: database, rules, import_s,
rules_tab_ms_p95 (and the median, the slowest, the app's CPU per request, the export time, the load average),
and the p95 of each kind of request: list_ms_p95 (first and numbered pages, sorts), search_ms_p95 (code, type,
terminator and state filters) and deep_ms_p95 (last pages and cursors).

Environment: BENCH_SKIP_SQLITE=1 (PostgreSQL only); BENCH_KEEP_DB=1 keeps the loaded database for the next run
(`panel_bench_rules_<rules>` next to TEST_DATABASE_URL, or that name with `.sqlite3` in the system's temporary
directory), which then skips the load and the export (import_s is the time to find it); it is not migrated:
drop it after a change of the models.
"""

import argparse
import io
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from bench.pages import KEEP, analyze, on_each_database  # noqa: E402
from panel import create_app  # noqa: E402
from panel.extensions import db  # noqa: E402
from panel.models import (  # noqa: E402
    Account,
    Client,
    Code,
    CodeDeck,
    Company,
    Policy,
    RoutingPlan,
    RoutingRule,
    TimeProfile,
    User,
)
from panel.paging import encode_cursor  # noqa: E402
from panel.plans.rules_csv import COLUMNS  # noqa: E402

COUNTRIES = ["1", "44", "49", "33", "39", "34", "7", "86", "91", "55", "52", "61", "81", "234", "254"]
VENDORS = 40
POLICIES = ["Simple LCR", "Simple Quality", "Proportional", "Random"]
TAGS = ["gold", "silver", "bronze", "cli", "nocli", "premium"]
BULK_RULES = 200_000
HX = {"HX-Request": "true"}


def generate_rules(count: int, seed: int = 11) -> bytes:
    """A believable large plan: codes under real country codes, every rule type, some parameters set."""
    rng = random.Random(seed)
    lines = [",".join(COLUMNS)]
    for i in range(count):
        roll = rng.random()
        code = rng.choice(COUNTRIES) + str(rng.randrange(10, 10**6))
        if roll < 0.45:
            rule_type, terminator = "static_client", f"Vendor {rng.randrange(VENDORS)}"
        elif roll < 0.7:
            vendor = rng.randrange(VENDORS)
            rule_type, terminator = "static_account", f"Vendor {vendor}/trunk-{vendor}"
        elif roll < 0.995:
            rule_type, terminator = "dynamic", rng.choice(POLICIES)
        else:
            rule_type, terminator, code = "did", "", ""
        if rule_type != "did" and rng.random() < 0.1:
            code += "*"
        cells = {name: "" for name in COLUMNS}
        cells.update(priority=str(rng.randrange(0, 100)), code=code, type=rule_type, terminator=terminator)
        if rng.random() < 0.2:
            cells["profit_margin"] = rng.choice(["10%", "0.002", "5%"])
        if rng.random() < 0.15:
            cells["orig_tags"] = " ".join(rng.sample(TAGS, 2))
            cells["orig_tags_mode"] = rng.choice(["all", "any"])
        if rule_type == "dynamic" and rng.random() < 0.3:
            cells["term_tags"] = rng.choice(TAGS)
        if rng.random() < 0.05:
            cells["time_profile"] = "Office hours"
        if rng.random() < 0.03:
            cells["expires_at"] = rng.choice(["2020-01-01 00:00", "2040-06-01 12:30"])
        if rng.random() < 0.1:
            cells["balancing"] = str(rng.choice([1, 33, 50, 100]))
        if rng.random() < 0.05:
            cells["min_length"], cells["max_length"] = "8", "15"
        if rng.random() < 0.05:
            cells["min_asr"], cells["min_acd"] = "20", "1.5"
        if rng.random() < 0.1:
            cells["capacity"] = str(rng.randrange(10, 500))
        cells["stop_hunt"] = "1" if rng.random() < 0.02 else "0"
        lines.append(",".join(cells[name] for name in COLUMNS))
        del i
    return ("\n".join(lines) + "\n").encode()


def bulk_rules(plan_id: int, count: int, ids: dict, seed: int = 11) -> None:
    """`count` rules straight into the plan (executemany in batches): a million rules without the import."""
    rng = random.Random(seed)
    far = datetime(2040, 6, 1, tzinfo=UTC)
    past = datetime(2020, 1, 1, tzinfo=UTC)
    batch = []
    for i in range(count):
        roll = rng.random()
        row = {
            "plan_id": plan_id,
            "priority": rng.randrange(0, 100),
            "code": rng.choice(COUNTRIES)
            + str(rng.randrange(10, 10**6))
            + ("*" if rng.random() < 0.1 else ""),
            "type": "static_client",
            "terminator_client_id": None,
            "terminator_account_id": None,
            "policy_id": None,
            "expires_at": rng.choice([past, far]) if rng.random() < 0.03 else None,
        }
        if roll < 0.45:
            row["terminator_client_id"] = ids["vendors"][rng.randrange(VENDORS)]
        elif roll < 0.7:
            row["type"], row["terminator_account_id"] = (
                "static_account",
                ids["trunks"][rng.randrange(VENDORS)],
            )
        elif roll < 0.995:
            row["type"], row["policy_id"] = "dynamic", ids["policies"][rng.randrange(len(POLICIES))]
        else:
            row["type"], row["code"] = "did", ""
        batch.append(row)
        if len(batch) == 5000 or i == count - 1:
            db.session.execute(insert(RoutingRule), batch)
            batch = []
    db.session.commit()
    analyze()


def seed(app) -> tuple[int, int, dict]:
    """An operator with vendors, policies, a profile, a code deck and an empty plan: (user, plan, ids)."""
    with app.app_context():
        db.create_all()
        root = Company(name="Bench Operator", kind="root")
        db.session.add(root)
        db.session.flush()
        user = User(company_id=root.id, username="bench", role="operator", password_hash="-")
        db.session.add(user)
        for v in range(VENDORS):
            vendor = Client(company_id=root.id, name=f"Vendor {v}")
            db.session.add(vendor)
            db.session.flush()
            db.session.add(Account(client_id=vendor.id, name=f"trunk-{v}", term_enabled=True, ident_value=""))
        for name in POLICIES:
            db.session.add(Policy(company_id=root.id, name=name, rate_weight=1))
        db.session.add(TimeProfile(company_id=root.id, name="Office hours"))
        deck = CodeDeck(company_id=root.id, name="World")
        db.session.add(deck)
        db.session.flush()
        rng = random.Random(3)
        codes = {c for c in COUNTRIES} | {
            rng.choice(COUNTRIES) + str(rng.randrange(10, 10**4)) for _ in range(5000)
        }
        db.session.execute(
            Code.__table__.insert(),
            [
                {"code_deck_id": deck.id, "code": c, "name": f"Destination {c}", "country": ""}
                for c in sorted(codes)
            ],
        )
        plan = RoutingPlan(company_id=root.id, name="Big plan", code_deck_id=deck.id)
        db.session.add(plan)
        db.session.commit()
        return user.id, plan.id, seeded_ids()


def seeded_ids() -> dict:
    """The ids of the seeded vendors, trunks and policies (the rules' terminators and the filters')."""
    return {
        "client": db.session.scalar(select(Client.id).where(Client.name == "Vendor 7")),
        "policy": db.session.scalar(select(Policy.id).where(Policy.name == "Simple LCR")),
        "vendors": list(db.session.scalars(select(Client.id).order_by(Client.id))),
        "trunks": list(db.session.scalars(select(Account.id).order_by(Account.id))),
        "policies": list(db.session.scalars(select(Policy.id).order_by(Policy.id))),
    }


def kept(app, rules: int) -> tuple[int, int, dict] | None:
    """(user, plan, ids) of a kept database that holds the plan's `rules` rules already (BENCH_KEEP_DB)."""
    with app.app_context():
        db.create_all()
        plan_id = db.session.scalar(select(RoutingPlan.id).where(RoutingPlan.name == "Big plan"))
        user_id = db.session.scalar(select(User.id).where(User.username == "bench"))
        if plan_id is None or user_id is None:
            return None
        stored = db.session.scalar(select(func.count()).where(RoutingRule.plan_id == plan_id))
        if stored != rules:
            raise SystemExit(f"the kept database holds {stored} rules, not {rules}: drop it first")
        return user_id, plan_id, seeded_ids()


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(share * len(ordered) + 0.5)) - 1))
    return ordered[index]


def run(database: str, url: str, data: bytes, rules: int, requests: int) -> dict:
    """Import the file through the panel, check the count, then time the rules tab and the export."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "TESTING": True,
            "MANAGER_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
            "IMPORTS_SYNCHRONOUS": True,
            "SECRET_KEY": "bench",
            "SERVER_NAME": None,
        }
    )
    found = kept(app, rules) if KEEP else None
    user_id, plan_id, ids = found or seed(app)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{user_id}:1"
        session["_fresh"] = True

    started = time.perf_counter()
    if found:
        pass  # a kept database: loaded by an earlier run
    elif data is None:  # a million rules: inserted in bulk (the import's time is bench/import.py's)
        with app.app_context():
            bulk_rules(plan_id, rules, ids)
    else:
        response = client.post(
            f"/plans/{plan_id}/import",
            data={"file": (io.BytesIO(data), "rules.csv"), "mode": "replace"},
            content_type="multipart/form-data",
        )
        assert response.status_code == 200, response.data.decode()[:2000]
        # A replace shows its preview first; confirming it (the kept file's token) runs the import.
        token = re.search(r'name="token" value="([^"]+)"', response.get_data(as_text=True))
        if token:
            response = client.post(
                f"/plans/{plan_id}/import", data={"token": token.group(1), "action": "confirm"}
            )
            assert response.status_code == 200, response.data.decode()[:2000]
    import_s = time.perf_counter() - started
    with app.app_context():
        stored = db.session.scalar(select(func.count()).where(RoutingRule.plan_id == plan_id))
    assert stored == rules, f"{stored} rules stored, {rules} expected"

    base = f"/plans/{plan_id}/"
    # (kind, path, headers): "list" the first and numbered pages and sorts, "search" the filters, "deep" the
    # last pages and Next / Previous cursors from rules anywhere in the plan.
    variants = [
        ("list", base, {}),
        ("list", base + "?page=2", {}),
        ("deep", base + "?last=1", {}),
        ("deep", base + "?sort=-priority&last=1", HX),
        ("list", base + "?sort=priority", {}),
        ("list", base + "?sort=-code&page=3", {}),
        ("search", base + "?code=44", {}),
        ("search", base + "?code=4420", HX),
        ("search", base + "?type=dynamic", {}),
        ("search", base + f"?terminator=c{ids['client']}", {}),
        ("search", base + f"?terminator=p{ids['policy']}&page=2", HX),
        ("search", base + "?state=expired", {}),
        ("search", base + "?code=7&sort=priority", HX),
        ("search", base + "?code=86123", HX),
    ]
    with app.app_context():  # Next / Previous from rules anywhere in the plan (keyset cursors)
        rng = random.Random(5)
        sample = db.session.execute(
            select(RoutingRule.code, RoutingRule.priority, RoutingRule.id)
            .where(RoutingRule.plan_id == plan_id, RoutingRule.id % 997 == 0)
            .limit(200)
        ).all()
        for code, priority, rule_id in rng.sample(sample, min(6, len(sample))):
            for sort, values, direction in (
                ("code", [code, priority, rule_id], "after"),
                ("-code", [code, priority, rule_id], "before"),
                ("priority", [priority, code, rule_id], "after"),
            ):
                variants.append(("deep", f"{base}?sort={sort}&{direction}={encode_cursor(sort, values)}", {}))
    for _kind, path, headers in variants:  # warm the caches once, as a running panel would be
        assert client.get(path, headers=headers).status_code == 200
    timings, cpu = [], []
    by_kind: dict[str, list[float]] = {"list": [], "search": [], "deep": []}
    for i in range(requests):
        kind, path, headers = variants[i % len(variants)]
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        by_kind[kind].append(timings[-1])
        assert response.status_code == 200

    export_s = None
    if data is not None and not found:
        started = time.perf_counter()
        exported = client.get(f"/plans/{plan_id}/export").data
        export_s = round(time.perf_counter() - started, 2)
        assert exported.count(b"\n") == rules + 1
    return {
        "benchmark": "rules",
        "database": database,
        "rules": rules,
        "import_s": round(import_s, 2),
        "rules_tab_ms_p95": round(percentile(timings, 0.95), 1),
        "rules_tab_ms_p50": round(statistics.median(timings), 1),
        "rules_tab_ms_max": round(max(timings), 1),
        "rules_tab_cpu_ms_p95": round(percentile(cpu, 0.95), 1),
        **{f"{kind}_ms_p95": round(percentile(values, 0.95), 1) for kind, values in by_kind.items()},
        "requests": requests,
        "export_s": export_s,
        "bulk_loaded": data is None,
        "kept_database": bool(found),
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    """Run on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set; one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=int(os.environ.get("BENCH_RULES", "50000")))
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    # Above BULK_RULES the rules are inserted in bulk (the upload of a million-line file is not what's timed).
    data = generate_rules(args.rules) if args.rules <= BULK_RULES else None

    def one(database: str, url: str) -> dict:
        return run(database, url, data, args.rules, args.requests)

    # The same SQLite / PostgreSQL runs as bench/pages.py (BENCH_SKIP_SQLITE, BENCH_KEEP_DB).
    on_each_database(one, f"panel_bench_rules_{args.rules}" if KEEP else None)


if __name__ == "__main__":
    main()
