"""What-if speed on the routing benchmark's data (issue 15): a rule edit preview, a vendor deck import
preview and a whole LCR sheet.

Generates the carrier of `bench/route.py` (its generator: `--vendors` vendors with `--codes` codes each, a
customer rate table, originators, one plan with dynamic, static, balanced and catch-all rules) in a private
temporary database, adds a code deck of `--deck` codes (the customer's codes) to the plan, and measures on
one snapshot:

- `rule_preview_s`: the preview of one rule edit (the dynamic rule of a country code moved to another vendor
  pool): the plan's rules read, the changed snapshot built in memory, every deck code the rule reaches routed
  before and after for every originator group (target: under 1 s);
- `deck_preview_s`: the preview of a `--codes`-code vendor deck import (every rate of one vendor changed):
  the CSV parsed, the changed table built in memory, every touched deck code routed twice (target: 10 s);
- `lcr_sheet_s`: the LCR sheet of the whole deck for one originator (target: 10 s), and
  `sheet_destinations_per_s`, the destinations evaluated per second;
- `*_cpu_s`: the same as CPU seconds of the measuring thread (the work of one core, whatever else the
  machine runs), and `sheet_destinations_per_cpu_s`;
- `loadavg_1m` and `cpus`: the machine's state (the `_s` figures are wall-clock times on a shared machine).

Prints one JSON line. Example: `.venv/bin/python bench/whatif.py` (100 vendors x 60,000 codes).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import route as route_bench  # noqa: E402 - bench/route.py: the routing benchmark's generator

AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendors", type=int, default=100)
    parser.add_argument("--codes", type=int, default=60_000, help="codes per vendor rate table")
    parser.add_argument("--deck", type=int, default=60_000, help="codes of the plan's code deck")
    parser.add_argument("--originators", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--keep", help="SQLite file to keep the generated data in and reuse (development aid)"
    )
    return parser.parse_args()


def add_deck(app, data: dict, size: int) -> int:
    """A code deck of `size` customer codes on the benchmark's plan; returns the plan id."""
    from sqlalchemy import insert, select

    from panel.extensions import db
    from panel.models import Code, CodeDeck, RoutingPlan

    with app.app_context():
        plan = db.session.scalar(select(RoutingPlan))
        deck = CodeDeck(company_id=plan.company_id, name="Bench deck")
        db.session.add(deck)
        db.session.flush()
        codes = data["universe"][:size]
        db.session.execute(
            insert(Code),
            [{"code_deck_id": deck.id, "code": c, "name": f"dest {c}", "country": ""} for c in codes],
        )
        plan.code_deck_id = deck.id
        db.session.commit()
        return plan.id


CPU: dict[str, float] = {}


def timed(work, name: str = ""):
    """(result, wall-clock seconds) of work(); its CPU seconds (this thread) are kept in CPU[name]."""
    started, cpu = time.perf_counter(), time.thread_time()
    result = work()
    if name:
        CPU[name] = time.thread_time() - cpu
    return result, time.perf_counter() - started


