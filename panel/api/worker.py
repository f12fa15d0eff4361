"""A gunicorn worker for the port the switches use: `--worker-class panel.api.worker.SwitchWorker`.

It is gunicorn's threaded worker (gthread) with a strict reader for the switch's plain requests. When a
kept-alive connection whose last request was one of the three switch requests (`POST /api/v1/route`,
`/calls`, `/cdrs`) has its next request waiting, the request is peeked at (MSG_PEEK, nothing consumed) and
answered here only when it is exactly `POST /api/v1/(route|calls|cdrs) HTTP/1.1`, its header block complete,
every header line a token name and visible ASCII value, exactly one `Content-Length` and no
`Transfer-Encoding`, `Expect`, `Upgrade`, forwarding or `Connection` other than keep-alive, and the whole body
already received. Anything else (the first request of a connection too) is left unread on the socket and goes
through gunicorn's own parser, as with gthread, so the two readers never see the same bytes differently: a
request either meets every rule above, which any HTTP/1.1 parser reads the same way, or is not read here at
all. gunicorn's reading and answering of a request cost more CPU than the route itself (0.22 against 0.10 ms
per request with this reader, README "A real switch").

A route request the strict reader takes is answered in the worker's main thread, where the poller said the
connection is readable, and the connection stays in the poller: gthread hands every request to a pool thread
and back (a future, two thread wake-ups, a pipe write and read, the connection taken out of the poller and put
back), which cost about as much CPU as the route itself. A route is answered from memory (the routing
snapshot, the remembered token, the live counts read at most twice a second), so it holds the main thread for
a fraction of a millisecond; the fast path skips the token's `last_used_at` write there (a pool thread writes
it, panel.api.fastpath). This starts once a route was answered 200 in a pool thread, so that building the
routing snapshot never holds up the main thread. Call events and CDRs (database writes) stay in the pool.

The request is then handed to the app (its WSGI entry with `panel.api.fastpath` in front) as gunicorn would,
and the answer written with gunicorn's own header lines (`Server`, `Date`, `Connection`) and the app's.
gunicorn's `pre_request`/`post_request` hooks do not run for these requests, and the worker reads nothing
itself when an access log is configured, with TLS or the proxy protocol, or below a SCRIPT_NAME (every request
then goes through gunicorn, as with gthread).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
import time
from email.utils import formatdate
from io import BytesIO

from gunicorn.workers.gthread import ThreadWorker

MAX_HEADER_BYTES = 8190
MAX_HEADERS = 100
PEEK_BYTES = 256 * 1024
REQUEST_LINE = re.compile(rb"POST (/api/v1/(?:route|calls|cdrs)) HTTP/1\.1")
ROUTE_PATH = "/api/v1/route"
SWITCH_PATHS = {ROUTE_PATH, "/api/v1/calls", "/api/v1/cdrs"}
# The environ key that marks a route request answered in the main thread (panel.api.fastpath reads it).
INLINE = "panel.inline"
# A send that the socket's buffer cannot take at once waits this long at most for the rest.
SEND_TIMEOUT = 5.0
# A header line: a token name (no underscore: gunicorn drops those) and a value of visible ASCII characters
# separated by single spaces or tabs, with optional whitespace around it.
HEADER_LINE = re.compile(
    rb"([!#$%&'*+\-.^`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)[ \t]*"
)
# Headers that change how the request is read or answered, or what gunicorn puts in the environ: gunicorn's.
REFUSED = {"TRANSFER_ENCODING", "EXPECT", "UPGRADE", "TE", "TRAILER", "FORWARDED", "PROXY"}


def parse(data: bytes) -> tuple[str, dict[str, str], int, int] | None:
    """(path, headers as WSGI `HTTP_*` keys, header block length, body length) of a request that meets the
    rules of the module doc and is wholly in `data`; None for anything else.

    A switch sends the same header block again and again, so what a block's reading found is remembered by
    a digest of the block: the header names and where their values are in it (no value is kept: the
    Authorization header carries the token), or that it is refused.
    """
    end = data.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
    if end < 0:
        return None
    head = data[:end]
    key = hashlib.blake2b(head, digest_size=16).digest()
    found = _HEADS.get(key, _UNSEEN)
    if found is _UNSEEN:
        found = _read_head(head)
        if len(_HEADS) >= 1000:
            _HEADS.clear()
        _HEADS[key] = found
    if found is None:
        return None
    path, places, size = found
    if len(data) < end + 4 + size:
        return None
    return path, {name: head[start:stop].decode() for name, start, stop in places}, end + 4, size


# What parse() found in each header block seen lately (by digest): None for a refused one.
_HEADS: dict[bytes, tuple[str, tuple[tuple[str, int, int], ...], int] | None] = {}
_UNSEEN = object()


def _read_head(head: bytes) -> tuple[str, tuple[tuple[str, int, int], ...], int] | None:
    """(path, (header key, value start, value end) in `head`, body length) of a header block that meets the
    rules of the module doc; None for anything else."""
    lines = head.split(b"\r\n")
    first = REQUEST_LINE.fullmatch(lines[0])
    if first is None or len(lines) > MAX_HEADERS + 1:
        return None
    headers: dict[str, str] = {}
    places: list[tuple[str, int, int]] = []
    at = len(lines[0]) + 2
    for line in lines[1:]:
        field = HEADER_LINE.fullmatch(line)
        if field is None:
            return None
        key = "HTTP_" + field[1].decode().upper().replace("-", "_")
        if key in headers:
            return None  # a header sent twice: a switch does not, gunicorn reads it
        headers[key] = field[2].decode()
        places.append((key, at + field.start(2), at + field.end(2)))
        at += len(line) + 2
    length = headers.get("HTTP_CONTENT_LENGTH", "")
    connection = headers.get("HTTP_CONNECTION", "keep-alive").lower()
    if not length.isdigit() or len(length) > 12 or connection != "keep-alive":
        return None
    if any(key[5:] in REFUSED or key.startswith("HTTP_X_FORWARDED") for key in headers):
        return None
    return first[1].decode(), tuple(places), int(length)


class SwitchWorker(ThreadWorker):
    """gthread, with the switch's kept-alive connections served as the module doc says."""

    def init_process(self) -> None:
        # gunicorn reads every request itself when it logs them, speaks TLS or the proxy protocol, or mounts
        # the app below a SCRIPT_NAME
        cfg = self.cfg
        self.reads_requests = not (
            cfg.accesslog
            or cfg.is_ssl
            or cfg.proxy_protocol not in (None, False, "off")
            or os.environ.get("SCRIPT_NAME")
        )
        self.date = (0, "")
        # Route requests are answered in the main thread once one was answered in a pool thread (the first
        # builds the routing snapshot, which must not hold up the main thread).
        self.routes_ready = False
        super().init_process()

    def handle(self, conn):
        if self.reads_requests and self._ours(conn):
            keep = self._serve(conn)
            if keep is not None:
                return keep
        return super().handle(conn)  # gunicorn reads the request (the first of a connection, any other)

    def _ours(self, conn) -> bool:
        """The connection's last request (gunicorn read it) was a switch request, and gunicorn holds no
        bytes of the next one."""
        return self._switch_request(conn) and not conn.parser.unreader.buf.getvalue()

    @staticmethod
    def _switch_request(conn) -> bool:
        """The connection's last request that gunicorn read was a switch request."""
        request = getattr(conn.parser, "mesg", None) if conn.initialized else None
        return request is not None and request.method == "POST" and request.path in SWITCH_PATHS

    def _serve(self, conn) -> bool | None:
        """Answer the request waiting on the connection if the strict reader takes it; whether to keep the
        connection; None (nothing read) when it does not take it."""
        try:
            conn.sock.setblocking(True)  # the poller hands connections over non-blocking
            data = conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        except OSError:
            return False
        if not data:
            return False
        found = parse(data)
        if found is None:
            return None
        answer = self._run(conn, *found)
        if answer is None:
            return False
        try:
            conn.sock.sendall(answer)
        except OSError:
            return False
        if found[0] == ROUTE_PATH and answer.startswith(b"HTTP/1.1 200 "):
            self.routes_ready = True
        return self.alive

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection is readable (main thread): a route request that the strict reader takes is
        answered here, the connection staying in the poller; anything else goes to a thread as in gthread."""
        if self.routes_ready and self.reads_requests and self._ours(conn):
            try:
                served = self._serve_inline(conn)
            except OSError:  # the switch went away mid-request
                served = False
            except Exception:  # noqa: BLE001 - the connection is dropped, the worker goes on
                self.log.exception("Error answering a route request")
                served = False
            if served is not None:
                if not served:
                    self._drop(conn, client)
                return
        super().on_client_socket_readable(conn, client)

    def _serve_inline(self, conn) -> bool | None:
        """Answer a route request waiting on the (non-blocking) connection in this thread: whether to keep
        the connection; None (nothing read) when it is not a route request the strict reader takes."""
        try:
            data = conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        except BlockingIOError:
            return True  # nothing to read after all: the poller tells us again
        except OSError:
            return False
        found = parse(data) if data else None
        if found is None or found[0] != ROUTE_PATH:
            return None
        answer = self._run(conn, *found, inline=True)
        if answer is None or not _send(conn.sock, answer):
            return False
        if not self.alive:
            return False
        conn.set_timeout()  # kept alive from now: to the end of the queue sorted by timeout
        self.keepalived_conns.remove(conn)
        self.keepalived_conns.append(conn)
        return True

    def _drop(self, conn, client) -> None:
        """Close a kept-alive connection that the poller watches (as gthread closes one)."""
        try:
            self.poller.unregister(client)
        except (OSError, KeyError, ValueError):
            pass
        try:
            self.keepalived_conns.remove(conn)
        except ValueError:
            pass
        self.nr_conns -= 1
        conn.close()

    def _run(self, conn, path, headers, head, size, inline=False) -> bytes | None:
        """Read the request the strict reader parsed, run the app on it (in the main thread with `inline`:
        the environ says so in `panel.inline`); the answer's bytes (None when the connection closed)."""
        self.log.debug("%s read by the switch worker%s", path, " (main thread)" if inline else "")
        raw = _receive(conn.sock, head + size)
        if raw is None:
            return None
        environ = self._environ(conn, path, headers, raw[head:])
        if inline:
            environ[INLINE] = True
        self.nr += 1
        if self.nr >= self.max_requests:
            self.alive = False
        answer: list = []

        def start_response(status, response_headers, exc_info=None):
            answer[:] = [status, response_headers]

        chunks = self.wsgi(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        status, response_headers = answer
        # gunicorn's own header lines, then the app's in its order, with the body's length
        connection = "keep-alive" if self.alive else "close"
        lines = [
            f"HTTP/1.1 {status}",
            "Server: gunicorn",
            f"Date: {self._date()}",
            f"Connection: {connection}",
        ]
        length = f"Content-Length: {len(body)}"
        lines += [length if n.lower() == "content-length" else f"{n}: {v}" for n, v in response_headers]
        if length not in lines:
            lines.append(length)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _environ(self, conn, path: str, headers: dict[str, str], body: bytes) -> dict:
        """The WSGI environ gunicorn would make for the request."""
        server = conn.server if isinstance(conn.server, tuple) else (str(conn.server), "")
        client = conn.client if isinstance(conn.client, tuple) else (str(conn.client), "")
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "RAW_URI": path,
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]),
            "REMOTE_ADDR": str(client[0]),
            "REMOTE_PORT": str(client[1]),
            "CONTENT_LENGTH": headers.pop("HTTP_CONTENT_LENGTH"),
            "wsgi.input": BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.cfg.workers > 1,
            "wsgi.run_once": False,
            "SERVER_SOFTWARE": "gunicorn",
        }
        content_type = headers.pop("HTTP_CONTENT_TYPE", None)
        if content_type is not None:
            environ["CONTENT_TYPE"] = content_type
        environ.update(headers)
        return environ

    def _date(self) -> str:
        """The Date header, formatted once a second."""
        now = int(time.time())
        if self.date[0] != now:
            self.date = (now, formatdate(now, usegmt=True))
        return self.date[1]


def _receive(sock, size: int) -> bytes | None:
    """Exactly `size` bytes from the socket (already received, so this does not wait); None if it closed."""
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(sock, data: bytes) -> bool:
    """Send all of `data` on a non-blocking socket (waiting at most SEND_TIMEOUT for what its buffer cannot
    take at once); False when the connection failed."""
    try:
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            sock.settimeout(SEND_TIMEOUT)
            try:
                sock.sendall(data[sent:])
            finally:
                sock.setblocking(False)
    except OSError:
        return False
    return True
