"""Calls per second through the whole path: sipp caller -> Kamailio -> panel -> sipp vendor, and back.

Everything runs on loopback: the panel under gunicorn (by default 2 workers of 4 threads, as `make run`, with
the switch worker `panel.api.worker.SwitchWorker` that docs/kamailio/README.md recommends for the switches'
port; `--worker-class gthread` for `make run`'s own) against a private temporary database (SQLite, or
with `--postgres URL` a private database next to that server, dropped at the end), Kamailio with
docs/kamailio/kamailio.cfg (route queries, call events and CDRs all go to the panel), one sipp vendor
answering every call and one sipp caller. The caller's rate (`sipp -r`) goes up by doubling, then by
bisection, with `--seconds` of calls at each step (a bounded call count); a step passes when every call
was answered and the step lasted no longer than its calls took to place (plus 2 s); a rate that fails is
tried once more (`--attempts`), since other work on the machine can stall a step. The figure is the
highest passing rate. The same ladder is then climbed with the stand-in router (`tests/e2e/stub_router.py`,
standard library only) in place of the panel, so the panel's share of the cost is visible.

Prints one JSON line: `calls_per_s`, `failed_calls` (of that step), the CPU use of each process during that
step in percent of one core (panel workers, Kamailio, sipp caller and vendor), `panel_cpu_ms_per_call` (the
CPU time, utime + stime from /proc/<pid>/stat, of the gunicorn master and workers over that step and the
2 s after it in which the last call events and CDRs arrive, per answered call), the CDRs of answered calls
the panel stored before Kamailio stopped (`cdrs_stored`, against `calls_answered` over every step: equal
when none was lost; the CDRs of failed attempts apart), the load average before and after, and the same
for the stand-in (`stub`, `router_cpu_ms_per_call`). PANEL_API_FASTPATH=0 in the environment
measures the panel without its switch fast path (panel.api.fastpath). Example:
`.venv/bin/python bench/switch.py --seconds 6`. More gunicorn options can be given in BENCH_GUNICORN
(e.g. `--access-logfile -`, with `--keep` to read the logs; an access log makes the switch worker leave
every request to gunicorn).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import switchlab  # noqa: E402

CALLER_IP = "127.0.0.2"
VENDOR_IPS = ("127.0.0.11", "127.0.0.12")
DIALLED = "55#441234567"
SETTLE_SECONDS = 2.0
# The worker the switches' panel instance runs (docs/kamailio/README.md): gthread with the switch's
# kept-alive requests read by a strict reader.
SWITCH_WORKER = "panel.api.worker.SwitchWorker"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each step (at least 5)")
    parser.add_argument("--start", type=int, default=100, help="first rate tried, calls/s")
    parser.add_argument("--max-rate", type=int, default=8000, help="highest rate tried, calls/s")
    parser.add_argument("--precision", type=float, default=0.08, help="stop bisecting within this fraction")
    parser.add_argument("--attempts", type=int, default=2, help="tries of a rate before it counts as failed")
    parser.add_argument("--worker-class", default=SWITCH_WORKER, help="gunicorn worker class (gthread, sync)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--children", type=int, default=16, help="Kamailio SIP worker processes")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--skip-stub", action="store_true", help="do not measure the stand-in router")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    args.seconds = max(args.seconds, 5.0)
    return args


@dataclass
class Step:
    """One rate tried."""

    rate: int
    calls: int
    answered: int
    failed_calls: int
    retransmissions: int
    elapsed: float
    passed: bool
    cpu_percent: dict
    router_cpu_seconds: float  # the router's processes, over the step and the settling time after it

    @property
    def router_cpu_ms_per_call(self) -> float | None:
        """The router's CPU milliseconds per answered call (route, two call events, one CDR)."""
        return round(self.router_cpu_seconds / self.answered * 1000, 3) if self.answered else None

    def as_json(self) -> dict:
        """The step as reported."""
        return {
            "rate": self.rate,
            "calls": self.calls,
            "answered": self.answered,
            "failed_calls": self.failed_calls,
            "retransmissions": self.retransmissions,
            "seconds": round(self.elapsed, 2),
            "passed": self.passed,
            "router_cpu_ms_per_call": self.router_cpu_ms_per_call,
        }


