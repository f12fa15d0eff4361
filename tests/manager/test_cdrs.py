"""POST /api/v1/cdrs: validation, rating against hand-computed charges, balances, duplicates (also racing)."""

import threading
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from panel import audit, cdrs, manager
from panel.extensions import db
from panel.models import CallStat, Client, Rate
from tests import factories
from tests.factories import EPOCH
from tests.manager.conftest import bearer, make_token


def _record(carrier, call_id, number, duration, *, term=None, start="2026-05-01T10:00:00Z", **extra):
    record = {
        "call_id": call_id,
        "orig_account_id": carrier.acme_main.id,
        "term_account_id": (term or carrier.vox_gw).id,
        "number": number,
        "start": start,
        "duration": duration,
    }
    record.update(extra)
    return record


def _post(client, token, payload):
    return client.post("/api/v1/cdrs", json=payload, headers=bearer(token))


def _balance(client_obj) -> Decimal:
    db.session.expire_all()
    return db.session.get(Client, client_obj.id).balance


def _stat(call_id) -> CallStat:
    db.session.expire_all()
    return db.session.scalar(select(CallStat).where(CallStat.call_id == call_id))


@pytest.fixture(params=["database", "snapshot"])
def rates_from(request, app, carrier):
    """Rate from the database, or from a routing snapshot that is current (as while the manager runs)."""
    if request.param == "snapshot":
        manager.run_once(app, force=True)
        manager.sync_snapshot(app)
        assert isinstance(cdrs.rate_source(), cdrs.SnapshotRates)
    else:
        assert isinstance(cdrs.rate_source(), cdrs.RateLookup)
    return request.param


def test_rating_matches_hand_computed_charges(client, carrier, alpha_token, rates_from):
    """Billed seconds with min time and interval, setup fee, longest code, rate change at the call's start."""
    batch = [
        # 44 at 0.10, 30/6, setup 0.05: 47 s bill 30 + 3*6 = 48 s -> 0.08 + 0.05. Vox 44 at 0.06 1/1: 47 s.
        _record(carrier, "uk-47", "+441234567", 47, sip_code=200, pdd=1800),
        # 447 at 0.20, 60/60: 61 s bill 120 s -> 0.40. Tel has only 44 at 0.07, 60/1: 61 s -> 0.071167.
        _record(carrier, "mob-61", "447700900123", 61, term=carrier.tel_gw),
        # 4420 changed price at 2026-03-01 00:00: 0.15 the second before, 0.12 from then on; 10 s at 1/1.
        _record(carrier, "lon-old", "442079460000", 10, start="2026-02-28T23:59:59Z"),
        _record(carrier, "lon-new", "442079460000", 10, start="2026-03-01T00:00:00+00:00"),
        # Not answered: nothing charged, no setup fee.
        _record(carrier, "uk-busy", "441111111", 0, answered=False, sip_code=486),
    ]
    response = _post(client, alpha_token, batch)
    assert response.status_code == 200, response.json
    assert response.json["stored"] == 5 and response.json["duplicates"] == []
    assert Decimal(response.json["charged"]) == Decimal("0.575")

    uk = _stat("uk-47")
    assert (uk.orig_code, uk.orig_billed, uk.customer_charge) == ("44", 48, Decimal("0.13"))
    assert (uk.term_code, uk.term_billed, uk.vendor_cost) == ("44", 47, Decimal("0.047"))
    assert (uk.number, uk.sip_code, uk.pdd_ms, uk.answered) == ("441234567", 200, 1800, True)
    mobile = _stat("mob-61")
    assert (mobile.orig_code, mobile.orig_billed, mobile.customer_charge) == ("447", 120, Decimal("0.40"))
    assert (mobile.term_code, mobile.term_billed, mobile.vendor_cost) == ("44", 61, Decimal("0.071167"))
    assert mobile.term_client_id == carrier.tel.id
    assert (_stat("lon-old").customer_rate, _stat("lon-old").customer_charge) == (
        Decimal("0.15"),
        Decimal("0.025"),
    )
    assert (_stat("lon-new").customer_rate, _stat("lon-new").customer_charge) == (
        Decimal("0.12"),
        Decimal("0.02"),
    )
    busy = _stat("uk-busy")
    assert (busy.answered, busy.orig_billed, busy.customer_charge, busy.vendor_cost) == (
        False,
        0,
        Decimal(0),
        Decimal(0),
    )
    assert _balance(carrier.acme) == Decimal("-0.575")


