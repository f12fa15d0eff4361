"""Incremental snapshot updates: after any sequence of panel edits, the snapshot updated with only what the
edits touched routes exactly like a snapshot built whole from the database (a property test on random edit
sequences), untouched parts are shared with the old snapshot, and a full build happens when in doubt."""

import json
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from flask import current_app
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from panel import audit, snapshots
from panel.extensions import db
from panel.models import Account, Client, Policy, Quality, Rate, RateTable, RoutingPlan, RoutingRule
from panel.rates.importer import import_rates
from panel.routing import build, compare
from panel.routing import update as incremental
from panel.routing.build import build_snapshot, read_connection
from panel.routing.engine import RouteQuery, route
from panel.routing.ratestore import RateStore
from panel.routing.snapshot import RateTableData, code_set
from tests import factories as f
from tests.routing.conftest import MONDAY_NOON, vendor


@pytest.fixture
def carrier(app):
    """A customer on plan Main (a dynamic rule on 44, a static one on 1) and three vendors; all committed."""
    root = f.company("Operator", "root")
    plan = f.plan(root, "Main")
    other_plan = f.plan(root, "Other")
    customer_rates = f.rate_table(root, "Customer rates", [("44", "0.10"), ("1", "0.02"), ("49", "0.08")])
    cust_client = f.client(root, "Cust", orig_rate_table_id=customer_rates.id, routing_plan_id=plan.id)
    cust = f.account(cust_client, "cust", ident_value="198.51.100.10", orig_enabled=True)
    vendors = [
        vendor(root, f"V{i}", [("44", f"0.0{4 + i}"), ("1", f"0.01{i}")], ip=f"203.0.113.{i}")
        for i in (1, 2, 3)
    ]
    lcr = f.policy(root, "Simple LCR", rate_weight=1)
    f.rule(plan, "44", "dynamic", policy_id=lcr.id)
    f.rule(plan, "1", "static_client", terminator_client_id=vendors[0].client.id)
    f.rule(other_plan, "49", "static_account", terminator_account_id=vendors[1].account.id)
    audit.record("create", plan)  # the audit entry the host's manifest is anchored to
    db.session.commit()
    snapshots.rebuild()
    return dict(root=root, plan=plan, cust=cust, vendors=vendors, lcr=lcr)


def _edit(obj, **values) -> None:
    """Change an object as the panel does: before state, change, audit entry, commit."""
    before = audit.state(obj)
    for key, value in values.items():
        setattr(obj, key, value)
    audit.record("update", obj, before=before)
    db.session.commit()


def _deck(codes_prices) -> bytes:
    lines = ["code,rate"] + [f"{code},{price}" for code, price in codes_prices]
    return ("\n".join(lines) + "\n").encode()


# Each edit: (kind, a small integer choosing what and how).
EDITS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "rule_priority",
                "rule_add",
                "rule_delete",
                "plan_setting",
                "account",
                "account_table",
                "client",
                "rate_edit",
                "import_replace",
                "import_add",
                "new_vendor",
                "policy",
                "quality",
                "noise",
            ]
        ),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=6,
)


