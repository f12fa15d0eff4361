"""Demo calls that behave like a switch's: routed by the routing engine, then billed through the CDR ingest.

Each call picks an originator account and a number, asks `panel.routing.engine.route` (what the route API
answers), tries the routes in order as a switch would (a vendor answers with its own answer-seizure ratio,
otherwise the next route is tried) and turns every attempt into a call record for `panel.cdrs.ingest` (what
`POST /api/v1/cdrs` calls). So statistics, vendor quality, balancing shares, balances and the home page show
figures that routing really produced.
"""

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from panel import cdrs
from panel.extensions import db
from panel.models import Account, Client
from panel.routing.engine import RouteQuery, route

# Vendor behaviour by client name: (answer ratio, mean answered seconds, mean PDD ms); others get the default.
VENDORS = {
    "Globex Wholesale": (0.58, 170, 1800),
    "Hermes Transit": (0.68, 210, 1400),
    "Ionic Telecom": (0.47, 140, 2600),
    "Juno Routes": (0.31, 75, 3900),
    "Kappa Exchange": (0.52, 150, 2200),
}
DEFAULT_VENDOR = (0.5, 150, 2500)
FAILURE_CODES = (486, 486, 480, 480, 487, 503, 404, 408)
# Destinations by share of traffic: (country code, next digits, digits after them).
DESTINATIONS = [
    ("44", "7", 9, 20),
    ("44", "20", 8, 8),
    ("49", "15", 9, 14),
    ("49", "30", 8, 6),
    ("1", "", 10, 12),
    ("33", "6", 8, 6),
    ("39", "3", 9, 5),
    ("90", "5", 9, 4),
    ("234", "80", 8, 4),
    ("880", "17", 8, 5),
    ("91", "9", 9, 6),
    ("48", "5", 8, 3),
    ("31", "6", 8, 3),
    ("63", "9", 9, 2),
    ("254", "7", 8, 2),
]
MAX_ATTEMPTS = 3
BATCH = 1000


@dataclass
class Attempt:
    """One attempt of a call to one terminator, as the CDR will say."""

    record: dict
    answered: bool
    ends_at: datetime


def originators() -> list[int]:
    """Ids of the accounts that may originate calls."""
    stmt = (
        select(Account.id)
        .join(Client, Client.id == Account.client_id)
        .where(Account.orig_enabled.is_(True))
        .order_by(Account.id)
    )
    return list(db.session.scalars(stmt))


def number(rng: random.Random) -> str:
    """A dialled number, destinations weighted like a wholesale carrier's traffic."""
    cc, head, digits, _weight = rng.choices(DESTINATIONS, weights=[d[3] for d in DESTINATIONS])[0]
    return cc + head + "".join(str(rng.randint(0, 9)) for _ in range(digits))


def diurnal(moment: datetime) -> float:
    """Relative traffic at an hour of the day (UTC): quiet at night, busiest in the European afternoon."""
    hour = moment.hour + moment.minute / 60
    return 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour - 5) / 17)) if 5 <= hour <= 22 else 0.25


def attempts(snapshot, account_id: int, at: datetime, rng: random.Random, call_id: str) -> list[Attempt]:
    """Route one call and try its routes in order: the attempts, the last one answered if any was."""
    result = route(snapshot, RouteQuery(number=number(rng), account_id=account_id, at=at), rng=rng)
    made: list[Attempt] = []
    moment = at
    for index, found in enumerate(result.routes[:MAX_ATTEMPTS]):
        ratio, mean_seconds, mean_pdd = VENDORS.get(found.client, DEFAULT_VENDOR)
        answered = rng.random() < ratio
        pdd = max(300, int(rng.gauss(mean_pdd, mean_pdd / 4)))
        duration = max(1, int(rng.expovariate(1 / mean_seconds))) if answered else 0
        record = {
            "call_id": f"{call_id}-{index}",
            "orig_account_id": account_id,
            "term_account_id": found.account.id,
            "rule_id": found.rule.id,
            "number": result.number,
            "start": moment.isoformat(),
            "duration": duration,
            "answered": answered,
            "sip_code": 200 if answered else rng.choice(FAILURE_CODES),
            "pdd": pdd,
        }
        ends_at = moment + timedelta(milliseconds=pdd, seconds=duration)
        made.append(Attempt(record, answered, ends_at))
        if answered:
            break
        moment = ends_at + timedelta(milliseconds=200)
    return made


def seed(snapshot, now: datetime, days: int = 3, per_day: int = 1600, seed_value: int = 2026) -> int:
    """Days of calls before `now`, ingested in batches as a switch posts them; returns the records stored."""
    rng = random.Random(seed_value)
    accounts = originators()
    if not accounts:
        return 0
    start = now - timedelta(days=days)
    span = (now - timedelta(minutes=2) - start).total_seconds()
    pending: list[dict] = []
    stored = 0
    for n in range(days * per_day):
        while True:  # more calls in the busy hours
            at = start + timedelta(seconds=rng.uniform(0, span))
            if rng.random() < diurnal(at):
                break
        pending += [a.record for a in attempts(snapshot, rng.choice(accounts), at, rng, f"demo-{n:06d}")]
        if len(pending) >= BATCH - MAX_ATTEMPTS:
            stored += cdrs.ingest(pending, company_id=None).stored
            pending = []
    if pending:
        stored += cdrs.ingest(pending, company_id=None).stored
    return stored
