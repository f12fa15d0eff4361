"""The what-if preview agrees with routing after "apply" (issue 15.1), over random edits (hypothesis).

For a random rule edit (or a new rule) and a random rate deck import, the preview is computed on a snapshot
with the change applied in memory; then the change is written and a snapshot is built from the database.
Every destination the preview lists routes, after the change, exactly as the preview says; and every
destination it does not list routes as before (the preview misses nothing).
"""

import random
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panel.extensions import db
from panel.models import Rate, RoutingRule
from panel.routing.build import build_snapshot
from panel.routing.engine import RouteQuery, route
from panel.whatif import overlay, service, sheet
from tests import factories as f

AT = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
DECK = [
    ("44", "UK", "GB"),
    ("447", "UK mobile", "GB"),
    ("4479", "UK special", "GB"),
    ("1", "USA", "US"),
    ("49", "Germany", "DE"),
    ("33", "France", "FR"),
    ("4410", "UK London", "GB"),
]
CODES = ["44", "447", "4479", "4*9", "1", "49", "*", "33", "441"]


@pytest.fixture
def carrier(world):
    """`world` with a deck, a second originator with tags, and a few rules of every type."""
    world.plan.code_deck_id = f.code_deck(world.root, "Deck", DECK).id
    gold = f.account(
        world.cust_client, "gold", ident_value="198.51.100.11", orig_enabled=True, orig_tags="gold"
    )
    world.gold = gold
    for v, extra in ((world.v1, "0.03"), (world.v2, "0.09"), (world.v3, "0.07")):
        db.session.add(Rate(rate_table_id=v.table.id, code="49", rate=Decimal(extra), effective_from=f.EPOCH))
        db.session.add(
            Rate(rate_table_id=v.table.id, code="447", rate=Decimal(extra), effective_from=f.EPOCH)
        )
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id, priority=1)
    f.rule(world.plan, "447", "dynamic", policy_id=world.lcr.id)
    f.rule(world.plan, "1", "static_account", terminator_account_id=world.v3.account.id)
    f.rule(world.plan, "*", "dynamic", policy_id=world.lcr.id, priority=5)
    db.session.flush()
    return world


def rule_values(world, draw) -> dict:
    """Random values of a rule of the plan."""
    kind = draw(st.sampled_from(["static_client", "static_account", "dynamic"]))
    vendor = draw(st.sampled_from([world.v1, world.v2, world.v3]))
    pm = draw(st.sampled_from([(None, False), (Decimal(20), True), (Decimal("0.04"), False)]))
    return {
        "code": draw(st.sampled_from(CODES)),
        "type": kind,
        "priority": draw(st.integers(0, 3)),
        "terminator_client_id": vendor.client.id if kind == "static_client" else None,
        "terminator_account_id": vendor.account.id if kind == "static_account" else None,
        "policy_id": world.lcr.id if kind == "dynamic" else None,
        "pm_value": pm[0],
        "pm_percent": pm[1],
        "stop_hunt": draw(st.booleans()),
        "balancing": draw(st.sampled_from([None, 50, 100])),
        "min_length": draw(st.sampled_from([None, 3])),
        "orig_tags": draw(st.sampled_from(["", "gold"])),
    }


def _routes(snap, account_id: int, code: str):
    rng = sheet.seed(random.Random(), code)
    result = route(snap, RouteQuery(number=code, account_id=account_id, at=AT), rng=rng)
    return [(r.account.id, r.customer_rate - r.vendor_row[0]) for r in result.routes]


@contextmanager
def _rolled_back():
    """A savepoint rolled back at the end; yields the snapshot before any change."""
    nested = db.session.begin_nested()
    try:
        yield build_snapshot(db.session)
    finally:
        nested.rollback()


def _check(before, preview, after, changed, world) -> None:
    """Listed changes match the rebuilt snapshot; unlisted destinations did not change; overlay == rebuild."""
    listed = {(c.group.entry.id, c.old.code) for c in preview.changes}
    for change in preview.changes:
        assert _routes(after, change.group.entry.id, change.old.code) == [
            (r.account_id, r.margin) for r in change.new.routes
        ]
    for account_id in (world.cust.id, world.gold.id):
        for code, _, _ in DECK:
            now = _routes(after, account_id, code)
            assert _routes(changed, account_id, code) == now, f"overlay differs for {code}"
            if (account_id, code) not in listed:
                assert _routes(before, account_id, code) == now, f"unlisted change for {code}"


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(data=st.data())
def test_rule_edit_preview_agrees_with_routing_after_apply(carrier, data):
    with _rolled_back() as before:
        rows = service.rule_rows(carrier.plan.id)
        values = rule_values(carrier, data.draw)
        target = data.draw(st.sampled_from([None, *[row["id"] for row in rows]]))
        if target is None:
            new_row = {**{c: None for c in service.RULE_COLUMNS}, **values}
            new_row.update(id=service.next_rule_id(), plan_id=carrier.plan.id)
            new_rows = [*rows, new_row]
        else:
            new_rows = [{**row, **values} if row["id"] == target else row for row in rows]
        companies = {carrier.root.id}
        preview, changed = service.rules_preview(before, carrier.plan.id, new_rows, companies, AT)
        assert preview.groups == 2  # cust and gold route differently (tags)
        if target is None:
            db.session.add(
                RoutingRule(**{k: v for k, v in new_row.items() if k in values or k in ("id", "plan_id")})
            )
        else:
            rule = db.session.get(RoutingRule, target)
            for key, value in values.items():
                setattr(rule, key, value)
        db.session.flush()
        _check(before, preview, build_snapshot(db.session), changed, carrier)


