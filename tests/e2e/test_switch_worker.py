"""The switch worker (panel.api.worker.SwitchWorker) under gunicorn: the switch's kept-alive requests.

On one connection the first request is read by gunicorn and the next ones by the worker's strict reader (its
debug log says which): their answers are gunicorn's, byte for byte but the Date; pipelined requests, a body
arriving late, and requests the strict reader refuses (smuggling attempts among them) are answered as
gunicorn answers them. Needs gunicorn only (no Kamailio or sipp).
"""

import base64
import json
import re
import socket
import time

import pytest

from tests.e2e import switchlab
from tests.e2e.conftest import CALLER_IP, VENDOR_IPS, lab_and_app, start_panel

pytestmark = pytest.mark.e2e
READ_HERE = "/api/v1/route read by the switch worker"


@pytest.fixture(scope="module")
def served(_schema, tmp_path_factory):
    """The panel under gunicorn with the switch worker, debug logging on: (port, token, process)."""
    with lab_and_app(_schema, tmp_path_factory.mktemp("worker")) as (lab, _app):
        carrier = switchlab.seed_carrier(CALLER_IP, [(VENDOR_IPS[0], 5070), (VENDOR_IPS[1], 5071)])
        port = switchlab.free_port()
        options = ("--worker-class", "panel.api.worker.SwitchWorker", "--log-level", "debug")
        panel = start_panel(lab, _schema, port, workers=1, options=options)
        yield port, carrier.token, panel


def _request(token: str, body: bytes, extra: bytes = b"", path: bytes = b"/api/v1/route") -> bytes:
    """The request as Kamailio's http_client sends it (Basic credentials carrying the token)."""
    credentials = base64.b64encode(f"switch:{token}".encode())
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic " + credentials + b"\r\n"
        b"Accept: */*\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def _answers(sock: socket.socket, count: int, timeout: float = 10.0) -> list[bytes]:
    """Read `count` answers (each with a Content-Length) from the connection."""
    sock.settimeout(timeout)
    data, answers = b"", []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            length = int(re.search(rb"\r\nContent-Length: (\d+)", data[:head_end], re.I)[1])
            if len(data) >= head_end + 4 + length:
                answers.append(data[: head_end + 4 + length])
                data = data[head_end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return answers


def _comparable(answer: bytes) -> bytes:
    """An answer without what differs from one moment to the next (the Date header, the route's `at`)."""
    answer = re.sub(rb"\r\nDate: [^\r]*", b"", answer)
    return re.sub(rb'"at":"[^"]*"', b"", answer)


def _reads_here(panel) -> int:
    return panel.output().count(READ_HERE)


def test_kept_alive_requests_get_gunicorns_answers(served):
    port, token, panel = served
    route = _request(token, json.dumps({"number": "55#441234567", "src_ip": CALLER_IP}).encode())
    refused = _request(token, b'{"number": "44-77"}')
    before = _reads_here(panel)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        answers = []
        for request in (route, route, refused, route):
            sock.sendall(request)
            answers += _answers(sock, 1)
        sock.sendall(route + route)  # pipelined
        answers += _answers(sock, 2)
        sock.sendall(route[:-5])  # a body that arrives late
        time.sleep(0.3)
        sock.sendall(route[-5:])
        answers += _answers(sock, 1)
    first = _comparable(answers[0])
    assert first.startswith(b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nConnection: keep-alive\r\n")
    assert b'"status":"ok"' in first
    assert [_comparable(a) for a in answers[1:2] + answers[3:]] == [first] * 5
    assert answers[2].startswith(b"HTTP/1.1 400 ")
    assert b'"field":"number"' in answers[2]
    # The first request of the connection was gunicorn's to read; the strict reader took the others.
    assert _reads_here(panel) - before >= 4


@pytest.mark.parametrize(
    "extra",
    [
        b"Transfer-Encoding: chunked\r\n",  # with a Content-Length too: a smuggling attempt
        b"Content-Length: 0\r\n",  # two lengths
        b"Content_Length: 0\r\n",  # gunicorn drops a header with an underscore
    ],
)
def test_requests_the_strict_reader_refuses_are_gunicorns(served, extra):
    """The strict reader leaves such a request unread and gunicorn answers it: 400, and the request hidden
    in its body is never answered as a request of its own."""
    port, token, panel = served
    route = _request(token, json.dumps({"number": "441234567", "src_ip": CALLER_IP}).encode())
    hidden = _request(token, b'{"number": "441234567"}')
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(route)
        assert _answers(sock, 1)[0].startswith(b"HTTP/1.1 200 ")
        before = _reads_here(panel)
        sock.sendall(_request(token, hidden, extra))
        (answer,) = _answers(sock, 1)
        try:
            more = _answers(sock, 1, timeout=1)
        except TimeoutError:
            more = []
    assert _reads_here(panel) == before
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 400 BAD REQUEST")
    assert more == []


def test_route_requests_are_answered_in_the_main_thread(served):
    """Once a route was answered, the kept-alive connections' route requests are answered in the worker's
    main thread: gunicorn's answers still, on several connections in turn, a call events request between
    them going to a pool thread, a connection the switch closes dropped, the worker answering on."""
    port, token, panel = served
    route = _request(token, json.dumps({"number": "55#441234567", "src_ip": CALLER_IP}).encode())
    events = _request(token, b'[{"event": "end", "call_id": "worker-test"}]', path=b"/api/v1/calls")
    before = panel.output().count("read by the switch worker (main thread)")
    address = ("127.0.0.1", port)
    with socket.create_connection(address) as one, socket.create_connection(address) as two:
        answers = []
        for sock in (one, two, one, two, one, two):
            sock.sendall(route)
            answers += _answers(sock, 1)
        two.sendall(events)
        (posted,) = _answers(two, 1)
        for sock in (one, two):
            sock.sendall(route)
            answers += _answers(sock, 1)
        first = _comparable(answers[0])
        assert [_comparable(a) for a in answers] == [first] * len(answers)
        assert posted.startswith(b"HTTP/1.1 200 ") and b'"not_live":["worker-test"]' in posted
        one.sendall(route)
        _answers(one, 1)
    with socket.create_connection(address) as three:
        for _ in range(3):
            three.sendall(route)
            second = _answers(three, 1)[0]
    assert _comparable(second) == first and b'"status":"ok"' in first
    assert panel.output().count("read by the switch worker (main thread)") - before >= 6
    assert "Error answering a route request" not in panel.output()
