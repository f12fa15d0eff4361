"""Routing a call (SPEC §5): `route(snapshot, query) -> Result`, the one computation behind every answer.

Steps, as numbered in SPEC §5: 1 identify the originator, 2 its routing plan, 3 its customer rate, 4 the rules
that match and apply now, 5 balancing, 6 stop hunt, 7 each rule's candidates and their rejections, 8 appeal,
9 DR order, 10 one route per terminator, the vendor limit, then the additional plan. Every dropped candidate
is kept with its reason so the route test page and the API's `explain` can show it.

The engine only reads the snapshot; randomness (balancing, shuffling equal appeals) comes from `rng` and live
call counts (capacity) from `live`, so tests can fix both.
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter

from panel.billing import vendor_bills_more
from panel.routing.snapshot import (
    MICRO,
    NO_CODE,
    AccountEntry,
    PlanEntry,
    RateRow,
    RuleEntry,
    Snapshot,
    decimal_text,
)

# Candidate rejection reasons (step 7, then step 10 and stop hunt), in the order they are checked.
CANDIDATE_REASONS = (
    "terminator_disabled",
    "drained",
    "loop_protection",
    "termination_limit",
    "no_vendor_rate",
    "profit_margin",
    "increments",
    "min_asr",
    "min_acd",
    "capacity",
    "duplicate",
    "vendor_limit",
    "stop_hunt",
)
# Reasons a whole call is rejected.
STATUS_REASONS = (
    "unknown_originator",
    "originator_capacity",
    "no_routing_plan",
    "no_customer_rate",
    "no_matching_rule",
    "no_routes",
)
REASON_TEXT = {
    "unknown_originator": "No originator account matches the address, login, ANI, tech prefix and gateway.",
    "originator_capacity": "The originator account has reached its capacity of concurrent calls.",
    "no_routing_plan": "The account and its client have no routing plan that the client's company may use.",
    "no_customer_rate": "The originator's rate table has no rate for the number at this moment.",
    "no_matching_rule": "No rule of the routing plan matches the number and applies at this moment.",
    "no_routes": "Rules matched, but every candidate terminator was rejected.",
    "terminator_disabled": "The terminator account is not enabled as a terminator.",
    "drained": "The terminator account or its client is drained (an operator's temporary stop).",
    "loop_protection": "Loop protection: the terminator is the originator's client or has the source IP.",
    "termination_limit": "The terminator's client is outside the plan's termination limits.",
    "no_vendor_rate": "The terminator's rate table has no rate for the number at this moment.",
    "profit_margin": "The vendor rate leaves less than the profit margin.",
    "increments": "The vendor bills more seconds than the customer for some call length (match increments).",
    "min_asr": "The terminator's ASR for this code is below the rule's minimum.",
    "min_acd": "The terminator's ACD for this code is below the rule's minimum.",
    "capacity": "The terminator or the rule has reached its capacity of concurrent calls.",
    "duplicate": "The terminator is already in the route list (it appears once, first place kept).",
    "vendor_limit": "The plan's vendor limit of routes to one terminator client is reached.",
    "stop_hunt": "A rule before it has Stop hunt set.",
}
_DEFAULT_RNG = random.Random()
_APPEAL = attrgetter("appeal")


@dataclass(slots=True)
class RouteQuery:
    """One routing request: the originator's identity (or an account picked directly), number, gateway, time.

    `company_id` limits identification to that company and its descendants (an API token's company).
    """

    number: str
    src_ip: str | None = None
    login: str | None = None
    ani: str | None = None
    gateway: str | None = None
    at: datetime | None = None
    account_id: int | None = None
    company_id: int | None = None


class Route:
    """A candidate that survived step 7: a terminator account reached through one rule."""

    __slots__ = ("account", "rule", "plan", "vendor_code", "vendor_row", "customer_rate", "appeal")

    def __init__(self, account, rule, plan, vendor_code, vendor_row, customer_rate):
        self.account: AccountEntry = account
        self.rule: RuleEntry = rule
        self.plan: PlanEntry = plan
        self.vendor_code: str = vendor_code
        self.vendor_row: RateRow = vendor_row
        self.customer_rate: int = customer_rate
        self.appeal: float = 1.0

    terminator_id = property(lambda self: self.account.id, doc="Terminator account id.")
    terminator = property(lambda self: self.account.name, doc="Terminator account name.")
    client_id = property(lambda self: self.account.client_id, doc="Terminator client id.")
    client = property(lambda self: self.account.client_name, doc="Terminator client name.")
    host = property(lambda self: self.account.host, doc="Terminator address (first ident IP, else proxy).")
    port = property(lambda self: self.account.port, doc="Terminator port.")
    protocol = property(lambda self: self.account.protocol, doc="sip or h323.")
    proxy = property(lambda self: self.account.proxy, doc="Proxy host[:port] or None.")
    tech_prefix = property(lambda self: self.account.tech_prefix, doc="The terminator's tech prefix.")
    capacity = property(lambda self: self.account.term_capacity, doc="The terminator's capacity.")
    rule_id = property(lambda self: self.rule.id, doc="The rule that produced the route.")
    vendor_rate = property(lambda self: self.vendor_row[0], doc="Vendor rate per minute, millionths.")

    @property
    def margin(self) -> int:
        """Customer rate minus vendor rate per minute, in millionths."""
        return self.customer_rate - self.vendor_row[0]

    def to_json(self) -> dict:
        """The route as the API answers it."""
        account = self.account
        return {
            "account_id": account.id,
            "account": account.name,
            "client_id": account.client_id,
            "client": account.client_name,
            "host": account.host,
            "port": account.port,
            "protocol": account.protocol,
            "proxy": account.proxy or "",  # "" rather than null: switch scripts compare strings
            "tech_prefix": account.tech_prefix,
            "vendor_rate": decimal_text(self.vendor_row[0]),
            "vendor_code": self.vendor_code,
            "rule_id": self.rule.id,
            "plan_id": self.plan.id,
            "capacity": account.term_capacity,
            "appeal": round(self.appeal, 4),
            "margin": decimal_text(self.customer_rate - self.vendor_row[0]),
        }

    def __repr__(self) -> str:
        return f"<Route {self.account.client_name}/{self.account.name} rule {self.rule.id} {self.appeal:.3f}>"


class Rejection:
    """A candidate dropped by a rule (or a rule cut by stop hunt, with no terminator), and why."""

    __slots__ = ("rule", "account", "reason", "vendor_code", "vendor_rate")

    def __init__(self, rule, account, reason, vendor_code=None, vendor_rate=None):
        self.rule: RuleEntry = rule
        self.account: AccountEntry | None = account
        self.reason: str = reason
        self.vendor_code: str | None = vendor_code
        self.vendor_rate: int | None = vendor_rate

    rule_id = property(lambda self: self.rule.id, doc="The rule whose candidate it was.")
    terminator_id = property(lambda self: self.account.id if self.account else None, doc="Terminator id.")

    @property
    def text(self) -> str:
        """The reason in words."""
        return REASON_TEXT.get(self.reason, self.reason)

    def to_json(self) -> dict:
        """The rejection as the API's explain lists it."""
        account = self.account
        return {
            "rule_id": self.rule.id,
            "plan_id": self.rule.plan_id,
            "account_id": account.id if account else None,
            "account": account.name if account else None,
            "client_id": account.client_id if account else None,
            "client": account.client_name if account else None,
            "vendor_code": self.vendor_code,
            "vendor_rate": decimal_text(self.vendor_rate),
            "reason": self.reason,
        }

    def __repr__(self) -> str:
        who = f"{self.account.client_name}/{self.account.name}" if self.account else "-"
        return f"<Rejection rule {self.rule.id} {who} {self.reason}>"


class MatchedRule:
    """A rule that matched, in the order it was used (after balancing); `cut` when stop hunt skipped it."""

    __slots__ = ("rule", "plan", "cut")

    def __init__(self, rule: RuleEntry, plan: PlanEntry, cut: bool):
        self.rule = rule
        self.plan = plan
        self.cut = cut


class Result:
    """What routing answers: status, the originator, plan, customer rate, ordered routes and rejections."""

    __slots__ = (
        "status",
        "reason",
        "originator",
        "plan",
        "customer_rate",
        "customer_code",
        "customer_table",
        "number",
        "at",
        "routes",
        "rejections",
        "matched",
        "plans_used",
        "stopped",
        "snapshot_built_at",
    )

    def __init__(self, at: datetime, number: str, snapshot_built_at: datetime | None):
        self.status = "rejected"
        self.reason: str | None = None
        self.originator: AccountEntry | None = None
        self.plan: PlanEntry | None = None
        self.customer_rate: RateRow | None = None
        self.customer_code: str | None = None
        self.customer_table = None
        self.number = number
        self.at = at
        self.routes: list[Route] = []
        self.rejections: list[Rejection] = []
        self.matched: list[MatchedRule] = []
        self.plans_used: list[PlanEntry] = []
        self.stopped = False
        self.snapshot_built_at = snapshot_built_at

    @property
    def ok(self) -> bool:
        """True when there is at least one route."""
        return self.status == "ok"

    @property
    def reason_text(self) -> str:
        """The status reason in words."""
        return REASON_TEXT.get(self.reason or "", "")

    def rejected_ids(self) -> set[int]:
        """Ids of every terminator some rule rejected."""
        return {r.account.id for r in self.rejections if r.account is not None}

    def to_json(self, explain: bool = False) -> dict:
        """The answer of `POST /api/v1/route` (SPEC §7); `explain` adds the matched rules and rejections."""
        acc = self.originator
        row = self.customer_rate
        data = {
            "status": self.status,
            "reason": self.reason,
            "number": self.number,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "originator": None
            if acc is None
            else {
                "account_id": acc.id,
                "account": acc.name,
                "client_id": acc.client_id,
                "client": acc.client_name,
                "tech_prefix": acc.tech_prefix,
            },
            "plan": None if self.plan is None else {"id": self.plan.id, "name": self.plan.name},
            "customer_rate": None
            if row is None
            else {
                "rate": decimal_text(row[0]),
                "code": self.customer_code,
                "rate_table_id": self.customer_table.id if self.customer_table else None,
                "setup_fee": decimal_text(row[1]),
                "min_time": row[2],
                "interval": row[3],
            },
            "routes": [r.to_json() for r in self.routes],
        }
        if explain:
            data["rules"] = [
                {
                    "rule_id": m.rule.id,
                    "plan_id": m.plan.id,
                    "code": m.rule.code,
                    "type": m.rule.type,
                    "priority": m.rule.priority,
                    "used": not m.cut,
                }
                for m in self.matched
            ]
            data["explain"] = [r.to_json() for r in self.rejections]
        return data


class _Call:
    """Per-call state shared by the steps: the number and its codes, the moment, the originator."""

    __slots__ = (
        "snapshot",
        "number",
        "codes",
        "cids",
        "at",
        "ts",
        "src_key",
        "origin",
        "customer",
        "rng",
        "live",
    )

    def __init__(self, snapshot, number, at, src_key, origin, rng, live):
        self.snapshot = snapshot
        self.number = number
        universe = snapshot.codes
        # The number's prefixes that are codes of some rate table, longest first: nothing else can price it.
        self.codes = [p for p in (number[:i] for i in range(len(number), 0, -1)) if p in universe]
        # Their ids in the code registry of the mapped rate tables, looked up once for every table.
        ids = snapshot.code_ids
        self.cids = [ids.get(code, NO_CODE) for code in self.codes] if ids is not None else None
        self.at = at
        self.ts = at.timestamp()
        self.src_key = src_key
        self.origin = origin
        self.customer: RateRow | None = None
        self.rng = rng
        self.live = live


def route(snapshot: Snapshot, query: RouteQuery, *, rng=None, live=None) -> Result:
    """Route one call (SPEC §5 steps 1-10) and return the ordered routes and every rejection."""
    rng = rng or _DEFAULT_RNG
    at = query.at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    number = (query.number or "").strip()
    if number.startswith("+"):
        number = number[1:]
    result = Result(at, number, snapshot.built_at)

    # 1. Identify the originator.
    src_key = _address_key(query.src_ip) if query.src_ip else None
    if query.account_id is not None:
        origin = _pick_account(snapshot, query)
    else:
        origin = _identify(snapshot, query, number, src_key)
    if origin is None:
        result.reason = "unknown_originator"
        return result
    result.originator = origin
    if origin.tech_prefix and number.startswith(origin.tech_prefix):
        number = number[len(origin.tech_prefix) :]
    result.number = number
    if not number.isdigit() or not number.isascii():
        result.reason = "unknown_originator"
        return result
    if origin.orig_capacity is not None and (live.orig(origin.id) if live else 0) >= origin.orig_capacity:
        result.reason = "originator_capacity"
        return result

    # 2. Routing plan: the account's, else its client's; usable by the client's company, no fall-back.
    client = snapshot.clients.get(origin.client_id)
    plan_id = origin.orig_plan_id or (client.routing_plan_id if client else None)
    plan = snapshot.plans.get(plan_id) if plan_id else None
    if plan is None or not snapshot.plan_usable(plan, origin.company_id):
        result.reason = "no_routing_plan"
        return result
    result.plan = plan

    # 3. Customer rate.
    call = _Call(snapshot, number, at, src_key, origin, rng, live)
    table_id = origin.orig_rate_table_id or (client.orig_rate_table_id if client else None)
    table = snapshot.rate_tables.get(table_id) if table_id else None
    found = table.find(call.codes, call.cids, call.ts) if table is not None else None
    if found is None:
        result.reason = "no_customer_rate"
        return result
    result.customer_table = table
    result.customer_code, result.customer_rate = found
    call.customer = found[1]

    # Steps 4-10 for the plan, then its additional plans (no repeats, no cycles).
    any_rule = False
    seen_accounts: set[int] = set()
    visited: set[int] = set()
    current: PlanEntry | None = plan
    while current is not None and current.id not in visited:
        visited.add(current.id)
        result.plans_used.append(current)
        matched, stopped = _route_plan(call, current, result, seen_accounts)
        any_rule = any_rule or matched
        if stopped:
            result.stopped = True
            break
        current = snapshot.plans.get(current.additional_plan_id) if current.additional_plan_id else None

    if result.routes:
        result.status = "ok"
    else:
        result.reason = "no_routes" if any_rule else "no_matching_rule"
    return result


def _address_key(text: str) -> int | None:
    """An IP address as one integer (IPv6 offset past every IPv4 value); None when it is not an address."""
    text = text.strip()
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0]), "big") | (1 << 128)
    except OSError:
        return None


