"""Scenarios that pin the routing algorithm of SPEC §5, each small: one behaviour per test.

The base scenario (`world`, see conftest): customer `cust` at 198.51.100.10 priced 0.10 for 44; vendors V1,
V2, V3 at 0.05, 0.06, 0.07 for 44, each one terminator account at 203.0.113.1-3.
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from panel.extensions import db
from panel.models import Quality
from tests import factories as f
from tests.routing.conftest import MONDAY_NOON, FixedLive, run, snapshot, vendor


def names(result) -> list[str]:
    """The terminator accounts of the routes, in order."""
    return [r.terminator for r in result.routes]


def reasons(result) -> dict[str, str]:
    """Rejected terminator account -> reason."""
    return {r.account.name if r.account else f"rule {r.rule.id}": r.reason for r in result.rejections}


# --- 1. identification ----------------------------------------------------------------------------


def test_identifies_by_ip(world):
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    result = run("447700900123", src_ip="198.51.100.10")
    assert result.status == "ok" and result.originator.name == "cust"
    assert run("447700900123", src_ip="198.51.100.11").reason == "unknown_originator"


def test_most_specific_network_wins(world):
    wide = f.account(world.cust_client, "wide", ident_value="10.1.0.0/16", orig_enabled=True)
    narrow = f.account(world.cust_client, "narrow", ident_value="10.1.2.0/24; 10.9.9.9", orig_enabled=True)
    snap = snapshot()
    assert run("4477", snap=snap, src_ip="10.1.2.3").originator.id == narrow.id
    assert run("4477", snap=snap, src_ip="10.1.9.9").originator.id == wide.id
    assert run("4477", snap=snap, src_ip="10.9.9.9").originator.id == narrow.id


def test_ipv6_networks_identify(world):
    v6 = f.account(world.cust_client, "v6", ident_value="2001:db8::/32", orig_enabled=True)
    assert run("4477", src_ip="2001:db8::5").originator.id == v6.id
    assert run("4477", src_ip="2001:db9::5").reason == "unknown_originator"


def test_login_beats_ani_beats_ip(world):
    by_login = f.account(
        world.cust_client, "by-login", ident_by="name", ident_value="alice", orig_enabled=True
    )
    by_ani = f.account(world.cust_client, "by-ani", ident_by="ani", ident_value="15551234", orig_enabled=True)
    snap = snapshot()
    everything = dict(src_ip="198.51.100.10", login="alice", ani="+15551234")
    assert run("4477", snap=snap, **everything).originator.id == by_login.id
    assert run("4477", snap=snap, src_ip="198.51.100.10", ani="15551234").originator.id == by_ani.id
    assert run("4477", snap=snap, src_ip="198.51.100.10", login="bob").originator.id == world.cust.id
    assert run("4477", snap=snap, login="bob").reason == "unknown_originator"


def test_longest_tech_prefix_wins_and_is_stripped(world):
    short = f.account(
        world.cust_client, "short", ident_value="192.0.2.7", tech_prefix="12", orig_enabled=True
    )
    long_ = f.account(
        world.cust_client, "long", ident_value="192.0.2.7", tech_prefix="123#", orig_enabled=True
    )
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    snap = snapshot()
    result = run("123#447700900123", snap=snap, src_ip="192.0.2.7")
    assert result.originator.id == long_.id and result.number == "447700900123" and result.status == "ok"
    result = run("12447700900123", snap=snap, src_ip="192.0.2.7")
    assert result.originator.id == short.id and result.number == "447700900123"
    # A number that does not start with either prefix identifies neither.
    assert run("447700900123", snap=snap, src_ip="192.0.2.7").reason == "unknown_originator"


def test_tech_prefix_beats_network_specificity(world):
    """Login/ANI/IP first, then the longest tech prefix, then the most specific network."""
    wide = f.account(world.cust_client, "wide", ident_value="10.0.0.0/8", tech_prefix="99", orig_enabled=True)
    f.account(world.cust_client, "narrow", ident_value="10.1.1.1", orig_enabled=True)
    assert run("994477", src_ip="10.1.1.1").originator.id == wide.id


def test_gateway_restriction(world):
    gw1 = f.gateway(world.root, "gw1", "192.0.2.1")
    gw2 = f.gateway(world.root, "gw2", "192.0.2.2")
    restricted = f.account(
        world.cust_client, "restricted", ident_value="192.0.2.9", gateways=[gw1], orig_enabled=True
    )
    snap = snapshot()
    assert run("4477", snap=snap, src_ip="192.0.2.9", gateway="gw1").originator.id == restricted.id
    assert run("4477", snap=snap, src_ip="192.0.2.9", gateway="192.0.2.1").originator.id == restricted.id
    assert run("4477", snap=snap, src_ip="192.0.2.9", gateway="gw2").reason == "unknown_originator"
    assert run("4477", snap=snap, src_ip="192.0.2.9").reason == "unknown_originator"
    # An account with no gateways matches any request, with or without one.
    assert run("4477", snap=snap, src_ip="198.51.100.10", gateway=gw2.name).originator.id == world.cust.id
    assert run("4477", snap=snap, src_ip="198.51.100.10").originator.id == world.cust.id


def test_disabled_originator_and_company_scope(world):
    world.cust.orig_enabled = False
    assert run("4477").reason == "unknown_originator"
    world.cust.orig_enabled = True
    other = f.company("Other", "reseller", world.root)
    snap = snapshot()
    assert run("4477", snap=snap, company_id=other.id).reason == "unknown_originator"
    assert run("4477", snap=snap, company_id=world.root.id).originator.id == world.cust.id
    assert (
        run("4477", snap=snap, account_id=world.cust.id, company_id=other.id).reason == "unknown_originator"
    )


def test_account_picked_directly(world):
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id)
    result = run("447700900123", account_id=world.cust.id)
    assert result.originator.id == world.cust.id and names(result) == ["v2"]


def test_originator_capacity(world):
    world.cust.orig_capacity = 2
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    snap = snapshot()
    assert run("4477", snap=snap, live=FixedLive(orig={world.cust.id: 1})).status == "ok"
    assert run("4477", snap=snap, live=FixedLive(orig={world.cust.id: 2})).reason == "originator_capacity"


# --- 2-3. plan and customer rate ------------------------------------------------------------------


def test_no_routing_plan(world):
    world.cust_client.routing_plan_id = None
    assert run("4477").reason == "no_routing_plan"


def test_account_plan_overrides_client_plan(world):
    own = f.plan(world.root, "Own")
    f.rule(own, "44", "static_client", terminator_client_id=world.v3.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    world.cust.orig_routing_plan_id = own.id
    result = run("4477")
    assert result.plan.name == "Own" and names(result) == ["v3"]


def test_origination_limits_include_descendants_and_never_fall_back(world):
    alpha = f.company("Alpha", "reseller", world.root)
    sub = f.company("Alpha Sub", "sub_reseller", alpha)
    beta = f.company("Beta", "reseller", world.root)
    limited = f.plan(world.root, "Alpha only")
    db.session.execute(
        db.text("INSERT INTO plan_origination_limits (plan_id, company_id) VALUES (:p, :c)"),
        {"p": limited.id, "c": alpha.id},
    )
    f.rule(limited, "44", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id)
    sub_client = f.client(
        sub, "Sub customer", orig_rate_table_id=world.customer_rates.id, routing_plan_id=limited.id
    )
    f.account(sub_client, "sub-acc", ident_value="192.0.2.20", orig_enabled=True)
    beta_client = f.client(
        beta, "Beta customer", orig_rate_table_id=world.customer_rates.id, routing_plan_id=world.plan.id
    )
    f.account(
        beta_client, "beta-acc", ident_value="192.0.2.21", orig_enabled=True, orig_routing_plan_id=limited.id
    )
    snap = snapshot()
    assert names(run("4477", snap=snap, src_ip="192.0.2.20")) == ["v1"]
    # Beta's account names the Alpha-only plan: not usable, and no fall-back to its client's plan.
    assert run("4477", snap=snap, src_ip="192.0.2.21").reason == "no_routing_plan"


def test_plan_of_a_sibling_company_is_not_usable(world):
    alpha = f.company("Alpha", "reseller", world.root)
    beta = f.company("Beta", "reseller", world.root)
    alpha_plan = f.plan(alpha, "Alpha plan")
    beta_client = f.client(
        beta, "Beta customer", orig_rate_table_id=world.customer_rates.id, routing_plan_id=alpha_plan.id
    )
    f.account(beta_client, "beta-acc", ident_value="192.0.2.21", orig_enabled=True)
    assert run("4477", src_ip="192.0.2.21").reason == "no_routing_plan"


def test_no_customer_rate(world):
    f.rule(world.plan, "*", "static_client", terminator_client_id=world.v1.client.id)
    assert run("3312345").reason == "no_customer_rate"


def test_customer_rate_longest_code_and_effective_time(world):
    table = f.rate_table(
        world.root,
        "Dated",
        [
            {"code": "44", "rate": "0.10"},
            {"code": "447", "rate": "0.20", "effective_from": datetime(2024, 1, 1, tzinfo=UTC)},
            {"code": "447", "rate": "0.30", "effective_from": datetime(2024, 3, 1, tzinfo=UTC)},
            {"code": "447", "rate": "0.40", "effective_from": datetime(2024, 6, 1, tzinfo=UTC)},
            {"code": "4478", "rate": "0.50", "end": datetime(2023, 6, 1, tzinfo=UTC)},
        ],
    )
    world.cust.orig_rate_table_id = table.id
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    snap = snapshot()

    def priced(at):
        result = run("4478123", snap=snap, at=at)
        return result.customer_code, result.customer_rate[0]

    assert priced(datetime(2023, 1, 1, tzinfo=UTC)) == ("4478", 500_000)
    assert priced(datetime(2023, 6, 1, tzinfo=UTC)) == ("44", 100_000)  # 4478 ended (end excluded)
    assert priced(datetime(2024, 1, 15, tzinfo=UTC)) == ("447", 200_000)
    assert priced(MONDAY_NOON) == ("447", 300_000)  # the latest effective_from wins
    assert priced(datetime(2024, 6, 1, tzinfo=UTC)) == ("447", 400_000)


# --- 4. rules -------------------------------------------------------------------------------------


def test_no_matching_rule(world):
    f.rule(world.plan, "49", "static_client", terminator_client_id=world.v1.client.id)
    assert run("4477").reason == "no_matching_rule"


def test_longest_only_against_all_matching(world):
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "447", "static_client", terminator_client_id=world.v2.client.id)
    f.rule(world.plan, "*", "static_client", terminator_client_id=world.v3.client.id)
    assert names(run("447700")) == ["v2"]
    assert names(run("441234")) == ["v1"]
    world.plan.rules_hunting = "all_matching"
    assert names(run("447700")) == ["v2", "v1", "v3"]


def test_star_codes(world):
    world.plan.rules_hunting = "all_matching"
    middle = f.rule(world.plan, "44*9", "static_client", terminator_client_id=world.v1.client.id)
    trailing = f.rule(world.plan, "44*", "static_client", terminator_client_id=world.v2.client.id)
    everything = f.rule(world.plan, "*", "static_client", terminator_client_id=world.v3.client.id)
    snap = snapshot()
    assert [m.rule.id for m in run("4412349000", snap=snap).matched] == [
        middle.id,
        trailing.id,
        everything.id,
    ]
    assert [m.rule.id for m in run("441234", snap=snap).matched] == [trailing.id, everything.id]
    assert [m.rule.id for m in run("4491", snap=snap).matched] == [middle.id, trailing.id, everything.id]
    # `44*9` has length 3, so under longest_only it alone matches a number with a 9 after 44.
    world.plan.rules_hunting = "longest_only"
    assert [m.rule.id for m in run("4412349000").matched] == [middle.id]


def test_trailing_star_is_the_same_code(world):
    world.plan.rules_hunting = "longest_only"
    a = f.rule(world.plan, "44", "static_client", priority=2, terminator_client_id=world.v1.client.id)
    b = f.rule(world.plan, "44*", "static_client", priority=1, terminator_client_id=world.v2.client.id)
    assert [m.rule.id for m in run("4477").matched] == [b.id, a.id]


def test_priority_lower_runs_first_then_rule_id(world):
    late = f.rule(world.plan, "44", "static_client", priority=5, terminator_client_id=world.v1.client.id)
    first = f.rule(world.plan, "44", "static_client", priority=1, terminator_client_id=world.v3.client.id)
    tie = f.rule(world.plan, "44", "static_client", priority=5, terminator_client_id=world.v2.client.id)
    result = run("4477")
    assert [m.rule.id for m in result.matched] == [first.id, late.id, tie.id]
    assert names(result) == ["v3", "v1", "v2"]


def test_number_length_and_originator_tags(world):
    f.rule(
        world.plan, "44", "static_client", min_length=6, max_length=8, terminator_client_id=world.v1.client.id
    )
    f.rule(world.plan, "44", "static_client", orig_tags="gold vip", terminator_client_id=world.v2.client.id)
    f.rule(
        world.plan, "44", "static_client", orig_tags="gold vip", orig_tags_mode="any",
        terminator_client_id=world.v3.client.id,
    )  # fmt: skip
    assert names(run("44770")) == []
    assert names(run("447700")) == ["v1"]
    assert names(run("447700001")) == []
    world.cust.orig_tags = "gold"
    assert names(run("447700")) == ["v1", "v3"]
    world.cust.orig_tags = "vip gold extra"
    assert names(run("447700")) == ["v1", "v2", "v3"]


def test_time_profile_and_expiration(world):
    office = f.time_profile(
        world.root, "Office", weekdays="12345", ranges="08:00-18:00", timezone="Europe/London"
    )
    f.rule(
        world.plan, "44", "static_client", time_profile_id=office.id, terminator_client_id=world.v1.client.id
    )
    f.rule(
        world.plan, "44", "static_client", expires_at=datetime(2024, 3, 4, 12, 30, tzinfo=UTC),
        terminator_client_id=world.v2.client.id,
    )  # fmt: skip
    snap = snapshot()
    assert names(run("4477", snap=snap, at=MONDAY_NOON)) == ["v1", "v2"]
    assert names(run("4477", snap=snap, at=MONDAY_NOON + timedelta(minutes=30))) == ["v1"]  # expired at 12:30
    saturday = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)
    assert run("4477", snap=snap, at=saturday).reason == "no_matching_rule"
    # 07:30 UTC in summer is 08:30 in London: inside.
    assert names(run("4477", snap=snap, at=datetime(2024, 7, 1, 7, 30, tzinfo=UTC))) == ["v1"]


def test_did_rules_come_first_in_both_orders_and_skip_the_margin(world):
    f.did(world.v3.account, "4420123")
    world.plan.pm_value, world.plan.pm_percent = Decimal("45"), True
    f.rule(world.plan, "44", "dynamic", policy_id=world.lcr.id)
    f.rule(world.plan, "", "did", priority=50)
    for order in ("code_appeal", "appeal_code"):
        world.plan.dr_order = order
        result = run("4420123")
        assert names(result) == ["v3", "v1"], order  # v3 by DID despite the margin; v2 leaves < 45%
        assert result.routes[0].rule.type == "did"
        assert reasons(result)["v2"] == "profit_margin"
    assert [r.rule.type for r in run("4420999").routes] == ["dynamic"]


# --- 5-6. balancing is in test_balancing.py; stop hunt --------------------------------------------


def test_stop_hunt_cuts_later_rules_and_the_additional_plan(world):
    extra = f.plan(world.root, "Extra")
    f.rule(extra, "44", "static_client", terminator_client_id=world.v3.client.id)
    world.plan.additional_plan_id = extra.id
    stopper = f.rule(
        world.plan, "44", "static_client", priority=1, stop_hunt=True, terminator_client_id=world.v1.client.id
    )
    later = f.rule(world.plan, "44", "static_client", priority=2, terminator_client_id=world.v2.client.id)
    result = run("4477")
    assert names(result) == ["v1"] and result.stopped
    assert [(r.rule.id, r.account, r.reason) for r in result.rejections] == [(later.id, None, "stop_hunt")]
    assert [(m.rule.id, m.cut) for m in result.matched] == [(stopper.id, False), (later.id, True)]


def test_stop_hunt_holds_when_all_its_routes_are_rejected(world):
    extra = f.plan(world.root, "Extra")
    f.rule(extra, "44", "static_client", terminator_client_id=world.v3.client.id)
    world.plan.additional_plan_id = extra.id
    world.v1.account.term_enabled = False
    f.rule(
        world.plan,
        "44",
        "static_account",
        priority=1,
        stop_hunt=True,
        terminator_account_id=world.v1.account.id,
    )
    f.rule(world.plan, "44", "static_client", priority=2, terminator_client_id=world.v2.client.id)
    result = run("4477")
    assert result.status == "rejected" and result.reason == "no_routes"
    assert reasons(result)["v1"] == "terminator_disabled"


# --- 7. candidates and every rejection reason -----------------------------------------------------


def test_static_client_takes_its_enabled_terminators(world):
    second = f.account(world.v1.client, "v1-b", ident_value="203.0.113.11", term_enabled=True)
    f.account(world.v1.client, "v1-off", ident_value="203.0.113.12", term_enabled=False)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    result = run("4477")
    # v1-b has no rate table of its own and its client none either.
    assert names(result) == ["v1"] and reasons(result) == {"v1-b": "no_vendor_rate"}
    world.v1.client.term_rate_table_id = world.v1.table.id
    assert sorted(names(run("4477"))) == ["v1", "v1-b"]
    assert second.term_rate_table_id is None


def test_dynamic_candidates_tags_rate_and_company(world):
    alpha = f.company("Alpha", "reseller", world.root)
    beta = f.company("Beta", "reseller", world.root)
    plan = f.plan(alpha, "Alpha plan")
    customer = f.client(
        alpha, "Alpha customer", orig_rate_table_id=world.customer_rates.id, routing_plan_id=plan.id
    )
    f.account(customer, "alpha-cust", ident_value="192.0.2.60", orig_enabled=True)
    alpha_vendor = vendor(alpha, "AV", [("44", "0.04")], ip="203.0.113.20")
    vendor(beta, "BV", [("44", "0.01")], ip="203.0.113.21")  # a sibling's vendor: never
    tagged = vendor(world.root, "TV", [("44", "0.02")], ip="203.0.113.22", term_tags="premium")
    vendor(world.root, "NoRate", [("49", "0.01")], ip="203.0.113.23")
    f.rule(plan, "44", "dynamic", priority=5, policy_id=world.lcr.id)
    result = run("4477", src_ip="192.0.2.60")
    # Untagged terminators of Alpha, its descendants and ancestors (the operator's), with a rate for 44.
    assert names(result) == ["av", "v1", "v2", "v3"]
    assert result.rejections == []
    f.rule(plan, "44", "dynamic", priority=1, policy_id=world.lcr.id, term_tags="premium other")
    assert names(run("4477", src_ip="192.0.2.60"))[:2] == ["tv", "av"]
    assert tagged.account.term_tags == "premium" and alpha_vendor.account.client_id


def test_rejection_terminator_disabled(world):
    world.v1.account.term_enabled = False
    f.rule(world.plan, "44", "static_account", terminator_account_id=world.v1.account.id)
    assert reasons(run("4477")) == {"v1": "terminator_disabled"}


def test_loop_protection_by_client_and_by_address(world):
    own = f.account(
        world.cust_client,
        "cust-term",
        ident_value="192.0.2.30",
        term_enabled=True,
        term_rate_table_id=world.v1.table.id,
    )  # noqa: E501
    world.v2.account.networks[0].network = "198.51.100.10/32"  # v2's address is the caller's
    f.rule(world.plan, "44", "static_account", terminator_account_id=own.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v3.client.id)
    result = run("4477")
    assert names(result) == ["v3"]
    assert reasons(result) == {"cust-term": "loop_protection", "v2": "loop_protection"}
    world.plan.loop_protection = False
    assert names(run("4477")) == ["cust-term", "v2", "v3"]


def test_loop_protection_by_proxy_address(world):
    world.v1.account.proxy = "198.51.100.10:5080"
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    assert reasons(run("4477")) == {"v1": "loop_protection"}


def test_termination_limits_exclude_descendants(world):
    alpha = f.company("Alpha", "reseller", world.root)
    sub = f.company("Alpha Sub", "sub_reseller", alpha)
    in_alpha = vendor(alpha, "InAlpha", [("44", "0.05")], ip="203.0.113.30")
    in_sub = vendor(sub, "InSub", [("44", "0.05")], ip="203.0.113.31")
    db.session.execute(
        db.text("INSERT INTO plan_termination_limits (plan_id, company_id) VALUES (:p, :c)"),
        {"p": world.plan.id, "c": alpha.id},
    )
    for v in (in_alpha, in_sub, world.v1):
        f.rule(world.plan, "44", "static_client", terminator_client_id=v.client.id)
    result = run("4477")
    assert names(result) == ["inalpha"]
    assert reasons(result) == {"insub": "termination_limit", "v1": "termination_limit"}


def test_no_vendor_rate(world):
    f.rule(world.plan, "1", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "49", "static_client", terminator_client_id=world.v1.client.id)
    assert run("12125550100").status == "ok"
    assert reasons(run("4912345")) == {"v1": "no_vendor_rate"}


@pytest.mark.parametrize(
    "plan_pm, rule_pm, expected",
    [
        ((None, False), None, ["v1", "v2", "v3"]),
        (("45", True), None, ["v1"]),  # 0.10 - 0.06 = 0.04 < 45% of 0.10
        (("40", True), None, ["v1", "v2"]),  # exactly 40%: kept
        (("0.035", False), None, ["v1", "v2"]),  # absolute per minute
        (("0.04", False), None, ["v1", "v2"]),  # exactly: kept
        (("45", True), ("0", False), ["v1", "v2", "v3"]),  # the rule's margin beats the plan's
        ((None, False), ("50", True), ["v1"]),
    ],
)
def test_profit_margin(world, plan_pm, rule_pm, expected):
    world.plan.pm_value = Decimal(plan_pm[0]) if plan_pm[0] else None
    world.plan.pm_percent = plan_pm[1]
    fields = {"pm_value": Decimal(rule_pm[0]), "pm_percent": rule_pm[1]} if rule_pm else {}
    f.rule(world.plan, "44", "dynamic", policy_id=world.lcr.id, **fields)
    result = run("4477")
    assert names(result) == expected
    assert all(reason == "profit_margin" for reason in reasons(result).values())
    assert len(result.rejections) == 3 - len(expected)


# The seed's sample table: customer (min, interval), vendor (min, interval), OK?
SEED_INCREMENTS = [
    ((60, 60), (60, 60), True),
    ((30, 6), (30, 1), True),
    ((30, 6), (6, 6), True),
    ((1, 1), (30, 6), False),
    ((7, 7), (6, 6), False),
]


@pytest.mark.parametrize("customer, vendor_increments, ok", SEED_INCREMENTS)
def test_match_increments_seed_table(world, customer, vendor_increments, ok):
    table = f.rate_table(
        world.root,
        "Cust incr",
        [{"code": "44", "rate": "0.10", "min_time": customer[0], "interval": customer[1]}],
    )
    world.cust.orig_rate_table_id = table.id
    vt = f.rate_table(
        world.root,
        "Vendor incr",
        [{"code": "44", "rate": "0.05", "min_time": vendor_increments[0], "interval": vendor_increments[1]}],
    )
    world.v1.account.term_rate_table_id = vt.id
    world.plan.match_increments = "dynamic"
    dynamic = f.rule(world.plan, "44", "dynamic", policy_id=world.lcr.id, term_tags="x")
    world.v1.account.term_tags = "x"
    static = f.rule(world.plan, "44", "static_account", priority=5, terminator_account_id=world.v1.account.id)
    result = run("4477")
    by_rule = {(r.rule.id, r.reason) for r in result.rejections}
    assert ((dynamic.id, "increments") not in by_rule) == ok
    assert (static.id, "increments") not in by_rule  # static rules are checked only under dynamic_static
    world.plan.match_increments = "dynamic_static"
    by_rule = {(r.rule.id, r.reason) for r in run("4477").rejections}
    assert ((static.id, "increments") not in by_rule) == ok
    world.plan.match_increments = "disabled"
    assert "increments" not in {r.reason for r in run("4477").rejections}


def test_min_asr_and_min_acd_with_enough_calls_only(world):
    db.session.add_all(
        [
            Quality(term_account_id=world.v1.account.id, code="44", attempts=100, answered=20, asr=20, acd=3),
            Quality(
                term_account_id=world.v2.account.id, code="44", attempts=100, answered=60, asr=60, acd=0.5
            ),
            Quality(term_account_id=world.v3.account.id, code="44", attempts=3, answered=0, asr=0, acd=0),
        ]
    )
    f.rule(world.plan, "44", "dynamic", policy_id=world.lcr.id, min_asr=Decimal("30"), min_acd=Decimal("1"))
    db.session.flush()
    from panel.routing.build import build_snapshot

    snap = build_snapshot(db.session, quality_min_calls=10)
    result = run("4477", snap=snap)
    assert names(result) == ["v3"]  # too few calls: its figures do not count
    assert reasons(result) == {"v1": "min_asr", "v2": "min_acd"}


def test_capacity_of_terminator_and_rule(world):
    world.v1.account.term_capacity = 5
    capped = f.rule(world.plan, "44", "static_client", capacity=2, terminator_client_id=world.v2.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    snap = snapshot()
    assert names(run("4477", snap=snap)) == ["v2", "v1"]
    live = FixedLive(term={world.v1.account.id: 5}, rule={capped.id: 2})
    result = run("4477", snap=snap, live=live)
    assert result.reason == "no_routes" and reasons(result) == {"v1": "capacity", "v2": "capacity"}
    assert names(run("4477", snap=snap, live=FixedLive(term={world.v1.account.id: 4}))) == ["v2", "v1"]


def test_reasons_are_checked_in_order(world):
    """A disabled terminator at the caller's address with no rate carries only the first reason."""
    world.v1.account.term_enabled = False
    world.v1.account.networks[0].network = "198.51.100.10/32"
    f.rule(world.plan, "49", "static_client", terminator_client_id=world.v2.client.id)
    f.rule(world.plan, "49", "static_account", terminator_account_id=world.v1.account.id)
    world.v2.account.networks[0].network = "198.51.100.10/32"
    assert reasons(run("4912345")) == {"v1": "terminator_disabled", "v2": "loop_protection"}


