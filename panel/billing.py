"""Billing increments (SPEC §3): billed seconds, the charge, and whether a vendor ever bills more than a
customer.

Plain Python, no Flask: the routing engine, CDR rating and the tests use it.
"""

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from math import gcd

SIXTY = Decimal(60)
CENT_PLACES = Decimal("0.000001")


def billed_seconds(duration: int, min_time: int, interval: int) -> int:
    """Seconds billed for a call of `duration` s: 0; min; or min + ceil((d - min) / interval) * interval."""
    if duration <= 0:
        return 0
    min_time = max(min_time, 0)
    interval = max(interval, 1)
    if duration <= min_time:
        return min_time
    return min_time + -(-(duration - min_time) // interval) * interval


def charge(
    duration: int, rate: Decimal, min_time: int, interval: int, setup_fee: Decimal = Decimal(0)
) -> Decimal:
    """billed / 60 * rate + setup fee, rounded to 6 decimals. A call of 0 seconds costs only the setup fee.

    The setup fee is charged for every rated call; CDR rating passes 0 for unanswered calls.
    """
    billed = billed_seconds(duration, min_time, interval)
    amount = Decimal(billed) / SIXTY * Decimal(rate) + Decimal(setup_fee or 0)
    return amount.quantize(CENT_PLACES, rounding=ROUND_HALF_UP)


@lru_cache(maxsize=4096)
def vendor_bills_more(
    customer_min: int, customer_interval: int, vendor_min: int, vendor_interval: int
) -> bool:
    """True when, for some call length, the vendor bills more seconds than the customer (SPEC §5 step 7).

    Both billing functions are step functions; the vendor's is constant on (vm + k*vi, vm + (k+1)*vi] while
    the customer's only grows, so comparing at each left end (the first second after a vendor step) is enough,
    and beyond max(minimums) both exceed the duration by a period of lcm(intervals), which bounds the search.
    Cached: the routing engine asks the same few pairs of increments for every call.
    """
    cm, ci = max(customer_min, 0), max(customer_interval, 1)
    vm, vi = max(vendor_min, 0), max(vendor_interval, 1)
    if billed_seconds(1, vm, vi) > billed_seconds(1, cm, ci):
        return True
    horizon = max(cm, vm) + ci * vi // gcd(ci, vi) + vi
    d = vm + 1
    while d <= horizon:
        if billed_seconds(d, vm, vi) > billed_seconds(d, cm, ci):
            return True
        d += vi
    return False
