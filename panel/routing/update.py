"""Incremental routing snapshots: a new snapshot from an old one plus what changed, sharing everything else.

**What changed** is read from the audit log. Every panel change writes an audit entry in its own transaction
(the manager's data version already relies on it), so a snapshot records the entries it holds (`audit_top`,
the newest, and `audit_seen`, the ids of the tail before it: a transaction that commits after a higher id
shows up as an id not seen yet). `pending(conn, snapshot)` reads the entries not held yet and maps each to
the part of the routing data it touches (`Changes`):

- a rate table (create, update, import; a single rate's create, update, delete): that table's rates are read
  again; the accounts whose terminator table it is are copied in memory with the new table and relinked
  (rules' candidates, plans' indexes, identification indexes): nothing else is read;
- a routing rule, or a plan's settings, creation or rules import: that plan and its rules are read again,
  with the snapshot's accounts, policies and time profiles;
- anything else that routing reads (accounts, clients, drains, companies, gateways, policies, time profiles,
  DIDs, code decks, deleting a rate table or a plan): **base**, everything except the rates is read again
  and the rate tables are reused as they are (a few hundred milliseconds at ten thousand accounts);
- the quality figures (written by the manager, which publishes their digest): read again on their own;
- when in doubt (more entries than `MAX_ENTRIES`, the audit log behind the snapshot, an entry that does not
  say what it touched, more than a third of the rate tables touched): a **full** build.

`apply(conn, snapshot, changes)` makes the new snapshot: the untouched rate tables, plans, rules and accounts
are the very objects of the old one, so an edit costs memory and time in proportion to what it touched.
The same functions serve previews of a change that is not in the database (`with_rate_tables`,
`with_accounts`, `with_clients`, `with_plan_rules`): a copy of a snapshot with one change applied in memory.
`panel.routing.compare.describe(snapshot)` is a comparable value of everything routing reads; tests compare
an incrementally updated snapshot with a full build through it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.engine import Connection

from panel.routing import build, rateread
from panel.routing import tables as schema
from panel.routing.plans import read_plans
from panel.routing.ratestore import MANIFEST_VERSION, MappedRates
from panel.routing.snapshot import (
    AccountEntry,
    IpIndex,
    PlanEntry,
    RateTableData,
    RuleEntry,
    Snapshot,
    code_set,
)

# More new audit entries than this at once: a full build is simpler and not much slower.
MAX_ENTRIES = 5000
# More than this many rate tables touched, and more than a third of them: a full build.
FULL_FROM_TABLES = 20
# Audit entry types that routing does not read (anything not listed here or below is "base").
NOT_ROUTING = frozenset({"user", "apitoken", "api_token", "importjob", "import_job", "loginattempt"})
RATE_TYPES = frozenset({"ratetable", "rate_table"})
RATE_ROW_TYPES = frozenset({"rate"})
PLAN_TYPES = frozenset({"routingplan", "routing_plan", "plan"})
RULE_TYPES = frozenset({"routingrule", "routing_rule", "rule"})


@dataclass
class Changes:
    """The parts of the routing data to read again."""

    full: bool = False
    base: bool = False
    quality: bool = False
    rate_tables: set[int] = field(default_factory=set)
    plans: set[int] = field(default_factory=set)
    # The audit tail the new snapshot will hold.
    audit_top: int = 0
    audit_seen: frozenset[int] = frozenset()
    why: str = ""
    # The rate tables were mapped from the files another process of the host recorded for this very state
    # (`tables_from_host`): none was read from the database.
    from_host: bool = False

    @property
    def empty(self) -> bool:
        """True when nothing routing reads changed."""
        return not (self.full or self.base or self.quality or self.rate_tables or self.plans)

    def summary(self) -> str:
        """What will be read again, in a few words (logs, the manager page)."""
        if self.full:
            return f"full ({self.why})" if self.why else "full"
        parts = []
        if self.base:
            parts.append("base")
        if self.rate_tables:
            parts.append(
                f"rate tables {sorted(self.rate_tables)}" + (" (the host's files)" if self.from_host else "")
            )
        if self.plans:
            parts.append(f"plans {sorted(self.plans)}")
        if self.quality:
            parts.append("quality")
        return ", ".join(parts) or "nothing"


# --- what changed -----------------------------------------------------------------------------------------


def pending(conn: Connection, snapshot: Snapshot) -> Changes:
    """The changes written since `snapshot` was read (from the audit entries it does not hold)."""
    after = snapshot.audit_top - build.AUDIT_TAIL
    ids = build.read_audit_tail(conn, after=after)
    top = max(ids, default=0)
    changes = Changes(audit_top=max(top, snapshot.audit_top))
    changes.audit_seen = frozenset(i for i in ids if i > changes.audit_top - build.AUDIT_TAIL)
    if top < snapshot.audit_top and snapshot.audit_top in snapshot.audit_seen:
        return _full(changes, "the audit log is behind the snapshot")
    new = sorted(set(ids) - snapshot.audit_seen)
    if len(new) > MAX_ENTRIES:
        return _full(changes, f"{len(new)} changes")
    for start in range(0, len(new), 500):
        chunk = new[start : start + 500]
        entries = schema.audit_entries
        rows = conn.execute(
            select(
                entries.c.object_type,
                entries.c.object_id,
                entries.c.action,
                entries.c.before,
                entries.c.after,
            ).where(entries.c.id.in_(chunk))
        )
        for object_type, object_id, action, before, after in rows:
            try:
                classify(changes, object_type or "", object_id, action or "", before, after)
            except (TypeError, ValueError):  # an id that is not one: do not guess what it touched
                return _full(changes, f"an unreadable {object_type} entry")
            if changes.full:
                return changes
    # A rate table created or deleted is read (and the base with it: a vendor comes with its table) whatever
    # the entries said: a cheap check of the table ids.
    table_ids = set(conn.execute(select(schema.rate_tables.c.id)).scalars())
    if table_ids != snapshot.rate_tables.keys():
        changes.rate_tables |= table_ids ^ snapshot.rate_tables.keys()
        changes.base = True
    return changes


def _full(changes: Changes, why: str) -> Changes:
    changes.full, changes.why = True, why
    return changes


def _field(state, name: str):
    """A value from an audit entry's before/after state (a dict, or JSON text on SQLite)."""
    if isinstance(state, str):
        try:
            state = json.loads(state)
        except ValueError:
            return None
    return state.get(name) if isinstance(state, dict) else None