# --- 8-9. appeal and DR order ---------------------------------------------------------------------


@pytest.fixture
def quality(world):
    """ASR/ACD of V1 (20%, 1 min) and V2 (50%, 3 min); V3 has no statistics."""
    for v, asr, acd, pdd in ((world.v1, 20, 1, 900), (world.v2, 50, 3, 3000)):
        db.session.add(
            Quality(
                term_account_id=v.account.id,
                code="44",
                attempts=50,
                answered=asr // 2,
                asr=asr,
                acd=acd,
                pdd_ms=pdd,
            )
        )
    db.session.flush()
    return world


@pytest.mark.parametrize(
    "name, weights, order, appeals",
    [
        ("Simple LCR", {"rate_weight": 1}, ["v1", "v2", "v3"], [1.0, 0.5, 0.0]),
        ("Simple Quality", {"asr_weight": 1, "acd_weight": 1}, ["v2", "v3", "v1"], [1.0, 0.5, 0.0]),
        (
            "Proportional",
            {"rate_weight": 2, "asr_weight": 1, "acd_weight": 1},
            ["v2", "v1", "v3"],
            [0.75, 0.5, 0.25],
        ),
        ("PDD only", {"pdd_weight": 1}, ["v1", "v3", "v2"], [1.0, 0.5, 0.0]),
    ],
)
def test_appeal_with_the_shipped_policies_and_missing_statistics(quality, name, weights, order, appeals):
    policy = f.policy(quality.root, name + " test", **weights)
    f.rule(quality.plan, "44", "dynamic", policy_id=policy.id)
    result = run("4477")
    assert names(result) == order
    assert [round(r.appeal, 6) for r in result.routes] == appeals


