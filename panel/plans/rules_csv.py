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

from panel import writes
from panel.extensions import db
from panel.imports import flow, jobs, preview, reader
from panel.models import Account, Client, Policy, RoutingPlan, RoutingRule, TimeProfile
from panel.plans import fields
from panel.plans.lookups import Ambiguous, NameResolver
from panel.rule_columns import LIMITS, SETTINGS, TARGET

# The file's columns, in the order a file without a header line gives them.
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
    *LIMITS,
    "stop_hunt",
]
REQUIRED = ("code", "type")
MODES = ("append", "replace")
# Refresh the planner's statistics after an import that changed at least this many rows.
STATISTICS_AFTER = 1000

# Rule types and yes/no values as an operator types them (the original product's words), onto ours.
TYPE_WORDS = {
    "static client": "static_client",
    "client": "static_client",
    "static account": "static_account",
    "account": "static_account",
    "dynamic": "dynamic",
    "dynamic policy": "dynamic",
    "policy": "dynamic",
    "did": "did",
}
FLAG_WORDS = {"yes": "1", "y": "1", "true": "1", "on": "1", "no": "0", "n": "0", "false": "0", "off": "0"}


def parse_type(text: str) -> str:
    """A rule type as written in our files (`static_client`) or as an operator types it (`Static client`)."""
    words = " ".join(text.replace("_", " ").replace("-", " ").lower().split())
    return fields.parse_type(TYPE_WORDS.get(words, text))


def parse_flag(text: str) -> bool:
    """`1`/`0`, or `yes`/`no` (also `y`, `true`, `on`, … in any case)."""
    return fields.parse_flag(FLAG_WORDS.get(text.strip().lower(), text))


# The numeric columns and their bounds (the same as the rule form's).
_NUMBERS = {
    "balancing": partial(fields.parse_int, minimum=0, maximum=1_000_000),
    "min_length": partial(fields.parse_int, minimum=0, maximum=64),
    "max_length": partial(fields.parse_int, minimum=0, maximum=64),
    "min_asr": partial(fields.parse_decimal, minimum=Decimal(0), maximum=Decimal(100)),
    "min_acd": partial(fields.parse_decimal, minimum=Decimal(0), maximum=Decimal(1440)),
    "capacity": partial(fields.parse_int, minimum=0, maximum=1_000_000),
}


# The optional cells, their parsers and the value of an empty one (most cells of a large file are empty: no
# parser runs for them). The profit margin gives two values (pm_value, pm_percent).
_OPTIONAL = {
    "orig_tags": (fields.parse_tags, ""),
    "orig_tags_mode": (fields.parse_tag_mode, "all"),
    "term_tags": (fields.parse_tags, ""),
    "expires_at": (fields.parse_expires, None),
    "stop_hunt": (parse_flag, False),
    "profit_margin": (fields.parse_profit_margin, (None, False)),
    **{name: (parse, None) for name, parse in _NUMBERS.items()},
}


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
        rule_type = reader.cell(parse_type, "type", get("type", ""))
        code = reader.cell(fields.parse_code, "code", get("code", ""))
        terminator = get("terminator", "")
        values = {
            "plan_id": plan_id,
            "priority": reader.cell(fields.parse_priority, "priority", get("priority", "")),
            "code": code,
            "type": rule_type,
            "terminator_client_id": None,
            "terminator_account_id": None,
            "policy_id": None,
            "time_profile_id": None,
        }
        for name, (parse_cell, empty) in _OPTIONAL.items():
            value = get(name)
            values[name] = reader.cell(parse_cell, name, value) if value else empty
        values["pm_value"], values["pm_percent"] = values.pop("profit_margin")
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