def _apply_edit(kind: str, n: int) -> bool:
    """Make one edit through the panel's own code paths; True when the manager's quality figures changed."""
    plans = db.session.scalars(select(RoutingPlan).order_by(RoutingPlan.id)).all()
    plan = plans[n % len(plans)]
    rules = db.session.scalars(select(RoutingRule).order_by(RoutingRule.id)).all()
    vendors = db.session.scalars(
        select(Account).where(Account.term_enabled.is_(True)).order_by(Account.id)
    ).all()
    tables = db.session.scalars(select(RateTable).order_by(RateTable.id)).all()
    if kind == "rule_priority" and rules:
        _edit(rules[n % len(rules)], priority=n % 7)
    elif kind == "rule_add":
        rule = RoutingRule(plan_id=plan.id, code=str(40 + n % 10), type="dynamic", priority=n % 5)
        db.session.add(rule)
        audit.record("create", rule)
        db.session.commit()
    elif kind == "rule_delete" and rules:
        rule = rules[n % len(rules)]
        before = audit.state(rule)
        db.session.delete(rule)
        audit.record("delete", rule, before=before)
        db.session.commit()
    elif kind == "plan_setting":
        _edit(plan, pm_value=Decimal(n % 30), pm_percent=bool(n % 2), loop_protection=bool(n % 3))
    elif kind == "account" and vendors:
        account = vendors[n % len(vendors)]
        _edit(account, term_tags=" ".join(["gold"] * (n % 2)), orig_enabled=bool(n % 3 == 0))
    elif kind == "account_table" and vendors:
        _edit(vendors[n % len(vendors)], term_rate_table_id=tables[n % len(tables)].id)
    elif kind == "client":
        clients = db.session.scalars(select(Client).order_by(Client.id)).all()
        _edit(
            clients[n % len(clients)], routing_plan_id=plan.id, term_rate_table_id=tables[n % len(tables)].id
        )
    elif kind == "rate_edit":
        rates = db.session.scalars(select(Rate).order_by(Rate.id)).all()
        if rates:
            _edit(rates[n % len(rates)], rate=Decimal(n % 90 + 1) / 1000)
    elif kind in ("import_replace", "import_add"):
        table = tables[n % len(tables)]
        deck = [(str(4400 + i), f"0.0{(n + i) % 9 + 1}") for i in range(n % 4)] + [("44", f"0.0{n % 9 + 1}")]
        mode = "replace" if kind == "import_replace" else "add_update"
        import_rates(table, _deck(deck), mode, default_effective_from=datetime(2024, 1, 1, tzinfo=UTC))
    elif kind == "new_vendor":
        root = plan.company
        vendor(
            root, f"N{n}x{len(vendors)}", [("44", "0.03"), (str(n % 100), "0.02")], ip=f"192.0.2.{n % 250}"
        )
        db.session.flush()
        for obj in db.session.scalars(select(Account).order_by(Account.id.desc()).limit(1)):
            audit.record("create", obj)
        db.session.commit()
    elif kind == "policy":
        policy = db.session.scalars(select(Policy).order_by(Policy.id)).first()
        _edit(policy, asr_weight=n % 3)
    elif kind == "quality" and vendors:
        account = vendors[n % len(vendors)]
        db.session.execute(update(Quality).where(Quality.term_account_id == account.id).values(attempts=0))
        db.session.execute(
            delete(Quality).where(Quality.term_account_id == account.id, Quality.code == str(n))
        )
        db.session.add(Quality(term_account_id=account.id, code=str(n), attempts=n, asr=Decimal("50")))
        db.session.commit()
        return True
    elif kind == "noise":
        user = f.user(plan.company, "viewer", username=f"u{n}-{time.monotonic_ns()}")
        audit.record("create", user)
        db.session.commit()
    return False


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=EDITS, sync_every=st.integers(1, 3))
@example(edits=[("import_replace", 3), ("rule_priority", 1)], sync_every=1)
@example(edits=[("account_table", 2), ("import_add", 2), ("rate_edit", 5)], sync_every=3)
@example(edits=[("new_vendor", 7), ("rule_add", 4), ("client", 1)], sync_every=2)
def test_incremental_updates_equal_a_full_build(carrier, edits, sync_every):
    quality_changed = False
    for step, (kind, n) in enumerate(edits, start=1):
        quality_changed |= _apply_edit(kind, n)
        if step % sync_every == 0 or step == len(edits):
            updated = snapshots.update(quality=quality_changed)
            quality_changed = False
            assert "full" not in snapshots.last_changes()
            # Against a build held in memory (dicts) and one mapped from the host's files: the updated
            # snapshot maps the very files a full build maps (one file per table content).
            whole = build_snapshot(db.engine, quality_min_calls=_min_calls())
            assert compare.describe(updated) == compare.describe(whole), (edits, step)
            mapped = build_snapshot(db.engine, store=snapshots.rate_store())
            assert _files(updated) == _files(mapped) and None not in _files(updated).values()
            # A process that starts now: the host's files of the last recorded state, and the rate tables
            # changed since read again, make the same snapshot.
            started, _changes = _start_elsewhere()
            assert compare.describe(started) == compare.describe(whole), (edits, step)
            assert _files(started) == _files(mapped)


