"""Comparing routing snapshots: `describe(snapshot)` is a comparable value of everything routing reads.

Tests compare an incrementally updated snapshot with a full build through it
(`tests/routing/test_incremental.py`): two snapshots route every call alike when their descriptions are
equal, and a link to an object that is not the snapshot's own (a relink bug of an update) shows up as a
difference.
"""

from __future__ import annotations

from panel.routing.snapshot import IpIndex, Snapshot


def describe(snap: Snapshot) -> dict:
    """Everything routing reads from `snap` as plain comparable values (objects by id, links checked): two
    snapshots route every call alike when their descriptions are equal."""

    def account_ref(entry) -> object:
        # A link to an account object that is not the snapshot's own is a relink bug: make it visible.
        return entry.id if snap.accounts.get(entry.id) is entry else ("stale account", entry.id)

    def accounts_of(entries) -> tuple:
        return tuple(account_ref(e) for e in entries)

    def slots(entry, **special) -> dict:
        return {k: special[k] if k in special else getattr(entry, k, None) for k in type(entry).__slots__}

    accounts = {}
    for aid, a in snap.accounts.items():
        table = a.term_rates
        table_ref = None
        if table is not None:
            same = snap.rate_tables.get(a.term_rate_table_id) is table
            table_ref = table.id if same else ("stale table", table.id)
        accounts[aid] = slots(a, term_rates=table_ref)
    rules = {}
    for rid, r in snap.rules.items():
        rules[rid] = slots(
            r,
            candidates=accounts_of(r.candidates or ()),
            regex=r.regex.pattern if r.regex is not None else None,
            time_profile=r.time_profile_id if r.time_profile is not None else None,
        )

    def rule_ref(rule) -> object:
        return rule.id if snap.rules.get(rule.id) is rule else ("stale rule", rule.id)

    plans = {}
    for pid, p in snap.plans.items():
        plans[pid] = slots(
            p,
            rule_index={k: tuple(rule_ref(r) for r in v) for k, v in p.rule_index.items()},
            did_rules=tuple(rule_ref(r) for r in p.did_rules),
        )

    def ip(index: IpIndex) -> list:
        return [(plen, shift, {k: accounts_of(v) for k, v in t.items()}) for plen, shift, t in index.tables]

    return {
        "accounts": accounts,
        "clients": dict(snap.clients),
        "plans": plans,
        "rules": rules,
        "rate_tables": {tid: (t.name, t.currency, dict(t.rates)) for tid, t in snap.rate_tables.items()},
        "codes": snap.codes,
        "policies": dict(snap.policies),
        "profiles": sorted(snap.profiles),
        "dids": dict(snap.dids),
        "quality": dict(snap.quality),
        "by_login": {k: accounts_of(v) for k, v in snap.by_login.items()},
        "by_ani": {k: accounts_of(v) for k, v in snap.by_ani.items()},
        "ip4": ip(snap.ip4),
        "ip6": ip(snap.ip6),
        "gateway_keys": dict(snap.gateway_keys),
        "gateways": dict(snap.gateways),
        "company_names": dict(snap.company_names),
        "descendants": dict(snap.descendants),
        "ancestors": dict(snap.ancestors),
        "counts": {k: v for k, v in snap.counts.items() if k not in ("bad_time_profiles", "companies")},
    }