def parse_rules(
    plan: RoutingPlan, data: bytes, progress: Callable[[int, int], None] | None = None
) -> list[dict]:
    """Every row of the file as the values of a rule of the plan; ImportFailed lists the wrong lines."""
    resolver = NameResolver(plan.company_id)
    try:
        rows, errors = reader.parse(
            data,
            COLUMNS,
            row_parser(plan.id, resolver),
            required=REQUIRED,
            progress=progress,
            positional=True,
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
    return rows


def import_work(plan_id: int, data: bytes, mode: str) -> Callable[[int, Callable[[int, int], None]], str]:
    """The job body for panel.imports.jobs.start: parse, then write all rows in one transaction or none."""

    def work(job_id: int, progress: Callable[[int, int], None]) -> str:
        plan = db.session.get(RoutingPlan, plan_id)
        if plan is None:
            raise jobs.ImportFailed("The routing plan was deleted before the import ran.")
        rows = parse_rules(plan, data, progress)
        jobs.mark_writing(job_id, len(rows))
        # after={}: an import states what it did (set below), not a diff of the plan's fields.
        with writes.change(plan, action="import", after={}) as unit:
            removed = 0
            if mode == "replace":
                removed = (
                    db.session.execute(delete(RoutingRule).where(RoutingRule.plan_id == plan.id)).rowcount
                    or 0
                )
            # render_nulls: every row has the same columns, so the rows go in a few multi-row statements.
            db.session.execute(insert(RoutingRule).execution_options(render_nulls=True), rows)
            total = db.session.scalar(select(func.count()).where(RoutingRule.plan_id == plan.id))
            note = f"import ({mode}): {len(rows):,} rules added"
            if mode == "replace":
                note += f", {removed:,} removed"
            unit.note = note + f"; the plan has {total:,} rules"
            unit.after = {
                "mode": mode,
                "rules added": len(rows),
                "rules removed": removed,
                "rules now": total,
            }
        if len(rows) + removed >= STATISTICS_AFTER:
            refresh_statistics()
        return (
            f"Imported {len(rows):,} rules ({mode}{f', {removed:,} replaced' if mode == 'replace' else ''}). "
            f"The plan has {total:,} rules; they take effect at the next run of the Traffic Rules manager."
        )

    return work


# What identifies a rule in a preview (rules with the same key are paired in order) and what it says.
_KEY = TARGET
_VALUES = SETTINGS


def _current(plan_id: int):
    """(key, values) of the plan's rules."""
    columns = [getattr(RoutingRule, c) for c in (*_KEY, *_VALUES)]
    stmt = select(*columns).where(RoutingRule.plan_id == plan_id).execution_options(yield_per=5000)
    width = len(_KEY)
    for row in db.session.execute(stmt):
        yield tuple(row[:width]), _normal(tuple(row[width:]))


def _normal(values: tuple) -> tuple:
    """Values compared the same way whichever side they come from (decimals by value, times in UTC)."""
    return tuple(
        format(v.normalize(), "f")
        if isinstance(v, Decimal)
        else fields.format_expires(v)
        if hasattr(v, "tzinfo")
        else v
        for v in values
    )


def fingerprint(plan: RoutingPlan) -> str:
    """A digest of the plan's rules now (a confirmation compares it with the preview's)."""
    return preview.fingerprint(_current(plan.id))


def preview_rules(plan: RoutingPlan, data: bytes, mode: str) -> preview.Diff:
    """What importing the file would do to the plan: rules added, removed (replace), changed."""
    rows = parse_rules(plan, data)
    incoming = ((tuple(r[c] for c in _KEY), _normal(tuple(r[c] for c in _VALUES))) for r in rows)
    current = _current(plan.id) if mode == "replace" else iter(())
    result = preview.diff(current, incoming, COLUMNS, display=_display, replace=mode == "replace")
    if mode != "replace":
        result.fingerprint = fingerprint(plan)
    return result


def _display(key: tuple, values: tuple) -> dict:
    """A rule of a preview as the export writes it (names instead of ids)."""
    rule = dict(zip(_KEY + _VALUES, key + values, strict=True))
    terminator = ""
    if rule["terminator_client_id"]:
        terminator = db.session.get(Client, rule["terminator_client_id"]).name
    elif rule["terminator_account_id"]:
        account = db.session.get(Account, rule["terminator_account_id"])
        terminator = f"{account.client.name}/{account.name}"
    elif rule["policy_id"]:
        terminator = db.session.get(Policy, rule["policy_id"]).name
    profile = db.session.get(TimeProfile, rule["time_profile_id"]).name if rule["time_profile_id"] else ""
    margin = ""
    if rule["pm_value"] is not None:
        margin = f"{rule['pm_value']}{'%' if rule['pm_percent'] else ''}"
    shown = {**rule, "terminator": terminator, "time_profile": profile, "profit_margin": margin}
    shown["stop_hunt"] = "1" if rule["stop_hunt"] else "0"
    return {c: "" if shown.get(c) is None else str(shown.get(c)) for c in COLUMNS}


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


# Files up to this many lines are imported within the request (the answer shows the outcome at once).
SYNCHRONOUS_LINES = 2000
RULES_IMPORT_MAX_BYTES = 16 * 1024 * 1024


def import_limit() -> int:
    """Largest rules file accepted: RULES_IMPORT_MAX_BYTES (default 16 MiB, about 250,000 rules)."""
    limit = current_app.config.get("RULES_IMPORT_MAX_BYTES", RULES_IMPORT_MAX_BYTES)
    return min(int(limit), current_app.config["MAX_CONTENT_LENGTH"])


def _form(**kwargs):
    """The upload form (imported late: the plans' forms module is large)."""
    from panel.plans.forms import ImportForm

    return ImportForm(**kwargs)


def _context(plan: RoutingPlan) -> dict:
    """The Import/Export tab's own context."""
    from panel.plans import service

    return {
        "plan": plan,
        "columns": COLUMNS,
        "tab": "import",
        "rule_total": service.rule_counts([plan.id]).get(plan.id, 0),
    }


IMPORT = flow.ImportSpec(
    kind="routing_rules",
    endpoint="plans.import_",
    form=_form,
    modes={mode: mode for mode in MODES},
    run=lambda plan_id, data, mode, options, filename, job_id, progress: import_work(plan_id, data, mode)(
        job_id, progress
    ),
    id_arg="plan_id",
    fragment="plans/_import.html",  # the plan's Import/Export tab
    preview=lambda plan, data, mode, options: preview_rules(plan, data, mode),
    fingerprint=fingerprint,
    preview_modes=frozenset({"replace"}),
    context=_context,
    label=lambda plan: f"routing plan {plan.name}",
    limit=import_limit,
    synchronous=lambda data: True if data.count(b"\n") < SYNCHRONOUS_LINES else None,
    redirect_after_start=False,  # the tab shows the outcome (small files) or the progress bar at once
)