def _files(snap) -> dict:
    return {tid: table.file for tid, table in snap.rate_tables.items()}


def _start_elsewhere():
    """What another process of the host makes when it starts (its own view of the host's files)."""
    store = RateStore(snapshots.rate_store().directory)
    with read_connection(db.engine) as conn:
        return incremental.start_from_host(conn, store, _min_calls())


def _min_calls() -> int:
    """The quality figures' minimum of calls the app's snapshots use (QUALITY_MIN_CALLS)."""
    return current_app.config["QUALITY_MIN_CALLS"]


def _restart() -> None:
    """This app as a process that starts: no snapshot yet."""
    current_app.extensions.pop("routing_snapshot", None)


def test_a_process_that_starts_reads_only_the_rate_tables_changed_since_the_host_recorded_them(
    carrier, monkeypatch
):
    v1, v2 = carrier["vendors"][0], carrier["vendors"][1]
    recorded = snapshots.current()  # the fixture's build recorded the host's manifest
    import_rates(
        v1.table.id,
        _deck([("44", "0.003")]),
        "replace",
        default_effective_from=datetime(2024, 1, 1, tzinfo=UTC),
    )
    _edit(carrier["vendors"][2].account, term_tags="late")
    read = []
    real = build._read_rates

    def counted(conn, table_ids=None, **kwargs):
        read.append(set(table_ids) if table_ids is not None else "all")
        return real(conn, table_ids, **kwargs)

    monkeypatch.setattr(build, "_read_rates", counted)
    _restart()
    started = snapshots.get_snapshot()
    assert read == [{v1.table.id}]
    assert snapshots.last_changes() == f"full, from the host's files (rate tables [{v1.table.id}] read again)"
    assert started.rate_tables[v2.table.id].file == recorded.rate_tables[v2.table.id].file
    assert started.accounts[carrier["vendors"][2].account.id].term_tags == frozenset({"late"})
    monkeypatch.undo()
    assert compare.describe(started) == compare.describe(
        build_snapshot(db.engine, quality_min_calls=_min_calls())
    )
    result = route(started, RouteQuery(number="44123", account_id=carrier["cust"].id, at=MONDAY_NOON))
    assert (result.routes[0].terminator_id, result.routes[0].vendor_rate) == (v1.account.id, 3000)
    # Nothing changed since: the next process reads no rates at all.
    read.clear()
    monkeypatch.setattr(build, "_read_rates", counted)
    _restart()
    snapshots.get_snapshot()
    assert read == [] and snapshots.last_changes() == "full, from the host's files (nothing read again)"


def _update_elsewhere(snap):
    """What another process of the host, whose snapshot is `snap`, makes of the changes since `snap`."""
    with read_connection(db.engine) as conn:
        changes = incremental.pending(conn, snap)
        return incremental.apply(conn, snap, changes, _min_calls()), changes


def test_an_update_maps_the_rate_tables_another_process_of_the_host_read_at_the_same_state(
    carrier, monkeypatch
):
    """The first process of the host that sees a deck import reads the table and records the host's manifest;
    another one whose update reads the very same audit state maps that file and reads no rate."""
    before = snapshots.current()
    v1, v2 = carrier["vendors"][0], carrier["vendors"][1]
    deck = _deck([("44", "0.001"), ("4478", "0.002")])
    import_rates(v1.table.id, deck, "replace", default_effective_from=datetime(2024, 1, 1, tzinfo=UTC))
    first = snapshots.update()  # this process: reads the table, records the manifest
    assert snapshots.last_changes() == f"rate tables [{v1.table.id}]"

    def no_rates(*args, **kwargs):
        raise AssertionError("rates read again")

    monkeypatch.setattr(build, "_read_rates", no_rates)
    other, changes = _update_elsewhere(before)
    assert changes.summary() == f"rate tables [{v1.table.id}] (the host's files)"
    assert other.rate_tables[v1.table.id].file == first.rate_tables[v1.table.id].file
    assert other.rate_tables[v2.table.id] is before.rate_tables[v2.table.id]
    assert "4478" in other.codes and "4478" not in before.codes
    monkeypatch.undo()
    assert compare.describe(other) == compare.describe(
        build_snapshot(db.engine, quality_min_calls=_min_calls())
    )
    result = route(other, RouteQuery(number="447812345", account_id=carrier["cust"].id, at=MONDAY_NOON))
    assert (result.routes[0].terminator_id, result.routes[0].vendor_rate) == (v1.account.id, 2000)

    # One more change after the recorded state: the manifest is not this update's state, the table is read.
    import_rates(
        v2.table.id,
        _deck([("44", "0.0015")]),
        "replace",
        default_effective_from=datetime(2024, 1, 1, tzinfo=UTC),
    )
    again, changes = _update_elsewhere(before)
    assert changes.summary() == f"rate tables {sorted([v1.table.id, v2.table.id])}"
    assert compare.describe(again) == compare.describe(
        build_snapshot(db.engine, quality_min_calls=_min_calls())
    )