def _pick_account(snapshot: Snapshot, query: RouteQuery) -> AccountEntry | None:
    """The account chosen directly (route test): it must be an originator inside the query's company scope."""
    account = snapshot.accounts.get(query.account_id)
    if account is None or not account.orig_enabled:
        return None
    if query.company_id is not None and account.company_id not in snapshot.subtree(query.company_id):
        return None
    return account


def _identify(snapshot: Snapshot, query: RouteQuery, number: str, src_key: int | None) -> AccountEntry | None:
    """Step 1: login beats ANI beats IP; then the longest tech prefix; then the most specific network."""
    allowed = snapshot.subtree(query.company_id) if query.company_id is not None else None
    gateway_ids = snapshot.gateway_keys.get(query.gateway.strip(), frozenset()) if query.gateway else None

    def fits(account: AccountEntry) -> bool:
        prefix = account.tech_prefix
        if prefix:
            if not number.startswith(prefix):
                return False
            rest = number[len(prefix) :]
        else:
            rest = number
        if not rest or not rest.isdigit():
            return False
        if account.gateways and (not gateway_ids or account.gateways.isdisjoint(gateway_ids)):
            return False
        return allowed is None or account.company_id in allowed

    def best_of(accounts) -> AccountEntry | None:
        best, best_key = None, None
        for account in accounts:
            if fits(account):
                key = (len(account.tech_prefix), -account.id)
                if best_key is None or key > best_key:
                    best, best_key = account, key
        return best

    if query.login:
        found = best_of(snapshot.by_login.get(query.login.strip(), ()))
        if found is not None:
            return found
    if query.ani:
        found = best_of(snapshot.by_ani.get(query.ani.strip().lstrip("+"), ()))
        if found is not None:
            return found
    if src_key is None:
        return None
    index = snapshot.ip6 if src_key >> 128 else snapshot.ip4
    value = src_key & ((1 << 128) - 1)
    best, best_key = None, None
    for prefixlen, shift, networks in index.tables:  # most specific first
        for account in networks.get(value >> shift, ()):
            if fits(account):
                key = (len(account.tech_prefix), prefixlen, -account.id)
                if best_key is None or key > best_key:
                    best, best_key = account, key
    return best


