"""Audit states as the operator reads them: field labels as the forms name them, referenced objects by name
with a link, booleans and money as the pages show them (the audit log and the write path's conflict page).

An audit state (`audit.state`) keeps the raw column values (tests and exports rely on them) and, under the
key `_refs`, the name of every object a foreign key points to, read when the entry was written — so the log
still names a time profile after it was renamed or deleted.
"""

import importlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from flask import current_app, url_for
from sqlalchemy import inspect as sa_inspect
from werkzeug.routing import BuildError

from panel.extensions import db

# Object types in the operator's words (the type is the model's class name in lower case).
TYPE_LABELS = {
    "account": "Account",
    "accountnetwork": "Account network",
    "apitoken": "API token",
    "callstat": "Call",
    "client": "Client",
    "code": "Code",
    "codedeck": "Code deck",
    "company": "Company",
    "did": "DID",
    "gateway": "Gateway",
    "importjob": "Import",
    "policy": "Routing policy",
    "rate": "Rate",
    "ratetable": "Rate table",
    "routingplan": "Routing plan",
    "routingrule": "Routing rule",
    "timeprofile": "Time profile",
    "user": "User",
}

# The forms whose labels name an object type's fields ("module:Class"; read lazily, the forms import the app).
FORMS = {
    "account": "panel.accounts.forms:AccountForm",
    "client": "panel.clients.forms:ClientForm",
    "codedeck": "panel.codedecks.forms:CodeDeckForm",
    "code": "panel.codedecks.forms:CodeForm",
    "company": "panel.companies.forms:CompanyForm",
    "did": "panel.dids.forms:DidForm",
    "gateway": "panel.gateways.forms:GatewayForm",
    "routingplan": "panel.plans.forms:PlanForm",
    "routingrule": "panel.plans.forms:RuleForm",
    "policy": "panel.policies.forms:PolicyForm",
    "ratetable": "panel.rates.forms:RateTableForm",
    "rate": "panel.rates.forms:RateForm",
    "timeprofile": "panel.timeprofiles.forms:TimeProfileForm",
    "apitoken": "panel.tokens.forms:TokenForm",
    "user": "panel.users.forms:UserForm",
}
# Labels of fields that no form names (or names differently from the column).
EXTRA_LABELS = {
    "terminator_client_id": "Terminator client",
    "terminator_account_id": "Terminator account",
    "policy_id": "Policy",
    "plan_id": "Routing plan",
    "company_id": "Company",
    "client_id": "Client",
    "account_id": "Account",
    "rate_table_id": "Rate table",
    "code_deck_id": "Code deck",
    "parent_id": "Parent company",
    "session_version": "Session version",
    "version": "Version",
}

# Where an object's page is: (endpoint, URL variable).
PAGES: dict[str, tuple[str, str | None]] = {
    "account": ("accounts.show", "account_id"),
    "client": ("clients.show", "client_id"),
    "gateway": ("gateways.index", None),  # no page of its own: the list
    "ratetable": ("rates.show", "rate_table_id"),
    "codedeck": ("codedecks.show", "code_deck_id"),
    "timeprofile": ("timeprofiles.show", "time_profile_id"),
    "policy": ("policies.update", "policy_id"),
    "did": ("dids.update", "did_id"),
    "routingplan": ("plans.show", "plan_id"),
    "company": ("companies.show", "company_id"),
    "user": ("users.show", "user_id"),
    "importjob": ("imports.show", "import_job_id"),
}


def type_label(object_type: str) -> str:
    """The object type in the operator's words."""
    return TYPE_LABELS.get(object_type, object_type.replace("_", " ").capitalize())


@cache
def _form_labels(object_type: str) -> dict[str, str]:
    """field name -> label of the form that edits this type (read from the class, no form is built)."""
    spec = FORMS.get(object_type)
    if not spec:
        return {}
    module, name = spec.split(":")
    form_class = getattr(importlib.import_module(module), name)
    labels = {}
    for attr in dir(form_class):
        field = getattr(form_class, attr, None)
        if hasattr(field, "field_class") and field.args:
            labels[attr] = str(field.args[0])
        elif hasattr(field, "field_class") and "label" in field.kwargs:
            labels[attr] = str(field.kwargs["label"])
    return labels


def field_label(object_type: str, key: str) -> str:
    """A field's label as the form names it; otherwise the column name in words."""
    label = _form_labels(object_type).get(key) or EXTRA_LABELS.get(key)
    if not label:
        text = key[:-3] if key.endswith("_id") else key
        label = text.replace("_", " ").capitalize()
    # The account form groups originator and terminator fields under headings; the log names the side.
    for prefix, side in (("orig_", "Originator"), ("term_", "Terminator")):
        if key.startswith(prefix) and not label.startswith(side):
            label = f"{side} {label[0].lower()}{label[1:]}"
    return label