def test_random_policy_shuffles_every_route(quality):
    policy = f.policy(quality.root, "Random test")
    f.rule(quality.plan, "44", "dynamic", policy_id=policy.id)
    snap = snapshot()
    firsts = {run("4477", snap=snap, rng=random.Random(seed)).routes[0].terminator for seed in range(60)}
    assert firsts == {"v1", "v2", "v3"}
    assert {r.appeal for r in run("4477", snap=snap).routes} == {1.0}


def test_equal_appeals_are_shuffled(world):
    same = vendor(world.root, "Same", [("44", "0.05")], ip="203.0.113.40")
    f.rule(world.plan, "44", "dynamic", policy_id=world.lcr.id)
    snap = snapshot()
    orders = {tuple(names(run("4477", snap=snap, rng=random.Random(seed)))[:2]) for seed in range(40)}
    assert orders == {("v1", "same"), ("same", "v1")}
    assert same.account.name == "same"


def test_dr_order_code_appeal_against_appeal_code(world):
    world.plan.rules_hunting = "all_matching"
    f.rule(world.plan, "447", "static_client", terminator_client_id=world.v3.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "4", "static_client", terminator_client_id=world.v2.client.id)
    assert names(run("4477")) == ["v3", "v1", "v2"]  # rule order: longest code first
    world.plan.dr_order = "appeal_code"
    assert names(run("4477")) == ["v1", "v2", "v3"]  # appeal (rate) first


