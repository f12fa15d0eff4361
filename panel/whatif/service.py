"""What the what-if pages read from the database: the snapshot, deck codes, rule rows, traffic, versions.

Versions: a digest of the data a preview was computed from (a plan's rules, a rate table's rates); "apply"
recomputes it and refuses when it moved, so a preview is never applied over someone else's change.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from panel import search, snapshots
from panel.extensions import db
from panel.models import CallStat, Client, Code, Rate, RoutingPlan, RoutingRule
from panel.routing.snapshot import Snapshot, compile_code
from panel.whatif import overlay, sheet

RULE_COLUMNS = [c.key for c in RoutingRule.__table__.columns]
RATE_VERSION_COLUMNS = (
    Rate.id,
    Rate.code,
    Rate.rate,
    Rate.effective_from,
    Rate.end,
    Rate.setup_fee,
    Rate.min_time,
    Rate.interval,
)


def current_snapshot() -> Snapshot:
    """The manager's latest snapshot (rebuilt first when the published version moved), as the route test."""
    try:
        from panel import manager

        manager.sync_snapshot(current_app._get_current_object())
    except Exception:  # noqa: BLE001 - a failed version check must not stop the page; use what we have
        current_app.logger.exception("what-if: snapshot version check failed")
    return snapshots.get_snapshot()


def deck_codes(deck_id: int | None, prefix: str = "", country: str = "") -> list[tuple[str, str, str]]:
    """(code, name, country) of a deck, by code; filtered by code prefix and country (name contains)."""
    if deck_id is None:
        return []
    stmt = select(Code.code, Code.name, Code.country).where(Code.code_deck_id == deck_id)
    if prefix:
        stmt = stmt.where(search.prefix(Code.code, prefix))
    if country:
        stmt = stmt.where(search.contains(Code.country, country))
    return [tuple(row) for row in db.session.execute(stmt.order_by(Code.code))]


def destinations(plan_id: int) -> list[tuple[str, str, str]]:
    """The plan's deck codes; without a deck, the literal codes of its rules (so something is evaluated)."""
    deck_id = db.session.scalar(select(RoutingPlan.code_deck_id).where(RoutingPlan.id == plan_id))
    if deck_id is not None:
        return deck_codes(deck_id)
    codes = db.session.scalars(select(RoutingRule.code).where(RoutingRule.plan_id == plan_id).distinct())
    found = sorted({compile_code(c)[0] for c in codes if c and compile_code(c)[0]})
    return [(c, "", "") for c in found]


def rule_rows(plan_id: int) -> list[dict]:
    """The plan's rules as column values, by id."""
    stmt = (
        select(*RoutingRule.__table__.columns).where(RoutingRule.plan_id == plan_id).order_by(RoutingRule.id)
    )
    return [dict(row._mapping) for row in db.session.execute(stmt)]


def next_rule_id() -> int:
    """The id a new rule will most likely get (only ties between equal rules depend on it)."""
    return (db.session.scalar(select(func.max(RoutingRule.id))) or 0) + 1


def version_of_rules(plan_id: int) -> str:
    """A digest of the plan's rules."""
    digest = hashlib.sha256()
    for row in rule_rows(plan_id):
        digest.update(repr(sorted(row.items())).encode())
    return digest.hexdigest()[:20]


def version_of_rates(table_id: int) -> str:
    """A digest of the rate table's rates."""
    digest = hashlib.sha256()
    stmt = select(*RATE_VERSION_COLUMNS).where(Rate.rate_table_id == table_id).order_by(Rate.id)
    for row in db.session.execute(stmt.execution_options(yield_per=20_000)):
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()[:20]


def traffic(company_ids, since: datetime) -> dict[tuple[int, str], int]:
    """Calls per (originator account, customer code) since `since` (the last statistics window)."""
    stmt = (
        select(CallStat.orig_account_id, CallStat.orig_code, func.count())
        .join(Client, CallStat.orig_client_id == Client.id)
        .where(CallStat.start_at >= since, Client.company_id.in_(list(company_ids)))
        .group_by(CallStat.orig_account_id, CallStat.orig_code)
    )
    return {(a, c): n for a, c, n in db.session.execute(stmt) if a is not None}