def classify(changes: Changes, object_type: str, object_id, action: str, before=None, after=None) -> None:
    """Add what one audit entry touched to `changes`."""
    kind = object_type.lower()
    if kind in NOT_ROUTING:
        return
    if kind in RATE_TYPES and object_id is not None:
        changes.rate_tables.add(int(object_id))
        if action == "delete":
            changes.base = True  # accounts and clients pointing at it lose their table
        return
    if kind in RATE_ROW_TYPES:
        table_id = _field(after, "rate_table_id") or _field(before, "rate_table_id")
        if table_id is None:
            _full(changes, "a rate change without its table")
        else:
            changes.rate_tables.add(int(table_id))
        return
    if kind in RULE_TYPES:
        plan_id = _field(after, "plan_id") or _field(before, "plan_id")
        if plan_id is None:
            changes.base = True
        else:
            changes.plans.add(int(plan_id))
        return
    if kind in PLAN_TYPES and object_id is not None and action != "delete":
        changes.plans.add(int(object_id))
        return
    changes.base = True


# --- a process that starts: the host's files of the newest state read, and what changed since ------------


def save_manifest(conn: Connection, snapshot: Snapshot) -> bool:
    """Record in the snapshot's store which files hold its rate tables at its audit position (read on `conn`,
    the transaction the snapshot was read in), for the processes that start later (`start_from_host`).
    Nothing is recorded for a snapshot that holds a table in memory or has no audit position to anchor to."""
    store = snapshot.store
    tables = snapshot.rate_tables
    if store is None or not snapshot.audit_top or any(t.file is None for t in tables.values()):
        return False
    anchor = _anchor(conn, snapshot.audit_top)
    if anchor is None:
        return False
    state = {
        "audit_top": snapshot.audit_top,
        "anchor": anchor,
        "audit_seen": sorted(snapshot.audit_seen),
        "tables": {str(tid): [t.file, t.name, t.currency] for tid, t in tables.items()},
    }

    def keep_current(document: dict) -> bool:
        """The recorded state is this database's, and newer (another process read later)."""
        top = document.get("audit_top")
        if not isinstance(top, int) or top <= snapshot.audit_top:
            return False
        return document.get("version") == MANIFEST_VERSION and _anchor(conn, top) == document.get("anchor")

    return store.save_manifest(state, snapshot.codes, keep_current)