def _rule_applies(call: _Call, rule: RuleEntry, profiles: dict) -> bool:
    """Step 4 filters: not expired, inside its time profile, number length in bounds, originator tags."""
    if rule.expires_ts is not None and call.ts >= rule.expires_ts:
        return False
    length = len(call.number)
    if rule.min_length is not None and length < rule.min_length:
        return False
    if rule.max_length is not None and length > rule.max_length:
        return False
    if rule.orig_tags:
        tags = call.origin.orig_tags
        if rule.orig_tags_any:
            if rule.orig_tags.isdisjoint(tags):
                return False
        elif not rule.orig_tags <= tags:
            return False
    if rule.time_profile is not None:
        inside = profiles.get(rule.time_profile_id)
        if inside is None:
            inside = profiles[rule.time_profile_id] = rule.time_profile.contains(call.at)
        if not inside:
            return False
    return True


def _matching_rules(call: _Call, plan: PlanEntry) -> list[RuleEntry]:
    """Step 4: the DID rules (first) and the code rules that match and apply, hunted and ordered."""
    number = call.number
    profiles: dict[int, bool] = {}
    found: list[RuleEntry] = []
    index = plan.rule_index
    size = len(number)
    for length in plan.literal_lengths:
        if length > size:
            continue
        for rule in index.get(number[:length], ()):
            if rule.regex is not None and rule.regex.match(number) is None:
                continue
            if _rule_applies(call, rule, profiles):
                found.append(rule)
    if found:
        if plan.rules_hunting == "longest_only":
            longest = max(rule.length for rule in found)
            found = [rule for rule in found if rule.length == longest]
        found.sort(key=_sort_key)
    if plan.did_rules and number in call.snapshot.dids:
        dids = [rule for rule in plan.did_rules if _rule_applies(call, rule, profiles)]
        if dids:
            found = dids + found
    return found


