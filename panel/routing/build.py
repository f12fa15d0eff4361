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

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from panel.routing.plans import as_float, forget_shared_sets, read_plans, shared_set, tags
from panel.routing.rateread import RateColumns, read_rate_tables, to_timestamp
from panel.routing.ratestore import MappedRates, RateStore
from panel.routing.snapshot import (
    INFINITY,
    AccountEntry,
    ClientEntry,
    IpIndex,
    QualityEntry,
    RateTableData,
    Snapshot,
    code_set,
    policy_entry,
)
from panel.routing.tables import (
    account_gateways,
    account_networks,
    accounts,
    audit_entries,
    clients,
    companies,
    dids,
    gateways,
    policies,
    quality,
    time_profiles,
)
from panel.timeprofile import CompiledProfile, TimeProfileError

# Audit entries of transactions that commit late (after a higher id) are caught within this tail of ids: the
# same width as the manager's data version (`panel.manager.AUDIT_TAIL`).
AUDIT_TAIL = 1000


class _NeverInside:
    """Stands for a time profile that cannot be parsed: its rules never apply rather than always."""

    def contains(self, _moment) -> bool:
        """Never inside."""
        return False


def _drained_until(row) -> float:
    """A drained row's end as POSIX seconds (INFINITY when open-ended)."""
    end = to_timestamp(row.drained_until)
    return INFINITY if end is None else end


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
    forget_shared_sets()  # the sets of this build only
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
            gateways=shared_set(account_gws.get(row.id, ())),
            orig_enabled=bool(row.orig_enabled),
            orig_rate_table_id=row.orig_rate_table_id,
            orig_plan_id=row.orig_routing_plan_id,
            orig_tags=tags(row.orig_tags),
            orig_capacity=row.orig_capacity,
            term_enabled=bool(row.term_enabled),
            term_rate_table_id=term_table_id,
            term_rates=table_map.get(term_table_id) if term_table_id else None,
            term_tags=tags(row.term_tags),
            term_capacity=row.term_capacity,
            protocol=row.protocol or "sip",
            proxy=proxy or None,
            port=row.port or 5060,
            host=host,
            addresses=frozenset(addresses) if addresses else shared_set(()),
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

    plan_map, rule_map = read_plans(
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
        figures = (as_float(asr), as_float(acd), as_float(pdd))
        quality_map[(account_id, code)] = QualityEntry(*figures, attempts or 0)
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
