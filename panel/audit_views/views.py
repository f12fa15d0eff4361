"""The audit log section (SPEC §8): every change of the user's companies, filtered, paged, read-only.

Entries are scoped by the company that owned the object (`scoped(AuditEntry)`): a reseller reads the history
of its own subtree and never of its parent or siblings. There is no endpoint that edits or deletes an entry.
The clients' and accounts' "change history" links land here as `?client_id=N` (the client and all its
accounts) and `?object_type=account&object_id=N`.
"""

import json
import re
from datetime import UTC, date, datetime, timedelta

from flask import current_app, request, url_for
from sqlalchemy import func, select
from werkzeug.routing import BuildError

from panel import audit, diffs, htmx, scope
from panel.access import reader_required
from panel.audit_views import bp
from panel.diffs import TYPE_LABELS, type_label
from panel.extensions import db
from panel.imports.export import response as csv_response
from panel.listing import paginate
from panel.models import AuditEntry, Client, User

# Where an object's page is: candidate endpoints (the first one the app has wins) and the URL variable.
# Rows of a parent (rates, codes, rules) link to the parent's page through the parent id kept in the entry.
OBJECT_PAGES: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    # type: (endpoints, url variable, field of the entry's state holding the id; None = the object's own id)
    "account": (("accounts.show", "accounts.update", "accounts.edit"), "account_id", None),
    "client": (("clients.show", "clients.update", "clients.edit"), "client_id", None),
    "gateway": (("gateways.show", "gateways.update", "gateways.edit"), "gateway_id", None),
    "ratetable": (("rates.show", "rates.update"), "rate_table_id", None),
    "rate": (("rates.show",), "rate_table_id", "rate_table_id"),
    "codedeck": (("codedecks.show", "codedecks.update"), "code_deck_id", None),
    "code": (("codedecks.show",), "code_deck_id", "code_deck_id"),
    "timeprofile": (
        ("timeprofiles.show", "timeprofiles.update", "timeprofiles.edit"),
        "time_profile_id",
        None,
    ),
    "policy": (("policies.show", "policies.update", "policies.edit"), "policy_id", None),
    "did": (("dids.show", "dids.update", "dids.edit"), "did_id", None),
    "routingplan": (("plans.show", "plans.update"), "plan_id", None),
    "routingrule": (("plans.show",), "plan_id", "plan_id"),
    "company": (("companies.show",), "company_id", None),
    "user": (("users.show",), "user_id", None),
    # Tokens have no page of their own: the company page lists them.
    "apitoken": (("companies.show",), "company_id", "company_id"),
    "importjob": (("imports.show",), "import_job_id", None),
}
# The model holding the linked page's object, when it is not the entry's own type.
PARENT_TYPES = {"rate": "ratetable", "code": "codedeck", "routingrule": "routingplan", "apitoken": "company"}
ACTIONS = ("create", "update", "delete")
# An id in the query string: ASCII digits (`²`.isdigit() is true but int() refuses it), within scope.MAX_ID.
_ID = re.compile(r"[0-9]{1,10}")
FILTER_ARGS = ("object_type", "object_id", "client_id", "user", "action", "since", "until")


def _models() -> dict[str, type]:
    """Every mapped class by its audit type name."""
    return {m.class_.__name__.lower(): m.class_ for m in db.Model.registry.mappers}


def _target(entry: AuditEntry) -> tuple[str, int | None, tuple[str, ...], str]:
    """(type, id) of the object whose page the entry links to, with the candidate endpoints and variable."""
    endpoints, variable, field = OBJECT_PAGES.get(entry.object_type, ((), "", None))
    if field is None:
        return entry.object_type, entry.object_id, endpoints, variable
    value = (entry.after or entry.before or {}).get(field)
    parent_type = PARENT_TYPES.get(entry.object_type, entry.object_type)
    return parent_type, (value if isinstance(value, int) else None), endpoints, variable


def _url(endpoints: tuple[str, ...], variable: str, object_id: int) -> str | None:
    """The first endpoint of `endpoints` the app has, built for the object; None when none fits."""
    for endpoint in endpoints:
        if endpoint not in current_app.view_functions:
            continue
        try:
            return url_for(endpoint, **{variable: object_id})
        except BuildError:
            continue
    return None


def object_links(entries: list[AuditEntry]) -> dict[int, str]:
    """entry id -> URL of the object's page, for the objects that still exist and are in the user's scope."""
    models = _models()
    wanted: dict[str, set[int]] = {}
    targets = {}
    for entry in entries:
        kind, object_id, endpoints, variable = _target(entry)
        if object_id is None or not endpoints or kind not in models:
            continue
        targets[entry.id] = (kind, object_id, endpoints, variable)
        wanted.setdefault(kind, set()).add(object_id)
    existing: dict[str, set[int]] = {}
    for kind, ids in wanted.items():
        model = models[kind]
        try:
            stmt = scope.scoped(model).where(model.id.in_(ids)).with_only_columns(model.id)
        except TypeError:  # a model without a company scope: never linked
            continue
        existing[kind] = set(db.session.scalars(stmt))
    links = {}
    for entry_id, (kind, object_id, endpoints, variable) in targets.items():
        if object_id in existing.get(kind, ()):
            url = _url(endpoints, variable, object_id)
            if url:
                links[entry_id] = url
    return links