class Rig:
    """A router (panel or stand-in), Kamailio and a vendor, ready for callers."""

    def __init__(self, lab: switchlab.Lab, router: switchlab.Proc, port: int, token: str, vendor, args):
        self.lab = lab
        self.router = router
        self.router_name = "panel" if router.name == "panel" else "stub_router"
        self.kamailio, self.proxy = switchlab.start_switch(lab, (port,), token, args.children, shm_mb=1024)
        self.vendor = switchlab.start_vendor(lab, "vendor", "vendor_answers", *vendor)

    def step(self, rate: int, seconds: float) -> Step:
        """Place `rate * seconds` calls at `rate` calls/s; measure the CPU each process used meanwhile."""
        calls = int(rate * seconds)
        watched = {self.router_name: self.router, "kamailio": self.kamailio, "sipp_vendor": self.vendor.proc}
        before = {name: proc.cpu() for name, proc in watched.items()}
        started = time.monotonic()
        run = switchlab.run_caller(
            self.lab,
            f"caller-{rate}",
            self.proxy,
            DIALLED,
            "3312345678",
            CALLER_IP,
            calls=calls,
            rate=rate,
            limit=max(200, rate * 2),
            timeout=seconds * 4 + 20,
        )
        elapsed = time.monotonic() - started
        after = {name: proc.cpu() for name, proc in watched.items()}
        cpu = {name: _percent(before[name], after[name], elapsed) for name in watched}
        cpu["sipp_caller"] = round(run.cpu_seconds / elapsed * 100, 1)
        answered = run.finals.get("200", 0)
        passed = run.exit_code == 0 and run.failed == 0 and answered == calls and elapsed <= seconds + 2
        # The last calls' end events and CDRs reach the router after the caller is done (Kamailio posts
        # them every 200 ms): its CPU per call counts until they are in.
        time.sleep(SETTLE_SECONDS)
        router_before = before[self.router_name]
        settled = self.router.cpu()
        router_cpu = sum(used - router_before.get(pid, 0.0) for pid, used in settled.items())
        return Step(rate, calls, answered, run.failed, run.retransmissions, elapsed, passed, cpu, router_cpu)


def _percent(before: dict[int, float], after: dict[int, float], elapsed: float) -> dict | float:
    """CPU percent of one core: a number for one process; for a tree, the total, the first process (the
    parent: gunicorn's master, Kamailio's main process) and each child."""
    used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    if len(used) == 1:
        return round(next(iter(used.values())) / elapsed * 100, 1)
    parent, *children = used  # process_tree() lists the parent first
    return {
        "total": round(sum(used.values()) / elapsed * 100, 1),
        "parent": round(used[parent] / elapsed * 100, 1),
        "children": sorted((round(used[pid] / elapsed * 100, 1) for pid in children), reverse=True),
    }


def climb(rig: Rig, args) -> tuple[Step | None, list[Step]]:
    """Double the rate until a step fails, then bisect; the best passing step and every step."""
    steps: list[Step] = []
    best: Step | None = None
    low, high = 0, None
    rate = args.start
    while rate <= args.max_rate:
        for _attempt in range(args.attempts):
            step = rig.step(rate, args.seconds)
            steps.append(step)
            _log(step)  # the step waited SETTLE_SECONDS: the router took the last CDRs, failed calls ended
            if step.passed:
                break
        if step.passed:
            best, low = step, rate
            if high is None:
                rate *= 2
                continue
        else:
            high = rate
        if high is None or (high - low) <= max(10, low * args.precision):
            break
        rate = (low + high) // 2
    return best, steps


def _log(step: Step) -> None:
    print(
        f"# {step.rate:>5} calls/s: {step.answered}/{step.calls} answered, {step.failed_calls} failed, "
        f"{step.retransmissions} retransmissions, {step.elapsed:.1f} s {'pass' if step.passed else 'FAIL'}, "
        f"router {step.router_cpu_ms_per_call} ms CPU per call",
        file=sys.stderr,
        flush=True,
    )


def _summary(best: Step | None, steps: list[Step]) -> dict:
    """The figures of the best passing step."""
    if best is None:
        return {"calls_per_s": 0, "failed_calls": None, "steps": [s.as_json() for s in steps]}
    return {
        "calls_per_s": best.rate,
        "failed_calls": best.failed_calls,
        "calls": best.calls,
        "retransmissions": best.retransmissions,
        "cpu_percent": best.cpu_percent,
        "router_cpu_ms_per_call": best.router_cpu_ms_per_call,
        "steps": [s.as_json() for s in steps],
    }


