"""CDR ingest speed: call records validated, rated with both rate tables, stored and charged, per second.

Usage: .venv/bin/python bench/cdrs.py [--records 50000] [--batch 1000] [--codes 20000] [--vendors 5]

Runs on a temporary SQLite database and, when TEST_DATABASE_URL is set, on a private PostgreSQL database
created for the run (and dropped after). The records go through `panel.cdrs.ingest` (what `POST /api/v1/cdrs`
calls) in batches, scoped to the operator's company as a token would be, with a current routing snapshot
(as while the Traffic Rules manager runs: rates are read from it); then the same number through the HTTP view
(JSON, token check) with Flask's test client; then again right after a panel edit, when the rates are read
from the database until the next manager run. Prints one JSON line per database: database, records, batch,
records_per_s, api_records_per_s, db_rates_records_per_s, and the size of the rate tables.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from panel import cdrs, create_app, manager  # noqa: E402
from panel.api.auth import new_token  # noqa: E402
from panel.databases import private_postgres  # noqa: E402
from panel.extensions import db  # noqa: E402
from panel.models import Account, ApiToken, AuditEntry, CallStat, Client, Company, Rate, RateTable  # noqa: E402

COUNTRY_CODES = ["1", "44", "49", "33", "39", "34", "7", "86", "91", "55", "52", "61", "81", "234", "254"]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def make_codes(count: int, rng: random.Random) -> list[str]:
    """Distinct destination codes under real country codes, 4 to 7 digits long."""
    codes: set[str] = set(COUNTRY_CODES)
    while len(codes) < count:
        country = rng.choice(COUNTRY_CODES)
        codes.add(country + str(rng.randrange(10, 10**5)))
    return sorted(codes)


def seed(codes: list[str], vendors: int, rng: random.Random) -> dict:
    """A root company, one customer rate table and `vendors` vendor tables over the codes, accounts to use."""
    root = Company(name="Bench operator", kind="root")
    db.session.add(root)
    db.session.flush()
    increments = [(1, 1), (60, 60), (30, 6), (60, 1)]

    def table(name: str, low: float, high: float) -> int:
        rate_table = RateTable(company_id=root.id, name=name, currency="USD")
        db.session.add(rate_table)
        db.session.flush()
        rows = []
        for code in codes:
            min_time, interval = rng.choice(increments)
            rows.append(
                {
                    "rate_table_id": rate_table.id,
                    "code": code,
                    "name": f"Destination {code}",
                    "rate": Decimal(f"{rng.uniform(low, high):.6f}"),
                    "effective_from": EPOCH,
                    "setup_fee": Decimal(0),
                    "min_time": min_time,
                    "interval": interval,
                }
            )
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(Rate), rows[start : start + 5000])
        return rate_table.id

    customer_table = table("Retail", 0.05, 0.5)
    originators, terminators = [], []
    for c in range(10):
        client = Client(company_id=root.id, name=f"Customer {c}", orig_rate_table_id=customer_table)
        db.session.add(client)
        db.session.flush()
        for a in range(5):
            account = Account(client_id=client.id, name=f"c{c}-a{a}", orig_enabled=True)
            db.session.add(account)
            db.session.flush()
            originators.append(account.id)
    for v in range(vendors):
        vendor_table = table(f"Vendor {v}", 0.01, 0.3)
        client = Client(company_id=root.id, name=f"Vendor {v}", term_rate_table_id=vendor_table)
        db.session.add(client)
        db.session.flush()
        account = Account(client_id=client.id, name=f"v{v}", term_enabled=True)
        db.session.add(account)
        db.session.flush()
        terminators.append(account.id)
    token, token_hash = new_token()
    db.session.add(ApiToken(company_id=root.id, name="bench", token_hash=token_hash, prefix=token[:8]))
    db.session.commit()
    return {"company_id": root.id, "orig": originators, "term": terminators, "token": token}


def make_records(count: int, codes: list[str], data: dict, rng: random.Random, tag: str) -> list[dict]:
    """Call records as a switch sends them: 60 % answered, numbers under the known codes."""
    start = datetime.now(UTC) - timedelta(hours=2)
    records = []
    for i in range(count):
        answered = rng.random() < 0.6
        number = rng.choice(codes) + str(rng.randrange(10**5, 10**7))
        records.append(
            {
                "call_id": f"{tag}-{i}",
                "orig_account_id": rng.choice(data["orig"]),
                "term_account_id": rng.choice(data["term"]),
                "number": number,
                "start": (start + timedelta(seconds=i % 3600)).isoformat(),
                "duration": rng.randrange(1, 600) if answered else 0,
                "answered": answered,
                "sip_code": 200 if answered else rng.choice([404, 486, 503]),
                "pdd": rng.randrange(500, 5000),
            }
        )
    return records


def ingest_all(records: list[dict], batch: int, company_id: int) -> float:
    """Ingest the records in batches, as the API does; returns the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        result = cdrs.ingest(records[start : start + batch], company_id=company_id)
        assert result.stored == len(records[start : start + batch]), result
    return time.perf_counter() - started


