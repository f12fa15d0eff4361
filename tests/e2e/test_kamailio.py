"""End to end: sipp calls through Kamailio (docs/kamailio/kamailio.cfg), which asks the panel for routes.

Vendor One answers 503, so every routed call must fail over to Vendor Two; each vendor records the number it
was sent (with its tech prefix). The switch then reports the calls, and the panel's Statistics list them
rated, with the customer's balance charged. The panel is stopped in the last test.
"""

import csv
import io
import socket
import time
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import CallStat, Client, LiveCall
from tests import factories
from tests.e2e.conftest import STRANGER_IP

pytestmark = pytest.mark.e2e

# Acme's tech prefix 55# is stripped by the panel; the vendors' own prefixes are put in front.
DIALLED = "55#441234567"
NUMBER = "441234567"


def _balance(switch) -> Decimal:
    db.session.rollback()  # a fresh read, not this session's snapshot
    return db.session.scalar(select(Client.balance).where(Client.id == switch.carrier.customer_client_id))


@pytest.fixture(scope="module")
def answered(switch):
    """Two calls from Acme, held one second each: (the caller's run, Acme's balance before them)."""
    before = _balance(switch)
    run = switch.call("acme", DIALLED, calls=2, rate=10, hold_ms=1000)
    return run, before


def test_a_known_caller_fails_over_to_the_second_vendor(switch, answered):
    run, _ = answered
    assert run.exit_code == 0, run.output[-3000:] + switch.logs()
    assert run.finals == Counter({"200": 2})
    assert switch.vendor_one.received() == ["66#" + NUMBER] * 2
    assert switch.vendor_two.received() == ["77#" + NUMBER] * 2


def test_the_calls_are_in_statistics_rated_and_charged(switch, answered):
    run, before = answered
    assert run.finals == Counter({"200": 2})
    rows = _wait_for_stats(switch, 4)
    answered_rows = [row for row in rows if row.answered]
    failed_rows = [row for row in rows if not row.answered]
    one, two = switch.carrier.vendor_account_ids
    assert [(r.term_account_id, r.sip_code, r.customer_charge) for r in failed_rows] == [(one, 503, 0)] * 2
    assert [(r.term_account_id, r.sip_code) for r in answered_rows] == [(two, 200)] * 2
    assert all(r.number == NUMBER and r.duration >= 1 and r.vendor_cost > 0 for r in answered_rows)
    # Per started minute: 0.10 for up to 60 s, plus the 0.02 setup fee.
    charge = Decimal("0.12")
    assert _balance(switch) == before - 2 * charge

    # What the operator sees: the Statistics export for Acme.
    admin = factories.user(db.session.get(Client, switch.carrier.customer_client_id).company, "admin", "noc")
    db.session.commit()
    browser = switch.app.test_client()
    with browser.session_transaction() as session:
        session["_user_id"] = admin.get_id()
        session["_fresh"] = True
    response = browser.get(f"/statistics/export?client_id={switch.carrier.customer_client_id}")
    assert response.status_code == 200
    exported = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    charges = sorted(Decimal(row["customer_charge"]) for row in exported)
    assert charges == [0, 0, charge, charge]
    assert {row["term_account"] for row in exported if row["answered"] == "1"} == {"vendor-two"}

    # Both calls ended, so nothing is left counting against capacity.
    db.session.rollback()
    assert db.session.scalar(select(db.func.count()).select_from(LiveCall)) == 0


def _wait_for_stats(switch, count: int, timeout: float = 10.0) -> list[CallStat]:
    """The call records of Acme once `count` have arrived (Kamailio posts them every 200 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        rows = db.session.scalars(
            select(CallStat)
            .where(CallStat.orig_account_id == switch.carrier.customer_account_id)
            .order_by(CallStat.id)
        ).all()
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) == count, switch.logs()
            return rows
        time.sleep(0.2)


def test_an_unknown_source_address_is_refused_with_403(switch):
    sent = (len(switch.vendor_one.received()), len(switch.vendor_two.received()))
    run = switch.call("stranger", DIALLED, src_ip=STRANGER_IP)
    assert run.exit_code == 0, run.output[-3000:] + switch.logs()
    assert run.finals == Counter({"403": 1})
    assert (len(switch.vendor_one.received()), len(switch.vendor_two.received())) == sent


@pytest.mark.parametrize("number", ["55#331234567", "55#44x1234"], ids=["no rule", "not digits"])
def test_a_number_without_a_rule_gets_404(switch, number):
    run = switch.call("unrouted", number)
    assert run.exit_code == 0, run.output[-3000:] + switch.logs()
    assert run.finals == Counter({"404": 1})


def test_a_hung_or_stopped_panel_gives_503_before_the_caller_gives_up(switch):
    switch.panel.stop()
    # A panel that accepts connections but never answers: Kamailio must give up after its timeout
    # (2 s here), well before the caller's 8 s.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hung:
        hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hung.bind(("127.0.0.1", switch.panel_port))
        hung.listen(64)
        run = switch.call("hung-panel", DIALLED, timeout=8)
    assert run.exit_code == 0, run.output[-3000:] + switch.logs()
    assert run.finals == Counter({"503": 1})
    # Nothing listening at all: refused at once.
    run = switch.call("no-panel", DIALLED, timeout=8)
    assert run.exit_code == 0, run.output[-3000:] + switch.logs()
    assert run.finals == Counter({"503": 1})
