"""End to end: two panel hosts on one PostgreSQL database, one of them killed in the middle of a sipp run.

Kamailio (docs/kamailio/kamailio.cfg with PANEL_COUNT=2) asks the first panel; when it is killed (SIGKILL of
its whole process group: a host that dies, with requests in flight) every Kamailio process moves to the
second panel on the refused or broken connection, for the route queries and for the queued call events and
CDRs. Both panels run the Traffic Rules manager (period 1 s), which must keep exactly one writer.
A second test puts a relay in front of the first host that drops the answer to a CDR batch the host
committed: the batch goes again to the second host, and nothing is stored or charged twice.
"""

import contextlib
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from panel.extensions import db
from panel.models import CallStat, Client, LiveCall
from panel.models.system import ManagerRun
from tests.e2e import switchlab
from tests.e2e.conftest import CALLER_IP, VENDOR_IPS, lab_and_app, start_panel

pytestmark = pytest.mark.e2e

DIALLED = "55#441234567"
CALLS = 60
RATE = 15
# Per started minute: 0.10 for up to 60 s, plus the 0.02 setup fee.
CHARGE = Decimal("0.12")


def _panel(lab, database_url: str, port: int) -> switchlab.Proc:
    """One panel host: gunicorn with 2 workers, the manager every second."""
    return start_panel(lab, database_url, port, PANEL_MANAGER_ENABLED=1, PANEL_MANAGER_PERIOD_SECONDS=1)


def _skip_unless_shared_postgresql(schema: str) -> None:
    """Several panel hosts need one PostgreSQL database, and the switch needs its tools."""
    if not schema.startswith("postgresql"):
        pytest.skip("several panel hosts share one PostgreSQL database (PANEL_TEST_DB=postgresql://...)")
    missing = switchlab.tools_missing()
    if missing:
        pytest.skip(missing)


def _place_calls(lab, proxy, calls: int, rate: int, timeout: float) -> switchlab.CallerRun:
    """`calls` calls of 300 ms from the carrier's caller to DIALLED, `rate` a second."""
    options = {"calls": calls, "rate": rate, "hold_ms": 300, "timeout": timeout}
    return switchlab.run_caller(lab, "caller", proxy, DIALLED, "3312345678", CALLER_IP, **options)


def _pids(proc: switchlab.Proc) -> set[str]:
    """The process ids of a gunicorn master and its workers, as they appear in a manager run's host."""
    return {str(pid) for pid in switchlab.process_tree(proc.pid)}


