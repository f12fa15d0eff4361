"""Build a routing snapshot from the database in one read (SQLAlchemy Core only, no Flask, no ORM objects).

`build_snapshot(source)` takes an Engine, a Connection or a Session. With an Engine it opens its own
connection and reads every table inside one transaction (REPEATABLE READ on PostgreSQL, one read transaction
on SQLite), so the snapshot is consistent even while the panel is being edited. Rates, the bulk of the data,
are read as plain tuples: money converted to integer millionths by the database, times parsed once per
distinct value, identical rows shared between tables.
"""

from __future__ import annotations

import ipaddress
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import column, func, select, table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import NullType

from panel import rule_columns
from panel.routing.rateread import RateColumns, read_rate_tables, to_timestamp
from panel.routing.rateread import micro as _micro
from panel.routing.ratestore import MappedRates, RateStore
from panel.routing.snapshot import (
    INFINITY,
    RATE_ONLY,
    AccountEntry,
    ClientEntry,
    IpIndex,
    PlanEntry,
    QualityEntry,
    RateTableData,
    RuleEntry,
    Snapshot,
    code_length,
    code_set,
    compile_code,
    policy_entry,
)
from panel.timeprofile import CompiledProfile, TimeProfileError

# Lightweight table references (Core only): routing reads raw values and converts them itself.
_raw = NullType()


def _table(name: str, columns: str):
    """A table reference with these columns (names separated by spaces)."""
    return table(name, *(column(c) for c in columns.split()))


companies = _table("companies", "id parent_id name")
clients = _table(
    "clients",
    "id company_id name orig_rate_table_id term_rate_table_id routing_plan_id drained_at drained_until",
)
accounts = _table(
    "accounts",
    "id client_id name ident_by ident_value tech_prefix orig_enabled orig_rate_table_id "
    "orig_routing_plan_id orig_tags orig_capacity term_enabled term_rate_table_id term_tags term_capacity "
    "protocol proxy port drained_at drained_until",
)
account_networks = _table("account_networks", "account_id network position")
account_gateways = _table("account_gateways", "account_id gateway_id")
gateways = _table("gateways", "id company_id name address")
policies = _table("policies", "id name rate_weight asr_weight acd_weight pdd_weight")
time_profiles = _table("time_profiles", "id weekdays ranges timezone")
dids = _table("dids", "number account_id")
plans = _table(
    "routing_plans",
    "id name company_id additional_plan_id code_deck_id loop_protection rules_hunting dr_order "
    "match_increments vendor_limit pm_value pm_percent",
)
origination_limits = _table("plan_origination_limits", "plan_id company_id")
termination_limits = _table("plan_termination_limits", "plan_id company_id")
# A rule's columns as the rules file names them (panel.rule_columns), with its id and plan.
rules = _table("routing_rules", " ".join(("id", "plan_id", *rule_columns.TARGET, *rule_columns.SETTINGS)))
codes = _table("codes", "code_deck_id code name")
quality = _table("quality", "term_account_id code attempts asr acd pdd_ms")
audit_entries = _table("audit_entries", "id at object_type object_id action before after")
# A plan's settings when the column is empty.
PLAN_DEFAULTS = {"rules_hunting": "longest_only", "dr_order": "code_appeal", "match_increments": "disabled"}
# Audit entries of transactions that commit late (after a higher id) are caught within this tail of ids: the
# same width as the manager's data version (`panel.manager.AUDIT_TAIL`).
AUDIT_TAIL = 1000


class _NeverInside:
    """Stands for a time profile that cannot be parsed: its rules never apply rather than always."""

    def contains(self, _moment) -> bool:
        """Never inside."""
        return False


def to_datetime(value) -> datetime | None:
    """A stored time as an aware UTC datetime."""
    ts = to_timestamp(value)
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _drained_until(row) -> float:
    """A drained row's end as POSIX seconds (INFINITY when open-ended)."""
    end = to_timestamp(row.drained_until)
    return INFINITY if end is None else end


def _float(value) -> float | None:
    """A stored number as float (quality figures, rule minimums)."""
    return None if value is None else float(value)


