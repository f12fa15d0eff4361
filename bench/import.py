"""Rate deck import speed: a generated deck imported through the same function the panel's import job calls.

Usage: .venv/bin/python bench/import.py [--rows 250000] [--mode add_update|replace] [--repeat N]

Runs on a temporary SQLite database and, when TEST_DATABASE_URL is set, on a private PostgreSQL database
created for the run (and dropped after). Prints one JSON line: rows, mode, the load average at the start and
at the end, and per database seconds, rows_per_s, cpu_seconds (this process only: on a busy machine it shows
the work apart from the waiting; on SQLite it includes the database engine, which runs in the process),
database_cpu_seconds (PostgreSQL: the CPU of the import's server process, read from /proc when the server
runs on this host, else null), rate_table_key (PostgreSQL: how the rates' rate table is checked, by the
statement triggers of panel/rates/integrity.py or by the foreign key) and reimport_seconds (the same deck
imported again over the first: every row is then found unchanged). With --repeat N the deck is imported N
times, each into a new empty table of a fresh database, and the fastest run is reported (a busy machine makes
single runs noisy).
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from bench.pages import make_app  # noqa: E402
from panel.databases import private_postgres  # noqa: E402
from panel.extensions import db  # noqa: E402
from panel.models import Company, Rate, RateTable  # noqa: E402
from panel.rates import integrity  # noqa: E402
from panel.rates.importer import import_rates  # noqa: E402

COUNTRIES = [
    ("1", "USA"),
    ("44", "United Kingdom"),
    ("49", "Germany"),
    ("33", "France"),
    ("39", "Italy"),
    ("34", "Spain"),
    ("7", "Russia"),
    ("86", "China"),
    ("91", "India"),
    ("55", "Brazil"),
    ("52", "Mexico"),
    ("61", "Australia"),
    ("81", "Japan"),
    ("234", "Nigeria"),
    ("254", "Kenya"),
]


def generate_deck(rows: int, seed: int = 7) -> bytes:
    """A vendor-like deck: unique codes under real country codes, a few effective dates, mixed increments."""
    rng = random.Random(seed)
    lines = ["code,name,rate,effective_from,end,setup_fee,min_time,interval"]
    dates = ["2024-01-01", "2024-06-01 00:00", "2025-01-15 12:30:00"]
    increments = [("1", "1"), ("60", "60"), ("30", "6"), ("", "")]
    seen = set()
    while len(lines) <= rows:
        prefix, country = rng.choice(COUNTRIES)
        code = prefix + str(rng.randrange(10**5, 10**7))
        effective = rng.choice(dates)
        if (code, effective) in seen:
            continue
        seen.add((code, effective))
        end = "2030-01-01" if rng.random() < 0.05 else ""
        min_time, interval = rng.choice(increments)
        rate = f"{rng.uniform(0.001, 0.9):.6f}".rstrip("0")
        lines.append(
            f"{code},{country} {'Mobile' if rng.random() < 0.4 else 'Fixed'},{rate},{effective},{end},,"
            f"{min_time},{interval}"
        )
    return ("\n".join(lines) + "\n").encode()


def _backend_cpu(pid: int | None) -> float | None:
    """CPU seconds of a PostgreSQL server process of this host (None when it cannot be read)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(database: str, url: str, deck: bytes, rows: int, mode: str) -> dict:
    """Create the schema, import the deck twice into one table, and return the figures."""
    app = make_app(url)
    with app.app_context():
        db.create_all()
        company = Company(name="Bench", kind="root")
        db.session.add(company)
        db.session.flush()
        table = RateTable(company_id=company.id, name="Vendor deck", currency="USD")
        db.session.add(table)
        db.session.commit()
        table_id = table.id
        pid = db.session.scalar(text("SELECT pg_backend_pid()")) if database == "postgresql" else None
        triggers = integrity.installed(db.session.connection())
        db.session.commit()

        server = _backend_cpu(pid)
        started, cpu = time.perf_counter(), time.process_time()
        import_rates(table_id, deck, mode, filename="bench.csv")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        server = None if server is None else _backend_cpu(pid) - server
        count = db.session.scalar(
            select(func.count()).select_from(Rate).where(Rate.rate_table_id == table_id)
        )
        assert count == rows, f"{count} rates stored, {rows} expected"

        started = time.perf_counter()
        import_rates(table_id, deck, "add_update", filename="bench.csv")
        again = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    figures = {
        "database": database,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "mode": mode,
        "cpu_seconds": round(cpu, 3),
    }
    if database == "postgresql":
        figures["database_cpu_seconds"] = None if server is None else round(server, 3)
        figures["rate_table_key"] = "statement triggers" if triggers else "foreign key"
    return figures | {"reimport_seconds": round(again, 3)}


def _best(runs: list[dict]) -> dict:
    """The fastest of the runs (by seconds), with every run's seconds beside it."""
    best = dict(min(runs, key=lambda r: r["seconds"]))
    if len(runs) > 1:
        best["all_seconds"] = [r["seconds"] for r in runs]
    return best


def main() -> None:
    """Parse the arguments, run on each database, print one JSON line with the figures of both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--mode", choices=["add_update", "replace"], default="add_update")
    parser.add_argument("--repeat", type=int, default=1, help="import N times, report the fastest")
    args = parser.parse_args()
    deck = generate_deck(args.rows)
    figures = {
        "benchmark": "import",
        "rows": args.rows,
        "mode": args.mode,
        "load_average": round(os.getloadavg()[0], 2),
    }

    def strip(result: dict) -> dict:
        return {k: v for k, v in result.items() if k not in ("database", "rows", "mode")}

    runs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run("sqlite", f"sqlite:///{tmp}/bench{i}.sqlite3", deck, args.rows, args.mode))
    figures["sqlite"] = strip(_best(runs))

    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        runs = []
        for _ in range(args.repeat):
            url, drop = private_postgres(base, "panel_bench")
            try:
                runs.append(run("postgresql", url, deck, args.rows, args.mode))
            finally:
                drop()
        figures["postgresql"] = strip(_best(runs))
    figures["load_average_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