def _parse_date(value: str, problems: list[str], label: str) -> date | None:
    """A YYYY-MM-DD date from the query string; a bad one adds a problem and is ignored."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{label}: {value[:40]!r} is not a date; use YYYY-MM-DD.")
        return None


def _filters() -> tuple[object, dict, list[str]]:
    """The scoped, filtered select of entries from the query string, the filter values, and any problems."""
    stmt = scope.scoped(AuditEntry)
    problems: list[str] = []
    args = request.args
    values: dict = {}
    object_type = args.get("object_type", "").strip()
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type[:40])
        values["object_type"] = object_type[:40]
    object_id = args.get("object_id", "").strip()
    if object_id:
        if _ID.fullmatch(object_id) and int(object_id) <= scope.MAX_ID:
            stmt = stmt.where(AuditEntry.object_id == int(object_id))
            values["object_id"] = int(object_id)
        else:
            problems.append(f"Object ID: {object_id[:40]!r} is not a number.")
    client_id = args.get("client_id", "").strip()
    if client_id:
        if _ID.fullmatch(client_id) and int(client_id) <= scope.MAX_ID:
            stmt = stmt.where(AuditEntry.client_id == int(client_id))
            values["client_id"] = int(client_id)
        else:
            problems.append(f"Client: {client_id[:40]!r} is not a client id.")
    username = args.get("user", "").strip()[:80]
    if username:
        # Through the users table and the index on user_id (usernames are unique in any case, and users are
        # never deleted); entries written by the manager have no user and read "system".
        if username.lower() == "system":
            stmt = stmt.where(AuditEntry.user_id.is_(None))
        else:
            ids = select(User.id).where(func.lower(User.username) == username.lower())
            stmt = stmt.where(AuditEntry.user_id.in_(ids))
        values["user"] = username
    action = args.get("action", "").strip()
    if action:
        stmt = stmt.where(AuditEntry.action == action[:20])
        values["action"] = action[:20]
    since = _parse_date(args.get("since", ""), problems, "From")
    until = _parse_date(args.get("until", ""), problems, "To")
    if since:
        stmt = stmt.where(AuditEntry.at >= datetime(since.year, since.month, since.day, tzinfo=UTC))
        values["since"] = since
    if until:
        end = datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
        stmt = stmt.where(AuditEntry.at < end)
        values["until"] = until
    if since and until and since > until:
        problems.append("From is after To: no entry can match.")
    return stmt, values, problems


def _company_names() -> dict[int, str]:
    """Names of the companies the user may see (entries of others are never shown)."""
    return {c.id: c.name for c in db.session.scalars(scope.visible_companies())}


def _type_choices() -> list[str]:
    """The object types offered by the type filter (a fixed list: no scan of a large log to find them)."""
    hidden = {"accountnetwork", "callstat"}
    return sorted((t for t in TYPE_LABELS if t not in hidden), key=type_label)


def _client_label(client_id: int | None) -> str | None:
    """The name of the filtered client when the user may see it (deleted clients show their id)."""
    if not client_id:
        return None
    client = db.session.scalar(scope.scoped(Client).where(Client.id == client_id))
    return client.name if client else f"client {client_id}"


def summary(entry: AuditEntry, limit: int = 3) -> tuple[list[diffs.Row], int]:
    """The first `limit` changed fields of an entry (readable) and how many more there are."""
    rows = diffs.entry_rows(entry)
    return rows[:limit], max(0, len(rows) - limit)


def show_value(value) -> str:
    """A raw before/after value as text (the CSV export): empty for none, yes/no, JSON for lists."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@bp.app_template_filter("audit_value")
def _audit_value_filter(value) -> str:
    return show_value(value)


@bp.route("/")
@reader_required
def index():
    """Every entry of the user's companies, newest first, with filters and paging."""
    stmt, values, problems = _filters()
    page = paginate(stmt, {"at": AuditEntry.at}, "-at", tiebreak=AuditEntry.id.desc())
    users = db.session.scalars(
        scope.scoped(User).with_only_columns(User.username).order_by(User.username)
    ).all()
    return htmx.render(
        "audit_views/list.html",
        "audit_views/_table.html",
        pagination=page,
        values=values,
        args=request.args,
        filter_args={k: v for k, v in request.args.items() if k in FILTER_ARGS and v},
        problems=problems,
        links=object_links(page.items),
        companies=_company_names(),
        types=_type_choices(),
        type_label=type_label,
        summary=summary,
        client_label=_client_label(values.get("client_id")),
        usernames=users,
        actions=ACTIONS,
    )


@bp.route("/<int:entry_id>")
@reader_required
def show(entry_id: int):
    """One entry: who, when, which object, and the difference field by field."""
    entry = scope.get_or_404(AuditEntry, entry_id)
    return htmx.render(
        "audit_views/show.html",
        entry=entry,
        rows=diffs.entry_rows(entry),
        figures=diffs.is_figures(entry),
        link=object_links([entry]).get(entry.id),
        company=_company_names().get(entry.company_id),
        type_label=type_label,
    )


@bp.route("/export")
@reader_required
def export():
    """The filtered entries as CSV (UTF-8), newest first."""
    stmt, _values, _problems = _filters()
    stmt = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    companies = _company_names()

    def rows():
        for entry in db.session.scalars(stmt.execution_options(yield_per=1000)):
            changed = "; ".join(
                f"{k}: {show_value(b)} -> {show_value(a)}" for k, b, a in audit.changes(entry)
            )
            yield [
                entry.at.strftime("%Y-%m-%d %H:%M:%S"),
                entry.username,
                companies.get(entry.company_id, ""),
                entry.object_type,
                entry.object_id,
                entry.object_label,
                entry.action,
                changed,
                entry.note,
            ]

    header = ["at", "user", "company", "object_type", "object_id", "object", "action", "changes", "note"]
    return csv_response("audit.csv", header, rows())