# One object for every equal small set (most accounts have no tags, no gateways): 10,000 accounts hold a few
# hundred sets rather than tens of thousands.
_SETS: dict[frozenset, frozenset] = {}


def _shared(values) -> frozenset:
    """`frozenset(values)`, the same object as every equal set made before."""
    found = frozenset(values)
    if len(_SETS) > 100_000:
        _SETS.clear()
    return _SETS.setdefault(found, found)


def _tags(text: str | None) -> frozenset[str]:
    """Space-separated tags as a set."""
    return _shared((text or "").split())


def _same_account(old: AccountEntry, new: AccountEntry) -> bool:
    """Whether two account entries hold the same values (the rate table: the very same object)."""
    return all(getattr(old, key) == getattr(new, key) for key in AccountEntry.__slots__)


def _split_proxy(proxy: str) -> str:
    """The host part of `host[:port]` (IPv6 in brackets)."""
    proxy = (proxy or "").strip()
    if proxy.startswith("["):
        return proxy[1 : proxy.find("]")] if "]" in proxy else proxy[1:]
    if proxy.count(":") == 1:
        return proxy.split(":", 1)[0]
    return proxy


def address_key(text: str) -> int | None:
    """An IP address as one integer (IPv6 offset past every IPv4 value), None when it is not an address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return int(address) if address.version == 4 else int(address) | (1 << 128)


def build_snapshot(source, *, quality_min_calls: int = 0, store: RateStore | None = None) -> Snapshot:
    """Read everything routing needs from `source` (Engine, Connection or Session) and return a Snapshot;
    with `store`, its rate tables are the host's shared files (`panel.routing.ratestore`), else dicts."""
    started = time.perf_counter()
    with read_connection(source) as conn:
        snapshot = _read(conn, quality_min_calls, store=store)
    snapshot.build_seconds = time.perf_counter() - started
    return snapshot


@contextmanager
def read_connection(source) -> Iterator[Connection]:
    """One connection reading one consistent state of the database (a read transaction of its own for an
    Engine: REPEATABLE READ on PostgreSQL, one WAL snapshot on SQLite; else the source's own transaction)."""
    if isinstance(source, Engine):
        with source.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
                    # pysqlite never begins before a SELECT (unless the app emits BEGIN itself, see
                    # panel.txn): begin so every SELECT reads one WAL snapshot.
                    conn.exec_driver_sql("BEGIN")
                yield conn
    elif isinstance(source, Connection):
        yield source
    else:  # an ORM Session: read through its connection (and its transaction)
        yield source.connection()


