"""A routing snapshot with one change applied in memory: the "new" side of a what-if preview.

The snapshot routing uses is never modified (threads route with it): each function returns a shallow copy
that shares every unchanged structure with the original and replaces only what the change touches:

- `with_originator`: one originator entry added or replaced (the LCR sheet's chosen account or rate table);
- `with_plan_rules`: one plan's rules replaced by the given rule rows (a rule edit, a rules import);
- `with_rates`: one rate table's rates replaced (a rate deck import), and the terminators and rules that
  point at that table re-pointed at the new one.

This is the one place that knows how to change a snapshot, so it can switch to an incremental-build API of
the routing package when there is one. Rule entries are built the way `panel.routing.build` builds them.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from panel.routing.plans import Candidates, as_float, plan_index, tags
from panel.routing.rateread import micro as _micro
from panel.routing.rateread import to_datetime, to_timestamp
from panel.routing.snapshot import (
    INFINITY,
    RATE_ONLY,
    AccountEntry,
    PlanEntry,
    RateRows,
    RateTableData,
    RuleEntry,
    Snapshot,
    code_length,
    compile_code,
)


def _copy(entry, **changes):
    """A copy of a slotted entry with some fields changed."""
    fields = {key: getattr(entry, key) for key in entry.__slots__}
    fields.update(changes)
    return type(entry)(**fields)


def with_originator(snapshot: Snapshot, entry: AccountEntry) -> Snapshot:
    """The snapshot with `entry` as the account of its id (route it with `account_id=entry.id`)."""
    return dataclasses.replace(snapshot, accounts={**snapshot.accounts, entry.id: entry})


def originator(
    snapshot: Snapshot, account_id: int | None, plan_id: int, rate_table_id: int | None, company_id: int
) -> AccountEntry:
    """An originator for the LCR sheet: the account with the plan (and rate table) forced, or a bare one.

    Without an account, the originator is account 0 of no client in the plan owner's company, identified by
    nothing, with no tags: what a new customer on that plan and rate table would get.
    """
    source = snapshot.accounts.get(account_id) if account_id is not None else None
    if source is not None:
        client = snapshot.clients.get(source.client_id)
        table_id = (
            rate_table_id or source.orig_rate_table_id or (client.orig_rate_table_id if client else None)
        )
        return _copy(
            source, orig_enabled=True, orig_plan_id=plan_id, orig_rate_table_id=table_id, orig_capacity=None
        )
    return AccountEntry(
        id=0,
        name="(rate table only)",
        client_id=0,
        client_name="",
        company_id=company_id,
        ident_by="name",
        ident_value="",
        tech_prefix="",
        gateways=frozenset(),
        orig_enabled=True,
        orig_rate_table_id=rate_table_id,
        orig_plan_id=plan_id,
        orig_tags=frozenset(),
        orig_capacity=None,
        term_enabled=False,
        term_rates=None,
        term_tags=frozenset(),
        addresses=frozenset(),
        drained=None,
    )


def rule_entry(snapshot: Snapshot, plan: PlanEntry, row: dict, candidates: Candidates) -> RuleEntry:
    """A RuleEntry from the column values of a RoutingRule (a dict with `id`)."""
    code = (row.get("code") or "").strip() if row["type"] != "did" else ""
    literal, regex = compile_code(code)
    length = code_length(code)
    policy_id = row.get("policy_id")
    policy = snapshot.policies.get(policy_id) if policy_id else None
    profile_id = row.get("time_profile_id")
    expires_at = to_datetime(row.get("expires_at"))
    balancing = row.get("balancing")
    priority = row.get("priority") or 0
    return RuleEntry(
        id=row["id"],
        plan_id=plan.id,
        priority=priority,
        code=code,
        code_name="",
        length=length,
        group_key=code.rstrip("*"),
        literal=literal,
        regex=regex,
        type=row["type"],
        terminator_client_id=row.get("terminator_client_id"),
        terminator_account_id=row.get("terminator_account_id"),
        policy=policy,
        appeal_policy=(policy if row["type"] == "dynamic" else None) or RATE_ONLY,
        pm_value=_micro(row.get("pm_value")),
        pm_percent=bool(row.get("pm_percent")),
        orig_tags=tags(row.get("orig_tags")),
        orig_tags_any=(row.get("orig_tags_mode") == "any"),
        term_tags=tags(row.get("term_tags")),
        time_profile_id=profile_id,
        time_profile=snapshot.profiles.get(profile_id) if profile_id else None,
        expires_at=expires_at,
        expires_ts=expires_at.timestamp() if expires_at else None,
        balancing=balancing,
        balanced=balancing is not None and 1 <= balancing <= 99,
        min_length=row.get("min_length"),
        max_length=row.get("max_length"),
        min_asr=as_float(row.get("min_asr")),
        min_acd=as_float(row.get("min_acd")),
        capacity=row.get("capacity"),
        stop_hunt=bool(row.get("stop_hunt")),
        candidates=candidates.of(
            row["type"],
            plan.company_id,
            row.get("terminator_client_id"),
            row.get("terminator_account_id"),
            row.get("term_tags"),
        ),
        sort_key=(-length, priority, row["id"]),
    )


def _indexed(plan: PlanEntry, entries: list[RuleEntry]) -> PlanEntry:
    """A copy of the plan with its rule index built from `entries` (as `build` indexes a plan's rules)."""
    return _copy(plan, **plan_index(entries))


def with_plan_rules(snapshot: Snapshot, plan_id: int, rows: list[dict]) -> Snapshot:
    """The snapshot with plan `plan_id`'s rules replaced by `rows` (RoutingRule column values with ids)."""
    plan = snapshot.plans[plan_id]
    candidates = Candidates(snapshot.accounts, snapshot.descendants, snapshot.ancestors)
    entries = [rule_entry(snapshot, plan, row, candidates) for row in rows]
    rules = {rid: rule for rid, rule in snapshot.rules.items() if rule.plan_id != plan_id}
    rules.update((entry.id, entry) for entry in entries)
    plans = {**snapshot.plans, plan_id: _indexed(plan, entries)}
    return dataclasses.replace(snapshot, plans=plans, rules=rules)


def rate_rows(rows: list[dict]) -> dict[str, RateRows]:
    """Rate rows (Rate column values) as a snapshot rate table's code -> rows, latest effective_from first."""
    by_code: dict[str, dict[float, tuple]] = defaultdict(dict)
    for row in rows:
        start = to_timestamp(row["effective_from"])
        end = to_timestamp(row.get("end"))
        by_code[row["code"]][start] = (
            _micro(row["rate"]),
            _micro(row.get("setup_fee")) or 0,
            int(row.get("min_time") or 0),
            int(row.get("interval") or 1),
            start,
            INFINITY if end is None else end,
        )
    return {code: tuple(sorted(found.values(), key=lambda r: -r[4])) for code, found in by_code.items()}


def merged_rates(current: dict[str, RateRows], added: dict[str, RateRows]) -> dict[str, RateRows]:
    """`add_update`: the file's rows overwrite the rows of the same code and start, and add the others."""
    merged = dict(current)
    for code, rows in added.items():
        starts = {row[4] for row in rows}
        kept = [row for row in current.get(code, ()) if row[4] not in starts]
        merged[code] = tuple(sorted([*kept, *rows], key=lambda r: -r[4]))
    return merged


def with_rates(snapshot: Snapshot, table_id: int, rates: dict[str, RateRows]) -> Snapshot:
    """The snapshot with rate table `table_id` holding `rates`; terminators using it see the new rates."""
    old = snapshot.rate_tables[table_id]
    table = RateTableData(old.id, old.name, old.currency, rates)
    moved = {a.id: _copy(a, term_rates=table) for a in snapshot.accounts.values() if a.term_rates is old}
    accounts = {**snapshot.accounts, **moved}
    changed = dataclasses.replace(
        snapshot,
        rate_tables={**snapshot.rate_tables, table_id: table},
        codes=snapshot.codes | frozenset(rates),
        accounts=accounts,
    )
    if not moved:
        return changed
    # Rules hold their candidate entries: re-point the ones that name a moved terminator.
    rules = dict(snapshot.rules)
    touched_plans: set[int] = set()
    for rule_id, rule in snapshot.rules.items():
        if any(c.id in moved for c in rule.candidates):
            rules[rule_id] = _copy(rule, candidates=tuple(moved.get(c.id, c) for c in rule.candidates))
            touched_plans.add(rule.plan_id)
    plans = dict(snapshot.plans)
    for plan_id in touched_plans:
        plan = snapshot.plans[plan_id]
        plans[plan_id] = _copy(
            plan,
            rule_index={k: tuple(rules[r.id] for r in v) for k, v in plan.rule_index.items()},
            did_rules=tuple(rules[r.id] for r in plan.did_rules),
        )
    return dataclasses.replace(changed, rules=rules, plans=plans)
