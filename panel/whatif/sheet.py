"""The LCR sheet and the what-if difference: `route()` over every code of a plan's deck.

A sheet routes each code of the deck as the dialled number, for one originator at one moment, and keeps per
destination the customer rate and the routes in order (vendor, vendor rate, margin, appeal). The what-if
preview routes the touched codes twice, on the current snapshot and on a copy with the change applied
(`panel.whatif.overlay`), for each group of originator accounts that route alike, and keeps the destinations
whose first route, route list or margin changed. Randomness (balancing, equal appeals) is seeded by the code,
so both sides draw the same numbers and only the change moves a route.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from panel.routing.engine import RouteQuery, route
from panel.routing.snapshot import AccountEntry, Snapshot
from panel.values import is_digits
from panel.whatif import overlay

# Destinations x originator groups evaluated by one preview at most; beyond it the codes are sampled evenly.
MAX_EVALUATIONS = 240_000


class SheetRoute:
    """One route of a destination: terminator, vendor rate and margin (millionths), appeal, rule."""

    __slots__ = ("account_id", "label", "client_id", "vendor_rate", "margin", "appeal", "rule_id")

    def __init__(self, route):
        account = route.account
        self.account_id: int = account.id
        self.label: str = f"{account.client_name} / {account.name}"
        self.client_id: int = account.client_id
        self.vendor_rate: int = route.vendor_row[0]
        self.margin: int = route.customer_rate - route.vendor_row[0]
        self.appeal: float = route.appeal
        self.rule_id: int = route.rule.id


@dataclass(slots=True)
class SheetRow:
    """One destination of the sheet."""

    code: str
    name: str
    country: str
    status: str
    reason: str | None
    customer_rate: int | None
    customer_code: str | None
    routes: tuple[SheetRoute, ...]

    @property
    def first(self) -> SheetRoute | None:
        """The first route, or None."""
        return self.routes[0] if self.routes else None

    @property
    def no_route(self) -> bool:
        """Flag: no route at all."""
        return not self.routes

    @property
    def negative(self) -> bool:
        """Flag: some route loses money (vendor rate above the customer rate)."""
        return any(r.margin < 0 for r in self.routes)


def seed(rng: random.Random, code: str) -> random.Random:
    """`rng` seeded by the code: both sides of a preview draw the same balancing and shuffles for it."""
    rng.seed(int(code) if is_digits(code) and len(code) < 30 else code)
    return rng


def route_code(snapshot: Snapshot, origin_id: int, code: str, name: str, country: str, at: datetime, rng):
    """(SheetRow, Result) of one code routed as the number for the originator `origin_id`."""
    result = route(snapshot, RouteQuery(number=code, account_id=origin_id, at=at), rng=seed(rng, code))
    rate = result.customer_rate[0] if result.customer_rate is not None else None
    routes = tuple(map(SheetRoute, result.routes))
    row = SheetRow(code, name, country, result.status, result.reason, rate, result.customer_code, routes)
    return row, result


def evaluate(
    snapshot: Snapshot, origin: AccountEntry, codes: Iterable[tuple[str, str, str]], at: datetime
) -> list[SheetRow]:
    """Route every (code, name, country) for `origin` (an entry of `snapshot`, see overlay) at `at`."""
    rng = random.Random()
    origin_id = origin.id
    return [route_code(snapshot, origin_id, code, name, country, at, rng)[0] for code, name, country in codes]


def sheet(snapshot: Snapshot, origin: AccountEntry, codes, at: datetime) -> list[SheetRow]:
    """The LCR sheet: `origin` (from overlay.originator) routed over `codes` on a copy holding it."""
    return evaluate(overlay.with_originator(snapshot, origin), origin, codes, at)


# --- what-if ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Group:
    """Originator accounts that route alike: same plan, rate table, tags and (for loop protection) client."""

    key: tuple
    entry: AccountEntry
    account_ids: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The accounts of the group, the first few named."""
        shown = ", ".join(self.labels[:3])
        more = len(self.labels) - 3
        return f"{shown} and {more} more" if more > 0 else shown