def _read(
    conn: Connection, quality_min_calls: int, reuse: Snapshot | None = None, store: RateStore | None = None
) -> Snapshot:
    """The body of build_snapshot, on one connection; with `reuse`, its rate tables are taken as they are
    (the rest is read again: an incremental update of everything but the rates, see `panel.routing.update`).
    """
    if reuse is not None:
        store = reuse.store
    _SETS.clear()  # the sets of this build only
    built_at = datetime.now(UTC)

    # Companies: the tree, its subtrees and chains of ancestors.
    parents: dict[int, int | None] = {}
    company_names: dict[int, str] = {}
    for cid, parent_id, name in conn.execute(select(companies.c.id, companies.c.parent_id, companies.c.name)):
        parents[cid] = parent_id
        company_names[cid] = name
    children: dict[int | None, list[int]] = defaultdict(list)
    for cid, pid in parents.items():
        children[pid].append(cid)
    descendants: dict[int, frozenset[int]] = {}
    ancestors: dict[int, frozenset[int]] = {}
    for cid in parents:
        seen, stack = {cid}, [cid]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        descendants[cid] = frozenset(seen)
        chain, node = [], cid
        while node is not None and node not in chain:
            chain.append(node)
            node = parents.get(node)
        ancestors[cid] = frozenset(chain)

    client_map: dict[int, ClientEntry] = {}
    client_drained: dict[int, float] = {}
    for row in conn.execute(select(clients)):
        client_map[row.id] = ClientEntry(
            row.id,
            row.name,
            row.company_id,
            row.orig_rate_table_id,
            row.term_rate_table_id,
            row.routing_plan_id,
        )
        if row.drained_at is not None:
            client_drained[row.id] = _drained_until(row)

    universe: set[str] | frozenset[str] = set() if reuse is None else reuse.codes
    table_map = _read_rates(conn, store=store, universe=universe) if reuse is None else reuse.rate_tables

    # Accounts, their networks and gateways.
    networks: dict[int, list[str]] = defaultdict(list)
    for account_id, network in conn.execute(
        select(account_networks.c.account_id, account_networks.c.network).order_by(
            account_networks.c.account_id, account_networks.c.position
        )
    ):
        networks[account_id].append(network)
    account_gws: dict[int, set[int]] = defaultdict(set)
    for account_id, gateway_id in conn.execute(
        select(account_gateways.c.account_id, account_gateways.c.gateway_id)
    ):
        account_gws[account_id].add(gateway_id)

    account_map: dict[int, AccountEntry] = {}
    previous: dict[int, AccountEntry] = getattr(reuse, "accounts", None) or {}
    by_login: dict[str, list[AccountEntry]] = defaultdict(list)
    by_ani: dict[str, list[AccountEntry]] = defaultdict(list)
    ip_tables: dict[tuple[int, int], dict[int, list[AccountEntry]]] = defaultdict(lambda: defaultdict(list))
    for row in conn.execute(select(accounts)):
        client = client_map.get(row.client_id)
        if client is None:
            continue
        nets = networks.get(row.id) or []
        if row.ident_by == "ip" and not nets and row.ident_value:
            nets = [part.strip() for part in row.ident_value.split(";") if part.strip()]
        parsed = []
        for text in nets:
            try:
                parsed.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                continue
        host = None
        addresses = set()
        for net in parsed:
            if net.prefixlen == net.max_prefixlen:
                if host is None:
                    host = str(net.network_address)
                addresses.add(address_key(str(net.network_address)))
        proxy = (row.proxy or "").strip()
        if proxy:
            proxy_key = address_key(_split_proxy(proxy))
            if proxy_key is not None:
                addresses.add(proxy_key)
            if host is None:
                host = _split_proxy(proxy)
        term_table_id = row.term_rate_table_id or client.term_rate_table_id
        # Drained (SPEC §5 step 7) when the account or its client is, until the later of their ends.
        drained = client_drained.get(client.id)
        if row.drained_at is not None:
            drained = max(drained or 0.0, _drained_until(row))
        entry = AccountEntry(
            id=row.id,
            name=row.name,
            client_id=client.id,
            client_name=client.name,
            company_id=client.company_id,
            ident_by=row.ident_by,
            ident_value=row.ident_value or "",
            tech_prefix=row.tech_prefix or "",
            gateways=_shared(account_gws.get(row.id, ())),
            orig_enabled=bool(row.orig_enabled),
            orig_rate_table_id=row.orig_rate_table_id,
            orig_plan_id=row.orig_routing_plan_id,
            orig_tags=_tags(row.orig_tags),
            orig_capacity=row.orig_capacity,
            term_enabled=bool(row.term_enabled),
            term_rate_table_id=term_table_id,
            term_rates=table_map.get(term_table_id) if term_table_id else None,
            term_tags=_tags(row.term_tags),
            term_capacity=row.term_capacity,
            protocol=row.protocol or "sip",
            proxy=proxy or None,
            port=row.port or 5060,
            host=host,
            addresses=frozenset(addresses) if addresses else _shared(()),
            drained=drained,
        )
        same = previous.get(row.id)
        if same is not None and _same_account(same, entry):
            # The account as the snapshot being updated holds it: the new entry goes at once, so an update
            # leaves no new long-lived objects (and no holes in the heap when the old snapshot goes) for
            # what did not change.
            entry = same
        account_map[row.id] = entry
        if not entry.orig_enabled:
            continue
        if row.ident_by == "name" and entry.ident_value.strip():
            by_login[entry.ident_value.strip()].append(entry)
        elif row.ident_by == "ani" and entry.ident_value.strip():
            by_ani[entry.ident_value.strip().lstrip("+")].append(entry)
        elif row.ident_by == "ip":
            for net in parsed:
                bits = net.max_prefixlen
                ip_tables[(bits, net.prefixlen)][int(net.network_address) >> (bits - net.prefixlen)].append(
                    entry
                )
    ip4, ip6 = IpIndex(32), IpIndex(128)
    for (bits, prefixlen), entries in sorted(ip_tables.items(), key=lambda item: -item[0][1]):
        index = ip4 if bits == 32 else ip6
        index.tables.append((prefixlen, bits - prefixlen, {k: tuple(v) for k, v in entries.items()}))

    gateway_keys: dict[str, set[int]] = defaultdict(set)
    gateway_map: dict[int, tuple[str, int]] = {}
    for gid, company_id, name, address in conn.execute(
        select(gateways.c.id, gateways.c.company_id, gateways.c.name, gateways.c.address)
    ):
        gateway_map[gid] = (name, company_id)
        gateway_keys[name].add(gid)
        if address:
            gateway_keys[address.strip()].add(gid)

    policy_map = {}
    for row in conn.execute(select(policies)):
        weights = tuple(
            (factor, int(getattr(row, f"{factor}_weight") or 0))
            for factor in ("rate", "asr", "acd", "pdd")
            if getattr(row, f"{factor}_weight")
        )
        policy_map[row.id] = policy_entry(row.id, row.name, weights)

    profile_map = {}
    bad_profiles = 0
    for pid, weekdays, ranges, timezone in conn.execute(select(time_profiles)):
        try:
            profile_map[pid] = CompiledProfile(weekdays, ranges, timezone)
        except TimeProfileError:
            profile_map[pid] = _NeverInside()
            bad_profiles += 1

    did_map = {number.lstrip("+"): account_id for number, account_id in conn.execute(select(dids))}

    quality_map = read_quality(conn, quality_min_calls)

    plan_map, rule_map = _read_plans(
        conn, policy_map, profile_map, account_map, client_map, descendants, ancestors
    )

    counts = {
        "companies": len(parents),
        "clients": len(client_map),
        "accounts": len(account_map),
        "rate_tables": len(table_map),
        "rates": sum(len(t.rates) for t in table_map.values()),
        "codes": len(universe),
        "plans": len(plan_map),
        "rules": len(rule_map),
        "dids": len(did_map),
        "quality": len(quality_map),
        "bad_time_profiles": bad_profiles,
    }
    tail = read_audit_tail(conn)
    return Snapshot(
        audit_top=max(tail, default=0),
        audit_seen=frozenset(tail),
        built_at=built_at,
        build_seconds=0.0,
        accounts=account_map,
        clients=client_map,
        plans=plan_map,
        rules=rule_map,
        rate_tables=table_map,
        codes=code_set(universe),
        policies=policy_map,
        profiles=profile_map,
        dids=did_map,
        quality=quality_map,
        by_login={k: tuple(v) for k, v in by_login.items()},
        by_ani={k: tuple(v) for k, v in by_ani.items()},
        ip4=ip4,
        ip6=ip6,
        gateway_keys={k: frozenset(v) for k, v in gateway_keys.items()},
        gateways=gateway_map,
        company_names=company_names,
        descendants=descendants,
        ancestors=ancestors,
        counts=counts,
        store=store,
    )


