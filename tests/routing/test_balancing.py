"""Balancing (SPEC §5 step 5): over 10,000 routed calls the first route follows the balancing values.

Rules of the same code and priority whose balancing is 1-99 swap places at random for each call, the first
place going to each with probability proportional to its value; 100 or more (or none) never moves. The random
source is fixed, so these figures are reproducible; the tolerance is two percentage points.
"""

import random
from collections import Counter

import pytest

from tests import factories as f
from tests.routing.conftest import run, snapshot

CALLS = 10_000


def first_route_shares(world, balancing: list[int | None], *, seed: int = 2024) -> dict[str, float]:
    """Share of calls whose first route is each vendor, with one static rule per vendor on code 44."""
    vendors = [world.v1, world.v2, world.v3][: len(balancing)]
    for v, value in zip(vendors, balancing, strict=True):
        f.rule(
            world.plan,
            "44",
            "static_account",
            priority=3,
            balancing=value,
            terminator_account_id=v.account.id,
        )
    snap = snapshot()
    rng = random.Random(seed)
    counts = Counter(run("447700900123", snap=snap, rng=rng).routes[0].terminator for _ in range(CALLS))
    return {name: counts[name] / CALLS for name in ("v1", "v2", "v3")[: len(balancing)]}


@pytest.mark.parametrize("value", [33, 1, 99])
def test_equal_values_split_evenly(world, value):
    shares = first_route_shares(world, [value, value, value])
    for share in shares.values():
        assert abs(share - 1 / 3) <= 0.02, shares


def test_values_set_the_shares(world):
    shares = first_route_shares(world, [50, 25, 25])
    assert abs(shares["v1"] - 0.50) <= 0.02, shares
    assert abs(shares["v2"] - 0.25) <= 0.02, shares
    assert abs(shares["v3"] - 0.25) <= 0.02, shares


def test_hundred_never_changes_order(world):
    shares = first_route_shares(world, [100, 100])
    assert shares == {"v1": 1.0, "v2": 0.0}


def test_every_route_is_kept_while_the_order_changes(world):
    for v in (world.v1, world.v2, world.v3):
        f.rule(world.plan, "44", "static_account", balancing=50, terminator_account_id=v.account.id)
    snap = snapshot()
    rng = random.Random(5)
    orders = {tuple(r.terminator for r in run("4477", snap=snap, rng=rng).routes) for _ in range(300)}
    assert len(orders) == 6 and all(sorted(order) == ["v1", "v2", "v3"] for order in orders)


def test_unbalanced_rule_keeps_its_place_inside_the_group(world):
    a = f.rule(world.plan, "44", "static_account", balancing=50, terminator_account_id=world.v1.account.id)
    fixed = f.rule(
        world.plan, "44", "static_account", balancing=None, terminator_account_id=world.v2.account.id
    )
    c = f.rule(world.plan, "44*", "static_account", balancing=50, terminator_account_id=world.v3.account.id)
    snap = snapshot()
    rng = random.Random(9)
    seen = Counter()
    for _ in range(400):
        order = [m.rule.id for m in run("4477", snap=snap, rng=rng).matched]
        assert order[1] == fixed.id  # `44` and `44*` are one code: a and c swap around it
        seen[order[0]] += 1
    assert set(seen) == {a.id, c.id}


def test_different_priorities_do_not_balance_together(world):
    f.rule(
        world.plan,
        "44",
        "static_account",
        priority=1,
        balancing=50,
        terminator_account_id=world.v1.account.id,
    )
    f.rule(
        world.plan,
        "44",
        "static_account",
        priority=2,
        balancing=50,
        terminator_account_id=world.v2.account.id,
    )
    snap = snapshot()
    rng = random.Random(3)
    assert {run("4477", snap=snap, rng=rng).routes[0].terminator for _ in range(200)} == {"v1"}