def object_url(object_type: str, object_id) -> str | None:
    """The URL of an object's page, or None when it has none."""
    page = PAGES.get(object_type)
    if not page or not isinstance(object_id, int) or page[0] not in current_app.view_functions:
        return None
    try:
        return url_for(page[0], **({page[1]: object_id} if page[1] else {}))
    except BuildError:
        return None


def references(obj) -> dict[str, dict]:
    """{foreign key column: {"type", "id", "name"}} of the objects `obj` points to (by their current id)."""
    mapper = sa_inspect(obj).mapper
    refs = {}
    for relationship in mapper.relationships:
        if relationship.direction.name != "MANYTOONE" or len(relationship.local_columns) != 1:
            continue
        (column,) = relationship.local_columns
        key = mapper.get_property_by_column(column).key
        target_id = getattr(obj, key, None)
        if target_id is None or key in refs:
            continue
        target = db.session.get(relationship.mapper.class_, target_id)
        if target is not None:
            name = str(target) if not str(target).startswith("<") else f"#{target_id}"
            refs[key] = {"type": relationship.mapper.class_.__name__.lower(), "id": target_id, "name": name}
    return refs


@dataclass
class Shown:
    """A value as a page shows it, with the link of the object it names (if any)."""

    text: str
    url: str | None = None


def _money_columns(object_type: str) -> set[str]:
    """Columns of the type that hold money (shown with 2 decimals at least, like the pages)."""
    from panel.models.types import Money

    model = _model(object_type)
    if model is None:
        return set()
    return {c.key for c in sa_inspect(model).columns if repr(c.type) == repr(Money)}


@cache
def _model(object_type: str):
    """The mapped class of an audit type name."""
    for mapper in db.Model.registry.mappers:
        if mapper.class_.__name__.lower() == object_type:
            return mapper.class_
    return None


def money_text(value) -> str:
    """Money as the pages show it: thousands separators, at least 2 decimals, never a digit lost."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    places = max(2, -number.normalize().as_tuple().exponent)
    return f"{number:,.{places}f}"


def show(object_type: str, key: str, value, refs: dict | None = None) -> Shown:
    """One value of a state as text (and link): names for references, yes/no, money, lists joined."""
    if value is None or value == "":
        return Shown("—")
    ref = (refs or {}).get(key)
    if ref and ref.get("id") == value:
        return Shown(ref["name"], object_url(ref["type"], value))
    if isinstance(value, bool):
        return Shown("yes" if value else "no")
    if key in _money_columns(object_type):
        return Shown(money_text(value))
    if isinstance(value, list):
        return Shown(", ".join(str(v) for v in value) if value else "—")
    if isinstance(value, dict):
        return Shown(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return Shown(str(value))


@dataclass
class Row:
    """One changed field: its label and the values before and after."""

    key: str
    label: str
    before: Shown
    after: Shown


def _is_internal(key: str) -> bool:
    """Keys that are bookkeeping, not fields the operator edits."""
    return key.startswith("_") or key in ("version",)


def changed_rows(object_type: str, before: dict | None, after: dict | None) -> list[Row]:
    """The fields that differ between two states, readable, in a stable order."""
    before, after = before or {}, after or {}
    refs_before, refs_after = before.get("_refs") or {}, after.get("_refs") or {}
    keys = [k for k in sorted(set(before) | set(after)) if not _is_internal(k)]
    return [
        Row(
            key,
            field_label(object_type, key),
            show(object_type, key, before.get(key), refs_before),
            show(object_type, key, after.get(key), refs_after),
        )
        for key in keys
        if before.get(key) != after.get(key)
    ]


def entry_rows(entry) -> list[Row]:
    """An entry's readable difference; a named action without a before-state (an import into an existing
    plan or table) lists what it did — its figures — never a "created" diff of fields."""
    if entry.before is None and entry.action != "create":
        details = entry.after or {}
        refs = details.get("_refs") or {}
        return [
            Row(k, field_label(entry.object_type, k), Shown(""), show(entry.object_type, k, v, refs))
            for k, v in sorted(details.items())
            if not _is_internal(k)
        ]
    return changed_rows(entry.object_type, entry.before, entry.after)


def is_figures(entry) -> bool:
    """True for an entry that records what an action did (figures), not a change of the object's fields."""
    return entry.before is None and entry.action != "create"


def state_rows(object_type: str, state: dict) -> list[tuple[str, Shown]]:
    """An object's values (its audit state), readable (the conflict page shows them)."""
    refs = state.get("_refs") or {}
    hidden = {"id", "created_at", "updated_at"}
    return [
        (field_label(object_type, k), show(object_type, k, v, refs))
        for k, v in state.items()
        if not _is_internal(k) and k not in hidden
    ]