def start_from_host(conn: Connection, store, quality_min_calls: int = 0) -> tuple[Snapshot, Changes] | None:
    """A snapshot for a process that starts, without reading the rates again: the rate tables as the host's
    manifest records them (files some process of the host wrote and mapped), everything else read from
    `conn`, then the rate tables that changed since the manifest's audit position read again (`pending`).
    None when there is no usable manifest or when in doubt (its audit entry is not in this database as it
    was, or `pending` asks for a full build): the caller builds whole."""
    loaded = store.load_manifest()
    if loaded is None:
        return None
    state, codes, mapped = loaded
    top = state.get("audit_top")
    if not isinstance(top, int) or top <= 0 or _anchor(conn, top) != state.get("anchor"):
        return None  # another database under the same name, or its audit log rewritten: do not trust it
    tables = {
        tid: RateTableData(tid, name, currency, MappedRates(mapped[tid]))
        for tid, (_file, name, currency) in ((int(k), v) for k, v in state["tables"].items())
    }
    reuse = SimpleNamespace(rate_tables=tables, codes=codes, store=store)
    recorded = dataclasses.replace(
        build._read(conn, quality_min_calls, reuse=reuse),
        audit_top=top,
        audit_seen=frozenset(state["audit_seen"]),
    )
    changes = pending(conn, recorded)
    if changes.full:
        return None
    # Everything but the rates was just read as it is now: only the rate tables may lag (a table created or
    # deleted since is among them; the accounts already point at the tables they have now).
    changes.base, changes.plans, changes.quality = False, set(), False
    return apply(conn, recorded, changes, quality_min_calls), changes


def tables_from_host(conn: Connection, store, changes: Changes) -> dict[int, RateTableData | None] | None:
    """The changed rate tables of `changes` as the host's manifest records them, when another process of
    the host recorded exactly the state this update reads (the same audit tail, anchored to this database):
    mapped from its files, no rate read (a table the state does not hold: None, deleted). None when the
    manifest records another state: the caller reads them."""
    loaded = store.load_manifest(codes=False)
    if loaded is None:
        return None
    state, _codes, mapped = loaded
    if state.get("audit_top") != changes.audit_top or frozenset(state["audit_seen"]) != changes.audit_seen:
        return None
    if _anchor(conn, changes.audit_top) != state.get("anchor"):
        return None
    try:
        recorded = {
            int(tid): (str(name), str(currency)) for tid, (_f, name, currency) in state["tables"].items()
        }
    except (AttributeError, TypeError, ValueError):  # a manifest damaged by hand: read the tables instead
        return None
    # The same audit state holds the same tables; a table created or deleted without an audit entry (by
    # hand) is not taken on trust.
    ids = schema.rate_tables.c.id
    present = set(conn.execute(select(ids).where(ids.in_(sorted(changes.rate_tables)))).scalars())
    if present != changes.rate_tables & recorded.keys():
        return None
    return {
        tid: RateTableData(tid, *recorded[tid], MappedRates(mapped[tid])) if tid in recorded else None
        for tid in changes.rate_tables
    }


def _anchor(conn: Connection, audit_id: int) -> float | None:
    """The time of audit entry `audit_id` (what ties a manifest to this database's history), or None."""
    entries = schema.audit_entries
    found = conn.execute(select(entries.c.at).where(entries.c.id == audit_id)).first()
    return rateread.to_timestamp(found[0]) if found is not None and found[0] is not None else None


# --- applying it ------------------------------------------------------------------------------------------


def apply(conn: Connection, snapshot: Snapshot, changes: Changes, quality_min_calls: int = 0) -> Snapshot:
    """A new snapshot: `snapshot` with the parts named by `changes` read again from `conn` (rate tables into
    the snapshot's store, when it has one)."""
    store = snapshot.store
    if changes.full or (
        len(changes.rate_tables) > FULL_FROM_TABLES
        and len(changes.rate_tables) * 3 > len(snapshot.rate_tables)
    ):
        return build._read(conn, quality_min_calls, store=store)
    snap = snapshot
    if changes.rate_tables:
        tables = tables_from_host(conn, store, changes) if store is not None else None
        changes.from_host = tables is not None
        if tables is None:
            fresh = build._read_rates(conn, changes.rate_tables, store=store)
            tables = {tid: fresh.get(tid) for tid in changes.rate_tables}
        if changes.base:
            merged, codes = _merge_tables(snap, tables)
            snap = dataclasses.replace(snap, rate_tables=merged, codes=codes)
        else:
            snap = with_rate_tables(snap, tables)
    if changes.base:
        # The unchanged accounts are kept as they are (build._read compares them).
        reuse = SimpleNamespace(
            rate_tables=snap.rate_tables, codes=snap.codes, store=store, accounts=snap.accounts
        )
        snap = build._read(conn, quality_min_calls, reuse=reuse)
    else:
        if changes.plans:
            snap = _reread_plans(conn, snap, changes.plans)
        if changes.quality:
            snap = dataclasses.replace(snap, quality=build.read_quality(conn, quality_min_calls))
    return _finish(snap, changes)