def window_start(now: datetime) -> datetime:
    """The start of the last statistics window (QUALITY_WINDOW_HOURS, default 24)."""
    return now - timedelta(hours=float(current_app.config.get("QUALITY_WINDOW_HOURS", 24) or 24))


def touched_by_rules(codes, rule_codes: set[str]):
    """The deck codes a changed rule's code can reach, routed as numbers (a `*` rule reaches every code)."""
    compiled = [compile_code(rc) for rc in rule_codes]

    def reached(code: str) -> bool:
        return any(code.startswith(lit) and (rx is None or rx.match(code)) for lit, rx in compiled)

    return [c for c in codes if reached(c[0])]


def touched_by_rates(codes, changed: set[str]):
    """The deck codes that have a changed rate code as a prefix (or are one)."""
    if not changed:
        return []
    lengths = sorted({len(c) for c in changed})
    return [c for c in codes if any(c[0][:n] in changed for n in lengths if n <= len(c[0]))]


def changed_rule_codes(old: list[dict], new: list[dict]) -> set[str]:
    """The codes of the rules added, removed or changed between two rule lists (by id)."""
    before = {row["id"]: row for row in old}
    after = {row["id"]: row for row in new}
    codes = set()
    for rule_id in before.keys() | after.keys():
        a, b = before.get(rule_id), after.get(rule_id)
        if a != b:
            codes.update(row["code"] or "" for row in (a, b) if row is not None)
    return {c for c in codes if c} or ({""} if any(r["type"] == "did" for r in new + old) else set())


def rules_preview(snapshot: Snapshot, plan_id: int, new_rows: list[dict], company_ids, at: datetime):
    """The what-if of replacing a plan's rules by `new_rows`: (preview, the snapshot with the change)."""
    old_rows = rule_rows(plan_id)
    base = overlay.with_plan_rules(snapshot, plan_id, old_rows)  # the database's rules, even before a sync
    changed = overlay.with_plan_rules(snapshot, plan_id, new_rows)
    codes = changed_rule_codes(old_rows, new_rows)
    targets = []
    touched_of: dict[int, list] = {}  # per plan (many groups share one)
    for group in sheet.groups(snapshot, company_ids, {plan_id}):
        if group.key[0] not in touched_of:
            touched_of[group.key[0]] = touched_by_rules(destinations(group.key[0]), codes)
        if touched_of[group.key[0]]:
            targets.append((group, touched_of[group.key[0]]))
    return sheet.preview(base, changed, targets, at, traffic(company_ids, window_start(at))), changed


def rates_preview(snapshot: Snapshot, table_id: int, new_rates, company_ids, at: datetime):
    """The what-if of a rate table holding `new_rates`: (preview, the snapshot with the change)."""
    old_rates = snapshot.rate_tables[table_id].rates if table_id in snapshot.rate_tables else {}
    changed = overlay.with_rates(snapshot, table_id, new_rates)
    codes = {c for c in old_rates.keys() | new_rates.keys() if old_rates.get(c) != new_rates.get(c)}
    targets = []
    deck_cache: dict[int, list] = {}
    for group in sheet.groups(snapshot, company_ids):
        plan_id = group.key[0]
        if plan_id not in deck_cache:
            deck_cache[plan_id] = touched_by_rates(destinations(plan_id), codes)
        if deck_cache[plan_id]:
            targets.append((group, deck_cache[plan_id]))
    moved = {
        a.id for a in changed.accounts.values() if a.term_rates is not None and a.term_rates.id == table_id
    }

    def affected(group, result) -> bool:
        """The old answer can change only through the table: as the customer's, or a candidate's."""
        if group.key[1] == table_id:
            return True
        for matched in result.matched:
            if not matched.cut and any(c.id in moved for c in matched.rule.candidates):
                return True
        return any(r.account is not None and r.account.id in moved for r in result.rejections) or any(
            r.account.id in moved for r in result.routes
        )

    return sheet.preview(
        snapshot, changed, targets, at, traffic(company_ids, window_start(at)), affected=affected
    ), changed
