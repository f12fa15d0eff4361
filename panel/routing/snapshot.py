"""The routing snapshot: everything routing needs, read from the database once, never changed afterwards.

Money is held as integer millionths (rates have at most 6 decimals, SPEC §3), so comparisons are exact and
cheap; times are POSIX seconds. The structures are shaped for the lookups of `engine.route`:

- a rate table is a mapping code -> tuple of rate rows (latest `effective_from` first): a file shared by the
  host's processes (`panel.routing.ratestore`) or a dict; a number is priced by trying its prefixes that
  exist in some table (`Snapshot.codes`), longest first;
- originators are found by dicts (login, ANI) and, for addresses, one dict of networks per prefix length;
- a plan's code rules are indexed by the literal part of their code before any `*` (the rest, if any, is
  checked with a compiled expression).

Nothing here changes after `build.build_snapshot` returns, so any number of threads may route with one
snapshot while a newer one is being built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from panel.routing.ratestore import NO_CODE, ROW, ROW_SIZE, MappedRates
from panel.timeprofile import CompiledProfile

MICRO = 1_000_000
INFINITY = float("inf")

# A rate row: (rate, setup_fee, min_time, interval, effective_from, end); money in millionths, times in
# POSIX seconds (end = INFINITY when open).
RateRow = tuple[int, int, int, int, float, float]
RateRows = tuple[RateRow, ...]

_UNPACK = ROW.unpack_from

RULE_TYPE_LABELS = {
    "static_client": "Static client",
    "static_account": "Static account",
    "dynamic": "Dynamic",
    "did": "DID",
}


def micro_to_decimal(value: int | None) -> Decimal | None:
    """Millionths as a Decimal with six decimals (12500 -> 0.012500)."""
    if value is None:
        return None
    return Decimal(value).scaleb(-6)


_TEXTS: dict[int, str] = {}


def decimal_text(value: int | None) -> str | None:
    """Millionths as the text the API answers: `0.0125`, `1`, `-0.002` (remembered: few values repeat)."""
    if value is None:
        return None
    text = _TEXTS.get(value)
    if text is None:
        if len(_TEXTS) > 100_000:
            _TEXTS.clear()
        text = _TEXTS[value] = format(Decimal(value).scaleb(-6).normalize(), "f")
    return text


class RateTableData:
    """One rate table: code -> rows effective at different times, latest `effective_from` first.

    `rates` is a dict (a table built in memory: previews, small tests) or, for the tables of a snapshot the
    panel routes with, the read-only mapping of a file shared by the host's processes
    (`ratestore.MappedRates`, then `slots` is set): both answer `rates[code]` alike.
    """

    __slots__ = ("id", "name", "currency", "rates", "slots", "count", "rows", "shift", "mask", "ids")

    def __init__(self, table_id: int, name: str, currency: str, rates: Mapping[str, RateRows]):
        self.id = table_id
        self.name = name
        self.currency = currency
        self.rates = rates
        mapped = rates.table if isinstance(rates, MappedRates) else None
        # A mapped table: code id -> slot (first row << shift | count of rows), the packed rows, and the
        # registry's code -> code id.
        self.slots = mapped.slots if mapped is not None else None
        self.count = mapped.count if mapped is not None else 0
        self.rows = mapped.rows if mapped is not None else None
        self.shift = mapped.shift if mapped is not None else 0
        self.mask = mapped.mask if mapped is not None else 0
        self.ids = mapped.registry.ids if mapped is not None else None

    @property
    def file(self) -> str | None:
        """The name of the file the rates are mapped from (None when held in memory)."""
        rates = self.rates
        return rates.table.name if isinstance(rates, MappedRates) else None

    def lookup(self, codes: list[str], ts: float) -> tuple[str, RateRow] | None:
        """The row of the longest code among `codes` (longest first) effective at `ts`, with its code."""
        return self.find(codes, None, ts)

    def find(self, codes: list[str], cids: list[int] | None, ts: float) -> tuple[str, RateRow] | None:
        """`lookup` with the codes' ids in the code registry (`Snapshot.code_ids`; None: looked up here)."""
        slots = self.slots
        if slots is None:
            rates = self.rates
            for code in codes:
                rows = rates.get(code)
                if rows is not None:
                    for row in rows:
                        if row[4] <= ts < row[5]:
                            return code, row
            return None
        if cids is None:
            ids = self.ids
            cids = [ids.get(code, NO_CODE) for code in codes]
        count, rows, unpack = self.count, self.rows, _UNPACK
        for code, cid in zip(codes, cids, strict=False):
            if cid < count:
                slot = slots[cid]
                if slot:
                    start = (slot >> self.shift) * ROW_SIZE
                    for i in range(slot & self.mask):
                        row = unpack(rows, start + i * ROW_SIZE)
                        if row[4] <= ts < row[5]:
                            return code, row
        return None


