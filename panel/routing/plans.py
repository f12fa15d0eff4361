"""A routing plan and its rules as the snapshot holds them: read from the database (`read_plans`, for a
build and for an update that reads some plans again) and indexed for `engine.route` (`plan_index`, also the
what-if previews' way), with the conversions of stored values they share with the accounts' reading."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import select

from panel.routing.rateread import micro, to_datetime
from panel.routing.snapshot import RATE_ONLY, AccountEntry, PlanEntry, RuleEntry, code_length, compile_code
from panel.routing.tables import codes, origination_limits, plans, rules, termination_limits

# A plan's settings when the column is empty.
PLAN_DEFAULTS = {"rules_hunting": "longest_only", "dr_order": "code_appeal", "match_increments": "disabled"}


def as_float(value) -> float | None:
    """A stored number as float (quality figures, rule minimums)."""
    return None if value is None else float(value)


# One object for every equal small set (most accounts have no tags, no gateways): 10,000 accounts hold a few
# hundred sets rather than tens of thousands.
_SETS: dict[frozenset, frozenset] = {}


def forget_shared_sets() -> None:
    """Start a build's own shared sets (the previous build's go with its snapshot)."""
    _SETS.clear()


def shared_set(values) -> frozenset:
    """`frozenset(values)`, the same object as every equal set made before."""
    found = frozenset(values)
    if len(_SETS) > 100_000:
        _SETS.clear()
    return _SETS.setdefault(found, found)


def tags(text: str | None) -> frozenset[str]:
    """Space-separated tags as a set."""
    return shared_set((text or "").split())


def plan_index(entries: list[RuleEntry]) -> dict:
    """A plan's fields that derive from its rules: the rules indexed by the literal part of their code (each
    list in the order they are tried), the literals' lengths, the DID rules, and whether any rule or policy
    uses quality figures."""
    index: dict[str, list[RuleEntry]] = defaultdict(list)
    did_rules = []
    uses_quality = False
    for entry in entries:
        if entry.type == "did":
            did_rules.append(entry)
        else:
            index[entry.literal].append(entry)
        if entry.min_asr is not None or entry.min_acd is not None:
            uses_quality = True
        if entry.policy is not None and any(f != "rate" for f, _ in entry.policy.weights):
            uses_quality = True
    return {
        "rule_index": {k: tuple(sorted(v, key=lambda r: r.sort_key)) for k, v in index.items()},
        "literal_lengths": tuple(sorted({len(k) for k in index}, reverse=True)),
        "did_rules": tuple(sorted(did_rules, key=lambda r: (r.priority, r.id))),
        "rule_count": len(entries),
        "uses_quality": uses_quality,
    }


class Candidates:
    """The terminators a rule may route to (SPEC §4), from a snapshot's accounts: a static client's enabled
    terminators (by name), a static account, or a dynamic rule's pool: the enabled terminators of the plan
    owner's companies (its subtree and its ancestors) that carry one of the rule's tags (none: only those
    without tags). Pools are made once per owner and tags, so rules that agree share one tuple."""

    def __init__(self, accounts: Mapping[int, AccountEntry], descendants: Mapping, ancestors: Mapping):
        self.accounts, self.descendants, self.ancestors = accounts, descendants, ancestors
        self.terminators = sorted((a for a in accounts.values() if a.term_enabled), key=lambda a: a.id)
        self.by_client: dict[int, list[AccountEntry]] = defaultdict(list)
        for entry in self.terminators:
            self.by_client[entry.client_id].append(entry)
        for entries in self.by_client.values():
            entries.sort(key=lambda a: (a.name, a.id))
        self.pools: dict[tuple[int, frozenset[str]], tuple[AccountEntry, ...]] = {}

    def of(self, kind: str, owner_id: int, client_id, account_id, term_tags: str | None) -> tuple:
        """The candidates of a rule of type `kind` in a plan owned by company `owner_id`."""
        if kind == "static_client":
            return tuple(self.by_client.get(client_id, ()))
        if kind == "static_account":
            account = self.accounts.get(account_id)
            return (account,) if account is not None else ()
        if kind != "dynamic":
            return ()
        wanted = tags(term_tags)
        key = (owner_id, wanted)
        pool = self.pools.get(key)
        if pool is None:
            allowed = self.descendants.get(owner_id, frozenset((owner_id,))) | self.ancestors.get(
                owner_id, frozenset()
            )
            pool = self.pools[key] = tuple(
                a
                for a in self.terminators
                if a.company_id in allowed
                and (not a.term_tags.isdisjoint(wanted) if wanted else not a.term_tags)
            )
        return pool


def read_plans(conn, policy_map, profile_map, account_map, client_map, descendants, ancestors, plan_ids=None):
    """Plans and rules (all, or those of `plan_ids`), with each rule's candidates and each plan's rule index
    precomputed."""

    def only(stmt, col):
        return stmt if plan_ids is None else stmt.where(col.in_(sorted(plan_ids)))

    orig_limits: dict[int, set[int]] = defaultdict(set)
    for plan_id, company_id in conn.execute(only(select(origination_limits), origination_limits.c.plan_id)):
        orig_limits[plan_id].add(company_id)
    term_limits: dict[int, set[int]] = defaultdict(set)
    for plan_id, company_id in conn.execute(only(select(termination_limits), termination_limits.c.plan_id)):
        term_limits[plan_id].add(company_id)

    plan_map: dict[int, PlanEntry] = {}
    deck_of: dict[int, int | None] = {}
    for row in conn.execute(only(select(plans), plans.c.id)):
        deck_of[row.id] = row.code_deck_id
        plan_map[row.id] = PlanEntry(
            **{key: getattr(row, key) for key in ("id", "name", "company_id", "additional_plan_id")},
            **{key: getattr(row, key) or default for key, default in PLAN_DEFAULTS.items()},
            vendor_limit=row.vendor_limit,
            loop_protection=bool(row.loop_protection),
            pm_percent=bool(row.pm_percent),
            pm_value=micro(row.pm_value),
            origination_limits=frozenset(orig_limits.get(row.id, ())),
            termination_limits=frozenset(term_limits.get(row.id, ())),
            **plan_index([]),
        )

    # Code names from each plan's deck, for the rules' codes only.
    code_names: dict[tuple[int, str], str] = {}
    deck_ids = {d for d in deck_of.values() if d}
    if deck_ids:
        rule_codes = only(select(rules.c.code), rules.c.plan_id).distinct().scalar_subquery()
        for deck_id, code, name in conn.execute(
            select(codes.c.code_deck_id, codes.c.code, codes.c.name).where(
                codes.c.code_deck_id.in_(deck_ids), codes.c.code.in_(rule_codes)
            )
        ):
            code_names[(deck_id, code)] = name

    pool = Candidates(account_map, descendants, ancestors)

    rule_map: dict[int, RuleEntry] = {}
    per_plan: dict[int, list[RuleEntry]] = defaultdict(list)
    for row in conn.execute(only(select(rules), rules.c.plan_id)):
        plan = plan_map.get(row.plan_id)
        if plan is None:
            continue
        code = (row.code or "").strip() if row.type != "did" else ""
        literal, regex = compile_code(code)
        candidates = pool.of(
            row.type, plan.company_id, row.terminator_client_id, row.terminator_account_id, row.term_tags
        )
        balancing = row.balancing
        length = code_length(code)
        expires_at = to_datetime(row.expires_at)
        entry = RuleEntry(
            id=row.id,
            plan_id=row.plan_id,
            priority=row.priority or 0,
            code=code,
            code_name=code_names.get((deck_of.get(row.plan_id), code), ""),
            length=length,
            group_key=code.rstrip("*"),
            literal=literal,
            regex=regex,
            type=row.type,
            terminator_client_id=row.terminator_client_id,
            terminator_account_id=row.terminator_account_id,
            policy=policy_map.get(row.policy_id) if row.policy_id else None,
            # Static and DID routes get the appeal of a rate-only policy; so does a dynamic rule with none.
            appeal_policy=(policy_map.get(row.policy_id) if row.type == "dynamic" and row.policy_id else None)
            or RATE_ONLY,
            pm_value=micro(row.pm_value),
            pm_percent=bool(row.pm_percent),
            orig_tags=tags(row.orig_tags),
            orig_tags_any=(row.orig_tags_mode == "any"),
            term_tags=tags(row.term_tags),
            time_profile_id=row.time_profile_id,
            time_profile=profile_map.get(row.time_profile_id) if row.time_profile_id else None,
            expires_at=expires_at,
            expires_ts=expires_at.timestamp() if expires_at else None,
            balancing=balancing,
            balanced=balancing is not None and 1 <= balancing <= 99,
            min_length=row.min_length,
            max_length=row.max_length,
            min_asr=as_float(row.min_asr),
            min_acd=as_float(row.min_acd),
            capacity=row.capacity,
            stop_hunt=bool(row.stop_hunt),
            candidates=candidates,
            sort_key=(-length, row.priority or 0, row.id),
        )
        rule_map[row.id] = entry
        per_plan[row.plan_id].append(entry)

    for plan_id, entries in per_plan.items():
        plan = plan_map[plan_id]
        for key, value in plan_index(entries).items():
            setattr(plan, key, value)
    return plan_map, rule_map