def test_an_edit_after_the_snapshot_is_rated_at_once(client, carrier, alpha_token):
    """A rate saved after the snapshot was built prices the next records (the database answers until the
    manager publishes a snapshot that holds the edit)."""
    manager.run_once(client.application, force=True)
    manager.sync_snapshot(client.application)
    assert isinstance(cdrs.rate_source(), cdrs.SnapshotRates)
    rate = Rate(
        rate_table_id=carrier.customer_rates.id, code="4412", rate=Decimal("0.50"), effective_from=EPOCH
    )
    db.session.add(rate)
    audit.record("create", rate)
    db.session.commit()
    assert isinstance(cdrs.rate_source(), cdrs.RateLookup)
    assert _post(client, alpha_token, _record(carrier, "new-code", "441234567", 60)).status_code == 200
    assert (_stat("new-code").orig_code, _stat("new-code").customer_charge) == ("4412", Decimal("0.50"))


def test_account_rate_table_beats_the_clients_default(client, carrier, alpha_token):
    """The originator account's own rate table prices the call when set."""
    own = factories.rate_table(carrier.tree.alpha, "Acme special", [("44", "0.30")])
    carrier.acme_main.orig_rate_table_id = own.id
    db.session.commit()
    response = _post(client, alpha_token, _record(carrier, "special", "441234567", 60))
    assert response.status_code == 200
    assert _stat("special").customer_charge == Decimal("0.30")
    assert _balance(carrier.acme) == Decimal("-0.30")


def test_a_call_without_a_rate_is_stored_unrated(client, carrier, alpha_token):
    """The call happened: it is stored with no charge and listed as unrated."""
    response = _post(client, alpha_token, _record(carrier, "fr", "33123456789", 60))
    assert response.status_code == 200
    assert response.json["stored"] == 1 and response.json["unrated"] == ["fr"]
    stat = _stat("fr")
    assert stat.customer_rate is None and stat.customer_charge == 0
    assert _balance(carrier.acme) == 0


def test_a_bad_batch_stores_nothing_and_names_record_and_field(client, carrier, alpha_token):
    """400 names the first bad record's index and field, lists every problem, and stores none of the batch."""
    batch = [
        _record(carrier, "ok-1", "441234567", 30),
        _record(carrier, "bad-start", "441234567", 30, start="yesterday"),
        {**_record(carrier, "bad-field", "441234567", 30), "colour": "blue", "duration": -4},
    ]
    response = _post(client, alpha_token, batch)
    assert response.status_code == 400
    body = response.json
    assert (body["index"], body["field"]) == (1, "start")
    assert body["error"].startswith("record 1: start: must be an ISO 8601 date-time")
    problems = {(e["index"], e["field"]) for e in body["errors"]}
    assert {(1, "start"), (2, "colour"), (2, "duration")} <= problems
    assert db.session.scalar(select(func.count()).select_from(CallStat)) == 0
    assert _balance(carrier.acme) == 0


def test_required_fields_and_types(client, carrier, alpha_token):
    """Missing fields, wrong types, a number with letters and a non-list body are refused clearly."""
    cases = [
        ({"call_id": "x"}, "orig_account_id"),
        ({**_record(carrier, "x", "441", 3), "number": "44abc"}, "number"),
        ({**_record(carrier, "x", "441", 3), "answered": "yes"}, "answered"),
        ({**_record(carrier, "x", "441", 3), "orig_account_id": "7"}, "orig_account_id"),
        ({**_record(carrier, "x", "441", 3), "sip_code": 99}, "sip_code"),
        ({**_record(carrier, "x", "441", 3), "term_account_id": 2**70}, "term_account_id"),
        ({**_record(carrier, "x", "441", 3), "duration": float("inf")}, "duration"),
        ({**_record(carrier, "x", "441", 3), "start": "0001-01-01T00:00:00+05:00"}, "start"),
    ]
    for payload, field in cases:
        response = _post(client, alpha_token, payload)
        assert response.status_code == 400, payload
        assert field in {e["field"] for e in response.json["errors"]}, (payload, response.json)
    assert _post(client, alpha_token, "441234567").status_code == 400
    response = client.post("/api/v1/cdrs", data="{not json", headers=bearer(alpha_token))
    assert response.status_code == 400 and "JSON" in response.json["error"]
    response = _post(client, alpha_token, [])
    assert response.status_code == 400


