"""How Kamailio reports calls (docs/kamailio/kamailio.cfg), checked against the stand-in router.

The stand-in (tests/e2e/stub_router.py) records every call event and CDR it is sent, and refuses, as the
panel would, a whole batch holding a CDR it does not accept (numbers starting with 400 here).
"""

import json
import sys
import threading
import time

import pytest

from tests.e2e import switchlab

pytestmark = pytest.mark.e2e

TOKEN = "stub-token"
VENDOR_IP = "127.0.0.12"


@pytest.fixture(scope="module")
def stub_switch(tmp_path_factory):
    """The stand-in router, Kamailio and one answering vendor; yields (lab, proxy address, record file)."""
    missing = switchlab.tools_missing()
    if missing:
        pytest.skip(missing)
    lab = switchlab.Lab(tmp_path_factory.mktemp("stub-switch"))
    try:
        record = lab.workdir / "reported.jsonl"
        port = switchlab.free_port()
        vendor_port = switchlab.free_sip_port(VENDOR_IP)
        routes = [{"host": VENDOR_IP, "port": vendor_port, "account_id": 7, "rule_id": 3}]
        argv = [sys.executable, "-m", "tests.e2e.stub_router", "--port", str(port), "--token", TOKEN]
        argv += ["--routes", json.dumps(routes), "--record", str(record)]
        stub = lab.start("stub-router", argv, cwd=switchlab.ROOT)
        switchlab.wait_tcp(port, stub)
        _kamailio, proxy = switchlab.start_switch(lab, (port,), TOKEN)
        switchlab.start_vendor(lab, "vendor", "vendor_answers", VENDOR_IP, vendor_port)
        yield lab, proxy, record
    finally:
        lab.stop_all()


def _reported(record, kind: str, count: int, timeout: float = 5.0) -> list[dict]:
    """The reports of one kind once `count` have arrived (they are posted every 200 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = record.read_text().splitlines() if record.exists() else []
        found = [item for item in map(json.loads, lines) if item.pop("kind") == kind]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_answered_calls_are_reported_with_their_cdr_and_a_refused_record_holds_back_no_other(stub_switch):
    lab, proxy, record = stub_switch
    refused = threading.Thread(
        target=switchlab.run_caller,
        args=(lab, "refused", proxy, "4001", "331", "127.0.0.2"),
        kwargs={"calls": 2, "rate": 20, "hold_ms": 300},
    )
    refused.start()
    run = switchlab.run_caller(lab, "kept", proxy, "4420", "331", "127.0.0.2", calls=3, rate=20, hold_ms=300)
    refused.join()
    assert run.exit_code == 0, run.output[-3000:]

    cdrs = _reported(record, "cdrs", 3)
    assert sorted(c["number"] for c in cdrs) == ["4420"] * 3
    for cdr in cdrs:
        assert cdr["answered"] is True and cdr["sip_code"] == 200
        assert (cdr["orig_account_id"], cdr["term_account_id"], cdr["rule_id"]) == (1, 7, 3)
        assert cdr["duration"] >= 1 and cdr["pdd"] >= 0 and cdr["start"].endswith("Z")

    # Every call, the refused ones too, started and ended (capacity counts stay right).
    events = _reported(record, "calls", 10)
    starts = sorted(e["call_id"] for e in events if e["event"] == "start")
    ends = sorted(e["call_id"] for e in events if e["event"] == "end")
    assert len(starts) == 5 and starts == ends
    assert all(e["term_account_id"] == 7 for e in events if e["event"] == "start")


def test_route_queries_ask_for_the_brief_answer(stub_switch):
    """Kamailio's route query carries what the panel routes by and asks for the brief answer (the fields its
    script reads: docs/api.md)."""
    lab, proxy, record = stub_switch
    switchlab.run_caller(lab, "brief", proxy, "4412", "331", "127.0.0.2", calls=1)
    queries = _reported(record, "route", 1)
    assert queries and all(query["brief"] is True for query in queries)
    assert (
        {"number", "src_ip", "gateway", "brief"}
        <= set(queries[-1])
        <= {"number", "src_ip", "ani", "gateway", "brief"}
    )