def test_appeal_code_breaks_ties_by_length_then_priority(world):
    world.plan.rules_hunting = "all_matching"
    world.plan.dr_order = "appeal_code"
    same = vendor(world.root, "Same", [("44", "0.05")], ip="203.0.113.40")
    other = vendor(world.root, "Other", [("44", "0.05")], ip="203.0.113.41")
    f.rule(world.plan, "44", "static_client", priority=9, terminator_client_id=other.client.id)
    f.rule(world.plan, "4", "static_client", terminator_client_id=same.client.id)
    f.rule(world.plan, "44", "static_client", priority=1, terminator_client_id=world.v1.client.id)
    assert names(run("4477")) == ["v1", "other", "same"]


# --- 10. duplicates, vendor limit, additional plan ------------------------------------------------


def test_terminator_appears_once_first_place_kept(world):
    f.rule(world.plan, "44", "static_client", priority=1, terminator_client_id=world.v2.client.id)
    f.rule(world.plan, "44", "dynamic", priority=2, policy_id=world.lcr.id)
    result = run("4477")
    assert names(result) == ["v2", "v1", "v3"]
    assert [(r.account.name, r.reason) for r in result.rejections] == [("v2", "duplicate")]


def test_vendor_limit(world):
    for n in (2, 3):
        f.account(
            world.v1.client,
            f"v1-{n}",
            ident_value=f"203.0.113.{50 + n}",
            term_enabled=True,
            term_rate_table_id=world.v1.table.id,
        )  # noqa: E501
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id)
    assert len(run("4477").routes) == 4
    world.plan.vendor_limit = 2
    result = run("4477")
    assert [r.client for r in result.routes] == ["V1", "V1", "V2"]
    assert list(reasons(result).values()) == ["vendor_limit"]