def _wait(predicate, timeout: float, message):
    """Poll `predicate` (a fresh database read each time) until it is truthy; fail with `message()`."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        value = predicate()
        if value or time.monotonic() > deadline:
            assert value, message()
            return value
        time.sleep(0.2)


def test_calls_cdrs_and_the_manager_survive_a_panel_host_killed_mid_run(_schema, tmp_path):
    _skip_unless_shared_postgresql(_schema)
    with lab_and_app(_schema, tmp_path / "lab") as (lab, _app):
        _run(lab, _schema)


def _run(lab: switchlab.Lab, database_url: str) -> None:
    vendor_port = switchlab.free_sip_port(VENDOR_IPS[0])
    other_port = switchlab.free_sip_port(VENDOR_IPS[1])
    carrier = switchlab.seed_carrier(CALLER_IP, [(VENDOR_IPS[0], vendor_port), (VENDOR_IPS[1], other_port)])
    before = db.session.scalar(select(Client.balance).where(Client.id == carrier.customer_client_id))
    db.session.rollback()  # no transaction of this test open while the panels' managers write
    ports = (switchlab.free_port(), switchlab.free_port())
    first = _panel(lab, database_url, ports[0])
    second = _panel(lab, database_url, ports[1])
    query = {"number": "441234567", "src_ip": CALLER_IP}
    for port in ports:
        switchlab.warm_up_panel(port, carrier.token, query, requests=8)
    first_pids, second_pids = _pids(first), _pids(second)

    kamailio, proxy = switchlab.start_switch(lab, ports, carrier.token, PANEL_TIMEOUT=2, NO_ANSWER_MS=2000)
    # Vendor One answers every call: one CDR per call, under the SIP Call-ID.
    vendor = switchlab.start_vendor(lab, "vendor-one", "vendor_answers", VENDOR_IPS[0], vendor_port)

    def logs() -> str:
        return f"--- kamailio\n{kamailio.output()[-4000:]}\n--- panels\n{first.output()[-3000:]}"

    result = {}
    caller = threading.Thread(
        target=lambda: result.setdefault("run", _place_calls(lab, proxy, CALLS, RATE, timeout=25))
    )
    caller.start()
    # A third of the calls in, the first host dies: no graceful shutdown, requests in flight are lost.
    time.sleep(CALLS / RATE / 3)
    killed_at = datetime.now(UTC)
    os.killpg(first.pid, signal.SIGKILL)
    first.stop()
    caller.join(40)
    run = result["run"]

    # Every call was routed and answered, also those whose route query or reports were in flight at the kill
    # (Kamailio retries them on the second host): no failed call at all.
    assert run.exit_code == 0, run.output[-3000:] + logs()
    assert run.finals == Counter({"200": CALLS}), logs()
    assert len(vendor.received()) == CALLS
    assert "trying the next" in kamailio.output(), "the first host was never left: " + logs()

    # Every CDR stored exactly once, and charged once: a batch the dead host committed without answering
    # was posted again to the second host, which stores (and charges) a call id only once.
    def stored():
        return db.session.scalar(
            select(func.count()).select_from(CallStat).where(CallStat.company_id == carrier.company_id)
        )

    _wait(lambda: stored() >= CALLS, 15, lambda: f"{stored()} CDRs of {CALLS}\n" + logs())
    time.sleep(0.5)  # a late duplicate would show now
    rows = db.session.scalars(select(CallStat).where(CallStat.company_id == carrier.company_id)).all()
    assert len(rows) == CALLS
    assert len({row.call_id for row in rows}) == CALLS
    assert all(row.answered and row.sip_code == 200 for row in rows)
    balance = db.session.scalar(select(Client.balance).where(Client.id == carrier.customer_client_id))
    assert balance == before - CALLS * CHARGE
    # Every call's start and end arrived: nothing is left counting against capacity.
    _wait(
        lambda: db.session.scalar(select(func.count()).select_from(LiveCall)) == 0,
        10,
        lambda: "live calls left\n" + logs(),
    )

    # The manager: exactly one writer at a time, and the second host carries on after the kill.
    _wait(
        lambda: (
            db.session.scalar(
                select(func.count())
                .select_from(ManagerRun)
                .where(ManagerRun.outcome == "ok", ManagerRun.started_at > killed_at)
            )
            >= 2
        ),
        10,
        lambda: "no manager run after the kill\n" + logs(),
    )
    db.session.rollback()
    runs = db.session.scalars(
        select(ManagerRun).where(ManagerRun.outcome.in_(("ok", "error"))).order_by(ManagerRun.started_at)
    ).all()
    # A run the kill interrupted is closed by the next writer (its end is then that writer's start): it must
    # have been the dead host's, and is left out of the overlap check.
    interrupted = [run for run in runs if run.error.startswith("interrupted")]
    assert all(run.host.rsplit(":", 1)[1] in first_pids for run in interrupted)
    finished = [run for run in runs if run not in interrupted]
    assert all(run.outcome == "ok" for run in finished), [run.error for run in finished]
    assert all(run.host.rsplit(":", 1)[1] in first_pids | second_pids for run in finished)
    for earlier, later in zip(finished, finished[1:], strict=False):
        assert earlier.finished_at <= later.started_at, (earlier.host, later.host)
    after = [run for run in finished if run.started_at > killed_at]
    assert after and all(run.host.rsplit(":", 1)[1] in second_pids for run in after)


class _DropCdrAnswers:
    """A TCP relay to a panel that closes the connection instead of relaying the answer to a POST of CDRs:
    the panel committed the batch, and Kamailio sees a broken connection (a host dying at the worst time)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.dropped = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop accepting."""
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        cdrs_sent = threading.Event()

        def answers() -> None:
            while data := upstream.recv(65536):
                if cdrs_sent.is_set():
                    self.dropped += 1
                    break
                client.sendall(data)
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=answers, daemon=True).start()
        try:
            while data := client.recv(65536):
                if b"POST /api/v1/cdrs" in data:
                    cdrs_sent.set()
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            client.close()


def test_a_cdr_batch_committed_by_a_host_that_never_answered_is_not_stored_or_charged_twice(
    _schema, tmp_path
):
    _skip_unless_shared_postgresql(_schema)
    with lab_and_app(_schema, tmp_path / "lab") as (lab, _app), contextlib.ExitStack() as stack:
        vendor_port = switchlab.free_sip_port(VENDOR_IPS[0])
        other_port = switchlab.free_sip_port(VENDOR_IPS[1])
        carrier = switchlab.seed_carrier(
            CALLER_IP, [(VENDOR_IPS[0], vendor_port), (VENDOR_IPS[1], other_port)]
        )
        before = db.session.scalar(select(Client.balance).where(Client.id == carrier.customer_client_id))
        db.session.rollback()
        ports = (switchlab.free_port(), switchlab.free_port())
        for port in ports:
            start_panel(lab, _schema, port, workers=1)
            switchlab.warm_up_panel(port, carrier.token, {"number": "441234567", "src_ip": CALLER_IP}, 4)
        relay = _DropCdrAnswers(ports[0])
        stack.callback(relay.close)
        kamailio, proxy = switchlab.start_switch(
            lab, (relay.port, ports[1]), carrier.token, children=2, PANEL_TIMEOUT=2
        )
        switchlab.start_vendor(lab, "vendor-one", "vendor_answers", VENDOR_IPS[0], vendor_port)
        calls = 6
        run = _place_calls(lab, proxy, calls, rate=10, timeout=15)
        assert run.finals == Counter({"200": calls}), run.output[-3000:] + kamailio.output()[-3000:]

        def stored():
            return db.session.scalar(select(func.count()).select_from(CallStat))

        _wait(lambda: stored() >= calls, 15, lambda: f"{stored()} CDRs\n" + kamailio.output()[-4000:])
        time.sleep(0.5)
        db.session.rollback()
        # The first host stored a batch and its answer was lost; the second host got the same batch again.
        assert relay.dropped >= 1
        assert re.search(r"answered \d+ to /cdrs, trying the next", kamailio.output())
        assert stored() == calls
        balance = db.session.scalar(select(Client.balance).where(Client.id == carrier.customer_client_id))
        assert balance == before - calls * CHARGE