def _sort_key(rule: RuleEntry):
    return rule.sort_key


def _balance(rules: list[RuleEntry], rng) -> list[RuleEntry]:
    """Step 5: within a group of the same code and priority, balancing rules (1-99) swap places at random,
    the first place going to each with probability proportional to its value; the others stay put."""
    groups: dict[tuple, list[int]] | None = None
    for position, rule in enumerate(rules):
        if rule.balanced:
            if groups is None:
                groups = {}
            groups.setdefault((rule.type == "did", rule.group_key, rule.priority), []).append(position)
    if groups is None:
        return rules
    rules = list(rules)
    for positions in groups.values():
        if len(positions) < 2:
            continue
        pool = [rules[p] for p in positions]
        order = []
        total = sum(rule.balancing for rule in pool)
        while pool:
            pick = rng.random() * total
            for i, rule in enumerate(pool):
                pick -= rule.balancing
                if pick < 0 or i == len(pool) - 1:
                    break
            chosen = pool.pop(i)
            total -= chosen.balancing
            order.append(chosen)
        for position, rule in zip(positions, order, strict=True):
            rules[position] = rule
    return rules


_INCREMENTS: dict[tuple[int, int, int, int], bool] = {}


def _bills_more(customer_min: int, customer_interval: int, vendor_min: int, vendor_interval: int) -> bool:
    """vendor_bills_more, remembered (few distinct increments exist)."""
    key = (customer_min, customer_interval, vendor_min, vendor_interval)
    answer = _INCREMENTS.get(key)
    if answer is None:
        if len(_INCREMENTS) > 10_000:
            _INCREMENTS.clear()
        answer = _INCREMENTS[key] = vendor_bills_more(*key)
    return answer