def main() -> None:
    """Generate, measure, print one JSON line."""
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="panel-bench-whatif-"))
    if args.keep:
        database_url, drop = f"sqlite:///{Path(args.keep).resolve()}", lambda: None
    else:
        database_url, drop = route_bench.make_database(workdir)
    os.environ["DATABASE_URL"] = database_url
    os.environ["PANEL_MANAGER_ENABLED"] = "0"
    try:
        from panel import create_app
        from panel.extensions import db
        from panel.models import Company, RateTable, RoutingPlan, RoutingRule
        from panel.routing.build import build_snapshot
        from panel.whatif import overlay, preview_views, service, sheet

        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": database_url, "MANAGER_ENABLED": False, "TESTING": False}
        )
        gen_args = argparse.Namespace(
            vendors=args.vendors, codes=args.codes, originators=args.originators, seed=args.seed
        )
        kept = Path(f"{args.keep}.json") if args.keep else None
        if kept and kept.exists():
            data = json.loads(kept.read_text())
            plan_id = data["plan_id"]
        else:
            with app.app_context():
                db.create_all()
                data = route_bench.generate(app, gen_args)
            plan_id = data["plan_id"] = add_deck(app, data, args.deck)
            if kept:
                kept.write_text(json.dumps(data))
        figures = {
            "vendors": args.vendors,
            "codes": args.codes,
            "deck": args.deck,
            "originators": args.originators,
        }
        with app.app_context():
            snapshot, build_s = timed(lambda: build_snapshot(db.engine))
            gc.collect()
            gc.freeze()
            figures["snapshot_build_s"] = round(build_s, 2)
            companies = {db.session.scalar(db.select(Company.id).where(Company.parent_id.is_(None)))}

            # A rule edit: the dynamic rule of country 44 moves to another vendor pool.
            rule = db.session.scalar(
                db.select(RoutingRule).where(RoutingRule.code == "44", RoutingRule.type == "dynamic")
            )

            def rule_preview():
                rows = service.rule_rows(plan_id)
                new_rows = [{**r, "term_tags": "pool1"} if r["id"] == rule.id else r for r in rows]
                return service.rules_preview(snapshot, plan_id, new_rows, companies, AT)[0]

            preview, rule_s = timed(rule_preview, "rule_preview")
            figures["rule_preview_s"] = round(rule_s, 3)
            figures["rule_preview_destinations"] = preview.evaluated
            figures["rule_preview_changes"] = len(preview.changes)

            # A vendor deck import: every rate of one vendor's table changed (a new price list).
            table = db.session.scalar(db.select(RateTable).where(RateTable.name == "V0010 rates"))
            rnd = random.Random(args.seed)
            lines = ["code,rate"] + [
                f"{code},{rows[0][0] / 1_000_000 * rnd.uniform(0.8, 1.2):.4f}"
                for code, rows in snapshot.rate_tables[table.id].rates.items()
            ]
            csv_bytes = ("\n".join(lines) + "\n").encode()

            def deck_preview():
                rates, errors = preview_views._rates_from_file(table, csv_bytes, "replace", AT)
                assert not errors, errors[:3]
                return service.rates_preview(snapshot, table.id, rates, companies, AT)[0]

            with app.test_request_context():
                preview, deck_s = timed(deck_preview, "deck_preview")
            figures["deck_preview_s"] = round(deck_s, 2)
            figures["deck_preview_destinations"] = preview.evaluated
            figures["deck_preview_changes"] = len(preview.changes)

            # The LCR sheet of the whole deck for one originator.
            deck_id = db.session.get(RoutingPlan, plan_id).code_deck_id
            codes = service.deck_codes(deck_id)
            account_id = next(a.id for a in snapshot.accounts.values() if a.orig_enabled)
            origin = overlay.originator(snapshot, account_id, plan_id, None, 0)
            rows, sheet_s = timed(lambda: sheet.sheet(snapshot, origin, codes, AT), "lcr_sheet")
            figures["lcr_sheet_s"] = round(sheet_s, 2)
            figures["lcr_sheet_destinations"] = len(rows)
            figures["sheet_destinations_per_s"] = round(len(rows) / sheet_s)
            figures["lcr_sheet_no_route"] = sum(1 for r in rows if r.no_route)
        # CPU seconds of the measuring thread: the work of one core, whatever else the machine runs.
        figures.update({f"{name}_cpu_s": round(seconds, 2) for name, seconds in CPU.items()})
        figures["sheet_destinations_per_cpu_s"] = round(len(rows) / CPU["lcr_sheet"])
        figures["loadavg_1m"] = round(os.getloadavg()[0], 2)
        figures["cpus"] = os.cpu_count()
        print(json.dumps(figures), flush=True)
    finally:
        drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