def test_additional_plan_appended_without_repeats_or_cycles(world):
    extra = f.plan(world.root, "Extra", additional_plan_id=world.plan.id)  # a cycle back to Main
    world.plan.additional_plan_id = extra.id
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id)
    f.rule(extra, "44", "dynamic", policy_id=world.lcr.id)
    result = run("4477")
    assert names(result) == ["v2", "v1", "v3"]
    assert [p.name for p in result.plans_used] == ["Main", "Extra"]
    assert [(r.account.name, r.reason) for r in result.rejections] == [("v2", "duplicate")]
    assert [r.plan.name for r in result.routes] == ["Main", "Extra", "Extra"]


def test_additional_plan_used_when_the_plan_has_no_matching_rule(world):
    extra = f.plan(world.root, "Extra")
    world.plan.additional_plan_id = extra.id
    f.rule(world.plan, "49", "static_client", terminator_client_id=world.v2.client.id)
    f.rule(extra, "44", "static_client", terminator_client_id=world.v3.client.id)
    assert names(run("4477")) == ["v3"]


def test_additional_plan_scales_its_own_appeal(world):
    extra = f.plan(world.root, "Extra")
    world.plan.additional_plan_id = extra.id
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(extra, "44", "dynamic", policy_id=world.lcr.id)
    result = run("4477")
    # Main has one route (appeal 1); Extra scales its own three (v1 takes part in the scaling of step 8
    # although step 10 drops it there as a duplicate).
    assert [(r.terminator, r.appeal) for r in result.routes] == [("v1", 1.0), ("v2", 0.5), ("v3", 0.0)]