def max_vendor_rate(customer_rate: int, pm_value: int | None, pm_percent: bool) -> int | None:
    """The highest vendor rate (millionths) the profit margin allows; None when no margin is set.

    Percent: rejected when customer - vendor < pm% * customer; absolute: when customer - vendor < pm.
    In integers: customer - vendor < ceil(pm * customer / 100 / MICRO) for percent.
    """
    if pm_value is None:
        return None
    if pm_percent:
        return customer_rate - -(-(pm_value * customer_rate) // (100 * MICRO))
    return customer_rate - pm_value


def _candidates(call: _Call, plan: PlanEntry, rule: RuleEntry, result: Result) -> list[Route]:
    """Step 7: the rule's candidates, each kept as a route or rejected with the first reason that applies."""
    snapshot = call.snapshot
    customer = call.customer
    customer_rate = customer[0]
    kind = rule.type
    if kind == "did":
        account = snapshot.accounts.get(snapshot.dids.get(call.number))
        candidates = (account,) if account is not None else ()
    else:
        candidates = rule.candidates
    is_did = kind == "did"
    dynamic = kind == "dynamic"
    if is_did:
        highest = None  # DID routes are exempt from the profit margin
    elif rule.pm_value is not None:
        highest = max_vendor_rate(customer_rate, rule.pm_value, rule.pm_percent)
    else:
        highest = max_vendor_rate(customer_rate, plan.pm_value, plan.pm_percent)
    mode = plan.match_increments
    check_increments = not is_did and (mode == "dynamic_static" or (mode == "dynamic" and dynamic))
    customer_min, customer_interval = customer[2], customer[3]
    loop = plan.loop_protection
    origin_client = call.origin.client_id
    limits = plan.termination_limits
    src_key = call.src_key
    live = call.live
    min_asr, min_acd = rule.min_asr, rule.min_acd
    quality = snapshot.quality if (min_asr is not None or min_acd is not None) else None
    rule_full = rule.capacity is not None and (live.rule(rule.id) if live else 0) >= rule.capacity
    codes, cids = call.codes, call.cids
    ts = call.ts
    rejections = result.rejections
    routes: list[Route] = []
    for account in candidates:
        # The terminator's rate: the longest of the number's codes with a row effective now.
        table = account.term_rates
        found = table.find(codes, cids, ts) if table is not None else None
        found_code, row = found if found is not None else (None, None)
        if row is None and dynamic:
            continue  # a dynamic rule's candidates are the terminators with a rate for the number
        if not account.term_enabled:
            reason = "terminator_disabled"
        elif account.drained is not None and ts < account.drained:
            reason = "drained"
        elif loop and (
            account.client_id == origin_client or (src_key is not None and src_key in account.addresses)
        ):
            reason = "loop_protection"
        elif limits and account.company_id not in limits:
            reason = "termination_limit"
        elif row is None:
            reason = "no_vendor_rate"
        else:
            if highest is not None and row[0] > highest:
                reason = "profit_margin"
            elif (
                check_increments
                # A vendor billing every second (1/1), or as the customer does, never bills more.
                and not (row[3] == 1 and row[2] <= 1)
                and (row[2] != customer_min or row[3] != customer_interval)
                and _bills_more(customer_min, customer_interval, row[2], row[3])
            ):
                reason = "increments"
            elif (
                quality is not None
                and (stats := quality.get((account.id, found_code))) is not None
                and (
                    (min_asr is not None and stats.asr is not None and stats.asr < min_asr)
                    or (min_acd is not None and stats.acd is not None and stats.acd < min_acd)
                )
            ):
                reason = (
                    "min_asr"
                    if min_asr is not None and stats.asr is not None and stats.asr < min_asr
                    else "min_acd"
                )
            elif rule_full or (
                account.term_capacity is not None
                and (live.term(account.id) if live else 0) >= account.term_capacity
            ):
                reason = "capacity"
            else:
                routes.append(Route(account, rule, plan, found_code, row, customer_rate))
                continue
        rejections.append(Rejection(rule, account, reason, found_code, row[0] if row is not None else None))
    return routes


def _appeal(call: _Call, plan_routes: list[tuple[RuleEntry, list[Route]]]) -> None:
    """Step 8: each policy factor scaled 0..1 across this plan's routes (best = 1, missing = 0.5).

    Appeal is the weighted mean of the scaled factors of the rule's policy; static and DID routes use a
    rate-only policy; a policy with no factors gives 1.
    """
    everything = [route for _, routes in plan_routes for route in routes]
    if not everything:
        return
    rates = [route.vendor_row[0] for route in everything]
    low, high = min(rates), max(rates)
    span = high - low
    policies = [rule.appeal_policy for rule, _ in plan_routes]
    if all(policy.rate_only for policy in policies):
        # Only rate in use (the common case): appeal is the scaled rate, or 1 for a policy with no factors.
        for policy, (_, routes) in zip(policies, plan_routes, strict=True):
            if not policy.total or not span:
                for route in routes:
                    route.appeal = 1.0
            else:
                for route in routes:
                    route.appeal = (high - route.vendor_row[0]) / span
        return
    quality = call.snapshot.quality
    columns: dict[str, list[float | None]] = {"rate": [float(r) for r in rates]}
    for factor in ("asr", "acd", "pdd"):
        if any(f == factor for policy in policies for f, _ in policy.weights):
            values = []
            for route in everything:
                stats = quality.get((route.account.id, route.vendor_code))
                values.append(None if stats is None else getattr(stats, factor))
            columns[factor] = values
    scaled: dict[str, list[float]] = {}
    for factor, values in columns.items():
        present = [v for v in values if v is not None]
        lo, hi = (min(present), max(present)) if present else (0.0, 0.0)
        lower_is_better = factor in ("rate", "pdd")
        scaled[factor] = [
            0.5
            if v is None
            else 1.0
            if hi == lo
            else ((hi - v) / (hi - lo) if lower_is_better else (v - lo) / (hi - lo))
            for v in values
        ]
    position = 0
    for policy, (_, routes) in zip(policies, plan_routes, strict=True):
        total = policy.total
        for route in routes:
            if total:
                route.appeal = (
                    sum(weight * scaled[factor][position] for factor, weight in policy.weights) / total
                )
            else:
                route.appeal = 1.0
            position += 1


def _by_appeal(routes: list[Route], rng) -> None:
    """Sort routes by appeal, best first; routes of equal appeal are shuffled."""
    routes.sort(key=_APPEAL, reverse=True)  # stable: equal appeals keep their order until shuffled below
    start = 0
    size = len(routes)
    while start < size:
        end = start + 1
        appeal = routes[start].appeal
        while end < size and routes[end].appeal == appeal:
            end += 1
        if end - start > 1:
            run = routes[start:end]
            rng.shuffle(run)
            routes[start:end] = run
        start = end


def _appeal_code_key(route: Route) -> tuple:
    """appeal_code order: DID rules first, then appeal, rule length (longest first), priority."""
    return (route.rule.type != "did", -route.appeal, -route.rule.length, route.rule.priority)


def _shuffle_ties(routes: list[Route], rng) -> None:
    """Routes still tied after the appeal_code sort are shuffled whichever rules they come from; routes of
    one balancing group keep the order of the balancing draw (SPEC §5.9)."""
    start, size = 0, len(routes)
    while start < size:
        key = _appeal_code_key(routes[start])
        end = start + 1
        while end < size and _appeal_code_key(routes[end]) == key:
            end += 1
        if end - start > 1:
            run = routes[start:end]
            draws = [rng.random() for _ in run]
            groups: dict[tuple, list[int]] = {}
            for i, route in enumerate(run):
                rule = route.rule
                if rule.balanced:
                    groups.setdefault((rule.type == "did", rule.group_key, rule.priority), []).append(i)
            for members in groups.values():
                # A group's draws, sorted, in the group's order: it interleaves at random but stays in order.
                for i, draw in zip(members, sorted(draws[i] for i in members), strict=True):
                    draws[i] = draw
            routes[start:end] = [run[i] for i in sorted(range(len(run)), key=draws.__getitem__)]
        start = end


def _route_plan(call: _Call, plan: PlanEntry, result: Result, seen: set[int]) -> tuple[bool, bool]:
    """Steps 4-10 for one plan, appending to `result`; returns (a rule matched, stop hunt ended the hunt)."""
    rules = _matching_rules(call, plan)
    if not rules:
        return False, False
    rules = _balance(rules, call.rng)
    stopped = False
    used: list[RuleEntry] = []
    for rule in rules:
        if stopped:
            result.matched.append(MatchedRule(rule, plan, True))
            result.rejections.append(Rejection(rule, None, "stop_hunt"))
            continue
        result.matched.append(MatchedRule(rule, plan, False))
        used.append(rule)
        if rule.stop_hunt:
            stopped = True

    plan_routes = [(rule, _candidates(call, plan, rule, result)) for rule in used]
    _appeal(call, plan_routes)

    # 9. DR order. Equal appeals are shuffled; code_appeal keeps the rule order.
    ordered: list[Route] = []
    for _, routes in plan_routes:
        if len(routes) > 1:
            _by_appeal(routes, call.rng)
        ordered.extend(routes)
    if plan.dr_order == "appeal_code":
        ordered.sort(key=_appeal_code_key)
        _shuffle_ties(ordered, call.rng)

    # 10. One route per terminator account; at most `vendor_limit` per terminator client.
    per_client: dict[int, int] = {}
    limit = plan.vendor_limit
    for route in ordered:
        account = route.account
        if account.id in seen:
            result.rejections.append(
                Rejection(route.rule, account, "duplicate", route.vendor_code, route.vendor_row[0])
            )
            continue
        if limit is not None:
            count = per_client.get(account.client_id, 0)
            if count >= limit:
                result.rejections.append(
                    Rejection(route.rule, account, "vendor_limit", route.vendor_code, route.vendor_row[0])
                )
                continue
            per_client[account.client_id] = count + 1
        seen.add(account.id)
        result.routes.append(route)
    return True, stopped
