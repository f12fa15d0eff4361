"""A stand-in for the panel's switch API, built from the standard library only.

It answers `POST /api/v1/route` with fixed routes and accepts `POST /api/v1/calls` and `POST /api/v1/cdrs`,
so the Kamailio configuration can be exercised without the panel, and so the benchmark can show how many
calls per second Kamailio itself sustains (the panel's share of the cost is the difference).

    python -m tests.e2e.stub_router --port 8081 --token t --routes '[{"host": "127.0.0.12", "port": 5090}]'

Numbers starting with `404` get `no_matching_rule`; every other number gets the routes. Route queries, call
events and CDRs are counted, and appended as JSON lines to `--record FILE` when given; like the panel, a
request holding a CDR it refuses (here: a number starting with `400`) is refused whole with 400 and nothing
of it is kept.
"""

import argparse
import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    """One keep-alive HTTP/1.1 connection from a Kamailio worker."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: "StubRouter"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        """Stay quiet: a benchmark sends thousands of requests."""

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() == self.server.token
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except ValueError:
                return False
            return self.server.token in (user, password)
        return False

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        """Route, call events and CDRs."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._authorised():
            self._answer(401, {"error": "invalid or revoked token", "field": "Authorization"})
            return
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            self._answer(400, {"error": "body is not JSON", "field": None})
            return
        if self.path == "/api/v1/route":
            self.server.record("route", [payload])
            self._answer(200, self.server.route(payload))
        elif self.path in ("/api/v1/calls", "/api/v1/cdrs"):
            items = payload if isinstance(payload, list) else [payload]
            refused = [i for i, item in enumerate(items) if str(item.get("number", "")).startswith("400")]
            if refused:
                self._answer(400, {"error": "refused", "field": "number", "index": refused[0]})
                return
            self.server.record(self.path.rsplit("/", 1)[1], items)
            self._answer(200, {"accepted": len(items), "duplicates": 0})
        else:
            self._answer(404, {"error": "not found", "field": None})


class StubRouter(ThreadingHTTPServer):
    """The stand-in server: fixed routes for every known number."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], token: str, routes: list[dict], record_path: str | None):
        super().__init__(address, _Handler)
        self.token = token
        self.routes = [
            {"protocol": "sip", "proxy": "", "tech_prefix": "", "port": 5060, "account_id": 0, **route}
            for route in routes
        ]
        self.record_path = record_path
        self.counts = {"route": 0, "calls": 0, "cdrs": 0}
        self._lock = threading.Lock()

    def route(self, query: dict) -> dict:
        """The panel's answer shape, with the fixed routes."""
        number = str(query.get("number") or "")
        if number.startswith("404"):
            return {"status": "rejected", "reason": "no_matching_rule", "routes": []}
        return {
            "status": "ok",
            "reason": None,
            "number": number,
            "originator": {"account_id": 1, "client_id": 1},
            "routes": self.routes,
        }

    def record(self, kind: str, items: list) -> None:
        """Count route queries, call events and CDRs, and keep them when a record file was given."""
        with self._lock:
            self.counts[kind] += len(items)
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as out:
                    for item in items:
                        out.write(json.dumps({"kind": kind, **item}) + "\n")


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--routes", default="[]", help="JSON list of routes (host, port, tech_prefix, ...)")
    parser.add_argument(
        "--record", default=None, help="append route queries, call events and CDRs to this file"
    )
    args = parser.parse_args()
    server = StubRouter((args.host, args.port), args.token, json.loads(args.routes), args.record)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