def test_route_fields(world):
    world.v1.account.proxy = "proxy.example.net:5070"
    world.v1.account.port = 5080
    world.v1.account.protocol = "h323"
    world.v1.account.tech_prefix = "777#"
    world.v1.account.term_capacity = 30
    rule = f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    data = run("4477").to_json()["routes"][0]
    assert data == {
        "account_id": world.v1.account.id,
        "account": "v1",
        "client_id": world.v1.client.id,
        "client": "V1",
        "host": "203.0.113.1",
        "port": 5080,
        "protocol": "h323",
        "proxy": "proxy.example.net:5070",
        "tech_prefix": "777#",
        "vendor_rate": "0.05",
        "vendor_code": "44",
        "rule_id": rule.id,
        "plan_id": world.plan.id,
        "capacity": 30,
        "appeal": 1.0,
        "margin": "0.05",
    }


def test_snapshot_keeps_what_it_read(world):
    """Routing reads only the snapshot: an edit takes effect with the next snapshot."""
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    old = snapshot()
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id)
    assert names(run("4477", snap=old)) == ["v1"]
    assert names(run("4477")) == ["v1", "v2"]


# --- issue 13.15: ties of appeal across rules, and the readings of SPEC §2 and §5 pinned -------------------


def _firsts(snap, runs: int = 80) -> dict[str, int]:
    """How often each terminator comes first over `runs` seeded routes."""
    counts: dict[str, int] = {}
    for seed in range(runs):
        first = run("4477", snap=snap, rng=random.Random(seed)).routes[0].terminator
        counts[first] = counts.get(first, 0) + 1
    return counts


