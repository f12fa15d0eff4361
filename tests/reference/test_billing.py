"""Billing increments (SPEC §3, §5 step 7): billed seconds, the charge, and the vendor-bills-more check.

The seed's sample table is checked as written; hypothesis compares both functions with brute force.
"""

from decimal import Decimal
from math import lcm

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from panel.billing import billed_seconds, charge, vendor_bills_more
from tests.oracles import brute_billed

# Customer min time / interval, vendor min time / interval, expected: the seed's "Sample Scenarios".
SEED_TABLE = [
    (60, 60, 60, 60, "OK"),
    (30, 6, 30, 1, "OK"),
    (30, 6, 6, 6, "OK"),
    (1, 1, 30, 6, "FAIL"),
    (7, 7, 6, 6, "FAIL"),
]


@pytest.mark.parametrize(("cm", "ci", "vm", "vi", "expected"), SEED_TABLE)
def test_seed_sample_scenarios(cm, ci, vm, vi, expected):
    """OK: the vendor never bills more seconds than the customer; FAIL: some call length bills more."""
    assert ("FAIL" if vendor_bills_more(cm, ci, vm, vi) else "OK") == expected


def test_seed_explanation_of_the_last_row():
    """7/7 customer vs 6/6 vendor: a 7-second call bills 7 seconds on the customer and 12 on the vendor."""
    assert billed_seconds(7, 7, 7) == 7
    assert billed_seconds(7, 6, 6) == 12


@pytest.mark.parametrize(
    ("duration", "min_time", "interval", "billed"),
    [
        (0, 30, 6, 0),  # no call, nothing billed
        (1, 30, 6, 30),  # inside the min time
        (30, 30, 6, 30),
        (31, 30, 6, 36),  # one interval after the min time
        (36, 30, 6, 36),
        (37, 30, 6, 42),
        (61, 60, 60, 120),
        (5, 0, 6, 6),  # no min time: whole intervals from the first second
        (1, 1, 1, 1),
        (125, 1, 1, 125),
    ],
)
def test_billed_seconds_examples(duration, min_time, interval, billed):
    """The formula of SPEC §3 on hand-checked values."""
    assert billed_seconds(duration, min_time, interval) == billed


def test_charge_is_billed_minutes_times_rate_plus_setup_fee():
    """Charge = billed / 60 * rate + setup fee, to 6 decimals."""
    assert charge(31, Decimal("0.06"), 30, 6) == Decimal("0.036000")
    assert charge(61, Decimal("0.012"), 60, 60, Decimal("0.05")) == Decimal("0.074000")
    assert charge(0, Decimal("0.5"), 60, 60, Decimal("0.05")) == Decimal("0.050000")
    assert charge(1, Decimal("0.000001"), 1, 1) == Decimal("0.000000")


increments = st.tuples(st.integers(min_value=0, max_value=120), st.integers(min_value=1, max_value=60))


@settings(max_examples=300, deadline=None)
@given(duration=st.integers(min_value=0, max_value=4000), inc=increments)
def test_billed_seconds_matches_brute_force(duration, inc):
    """The closed formula equals counting increments, covers the call and never overshoots an increment."""
    min_time, interval = inc
    billed = billed_seconds(duration, min_time, interval)
    assert billed == brute_billed(duration, min_time, interval)
    assert billed >= duration
    if duration > min_time:
        assert billed - duration < interval


@settings(max_examples=300, deadline=None)
@given(customer=increments, vendor=increments)
# Known edge cases: a 6 s call bills 0/3 as 6 s and 1/2 as 7 s (random draws meet it ~1 in 10,000); equal
# increments; a vendor minimum above the customer's interval; no minimum on either side.
@example(customer=(0, 3), vendor=(1, 2))
@example(customer=(7, 7), vendor=(6, 6))
@example(customer=(60, 60), vendor=(60, 60))
@example(customer=(0, 1), vendor=(0, 1))
def test_vendor_bills_more_matches_brute_force(customer, vendor):
    """The check equals trying every call length up to well past where both functions repeat."""
    (cm, ci), (vm, vi) = customer, vendor
    horizon = max(cm, vm) + 2 * lcm(ci, vi) + max(ci, vi)
    brute = any(brute_billed(d, vm, vi) > brute_billed(d, cm, ci) for d in range(1, horizon + 1))
    assert vendor_bills_more(cm, ci, vm, vi) is brute


@settings(max_examples=200, deadline=None)
@given(inc=increments)
def test_equal_increments_never_fail(inc):
    """A vendor with the customer's own increments never bills more."""
    assert not vendor_bills_more(*inc, *inc)


@settings(max_examples=200, deadline=None)
@given(
    d1=st.integers(min_value=0, max_value=3600),
    d2=st.integers(min_value=0, max_value=3600),
    inc=increments,
    rate=st.decimals(min_value=0, max_value=10, places=6),
)
def test_charge_never_decreases_with_duration(d1, d2, inc, rate):
    """A longer call never costs less."""
    short, long = sorted((d1, d2))
    assert charge(short, rate, *inc) <= charge(long, rate, *inc)