def run(database: str, url: str, records: int, batch: int, code_count: int, vendors: int) -> dict:
    """Seed, ingest in batches in-process and over the HTTP view, check what was stored; return figures."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "TESTING": True,
            "MANAGER_ENABLED": False,
            "SECRET_KEY": "bench",
            "SERVER_NAME": None,
        }
    )
    rng = random.Random(11)
    with app.app_context():
        db.create_all()
        codes = make_codes(code_count, rng)
        data = seed(codes, vendors, rng)
        direct = make_records(records, codes, data, rng, "direct")
        from_db = make_records(records, codes, data, rng, "db")
        over_http = make_records(records, codes, data, rng, "http")

        # As in production: the manager has published a snapshot and this process has swapped to it.
        manager.run_once(app, force=True)
        manager.sync_snapshot(app)
        assert isinstance(cdrs.rate_source(), cdrs.SnapshotRates)
        direct_seconds = ingest_all(direct, batch, data["company_id"])

        client = app.test_client()
        headers = {"Authorization": f"Bearer {data['token']}"}
        started = time.perf_counter()
        for start in range(0, records, batch):
            response = client.post("/api/v1/cdrs", json=over_http[start : start + batch], headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
        http_seconds = time.perf_counter() - started

        # Right after a panel edit (until the next run) the rates come from the database.
        db.session.add(AuditEntry(object_type="bench", action="update", note="a panel edit"))
        db.session.commit()
        assert isinstance(cdrs.rate_source(), cdrs.RateLookup)
        db_seconds = ingest_all(from_db, batch, data["company_id"])

        stored = db.session.scalar(select(func.count()).select_from(CallStat))
        assert stored == 3 * records, f"{stored} stored, {3 * records} expected"
        charged = db.session.scalar(select(func.sum(CallStat.customer_charge)))
        balances = db.session.scalar(select(func.sum(Client.balance)))
        assert Decimal(balances) == -Decimal(charged), "balances do not match the charges"
        rates = db.session.scalar(select(func.count()).select_from(Rate))
        db.session.remove()
        db.engine.dispose()
    return {
        "database": database,
        "records": records,
        "batch": batch,
        "records_per_s": round(records / direct_seconds),
        "api_records_per_s": round(records / http_seconds),
        "db_rates_records_per_s": round(records / db_seconds),
        "seconds": round(direct_seconds, 3),
        "rate_tables": 1 + vendors,
        "rates": rates,
    }


def main() -> None:
    """Parse the arguments, run on each database, print one JSON line per database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--codes", type=int, default=20_000)
    parser.add_argument("--vendors", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.batch <= cdrs.MAX_BATCH:
        parser.error(f"--batch must be between 1 and {cdrs.MAX_BATCH}")

    with tempfile.TemporaryDirectory() as tmp:
        figures = run(
            "sqlite", f"sqlite:///{tmp}/bench.sqlite3", args.records, args.batch, args.codes, args.vendors
        )
        print(json.dumps(figures), flush=True)

    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url, drop = private_postgres(base, "panel_bench")
        try:
            figures = run("postgresql", url, args.records, args.batch, args.codes, args.vendors)
            print(json.dumps(figures), flush=True)
        finally:
            drop()


if __name__ == "__main__":
    main()