def test_appeal_code_shuffles_ties_across_rules(world):
    """Two unbalanced rules of equal length and priority whose vendors have equal rates: either vendor comes
    first (the stable sort always put the first rule's first: 400 of 400 calls)."""
    world.plan.rules_hunting = "all_matching"
    world.plan.dr_order = "appeal_code"
    twin = vendor(world.root, "Twin", [("44", "0.05")], ip="203.0.113.50")
    f.rule(world.plan, "44", "static_client", priority=1, terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "44", "static_client", priority=1, terminator_client_id=twin.client.id)
    counts = _firsts(snapshot())
    assert set(counts) == {"v1", "twin"} and min(counts.values()) >= 20, counts


def test_appeal_code_ties_keep_the_balancing_draw_order(world):
    """Routes of one balancing group stay in the order the balancing drew (step 5), while an unbalanced
    route tied with them may land before, between or after them."""
    world.plan.rules_hunting = "all_matching"
    world.plan.dr_order = "appeal_code"
    twin = vendor(world.root, "Twin", [("44", "0.05")], ip="203.0.113.50")
    third = vendor(world.root, "Third", [("44", "0.05")], ip="203.0.113.51")
    f.rule(
        world.plan, "44", "static_client", priority=1, balancing=50, terminator_client_id=world.v1.client.id
    )
    f.rule(world.plan, "44", "static_client", priority=1, balancing=50, terminator_client_id=twin.client.id)
    f.rule(world.plan, "44", "static_client", priority=1, terminator_client_id=third.client.id)
    snap = snapshot()
    places = set()
    group_firsts = set()
    for seed in range(80):
        result = run("4477", snap=snap, rng=random.Random(seed))
        drawn = [m.rule.id for m in result.matched if m.rule.balanced]
        routed = [r.rule.id for r in result.routes if r.rule.balanced]
        assert routed == drawn  # the group keeps the draw's order
        places.add(names(result).index("third"))
        group_firsts.add(routed[0])
    assert places == {0, 1, 2} and len(group_firsts) == 2


