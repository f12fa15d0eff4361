"""Pieces shared by the reference-data sections (rate tables, code decks, time profiles, policies, DIDs).

Owner pickers, the rule for moving an object to another company while it is used, and the wording of
"used by" lists, so the five sections say the same thing the same way.
"""

from collections.abc import Iterable

from flask import request
from flask_login import current_user
from sqlalchemy import func, select

from panel.extensions import db
from panel.listing import id_arg, paginate
from panel.models import Company, RoutingPlan, RoutingRule
from panel.scope import ancestor_ids, scoped, user_company_ids, visible_companies


def count_by(column, ids: list[int]) -> dict[int, int]:
    """Rows per value of `column` (a foreign key) for the given ids, in one grouped query: {id: count}."""
    if not ids:
        return {}
    return dict(
        db.session.execute(select(column, func.count()).where(column.in_(ids)).group_by(column)).all()
    )


def rules_using(column, object_id: int) -> list:
    """The routing rules whose `column` (policy_id, time_profile_id) is the object, with their plans."""
    return db.session.execute(
        select(RoutingRule, RoutingPlan)
        .join(RoutingPlan, RoutingRule.plan_id == RoutingPlan.id)
        .where(column == object_id)
        .order_by(RoutingPlan.name, RoutingRule.priority, RoutingRule.id)
    ).all()


def owned_list(model, sortable: dict):
    """The list of a named object owned by companies (rate tables, decks, policies, profiles): name search,
    owner filter, sorting and paging, all in the user's scope. Returns (pagination, q, company_id)."""
    q = request.args.get("q", "").strip()
    company_id = id_arg("company_id")
    stmt = scoped(model).join(Company, model.company_id == Company.id)
    if q:
        stmt = stmt.where(model.name.icontains(q, autoescape=True))
    if company_id and company_id in user_company_ids():
        stmt = stmt.where(model.company_id == company_id)
    return paginate(stmt, sortable, "name", model.id), q, company_id


def owner_choices(exclude_kinds: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(id, name) of the companies the user may give an object to: its own and its descendants."""
    excluded = set(exclude_kinds)
    companies = db.session.scalars(visible_companies()).all()
    return [(c.id, c.name) for c in companies if c.kind not in excluded]


def default_owner(choices: list[tuple[int, str]]) -> int | None:
    """The user's own company when it is offered, else the first choice."""
    ids = [cid for cid, _ in choices]
    if current_user.company_id in ids:
        return current_user.company_id
    return ids[0] if ids else None


def owner_change_error(new_owner_id: int, user_company_ids: Iterable[int], what: str) -> str | None:
    """Why the object cannot move to `new_owner_id`, or None.

    An object is usable by its owner and the companies below it, so every company that uses it must stay at or
    below the new owner.
    """
    stranded = sorted({cid for cid in user_company_ids if new_owner_id not in ancestor_ids(cid)})
    if not stranded:
        return None
    names = db.session.scalars(
        select(Company.name).where(Company.id.in_(stranded)).order_by(Company.name)
    ).all()
    return (
        f"This {what} is used by {', '.join(names)}, which would no longer be allowed to use it under the "
        f"new owner. Change those users first."
    )


def name_list(names: Iterable[str], limit: int = 5) -> str:
    """`A, B, C and 4 more`: a readable list of who uses an object."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit:,} more"


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    """`1 rate`, `2 rates`."""
    return f"{count:,} {word if count == 1 else (plural_word or word + 's')}"


class Parsed:
    """A WTForms validator that runs one of `panel.rates.values`' parsers and keeps the clean value.

    The clean value is stored on the field as `field.parsed`; the parser's message becomes the field's error.
    """

    def __init__(self, parse):
        self.parse = parse

    def __call__(self, form, field) -> None:
        from wtforms.validators import StopValidation

        try:
            field.parsed = self.parse(field.data or "")
        except ValueError as exc:
            message = str(exc)
            raise StopValidation(message[:1].upper() + message[1:] + ".") from None


def start_csv_import(kind: str, *, target, form, mode_label: str, run):
    """Read the form's upload and start the background import job; None when the upload is unusable.

    `run(data, filename, job_id, progress)` does the import (it returns the summary or raises ImportFailed).
    When the upload cannot be read, the reason is added to `form.file.errors`.
    """
    from panel import csvio
    from panel.imports import jobs

    try:
        data = csvio.read_upload(form.file.data)
    except csvio.CsvError as exc:
        form.file.errors.append(str(exc))
        return None
    filename = form.file.data.filename

    def work(job_id: int, progress) -> str:
        return run(data, filename, job_id, progress)

    return jobs.start(
        kind,
        company_id=target.company_id,
        target_id=target.id,
        target_label=target.name,
        filename=filename,
        mode=mode_label,
        work=work,
    )


def recent_jobs(kind: str, target_id: int, limit: int = 10) -> list:
    """The latest imports of one kind into one object that the user may see, newest first."""
    from panel.models.system import ImportJob
    from panel.scope import scoped

    return db.session.scalars(
        scoped(ImportJob)
        .where(ImportJob.kind == kind, ImportJob.target_id == target_id)
        .order_by(ImportJob.id.desc())
        .limit(limit)
    ).all()


def csv_filename(name: str, suffix: str) -> str:
    """A safe download name such as `Vendor_A-rates.csv`."""
    import re

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or suffix
    return f"{slug}-{suffix}.csv"


def rule_label(rule, plan) -> str:
    """`plan Retail rule 4420 (priority 10)`; `plan Retail did rule (priority 1)` for rules without a code."""
    what = f"rule {rule.code}" if rule.code else f"{rule.type.replace('_', ' ')} rule"
    return f"plan {plan.name} {what} (priority {rule.priority})"