def test_a_damaged_manifest_at_the_same_state_means_the_tables_are_read(carrier):
    before = snapshots.current()
    v1 = carrier["vendors"][0]
    import_rates(
        v1.table.id,
        _deck([("44", "0.001")]),
        "replace",
        default_effective_from=datetime(2024, 1, 1, tzinfo=UTC),
    )
    snapshots.update()  # records the manifest at this state
    manifest = snapshots.rate_store().directory / "manifest.json"
    document = json.loads(manifest.read_text())
    document["tables"][str(v1.table.id)] = document["tables"][str(v1.table.id)][:1]  # name and currency lost
    manifest.write_text(json.dumps(document))
    other, changes = _update_elsewhere(before)
    assert not changes.from_host and changes.summary() == f"rate tables [{v1.table.id}]"
    assert compare.describe(other) == compare.describe(
        build_snapshot(db.engine, quality_min_calls=_min_calls())
    )


def test_a_rate_table_created_without_an_audit_entry_is_read_even_at_the_recorded_state(carrier):
    """The manifest's state holds no such table: the same audit state is not taken on trust for it."""
    recorded = snapshots.current()
    table = RateTable(company_id=carrier["root"].id, name="By hand", currency="USD")
    db.session.add(table)
    db.session.flush()
    db.session.add(
        Rate(
            rate_table_id=table.id,
            code="44",
            rate=Decimal("0.5"),
            effective_from=datetime(2024, 1, 1, tzinfo=UTC),
        )
    )
    db.session.commit()  # no audit entry
    updated, changes = _update_elsewhere(recorded)
    assert changes.audit_top == recorded.audit_top and not changes.from_host
    assert table.id in updated.rate_tables and len(updated.rate_tables[table.id].rates) == 1


def test_the_hosts_update_lock_lets_one_process_read_at_a_time(carrier):
    store = snapshots.rate_store()
    with store.updating(5) as held:
        assert held
        result = {}

        def other():  # another process's update (a lock of its own open file: flock sees two holders)
            started = time.monotonic()
            with store.updating(0.3) as second:
                result.update(held=second, waited=time.monotonic() - started)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert result["held"] is False and result["waited"] >= 0.3
    with store.updating(0.3) as held:
        assert held


def test_a_manifest_that_is_not_this_databases_own_means_a_whole_build(carrier):
    store = snapshots.rate_store()
    manifest = store.directory / "manifest.json"
    document = json.loads(manifest.read_text())
    # Another database under the same name (restored, recreated): its audit entry of that id differs.
    manifest.write_text(json.dumps(dict(document, anchor=document["anchor"] - 1)))
    assert _start_elsewhere() is None
    _restart()
    snapshots.get_snapshot()
    assert snapshots.last_changes() == "full"
    # A table file removed by hand: a whole build too, never a table without its rates.
    document = json.loads(manifest.read_text())
    (store.directory / next(iter(document["tables"].values()))[0]).unlink()
    assert _start_elsewhere() is None