def read_quality(conn: Connection, quality_min_calls: int) -> dict[tuple[int, str], QualityEntry]:
    """The quality figures routing uses: (terminator account, vendor code) -> figures with enough calls."""
    quality_map = {}
    for account_id, code, attempts, asr, acd, pdd in conn.execute(
        select(
            quality.c.term_account_id,
            quality.c.code,
            quality.c.attempts,
            quality.c.asr,
            quality.c.acd,
            quality.c.pdd_ms,
        )
    ):
        if (attempts or 0) < quality_min_calls:
            continue
        quality_map[(account_id, code)] = QualityEntry(_float(asr), _float(acd), _float(pdd), attempts or 0)
    return quality_map


def read_audit_tail(conn: Connection, after: int | None = None) -> list[int]:
    """Ids of the newest audit entries: those above the newest minus AUDIT_TAIL, or above `after`."""
    if after is None:
        top = select(func.coalesce(func.max(audit_entries.c.id), 0)).scalar_subquery()
        stmt = select(audit_entries.c.id).where(audit_entries.c.id > top - AUDIT_TAIL)
    else:
        stmt = select(audit_entries.c.id).where(audit_entries.c.id > after)
    return [row[0] for row in conn.execute(stmt)]


def _read_rates(
    conn: Connection, table_ids=None, *, store: RateStore | None = None, universe: set[str] | None = None
) -> dict[int, RateTableData]:
    """Every rate table (or those of `table_ids`) with its rates: code -> rows, latest effective_from first,
    identical rows shared (read by columns, `panel.routing.rateread`); with `store`, each table then mapped
    from its shared file (written when no process of the host wrote that content yet). `universe` receives
    every code read."""
    table_map: dict[int, RateTableData] = {}

    def consume(tid: int, name: str, currency: str, columns: RateColumns) -> None:
        if universe is not None:
            universe.update(columns.codes)
        mapped = store.table(tid, columns) if store is not None else None
        # A mapped table's file is the host's one copy of its rates; else they stay in this process.
        held = MappedRates(mapped) if mapped is not None else columns.as_dict()
        table_map[tid] = RateTableData(tid, name, currency, held)

    read_rate_tables(conn, table_ids, consume)
    return table_map


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