def _finish(snap: Snapshot, changes: Changes) -> Snapshot:
    """The new snapshot's audit tail, time and counts."""
    counts = dict(snap.counts)
    counts.update(
        accounts=len(snap.accounts),
        rate_tables=len(snap.rate_tables),
        rates=sum(len(t.rates) for t in snap.rate_tables.values()),
        codes=len(snap.codes),
        plans=len(snap.plans),
        rules=len(snap.rules),
        quality=len(snap.quality),
    )
    return dataclasses.replace(
        snap,
        built_at=datetime.now(UTC),
        counts=counts,
        audit_top=changes.audit_top,
        audit_seen=changes.audit_seen,
    )


def _reread_plans(conn: Connection, snap: Snapshot, plan_ids: set[int]) -> Snapshot:
    """`snap` with the plans of `plan_ids` (settings, rules, candidates) read again."""
    plan_map, rule_map = read_plans(
        conn,
        snap.policies,
        snap.profiles,
        snap.accounts,
        snap.clients,
        snap.descendants,
        snap.ancestors,
        plan_ids=plan_ids,
    )
    plans = {pid: plan for pid, plan in snap.plans.items() if pid not in plan_ids}
    plans.update(plan_map)
    rules = {rid: rule for rid, rule in snap.rules.items() if rule.plan_id not in plan_ids}
    rules.update(rule_map)
    return dataclasses.replace(snap, plans=plans, rules=rules)


def _merge_tables(
    snap: Snapshot, tables: Mapping[int, RateTableData | None]
) -> tuple[dict[int, RateTableData], frozenset[str]]:
    """The snapshot's rate tables with `tables` put in (None: removed), and the union of their codes."""
    merged = dict(snap.rate_tables)
    added: set[str] = set()
    removed: set[str] = set()
    for tid, data in tables.items():
        before = merged.pop(tid, None)
        if data is not None:
            merged[tid] = data
        old_codes = before.rates.keys() if before is not None else {}.keys()
        new_codes = data.rates.keys() if data is not None else {}.keys()
        added |= new_codes - old_codes
        removed |= old_codes - new_codes
    codes = snap.codes
    if removed:
        if len(removed) * len(merged) > 5_000_000:
            universe: set[str] = set()
            for data in merged.values():
                universe.update(data.rates)
            return merged, code_set(universe)
        gone = {code for code in removed if not any(code in t.rates for t in merged.values())}
        if gone:
            codes = code_set(code for code in codes if code not in gone)
    new = added - codes
    if new:
        codes = code_set(chain(codes, new))
    return merged, codes


# --- a snapshot with a change applied in memory (also the previews' way) ------------------------------------


def with_rate_tables(snap: Snapshot, tables: Mapping[int, RateTableData | None]) -> Snapshot:
    """A copy of `snap` with these rate tables replaced (None: removed); the accounts that terminate on them
    are copied with the new table and relinked everywhere. Nothing else is copied."""
    merged, codes = _merge_tables(snap, tables)
    replaced = {
        account.id: copy_entry(account, term_rates=merged.get(account.term_rate_table_id))
        for account in snap.accounts.values()
        if account.term_rate_table_id in tables
    }
    snap = dataclasses.replace(snap, rate_tables=merged, codes=codes)
    return with_accounts(snap, replaced) if replaced else snap


def with_rates(snap: Snapshot, table_id: int, rates: Mapping[str, tuple] | None) -> Snapshot:
    """A copy of `snap` where rate table `table_id` holds `rates` (code -> rows, see RateTableData)."""
    old = snap.rate_tables.get(table_id)
    if rates is None:
        return with_rate_tables(snap, {table_id: None})
    data = RateTableData(table_id, old.name if old else "", old.currency if old else "", dict(rates))
    return with_rate_tables(snap, {table_id: data})


def with_clients(snap: Snapshot, clients: Mapping[int, object]) -> Snapshot:
    """A copy of `snap` with these ClientEntry objects in place of the old ones."""
    merged = dict(snap.clients)
    merged.update(clients)
    return dataclasses.replace(snap, clients=merged)