def test_at_most_a_thousand_records(client, carrier, alpha_token):
    """A list longer than 1,000 records is refused as a whole."""
    batch = [_record(carrier, f"c{i}", "441234567", 1) for i in range(1001)]
    response = _post(client, alpha_token, batch)
    assert response.status_code == 400
    assert "at most 1,000" in response.json["error"]
    assert db.session.scalar(select(func.count()).select_from(CallStat)) == 0


def test_accounts_outside_the_tokens_company_are_unknown(client, carrier, alpha_token):
    """Alpha's token cannot report a call of Beta's account: 400 unknown account, nothing stored."""
    record = {**_record(carrier, "beta-call", "441234567", 30), "orig_account_id": carrier.beta_acc.id}
    response = _post(client, alpha_token, [_record(carrier, "fine", "441234567", 30), record])
    assert response.status_code == 400
    assert (response.json["index"], response.json["field"]) == (1, "orig_account_id")
    assert response.json["error"] == "record 1: orig_account_id: unknown account"
    assert db.session.scalar(select(func.count()).select_from(CallStat)) == 0
    # Beta's own token may.
    beta_token = make_token(carrier.tree.beta)
    record["term_account_id"] = None
    assert _post(client, beta_token, record).status_code == 200
    assert _balance(carrier.beta_client) == Decimal("-0.10")


def test_token_required(client, carrier):
    """No token or a wrong one: 401."""
    assert client.post("/api/v1/cdrs", json={}).status_code == 401
    response = client.post("/api/v1/cdrs", json={}, headers=bearer("rp_wrong"))
    assert response.status_code == 401


def test_a_repeated_call_id_is_stored_and_charged_once(client, carrier, alpha_token):
    """Again in a later request, or twice in one batch: counted once and reported as a duplicate."""
    first = _record(carrier, "same", "441234567", 47)
    assert _post(client, alpha_token, first).json["stored"] == 1
    response = _post(client, alpha_token, [first, _record(carrier, "other", "441234567", 47), first])
    assert response.status_code == 200
    assert response.json["stored"] == 1
    assert sorted(response.json["duplicates"]) == ["same", "same"]
    assert db.session.scalar(select(func.count()).select_from(CallStat)) == 2
    assert _balance(carrier.acme) == Decimal("-0.26")


def test_racing_requests_store_each_call_once(app, carrier, alpha_token):
    """Clients posting the same batch at the same moment: every call stored and charged exactly once."""
    batch = [_record(carrier, f"race-{i}", "441234567", 47) for i in range(40)]
    barrier = threading.Barrier(4)
    answers: list = []
    errors: list = []

    def post() -> None:
        test_client = app.test_client()
        try:
            barrier.wait(timeout=10)
            answers.append(_post(test_client, alpha_token, batch))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert [a.status_code for a in answers] == [200] * 4
    assert sum(a.json["stored"] for a in answers) == 40
    assert sum(len(a.json["duplicates"]) for a in answers) == 3 * 40
    assert db.session.scalar(select(func.count()).select_from(CallStat)) == 40
    assert _balance(carrier.acme) == Decimal("-0.13") * 40


def test_find_rate_is_the_longest_code_effective_then(app, carrier):
    """The plain rate lookup: longest code among rows effective at the moment, latest effective_from."""
    from datetime import UTC, datetime

    table = carrier.customer_rates.id
    before = datetime(2026, 2, 1, tzinfo=UTC)
    after = datetime(2026, 4, 1, tzinfo=UTC)
    assert cdrs.find_rate(table, "442079460000", before).rate == Decimal("0.15")
    assert cdrs.find_rate(table, "442079460000", after).rate == Decimal("0.12")
    assert cdrs.find_rate(table, "447700900123", after).code == "447"
    assert cdrs.find_rate(table, "4413", after).code == "44"
    assert cdrs.find_rate(table, "33", after) is None