def test_loop_protection_by_any_single_ident_ip_not_by_networks(world):
    """SPEC §5 step 7: any single IP of the terminator's identification equal to the source IP is a loop; a
    network that merely contains the source IP is not."""
    world.v1.account.networks[0].network = "192.0.2.0/24"
    f.account(world.v1.client, "v1-b", ident_value="10.9.0.0/16; 198.51.100.10", term_enabled=True)
    world.v2.account.networks[0].network = "198.51.100.0/24"
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v2.client.id)
    result = run("4477")
    assert reasons(result) == {"v1-b": "loop_protection"}
    assert sorted(names(result)) == ["v1", "v2"]


def test_loop_protection_by_the_proxy_host_with_or_without_port(world):
    """The proxy's host equal to the source IP is a loop, with or without a port; another host is not."""
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    for proxy, looped in (
        ("198.51.100.10", True),
        ("198.51.100.10:5080", True),
        ("198.51.100.11:5080", False),
    ):
        world.v1.account.proxy = proxy
        assert (reasons(run("4477")).get("v1") == "loop_protection") is looped, proxy


def test_host_is_the_first_ident_ip_else_the_proxy_host_and_proxy_stays_separate(world):
    """SPEC §2: `host` is the first single ident IP (not a network), else the proxy's host; `proxy` is
    reported separately in both cases."""
    world.v1.account.networks[0].network = "192.0.2.0/24"
    world.v1.account.proxy = "192.0.2.99:5070"
    f.rule(world.plan, "44", "static_client", terminator_client_id=world.v1.client.id)
    route = run("4477").to_json()["routes"][0]
    assert (route["host"], route["proxy"]) == ("192.0.2.99", "192.0.2.99:5070")
    world.v1.account.networks[0].network = "203.0.113.1"
    route = run("4477").to_json()["routes"][0]
    assert (route["host"], route["proxy"]) == ("203.0.113.1", "192.0.2.99:5070")


def test_ani_compares_without_a_leading_plus_on_either_side(world):
    """SPEC §5 step 1: an ANI ident `+15551234` matches a call from `15551234` and `+15551234`."""
    by_ani = f.account(
        world.cust_client, "by-ani", ident_by="ani", ident_value="+15551234", orig_enabled=True
    )
    snap = snapshot()
    assert run("4477", snap=snap, ani="15551234").originator.id == by_ani.id
    assert run("4477", snap=snap, ani="+15551234").originator.id == by_ani.id
    assert run("4477", snap=snap, ani="15551235").reason == "unknown_originator"


def test_a_number_that_is_only_the_tech_prefix_matches_nobody(world):
    """SPEC §5 step 1: the tech prefix must be followed by digits to dial."""
    f.account(world.cust_client, "prefixed", ident_value="10.7.7.7", tech_prefix="99", orig_enabled=True)
    snap = snapshot()
    assert run("99", snap=snap, src_ip="10.7.7.7").reason == "unknown_originator"
    assert run("994477", snap=snap, src_ip="10.7.7.7").originator.name == "prefixed"