def _read_plans(
    conn, policy_map, profile_map, account_map, client_map, descendants, ancestors, plan_ids=None
):
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
            pm_value=_micro(row.pm_value),
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

    # Terminator-enabled accounts, by client and as the dynamic pool.
    by_client: dict[int, list[AccountEntry]] = defaultdict(list)
    terminators = sorted((a for a in account_map.values() if a.term_enabled), key=lambda a: a.id)
    for entry in terminators:
        by_client[entry.client_id].append(entry)
    for entries in by_client.values():
        entries.sort(key=lambda a: (a.name, a.id))
    dynamic_pools: dict[tuple[int, frozenset[str]], tuple[AccountEntry, ...]] = {}

    def dynamic_pool(owner_id: int, tags: frozenset[str]) -> tuple[AccountEntry, ...]:
        """Terminators of clients owned by the plan owner, its descendants or ancestors, meeting the tags."""
        key = (owner_id, tags)
        pool = dynamic_pools.get(key)
        if pool is None:
            allowed = descendants.get(owner_id, frozenset((owner_id,))) | ancestors.get(owner_id, frozenset())
            pool = tuple(
                a
                for a in terminators
                if a.company_id in allowed and (not a.term_tags.isdisjoint(tags) if tags else not a.term_tags)
            )
            dynamic_pools[key] = pool
        return pool

    rule_map: dict[int, RuleEntry] = {}
    per_plan: dict[int, list[RuleEntry]] = defaultdict(list)
    for row in conn.execute(only(select(rules), rules.c.plan_id)):
        plan = plan_map.get(row.plan_id)
        if plan is None:
            continue
        code = (row.code or "").strip() if row.type != "did" else ""
        literal, regex = compile_code(code)
        if row.type == "static_client":
            candidates = tuple(by_client.get(row.terminator_client_id, ()))
        elif row.type == "static_account":
            account = account_map.get(row.terminator_account_id)
            candidates = (account,) if account is not None else ()
        elif row.type == "dynamic":
            candidates = dynamic_pool(plan.company_id, _tags(row.term_tags))
        else:
            candidates = ()
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
            pm_value=_micro(row.pm_value),
            pm_percent=bool(row.pm_percent),
            orig_tags=_tags(row.orig_tags),
            orig_tags_any=(row.orig_tags_mode == "any"),
            term_tags=_tags(row.term_tags),
            time_profile_id=row.time_profile_id,
            time_profile=profile_map.get(row.time_profile_id) if row.time_profile_id else None,
            expires_at=expires_at,
            expires_ts=expires_at.timestamp() if expires_at else None,
            balancing=balancing,
            balanced=balancing is not None and 1 <= balancing <= 99,
            min_length=row.min_length,
            max_length=row.max_length,
            min_asr=_float(row.min_asr),
            min_acd=_float(row.min_acd),
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