def test_call_ids_are_kept_verbatim(client, carrier, alpha_token):
    """A SIP Call-ID with quotes, commas, backslashes and non-ASCII characters is stored as sent."""
    call_id = 'a84b,4c76 "x"\\y;attempt=2@pbx-é'
    response = _post(client, alpha_token, _record(carrier, call_id, "441234567", 5))
    assert response.status_code == 200 and response.json["stored"] == 1
    assert _stat(call_id) is not None
    assert _post(client, alpha_token, _record(carrier, call_id, "441234567", 5)).json["duplicates"] == [
        call_id
    ]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        ["2026-05-01T10:00:00Z", "9999-12-31T23:59:59-01:00", "+441234567", "44#1234", "start"]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(st.sampled_from(cdrs.CDR_FIELDS + ("colour",)), JSON_VALUES, max_size=10),
    event=st.dictionaries(st.sampled_from(("event", "call_id", "orig_account_id", "at", "x")), JSON_VALUES),
)
# Known edge cases of issue 13.10: a time past the calendar once in UTC, a NUL in the call id, floats that are
# not numbers, an id beyond the database's range.
@example(
    fields={"start": "9999-12-31T23:59:59-14:00"}, event={"event": "end", "at": "0001-01-01T00:00:00+14:00"}
)
@example(fields={"call_id": "a\x00b"}, event={"event": "end", "call_id": "a\x00b"})
@example(fields={"duration": float("nan"), "pdd": float("inf")}, event={"orig_account_id": 2**80})
def test_hostile_records_never_break_the_api(client, carrier, alpha_token, fields, event):
    """Whatever JSON arrives, the answer is 200 or a 400 naming the problem; never a server error."""
    record = {**_record(carrier, "fuzz", "441234567", 10), **fields}
    for path, body in (("/api/v1/cdrs", [record]), ("/api/v1/cdrs", fields), ("/api/v1/calls", event)):
        response = client.post(path, json=body, headers=bearer(alpha_token))
        assert response.status_code in (200, 400), (path, body, response.get_data(as_text=True))
        if response.status_code == 400:
            assert response.json["error"]


def _beta_record(carrier, call_id, duration=60):
    return {
        "call_id": call_id,
        "orig_account_id": carrier.beta_acc.id,
        "number": "441234567",
        "start": "2026-05-01T10:00:00Z",
        "duration": duration,
    }


def test_call_ids_are_unique_per_company(client, carrier, alpha_token):
    """Issue 13.2: Alpha posting Beta's call id first does not make Beta's real record a duplicate: Beta's is
    stored and charged, and neither answer says anything about the other company's records."""
    beta_token = make_token(carrier.tree.beta, "beta switch")
    alpha_answer = _post(client, alpha_token, _record(carrier, "shared-id", "441234567", 60))
    assert alpha_answer.json["stored"] == 1 and alpha_answer.json["duplicates"] == []
    beta_answer = _post(client, beta_token, _beta_record(carrier, "shared-id"))
    assert beta_answer.status_code == 200
    assert beta_answer.json == {
        "received": 1,
        "stored": 1,
        "duplicates": [],
        "unrated": [],
        "charged": "0.150000",
    }
    assert _balance(carrier.beta_client) == Decimal("-0.15")
    rows = db.session.execute(
        select(CallStat.company_id, CallStat.orig_account_id).where(CallStat.call_id == "shared-id")
    ).all()
    assert sorted(rows) == [
        (carrier.tree.alpha.id, carrier.acme_main.id),
        (carrier.tree.beta.id, carrier.beta_acc.id),
    ]
    # Still one record per company: each company's repeat is its own duplicate.
    again = _post(client, beta_token, _beta_record(carrier, "shared-id"))
    assert again.json["stored"] == 0 and again.json["duplicates"] == ["shared-id"]
    assert _balance(carrier.beta_client) == Decimal("-0.15")