def copy_entry(entry, **changes):
    """A copy of a slotted entry (AccountEntry, RuleEntry, PlanEntry) with some fields changed."""
    new = object.__new__(type(entry))
    for key in type(entry).__slots__:
        setattr(new, key, changes[key] if key in changes else getattr(entry, key, None))
    return new


def with_accounts(snap: Snapshot, replaced: Mapping[int, AccountEntry]) -> Snapshot:
    """A copy of `snap` with these AccountEntry objects in place of the old ones of the same ids, relinked in
    every structure that refers to accounts (identification indexes, rule candidates, plan indexes)."""
    swap = {id(snap.accounts[aid]): new for aid, new in replaced.items() if aid in snap.accounts}
    accounts = dict(snap.accounts)
    accounts.update(replaced)
    memo: dict[int, tuple] = {}

    def relink(entries: tuple) -> tuple:
        """The tuple with replaced accounts swapped in (the same tuple when none is in it; shared pools stay
        shared)."""
        key = id(entries)
        found = memo.get(key)
        if found is None:
            if any(id(e) in swap for e in entries):
                found = tuple(swap.get(id(e), e) for e in entries)
            else:
                found = entries
            memo[key] = found
        return found

    rules = snap.rules
    new_rules: dict[int, RuleEntry] = {}
    for rule in rules.values():
        candidates = relink(rule.candidates) if rule.candidates else rule.candidates
        if candidates is not rule.candidates:
            new_rules[rule.id] = copy_entry(rule, candidates=candidates)
    if new_rules:
        rules = dict(rules)
        rules.update(new_rules)
    plans = snap.plans
    touched = {rule.plan_id for rule in new_rules.values()}
    if touched:
        plans = dict(plans)
        for pid in touched:
            plans[pid] = _replan(plans[pid], new_rules)
    return dataclasses.replace(
        snap,
        accounts=accounts,
        rules=rules,
        plans=plans,
        by_login={k: relink(v) for k, v in snap.by_login.items()},
        by_ani={k: relink(v) for k, v in snap.by_ani.items()},
        ip4=_relink_ip(snap.ip4, relink),
        ip6=_relink_ip(snap.ip6, relink),
    )


def _replan(plan: PlanEntry, new_rules: Mapping[int, RuleEntry]) -> PlanEntry:
    """A copy of the plan whose index holds the new rule objects."""
    index = {
        literal: tuple(new_rules.get(r.id, r) for r in entries)
        for literal, entries in plan.rule_index.items()
    }
    dids = tuple(new_rules.get(r.id, r) for r in plan.did_rules)
    return copy_entry(plan, rule_index=index, did_rules=dids)


def _relink_ip(index: IpIndex, relink) -> IpIndex:
    return IpIndex(
        index.bits,
        [(plen, shift, {k: relink(v) for k, v in table.items()}) for plen, shift, table in index.tables],
    )


def with_plan_rules(snap: Snapshot, plan_id: int, rows: Iterable[Mapping]) -> Snapshot:
    """A copy of `snap` where plan `plan_id` has the rules of `rows` (mappings with the columns of
    `routing_rules`, as the database would return them): the plan's index is rebuilt, nothing else is."""
    rows = [SimpleNamespace(**{c.name: row.get(c.name) for c in schema.rules.c}) for row in rows]
    for row in rows:
        row.plan_id = plan_id
    return _reread_plans(_Rows(snap, plan_id, rows), snap, {plan_id})


class _Rows:
    """Stands for a connection in `plans.read_plans`: the plan's own settings from the snapshot and the
    given rule rows (code names are kept from the snapshot's rules)."""

    def __init__(self, snap: Snapshot, plan_id: int, rows: list):
        self.snap, self.plan_id, self.rows = snap, plan_id, rows
        self.dialect = SimpleNamespace(name="memory")

    def execute(self, stmt):
        froms = {getattr(t, "name", None) for t in stmt.get_final_froms()}
        plan = self.snap.plans.get(self.plan_id)
        if "routing_rules" in froms:
            return iter(self.rows)
        if plan is None:
            return iter(())
        if "routing_plans" in froms:
            fields = {c.name: getattr(plan, c.name, None) for c in schema.plans.c}
            fields["code_deck_id"] = None
            fields["pm_value"] = None if plan.pm_value is None else plan.pm_value / 1_000_000
            return iter((SimpleNamespace(**fields),))
        if "plan_origination_limits" in froms:
            return iter((self.plan_id, c) for c in plan.origination_limits)
        if "plan_termination_limits" in froms:
            return iter((self.plan_id, c) for c in plan.termination_limits)
        return iter(())