@SETTINGS
@given(data=st.data())
def test_rate_import_preview_agrees_with_routing_after_apply(carrier, data):
    with _rolled_back() as before:
        vendor = data.draw(st.sampled_from([carrier.v1, carrier.v2, carrier.v3]))
        mode = data.draw(st.sampled_from(["replace", "add_update"]))
        codes = data.draw(st.lists(st.sampled_from(["44", "447", "4479", "1", "49", "4410"]), unique=True))
        rows = [
            {
                "rate_table_id": vendor.table.id,
                "code": code,
                "name": "",
                "effective_from": f.EPOCH,
                "end": None,
                "rate": Decimal(data.draw(st.sampled_from(["0.01", "0.055", "0.2"]))),
                "setup_fee": Decimal(0),
                "min_time": 1,
                "interval": 1,
            }
            for code in codes
        ]
        new = overlay.rate_rows(rows)
        if mode == "add_update":
            new = overlay.merged_rates(before.rate_tables[vendor.table.id].rates, new)
        preview, changed = service.rates_preview(before, vendor.table.id, new, {carrier.root.id}, AT)
        if mode == "replace":
            db.session.query(Rate).filter_by(rate_table_id=vendor.table.id).delete()
        else:
            db.session.query(Rate).filter(
                Rate.rate_table_id == vendor.table.id, Rate.code.in_(codes)
            ).delete()
        for row in rows:
            db.session.add(Rate(**row))
        db.session.flush()
        _check(before, preview, build_snapshot(db.session), changed, carrier)


def test_preview_names_old_and_new_first_route_and_lost_destinations(carrier):
    before = build_snapshot(db.session)
    rows = service.rule_rows(carrier.plan.id)
    # The 1 rule (V3's account) becomes V1's account: first route and margin change for 1.
    new_rows = [
        {**row, "terminator_account_id": carrier.v1.account.id} if row["code"] == "1" else row for row in rows
    ]
    preview, _ = service.rules_preview(before, carrier.plan.id, new_rows, {carrier.root.id}, AT)
    usa = [c for c in preview.changes if c.old.code == "1"]
    assert usa and all(c.what == "first route" for c in usa)
    assert usa[0].old.first.label == "V3 / v3" and usa[0].new.first.label == "V1 / v1"
    assert (usa[0].old.first.margin, usa[0].new.first.margin) == (8000, 10000)
    assert {c.old.code for c in preview.changes} == {"1"}
    # Deleting every rule: every routed destination loses every route.
    preview, _ = service.rules_preview(before, carrier.plan.id, [], {carrier.root.id}, AT)
    assert preview.changes and all(c.lost for c in preview.changes)


def test_preview_sorts_by_traffic_of_the_window(carrier):
    from panel.models import CallStat

    before = build_snapshot(db.session)
    for i in range(3):
        db.session.add(
            CallStat(
                call_id=f"c{i}",
                company_id=carrier.root.id,
                orig_account_id=carrier.gold.id,
                orig_client_id=carrier.cust_client.id,
                number="4479123",
                orig_code="44",
                start_at=AT,
                duration=60,
                customer_charge=0,
                vendor_cost=0,
                answered=True,
            )
        )
    db.session.flush()
    rows = service.rule_rows(carrier.plan.id)
    preview, _ = service.rules_preview(
        before, carrier.plan.id, [r for r in rows if r["code"] != "44"], {carrier.root.id}, AT
    )
    assert preview.changes[0].group.entry.id == carrier.gold.id and preview.changes[0].traffic == 3
    assert preview.changes[-1].traffic == 0


def test_large_decks_are_sampled_and_say_so():
    codes = [(str(1000 + i), "", "") for i in range(1000)]
    kept, total = sheet.sample(codes, 100)
    assert len(kept) == 100 and total == 1000 and kept[0] == codes[0] and kept[-1] == codes[990]