class AccountEntry:
    """An account as routing sees it: its originator settings, its terminator settings and its addresses."""

    __slots__ = (
        "id",
        "name",
        "client_id",
        "client_name",
        "company_id",
        "ident_by",
        "ident_value",
        "tech_prefix",
        "gateways",
        "orig_enabled",
        "orig_rate_table_id",
        "orig_plan_id",
        "orig_tags",
        "orig_capacity",
        "term_enabled",
        "term_rate_table_id",
        "term_rates",
        "term_tags",
        "term_capacity",
        "protocol",
        "proxy",
        "port",
        "host",
        "addresses",
        # POSIX seconds until which the account (or its client) is drained; None when not drained.
        "drained",
    )

    def __init__(self, **fields):
        for key in self.__slots__:
            setattr(self, key, fields.get(key))

    def __repr__(self) -> str:
        return f"<AccountEntry {self.id} {self.client_name}/{self.name}>"


@dataclass(slots=True, frozen=True)
class ClientEntry:
    """A client's defaults."""

    id: int
    name: str
    company_id: int
    orig_rate_table_id: int | None
    term_rate_table_id: int | None
    routing_plan_id: int | None


@dataclass(slots=True, frozen=True)
class PolicyEntry:
    """A dynamic routing policy: factor -> weight (only the factors in use)."""

    id: int
    name: str
    weights: tuple[tuple[str, int], ...]
    # The sum of the weights (0: every route gets appeal 1).
    total: int
    # True when rate is the only factor (the appeal needs no quality figures).
    rate_only: bool


def policy_entry(policy_id: int, name: str, weights: tuple[tuple[str, int], ...]) -> PolicyEntry:
    """A PolicyEntry with its derived fields."""
    return PolicyEntry(
        policy_id, name, weights, sum(w for _, w in weights), all(f == "rate" for f, _ in weights)
    )


# Static routes are ordered as by a rate-only policy (SPEC §5 step 8).
RATE_ONLY = policy_entry(0, "rate only", (("rate", 1),))


class RuleEntry:
    """A routing rule with everything precomputed that does not depend on the call."""

    __slots__ = (
        "id",
        "plan_id",
        "priority",
        "code",
        "code_name",
        "length",
        "group_key",
        "literal",
        "regex",
        "type",
        "terminator_client_id",
        "terminator_account_id",
        "policy",
        "appeal_policy",
        "pm_value",
        "pm_percent",
        "orig_tags",
        "orig_tags_any",
        "term_tags",
        "time_profile_id",
        "time_profile",
        "expires_at",
        "expires_ts",
        "balancing",
        "balanced",
        "min_length",
        "max_length",
        "min_asr",
        "min_acd",
        "capacity",
        "stop_hunt",
        "candidates",
        "sort_key",
    )

    def __init__(self, **fields):
        for key in self.__slots__:
            setattr(self, key, fields.get(key))

    @property
    def type_label(self) -> str:
        """The rule type in the operator's words."""
        return RULE_TYPE_LABELS.get(self.type, self.type)

    def __repr__(self) -> str:
        return f"<RuleEntry {self.id} {self.code or 'DID'} p{self.priority} {self.type}>"


class PlanEntry:
    """A routing plan: its settings and its rules indexed for lookup."""

    __slots__ = (
        "id",
        "name",
        "company_id",
        "additional_plan_id",
        "loop_protection",
        "rules_hunting",
        "dr_order",
        "match_increments",
        "pm_value",
        "pm_percent",
        "vendor_limit",
        "origination_limits",
        "termination_limits",
        "rule_index",
        "literal_lengths",
        "did_rules",
        "rule_count",
        "uses_quality",
    )

    def __init__(self, **fields):
        for key in self.__slots__:
            setattr(self, key, fields.get(key))

    def __repr__(self) -> str:
        return f"<PlanEntry {self.id} {self.name}>"