def test_a_rate_import_reads_one_table_and_shares_the_rest(carrier):
    before = snapshots.current()
    v1, v2 = carrier["vendors"][0], carrier["vendors"][1]
    deck = _deck([("44", "0.001"), ("4477", "0.002")])
    import_rates(v1.table.id, deck, "replace", default_effective_from=datetime(2024, 1, 1, tzinfo=UTC))
    after = snapshots.update()
    assert snapshots.last_changes() == f"rate tables [{v1.table.id}]"
    assert after.rate_tables[v2.table.id] is before.rate_tables[v2.table.id]
    assert after.accounts[v2.account.id] is before.accounts[v2.account.id]
    assert after.accounts[v1.account.id].term_rates is after.rate_tables[v1.table.id]
    assert "4477" in after.codes and "4477" not in before.codes
    # Routing sees the new price: V1 first at 0.002 for 4477…
    result = route(after, RouteQuery(number="447712345", account_id=carrier["cust"].id, at=MONDAY_NOON))
    assert [(r.terminator_id, r.vendor_code) for r in result.routes][0] == (v1.account.id, "4477")
    # …while a route in flight on the old snapshot still sees the old one.
    old = route(before, RouteQuery(number="447712345", account_id=carrier["cust"].id, at=MONDAY_NOON))
    assert old.routes[0].vendor_code == "44"


def test_a_rule_edit_reads_one_plan(carrier):
    before = snapshots.current()
    rule = db.session.scalars(select(RoutingRule).where(RoutingRule.plan_id == carrier["plan"].id)).first()
    _edit(rule, priority=9)
    after = snapshots.update()
    assert snapshots.last_changes() == f"plans [{carrier['plan'].id}]"
    assert after.rules[rule.id].priority == 9
    assert after.rate_tables is before.rate_tables and after.accounts is before.accounts
    other = [p for p in after.plans if p != carrier["plan"].id]
    assert all(after.plans[p] is before.plans[p] for p in other)


def test_an_account_change_rereads_the_base_but_not_the_rates(carrier):
    before = snapshots.current()
    _edit(carrier["vendors"][2].account, term_enabled=False)
    after = snapshots.update()
    assert snapshots.last_changes() == "base"
    assert after.rate_tables is before.rate_tables and after.codes is before.codes
    assert after.accounts[carrier["vendors"][2].account.id].term_enabled is False
    # The unchanged accounts are the old snapshot's very entries (nothing new to hold); the changed one: new.
    changed = carrier["vendors"][2].account.id
    assert all(after.accounts[aid] is entry for aid, entry in before.accounts.items() if aid != changed)
    assert after.accounts[changed] is not before.accounts[changed]
    assert before.accounts[changed].term_enabled is True  # the old snapshot is left as it was


def test_an_edit_that_does_not_touch_routing_reads_nothing(carrier):
    before = snapshots.current()
    user = f.user(carrier["root"], "viewer", username="someone")
    audit.record("create", user)
    db.session.commit()
    after = snapshots.update()
    assert snapshots.last_changes() == "nothing"
    assert after.plans is before.plans and after.audit_top > before.audit_top


def test_a_transaction_that_commits_late_is_still_applied(carrier):
    """An audit id below the snapshot's newest, committed after it was read, is an unseen id of the tail."""
    snap = snapshots.current()
    v1 = carrier["vendors"][0]
    # Pretend the snapshot was read while the rate edit's transaction (a lower id) had not committed yet.
    rate = db.session.scalars(select(Rate).where(Rate.rate_table_id == v1.table.id)).first()
    _edit(rate, rate=Decimal("0.0011"))
    late_id = db.session.scalar(select(func.max(audit.AuditEntry.id)))
    audit.record("create", f.user(carrier["root"], "viewer", username="later"))
    db.session.commit()
    newest = db.session.scalar(select(func.max(audit.AuditEntry.id)))
    db.session.rollback()  # end the session's transaction (on SQLite it holds the writer lock)
    pretend = snap.__class__(**{**_fields(snap), "audit_top": newest, "audit_seen": frozenset({newest})})
    with db.engine.connect() as conn:
        changes = incremental.pending(conn, pretend)
    assert late_id < newest and v1.table.id in changes.rate_tables


def _fields(snap) -> dict:
    return {name: getattr(snap, name) for name in snap.__dataclass_fields__}


