"""The rules file of a routing plan (SPEC §4, docs/csv-rules.md): export, and import in the background.

Import: every row is parsed with the value rules shared with the rule form (panel.plans.fields); names are
resolved with dictionaries built once (panel.plans.lookups.NameResolver); then all rows are written with one
bulk insert and one audit entry, or nothing is written and every error is reported as
`line N, column: message`.
"""

from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial

from flask import current_app
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import aliased

from panel import audit
from panel.extensions import db
from panel.imports import jobs, reader
from panel.models import Account, Client, Policy, RoutingPlan, RoutingRule, TimeProfile
from panel.plans import fields
from panel.plans.lookups import Ambiguous, NameResolver

COLUMNS = [
    "priority",
    "code",
    "type",
    "terminator",
    "profit_margin",
    "orig_tags",
    "orig_tags_mode",
    "term_tags",
    "time_profile",
    "expires_at",
    "balancing",
    "min_length",
    "max_length",
    "min_asr",
    "min_acd",
    "capacity",
    "stop_hunt",
]
REQUIRED = ("code", "type")
MODES = ("append", "replace")
# Refresh the planner's statistics after an import that changed at least this many rows.
STATISTICS_AFTER = 1000

# The numeric columns and their bounds (the same as the rule form's).
_NUMBERS = {
    "balancing": partial(fields.parse_int, minimum=0, maximum=1_000_000),
    "min_length": partial(fields.parse_int, minimum=0, maximum=64),
    "max_length": partial(fields.parse_int, minimum=0, maximum=64),
    "min_asr": partial(fields.parse_decimal, minimum=Decimal(0), maximum=Decimal(100)),
    "min_acd": partial(fields.parse_decimal, minimum=Decimal(0), maximum=Decimal(1440)),
    "capacity": partial(fields.parse_int, minimum=0, maximum=1_000_000),
}


def _cell(parse: Callable, column: str, value: str):
    """Parse one cell; a bad value becomes RowError(column, message)."""
    try:
        return parse(value)
    except ValueError as exc:
        raise reader.RowError(column, str(exc)) from None


def row_parser(plan_id: int, resolver: NameResolver) -> Callable[[dict[str, str], int], dict]:
    """A row parser (for panel.imports.reader.parse): one row into the values of a RoutingRule of the plan."""

    def resolve(kind: str, find: Callable[[str], int | None], name: str, what: str) -> int:
        try:
            found = find(name)
        except Ambiguous as exc:
            raise reader.RowError(kind, f"{name!r} is ambiguous: {exc} have that name.") from None
        if found is None:
            raise reader.RowError(kind, f"no {what} named {name!r}.")
        return found

    def parse(raw: dict[str, str], _line: int) -> dict:
        get = raw.get
        rule_type = _cell(fields.parse_type, "type", get("type", ""))
        code = _cell(fields.parse_code, "code", get("code", ""))
        terminator = get("terminator", "")
        # Most cells of a large file are empty: skip the parsers for them.
        orig_tags = get("orig_tags")
        term_tags = get("term_tags")
        mode = get("orig_tags_mode")
        expires = get("expires_at")
        stop_hunt = get("stop_hunt")
        margin = get("profit_margin")
        values = {
            "plan_id": plan_id,
            "priority": _cell(fields.parse_priority, "priority", get("priority", "")),
            "code": code,
            "type": rule_type,
            "terminator_client_id": None,
            "terminator_account_id": None,
            "policy_id": None,
            "orig_tags": _cell(fields.parse_tags, "orig_tags", orig_tags) if orig_tags else "",
            "orig_tags_mode": _cell(fields.parse_tag_mode, "orig_tags_mode", mode) if mode else "all",
            "term_tags": _cell(fields.parse_tags, "term_tags", term_tags) if term_tags else "",
            "time_profile_id": None,
            "expires_at": _cell(fields.parse_expires, "expires_at", expires) if expires else None,
            "stop_hunt": _cell(fields.parse_flag, "stop_hunt", stop_hunt) if stop_hunt else False,
        }
        values["pm_value"], values["pm_percent"] = (
            _cell(fields.parse_profit_margin, "profit_margin", margin) if margin else (None, False)
        )
        for name, parse_number in _NUMBERS.items():
            value = get(name)
            values[name] = _cell(parse_number, name, value) if value else None
        if terminator and rule_type == "static_client":
            values["terminator_client_id"] = resolve("terminator", resolver.client, terminator, "client")
        elif terminator and rule_type == "static_account":
            if "/" not in terminator:
                raise reader.RowError("terminator", f"{terminator!r}: write the account as client/account.")
            values["terminator_account_id"] = resolve(
                "terminator", resolver.account, terminator, "account (client/account)"
            )
        elif terminator and rule_type == "dynamic":
            values["policy_id"] = resolve("terminator", resolver.policy, terminator, "routing policy")
        profile = get("time_profile", "")
        if profile:
            values["time_profile_id"] = resolve(
                "time_profile", resolver.time_profile, profile, "time profile"
            )
        checks = {**values, "has_terminator": bool(terminator)}
        for column, message in fields.rule_problems(checks):
            raise reader.RowError(column, message)
        return values

    return parse