def bench_panel(workdir: Path, database_url: str, args) -> dict:
    """The ladder through the panel; also counts the CDRs it stored."""
    from sqlalchemy import func, select

    from panel.extensions import db
    from panel.models import CallStat
    from tests.conftest import make_test_app

    app = make_test_app(database_url)
    vendor_ports = [switchlab.free_sip_port(ip) for ip in VENDOR_IPS]
    with app.app_context():
        db.create_all()
        carrier = switchlab.seed_carrier(CALLER_IP, list(zip(VENDOR_IPS, vendor_ports, strict=True)))
        db.engine.dispose()
    with switchlab.Lab(workdir / "panel") as lab:
        port = switchlab.free_port()
        panel = switchlab.start_panel(
            lab,
            database_url,
            port,
            workers=args.workers,
            threads=args.threads,
            PANEL_MANAGER_ENABLED=0,
            SECRET_KEY="bench-secret",
            ACCOUNT_PASSWORD_KEY="bench-account-key",
            options=("--worker-class", args.worker_class, *os.environ.get("BENCH_GUNICORN", "").split()),
        )
        switchlab.warm_up_panel(port, carrier.token, {"number": "441234567", "src_ip": CALLER_IP})
        # Vendor One (the first route) answers every call: no failover in the benchmark.
        rig = Rig(lab, panel, port, carrier.token, (VENDOR_IPS[0], vendor_ports[0]), args)
        best, steps = climb(rig, args)
        # Before Kamailio stops: wait until every answered call's CDR is stored (Kamailio posts CDRs once
        # 200 are queued or a second after its last post), or until they stop coming.
        answered = sum(s.answered for s in steps)
        # The CDRs of answered calls (one each; a call that failed over also has its failed attempts' CDRs).
        answered_cdrs = select(func.count()).select_from(CallStat).where(CallStat.answered.is_(True))
        with app.app_context():
            time.sleep(2)
            stored, deadline = -1, time.monotonic() + 15
            while time.monotonic() < deadline:
                time.sleep(1)
                now = db.session.scalar(answered_cdrs)
                db.session.rollback()
                if now >= answered or now == stored:
                    stored = now
                    break
                stored = now
            all_stored = db.session.scalar(select(func.count()).select_from(CallStat))
            db.engine.dispose()
    result = _summary(best, steps)
    # The panel's CPU (gunicorn master and workers, /proc/<pid>/stat utime + stime) per answered call of
    # the best step: one route query, two call events, one CDR.
    result["panel_cpu_ms_per_call"] = result.pop("router_cpu_ms_per_call", None)
    result["fastpath"] = os.environ.get("PANEL_API_FASTPATH", "1") != "0"
    result["cdrs_stored"] = stored  # of answered calls: equal to calls_answered when none was lost
    result["calls_answered"] = answered
    result["failed_attempt_cdrs_stored"] = all_stored - stored
    result["panel"] = {"worker_class": args.worker_class, "workers": args.workers, "threads": args.threads}
    return result


def bench_stub(workdir: Path, args) -> dict:
    """The same ladder with the standard-library stand-in router."""
    with switchlab.Lab(workdir / "stub") as lab:
        port = switchlab.free_port()
        vendor_port = switchlab.free_sip_port(VENDOR_IPS[0])
        routes = json.dumps([{"host": VENDOR_IPS[0], "port": vendor_port, "tech_prefix": "66#"}])
        argv = [sys.executable, "-m", "tests.e2e.stub_router", "--port", str(port), "--token", "stub-token"]
        stub = lab.start("stub-router", [*argv, "--routes", routes], cwd=ROOT)
        switchlab.wait_tcp(port, stub)
        rig = Rig(lab, stub, port, "stub-token", (VENDOR_IPS[0], vendor_port), args)
        best, steps = climb(rig, args)
    return _summary(best, steps)


def main() -> None:
    """Run the ladders and print the JSON line."""
    args = parse_args()
    missing = switchlab.tools_missing()
    if missing:
        print(json.dumps({"benchmark": "switch", "skipped": missing}))
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-switch-"))
    drop = None
    if args.postgres:
        from tests.conftest import _create_postgres_database

        database_url, drop = _create_postgres_database(args.postgres)
        database = "postgresql"
    else:
        database_url = f"sqlite:///{workdir / 'panel.sqlite3'}"
        database = "sqlite"
    load_before = os.getloadavg()[0]
    try:
        result = {"benchmark": "switch", "database": database, "cpus": os.cpu_count()}
        result["load_average_before"] = round(load_before, 2)
        result.update(bench_panel(workdir, database_url, args))
        if not args.skip_stub:
            result["stub"] = bench_stub(workdir, args)
        result["seconds_per_step"] = args.seconds
        result["kamailio_children"] = args.children
        result["load_average_after"] = round(os.getloadavg()[0], 2)
    finally:
        if drop is not None:
            drop()
        if args.keep:
            print(f"# logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