def test_doubt_means_a_full_build(carrier):
    snap = snapshots.current()
    pretend = snap.__class__(**{**_fields(snap), "audit_top": 10**9, "audit_seen": frozenset({10**9})})
    with db.engine.connect() as conn:
        changes = incremental.pending(conn, pretend)
    assert changes.full and "behind" in changes.why
    changes = incremental.Changes()
    incremental.classify(changes, "rate", 5, "update", None, None)
    assert changes.full  # a rate change that does not say its table
    with pytest.raises(ValueError):  # pending() turns this into a full build
        incremental.classify(incremental.Changes(), "routingrule", 5, "update", None, {"plan_id": "x"})
    changes = incremental.Changes()
    incremental.classify(changes, "ratetable", 5, "delete")
    assert changes.base and changes.rate_tables == {5}


def test_every_routing_model_maps_to_a_part():
    """The audit types the panel writes are the ones `classify` knows (a renamed model would fall back to a
    base update, never be missed, but the rate and rule ones must stay incremental)."""
    assert audit.object_type(RateTable()) in incremental.RATE_TYPES
    assert audit.object_type(Rate()) in incremental.RATE_ROW_TYPES
    assert audit.object_type(RoutingRule()) in incremental.RULE_TYPES
    assert audit.object_type(RoutingPlan()) in incremental.PLAN_TYPES


def test_with_plan_rules_previews_a_change_in_memory(carrier):
    snap = snapshots.current()
    plan_id = carrier["plan"].id
    rows = [
        {
            "id": 10_001,
            "code": "44",
            "type": "static_account",
            "priority": 0,
            "terminator_account_id": carrier["vendors"][2].account.id,
        },
    ]
    preview = incremental.with_plan_rules(snap, plan_id, rows)
    query = RouteQuery(number="447700", account_id=carrier["cust"].id, at=MONDAY_NOON)
    assert [r.terminator_id for r in route(preview, query).routes] == [carrier["vendors"][2].account.id]
    assert len(route(snap, query).routes) == 3  # the snapshot itself is untouched
    moved = incremental.with_rates(
        snap, carrier["vendors"][2].table.id, {"44": ((1, 0, 1, 1, 0.0, float("inf")),)}
    )
    assert route(moved, query).routes[0].terminator_id == carrier["vendors"][2].account.id


def test_one_build_at_a_time_however_many_ask(carrier, monkeypatch):
    """Six callers arriving while a build runs: they wait, one more build runs after it, the rest take it."""
    running, peak, builds = [0], [0], [0]
    gate = threading.Event()
    real = snapshots._build

    def slow_build():
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        builds[0] += 1
        gate.wait(5)
        try:
            return real()
        finally:
            running[0] -= 1

    monkeypatch.setattr(snapshots, "_build", slow_build)
    app = current_app._get_current_object()

    def ask():
        with app.app_context():
            snapshots.rebuild()

    first = threading.Thread(target=ask)
    first.start()
    while builds[0] == 0:
        time.sleep(0.001)
    others = [threading.Thread(target=ask) for _ in range(6)]
    for thread in others:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in [first, *others]:
        thread.join(10)
    assert peak[0] == 1
    assert builds[0] == 2


def test_the_codes_of_an_updated_snapshot_take_the_room_of_a_set_made_once():
    """A snapshot's codes are held by every process of the host: a set made from another set (or by a set
    operation) gets a hash table twice as large (4 MB instead of 2 at 72,000 codes)."""
    codes = [str(4_400_000 + i) for i in range(72_000)]
    table = RateTableData(1, "V", "USD", dict.fromkeys(codes, ()))
    snap = SimpleNamespace(rate_tables={1: table}, codes=code_set(set(codes)))
    assert sys.getsizeof(snap.codes) < sys.getsizeof(frozenset(set(codes)))
    # A deck that drops one code and adds another: the union and difference stay as compact.
    deck = dict.fromkeys(codes[1:] + ["4499"], ())
    merged, updated = incremental._merge_tables(snap, {1: RateTableData(1, "V", "USD", deck)})
    assert updated == set(deck) and merged[1].rates is deck
    assert sys.getsizeof(updated) == sys.getsizeof(frozenset(iter(deck)))
    assert code_set(updated) is updated