def import_work(plan_id: int, data: bytes, mode: str) -> Callable[[int, Callable[[int, int], None]], str]:
    """The job body for panel.imports.jobs.start: parse, then write all rows in one transaction or none."""

    def work(job_id: int, progress: Callable[[int, int], None]) -> str:
        plan = db.session.get(RoutingPlan, plan_id)
        if plan is None:
            raise jobs.ImportFailed("The routing plan was deleted before the import ran.")
        resolver = NameResolver(plan.company_id)
        try:
            rows, errors = reader.parse(
                data, COLUMNS, row_parser(plan.id, resolver), required=REQUIRED, progress=progress
            )
        except reader.CsvError as exc:
            raise jobs.ImportFailed(str(exc)) from None
        if errors:
            shown = len([e for e in errors if e.startswith("line")])
            raise jobs.ImportFailed(
                f"Nothing was imported: {shown:,} row error(s). Fix them and import again.", errors
            )
        if not rows:
            raise jobs.ImportFailed("Nothing was imported: the file has a header but no rules.")
        jobs.mark_writing(job_id, len(rows))
        removed = 0
        if mode == "replace":
            removed = (
                db.session.execute(delete(RoutingRule).where(RoutingRule.plan_id == plan.id)).rowcount or 0
            )
        # render_nulls: every row has the same columns, so the rows go in a few multi-row statements.
        db.session.execute(insert(RoutingRule).execution_options(render_nulls=True), rows)
        total = db.session.scalar(select(func.count()).where(RoutingRule.plan_id == plan.id))
        note = f"import ({mode}): {len(rows):,} rules added"
        if mode == "replace":
            note += f", {removed:,} removed"
        note += f"; the plan has {total:,} rules"
        audit.record("import", plan, note=note)
        db.session.commit()
        if len(rows) + removed >= STATISTICS_AFTER:
            refresh_statistics()
        return (
            f"Imported {len(rows):,} rules ({mode}{f', {removed:,} replaced' if mode == 'replace' else ''}). "
            f"The plan has {total:,} rules; they take effect at the next run of the Traffic Rules manager."
        )

    return work


def refresh_statistics() -> None:
    """Let the query planner see the table's new shape after a large import (best effort).

    Without it, a plan that just received 50,000 rules is planned as if it held a handful, and its rules tab
    sorts every row instead of reading the (plan, code) index.
    """
    try:
        if db.engine.dialect.name == "postgresql":
            # VACUUM also marks the new rows all-visible, so counts and deep pages read the index alone.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE routing_rules"))
        else:
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE routing_rules"))
                conn.commit()
    except Exception:  # noqa: BLE001 - statistics only speed reads up; the import itself is done
        current_app.logger.warning("ANALYZE routing_rules failed after an import", exc_info=True)


def export_rows(plan: RoutingPlan) -> Iterator[list]:
    """The plan's rules as CSV rows in the documented column order, by code, priority and id."""
    account_client = aliased(Client)
    stmt = (
        select(
            RoutingRule,
            Client.name.label("client_name"),
            Account.name.label("account_name"),
            account_client.name.label("account_client_name"),
            Policy.name.label("policy_name"),
            TimeProfile.name.label("time_profile_name"),
        )
        .outerjoin(Client, RoutingRule.terminator_client_id == Client.id)
        .outerjoin(Account, RoutingRule.terminator_account_id == Account.id)
        .outerjoin(account_client, Account.client_id == account_client.id)
        .outerjoin(Policy, RoutingRule.policy_id == Policy.id)
        .outerjoin(TimeProfile, RoutingRule.time_profile_id == TimeProfile.id)
        .where(RoutingRule.plan_id == plan.id)
        .order_by(RoutingRule.code, RoutingRule.priority, RoutingRule.id)
        .execution_options(yield_per=2000)
    )
    for row in db.session.execute(stmt):
        rule = row.RoutingRule
        if rule.type == "static_client":
            terminator = row.client_name or ""
        elif rule.type == "static_account":
            terminator = f"{row.account_client_name}/{row.account_name}" if row.account_name else ""
        elif rule.type == "dynamic":
            terminator = row.policy_name or ""
        else:
            terminator = ""
        yield [
            rule.priority,
            rule.code,
            rule.type,
            terminator,
            rule.profit_margin,
            rule.orig_tags,
            rule.orig_tags_mode,
            rule.term_tags,
            row.time_profile_name or "",
            fields.format_expires(rule.expires_at),
            _text(rule.balancing),
            _text(rule.min_length),
            _text(rule.max_length),
            _text(rule.min_asr),
            _text(rule.min_acd),
            _text(rule.capacity),
            "1" if rule.stop_hunt else "0",
        ]


def _text(value) -> str:
    """A number as written in the file ('' for not set)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)