@dataclass(slots=True, frozen=True)
class QualityEntry:
    """ASR (%), ACD (minutes) and PDD (ms) of a terminator for a vendor code; None = not enough calls."""

    asr: float | None
    acd: float | None
    pdd: float | None
    attempts: int


@dataclass(slots=True)
class IpIndex:
    """Originator networks of one IP version: (prefix length, shift, {network >> shift: accounts})."""

    bits: int
    tables: list[tuple[int, int, dict[int, tuple[AccountEntry, ...]]]] = field(default_factory=list)


@dataclass(slots=True)
class Snapshot:
    """Everything `engine.route` reads. Built by `build.build_snapshot`; never modified afterwards."""

    built_at: datetime
    build_seconds: float
    accounts: dict[int, AccountEntry]
    clients: dict[int, ClientEntry]
    plans: dict[int, PlanEntry]
    rules: dict[int, RuleEntry]
    rate_tables: dict[int, RateTableData]
    # Every code of every rate table: a number's prefixes outside it cannot price anything.
    codes: frozenset[str]
    policies: dict[int, PolicyEntry]
    profiles: dict[int, CompiledProfile]
    dids: dict[str, int]
    quality: dict[tuple[int, str], QualityEntry]
    by_login: dict[str, tuple[AccountEntry, ...]]
    by_ani: dict[str, tuple[AccountEntry, ...]]
    ip4: IpIndex
    ip6: IpIndex
    # Gateway name or address -> gateway ids; gateway id -> (name, company id).
    gateway_keys: dict[str, frozenset[int]]
    gateways: dict[int, tuple[str, int]]
    company_names: dict[int, str]
    descendants: dict[int, frozenset[int]]
    ancestors: dict[int, frozenset[int]]
    counts: dict[str, int] = field(default_factory=dict)
    # The panel changes this snapshot holds (`panel.routing.update`): the newest audit entry it read and the
    # ids of the entries in the tail before it (a transaction that commits late shows up as an unseen id).
    audit_top: int = 0
    audit_seen: frozenset[int] = frozenset()
    # The host's rate table files its mapped tables come from (`ratestore.RateStore`; None: all in memory).
    store: object | None = None

    @property
    def code_ids(self) -> dict[str, int] | None:
        """Code -> id in the store's code registry (the mapped tables' index), None without a store."""
        return self.store.ids if self.store is not None else None

    def plan_usable(self, plan: PlanEntry, company_id: int) -> bool:
        """SPEC §1: the plan's owner is the company or above it, and its origination limits allow it."""
        ancestors = self.ancestors.get(company_id, frozenset((company_id,)))
        if plan.company_id not in ancestors:
            return False
        return not plan.origination_limits or not plan.origination_limits.isdisjoint(ancestors)

    def subtree(self, company_id: int) -> frozenset[int]:
        """The company and every company below it."""
        return self.descendants.get(company_id, frozenset((company_id,)))


def code_set(codes: Iterable[str]) -> frozenset[str]:
    """The codes as a frozenset with the smallest hash table: made by iterating (CPython gives a set made
    from another set, or from a set operation, room for twice its elements: 4 MB instead of 2 at 72,000
    codes, in every process that holds the snapshot). The same object when `codes` is a frozenset."""
    if type(codes) is frozenset:
        return codes
    return frozenset(iter(codes))


def compile_code(code: str) -> tuple[str, re.Pattern | None]:
    """A rule code as (literal part before any `*`, expression for the rest or None).

    `44` and `44*` match the same numbers (anchored at the start, open at the end), so only a `*` followed
    by more digits needs an expression: `44*7` -> ("44", ^44\\d*7).
    """
    stripped = code.rstrip("*")
    if "*" not in stripped:
        return stripped, None
    literal = stripped.split("*", 1)[0]
    pattern = "^" + r"\d*".join(re.escape(part) for part in stripped.split("*"))
    return literal, re.compile(pattern)


def code_length(code: str) -> int:
    """A rule's length: its count of digits (SPEC §4)."""
    return sum(ch.isdigit() for ch in code)
