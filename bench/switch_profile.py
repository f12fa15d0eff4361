"""The panel's CPU per switch call, in-process: what `bench/switch.py` measures, without Kamailio and sipp.

A switch call costs the panel one `POST /api/v1/route`, two call events (start, end) and one CDR; Kamailio
posts the events and CDRs in batches (docs/kamailio/kamailio.cfg: up to 200 a request), so the events and
CDRs of `--batch` calls are posted together, 200 a request, the events in the order Kamailio
queues them (each call's start, then its end: the calls of bench/switch.py last no time). Each request is one
WSGI call into the app (the same object gunicorn serves), with a real API token, on a private temporary
database (SQLite, or with `--postgres URL` a private database next to that server, dropped at the end). The
CPU time of this process (`time.process_time`) around the WSGI calls only is reported per route, per event
batch and per CDR batch, and per call (`cpu_ms_per_call`). `--profile N` prints the N most expensive
functions (cProfile, cumulative) to stderr; `--no-fastpath` measures the Flask views alone
(PANEL_API_FASTPATH=0).

Prints one JSON line. Example: `.venv/bin/python bench/switch_profile.py --calls 4000 --profile 40`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from base64 import b64encode
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import switchlab  # noqa: E402

CALLER_IP = "127.0.0.2"
# The route query as docs/kamailio/kamailio.cfg sends it (for the brief answer).
ROUTE_QUERY = {"number": "55#441234567", "src_ip": CALLER_IP, "ani": "3312345678", "gateway": "kamailio1"}
ROUTE_QUERY["brief"] = True
# Events or CDRs a request, as Kamailio posts them.
PER_REQUEST = 200


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="switch calls to make")
    parser.add_argument("--batch", type=int, default=200, help="calls reported together (one Kamailio tick)")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--no-fastpath", action="store_true", help="the Flask views only")
    return parser.parse_args()


def _environ(path: str, body: bytes, auth: str) -> dict:
    """A WSGI environ of `POST path` as Kamailio's http_client sends it (HTTP Basic with the token)."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": auth,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def _call(app, path: str, payload, auth: str) -> tuple[str, bytes]:
    """One request through the app's WSGI entry; its status and body."""
    status: list[str] = []
    body = json.dumps(payload, separators=(",", ":")).encode()
    chunks = app(_environ(path, body, auth), lambda s, _h, _e=None: status.append(s))
    try:
        data = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return status[0], data


def _chunks(items: list, size: int) -> list[list]:
    """`items` in lists of at most `size`, in order (Kamailio posts at most 200 items a request)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def run(app, carrier, args) -> dict:
    """Make the calls; the CPU seconds of each kind of request."""
    auth = "Basic " + b64encode(f"switch:{carrier.token}".encode()).decode()
    orig, term = carrier.customer_account_id, carrier.vendor_account_ids[0]
    cpu = {"route": 0.0, "calls": 0.0, "cdrs": 0.0}
    requests = {"route": 0, "calls": 0, "cdrs": 0}
    at = "2026-01-01T12:00:00Z"

    def timed(kind: str, path: str, payload) -> bytes:
        started = time.process_time()
        status, data = _call(app, path, payload, auth)
        cpu[kind] += time.process_time() - started
        requests[kind] += 1
        if not status.startswith("200"):
            raise SystemExit(f"{path} answered {status}: {data[:300]!r}")
        return data

    made = 0
    while made < args.calls:
        ids = [f"bench-{made + i}@switch" for i in range(min(args.batch, args.calls - made))]
        for _ in ids:
            timed("route", "/api/v1/route", ROUTE_QUERY)
        # As Kamailio queues them: each call's start, then (its calls hold 0 s in bench/switch.py) its end.
        start = {"event": "start", "orig_account_id": orig, "term_account_id": term, "at": at}
        events = [e for c in ids for e in ({**start, "call_id": c}, {"event": "end", "call_id": c})]
        for chunk in _chunks(events, PER_REQUEST):
            timed("calls", "/api/v1/calls", chunk)
        cdr = {"orig_account_id": orig, "term_account_id": term, "number": "441234567", "start": at}
        cdr.update(duration=30, answered=True, sip_code=200, pdd=120)
        for chunk in _chunks([{**cdr, "call_id": c} for c in ids], PER_REQUEST):
            timed("cdrs", "/api/v1/cdrs", chunk)
        made += len(ids)
    total = sum(cpu.values())
    return {
        "calls": made,
        "batch": args.batch,
        "cpu_ms_per_call": round(total / made * 1000, 4),
        "cpu_ms_per_route": round(cpu["route"] / requests["route"] * 1000, 4),
        "cpu_ms_per_event_batch": round(cpu["calls"] / requests["calls"] * 1000, 3),
        "cpu_ms_per_cdr_batch": round(cpu["cdrs"] / requests["cdrs"] * 1000, 3),
        "share": {kind: round(value / total, 3) for kind, value in cpu.items()},
    }


def main() -> None:
    """Seed, warm up, measure (and profile); print the JSON line."""
    args = parse_args()
    if args.no_fastpath:
        os.environ["PANEL_API_FASTPATH"] = "0"
    from panel.extensions import db
    from tests.conftest import _create_postgres_database, make_test_app

    workdir = Path(tempfile.mkdtemp(prefix="bench-switch-profile-"))
    drop = None
    if args.postgres:
        database_url, drop = _create_postgres_database(args.postgres)
    else:
        database_url = f"sqlite:///{workdir / 'panel.sqlite3'}"
    try:
        app = make_test_app(database_url, TESTING=False)
        with app.app_context():
            db.create_all()
            carrier = switchlab.seed_carrier(CALLER_IP, [("127.0.0.11", 5070), ("127.0.0.12", 5071)])
        warm = argparse.Namespace(**{**vars(args), "calls": min(args.batch, 200)})
        run(app, carrier, warm)  # the snapshot, the token cache, prepared statements
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        result = run(app, carrier, args)
        if profiler:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
            print(out.getvalue(), file=sys.stderr)
        with app.app_context():
            db.engine.dispose()
    finally:
        if drop is not None:
            drop()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "switch_profile",
        "database": "postgresql" if args.postgres else "sqlite",
        "fastpath": not args.no_fastpath,
        "profiled": bool(args.profile),
        **result,
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