def groups(snapshot: Snapshot, company_ids, plan_ids: set[int] | None = None) -> list[Group]:
    """Originator accounts of the companies, grouped; only those whose plan chain meets `plan_ids`."""
    vendors = {a.client_id for a in snapshot.accounts.values() if a.term_enabled}
    found: dict[tuple, Group] = {}
    for account in sorted(snapshot.accounts.values(), key=lambda a: a.id):
        if not account.orig_enabled or account.company_id not in company_ids:
            continue
        client = snapshot.clients.get(account.client_id)
        plan_id = account.orig_plan_id or (client.routing_plan_id if client else None)
        if plan_id is None or (plan_ids is not None and not plan_ids.intersection(chain(snapshot, plan_id))):
            continue
        table_id = account.orig_rate_table_id or (client.orig_rate_table_id if client else None)
        key = (
            plan_id,
            table_id,
            account.orig_tags,
            account.company_id,
            account.client_id if account.client_id in vendors else None,
        )
        group = found.get(key)
        if group is None:
            group = found[key] = Group(key, account)
        group.account_ids.append(account.id)
        group.labels.append(f"{account.client_name} / {account.name}")
    return list(found.values())


def chain(snapshot: Snapshot, plan_id: int) -> list[int]:
    """The plan and its additional plans, in order, without repeats."""
    seen: list[int] = []
    current = snapshot.plans.get(plan_id)
    while current is not None and current.id not in seen:
        seen.append(current.id)
        current = snapshot.plans.get(current.additional_plan_id) if current.additional_plan_id else None
    return seen


@dataclass(slots=True)
class Change:
    """A destination whose routing changes for a group of originators."""

    group: Group
    old: SheetRow
    new: SheetRow
    traffic: int = 0

    @property
    def lost(self) -> bool:
        """The destination had routes and has none after the change."""
        return bool(self.old.routes) and not self.new.routes

    @property
    def what(self) -> str:
        """What changed, in words: first route, route list or margin."""
        old, new = self.old.first, self.new.first
        if (old and old.account_id) != (new and new.account_id):
            return "first route"
        if [r.account_id for r in self.old.routes] != [r.account_id for r in self.new.routes]:
            return "route list"
        return "margin"


def changed(old: SheetRow, new: SheetRow) -> bool:
    """True when the first route, the route list or a margin differs."""
    if [(r.account_id, r.margin) for r in old.routes] != [(r.account_id, r.margin) for r in new.routes]:
        return True
    return old.customer_rate != new.customer_rate


@dataclass(slots=True)
class Preview:
    """The outcome of a what-if: the changes (costly first) and what was evaluated."""

    changes: list[Change]
    destinations: int
    evaluated: int
    sampled_from: int | None
    groups: int


def sample(codes: list, limit: int) -> tuple[list, int | None]:
    """At most `limit` codes, evenly spread; with the total when sampled."""
    if len(codes) <= limit:
        return codes, None
    step = len(codes) / limit
    return [codes[int(i * step)] for i in range(limit)], len(codes)


def preview(
    old: Snapshot,
    new: Snapshot,
    targets: list[tuple[Group, list[tuple[str, str, str]]]],
    at: datetime,
    traffic: dict[tuple[int, str], int] | None = None,
    limit: int = MAX_EVALUATIONS,
    affected: Callable[[Group, object], bool] | None = None,
) -> Preview:
    """Route each group's codes on both snapshots; the changes sorted by traffic (then code).

    `affected(group, result)`, when given, says from the old answer whether the change can alter it at all
    (e.g. no changed terminator among the candidates of the rules used): when not, the new side is not routed.
    """
    total = sum(len(codes) for _, codes in targets) or 1
    changes: list[Change] = []
    evaluated = 0
    sampled_from = None
    destinations: set[str] = set()
    rng = random.Random()
    for group, codes in targets:
        share = max(1, limit * len(codes) // total)
        codes, was = sample(codes, share)
        if was is not None:
            sampled_from = (sampled_from or 0) + was
        destinations.update(c for c, _, _ in codes)
        origin_id = group.entry.id
        for code, name, country in codes:
            before, result = route_code(old, origin_id, code, name, country, at, rng)
            if affected is not None and not affected(group, result):
                continue
            after, _ = route_code(new, origin_id, code, name, country, at, rng)
            if changed(before, after):
                changes.append(Change(group, before, after))
        evaluated += len(codes)
    if traffic:
        calls: dict[int, dict[str, int]] = defaultdict(dict)
        for (account_id, code), count in traffic.items():
            calls[account_id][code] = count
        for change in changes:
            code = change.old.customer_code or change.new.customer_code
            change.traffic = sum(calls.get(a, {}).get(code, 0) for a in change.group.account_ids)
    changes.sort(key=lambda c: (-c.traffic, not c.lost, c.old.code, c.group.entry.id))
    return Preview(changes, len(destinations), evaluated, sampled_from, len(targets))
