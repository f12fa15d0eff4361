"""Routing plans (SPEC §4): the list, the plan form, the rules tab with inline editing, import and export.

Plans are listed and edited only by users of the owner company or of a company above it; a company that may
only use a plan (its origination limits) sees it in pickers, never here. Viewers read; writes answer 403.
"""

import math
import secrets
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from flask import current_app, flash, make_response, render_template, request, url_for
from flask_login import current_user
from markupsafe import escape
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from panel import audit, expiry, listing, paging, writes
from panel.access import reader_required, writer_required
from panel.extensions import db
from panel.forms import parse_id
from panel.htmx import is_htmx, redirect, render, trigger
from panel.imports import export as csv_export
from panel.imports import flow
from panel.models import (
    Account,
    CodeDeck,
    Company,
    RoutingPlan,
    RoutingRule,
)
from panel.models.types import utcnow
from panel.plans import bp, fields, lookups, plan_list, rules_csv, service, usage
from panel.plans.forms import (
    DR_ORDER_CHOICES,
    MATCH_INCREMENTS_CHOICES,
    RULES_HUNTING_CHOICES,
    PlanForm,
    PlanSearchForm,
    RuleFilterForm,
    RuleForm,
)
from panel.scope import descendant_ids, get_or_404

LABELS = {
    "rules_hunting": dict(RULES_HUNTING_CHOICES),
    "dr_order": dict(DR_ORDER_CHOICES),
    "match_increments": dict(MATCH_INCREMENTS_CHOICES),
    "type": fields.TYPE_LABELS,
}
# Synchronous below this many lines: the answer comes at once; larger files get a progress bar.
SYNCHRONOUS_LINES = 2000
RULES_IMPORT_MAX_BYTES = 16 * 1024 * 1024
# At most this many rules' expiry marks are refreshed per request (a page shows at most 500 rules).
MAX_MARKS = 500

bp.add_app_template_global(usage.plan_usage, "plan_usage")


def _plan_state(plan: RoutingPlan) -> dict:
    """The plan's audit state, its limits included (they live in association tables)."""
    state = audit.state(plan)
    state["origination_limits"] = [c.name for c in plan.origination_limits]
    state["termination_limits"] = [c.name for c in plan.termination_limits]
    return state


def next_run_note() -> str:
    """When an edit of rules takes effect: at the Traffic Rules manager's next run (SPEC §6)."""
    from panel import manager

    when = manager.next_run_at()
    if when is not None:
        return (
            "Saved. The change takes effect at the next run of the Traffic Rules manager "
            f"({when.astimezone(UTC):%H:%M:%S} UTC)."
        )
    return "Saved. The change takes effect at the next run of the Traffic Rules manager."


def limits_shown(plan: RoutingPlan | None) -> bool:
    """Origination and termination limits are shown on create, and when the owner has companies below it."""
    if plan is None or plan.id is None:
        return True
    return len(descendant_ids(plan.company_id)) > 1


# ---------------------------------------------------------------- plans


@bp.route("/")
@reader_required
def index():
    """The plans the user's companies own, with quick and advanced search, sorting and paging."""
    form = PlanSearchForm(formdata=request.args)
    plan_list.search_choices(form)
    stmt, advanced, rules_count = plan_list.plan_select(form)
    sortable = {
        "id": RoutingPlan.id,
        "name": func.lower(RoutingPlan.name),
        "reseller": func.lower(Company.name),
        "code_deck": func.lower(CodeDeck.name),
        "rules_hunting": RoutingPlan.rules_hunting,
        "dr_order": RoutingPlan.dr_order,
        "rules": rules_count,
    }
    pagination = listing.paginate(stmt, sortable, "name", RoutingPlan.id)
    counts = service.rule_counts([p.id for p in pagination.items])
    return render(
        "plans/list.html",
        "plans/_table.html",
        form=form,
        pagination=pagination,
        counts=counts,
        expiring=expiry.counts([p.id for p in pagination.items], utcnow()),
        horizon_days=f"{expiry.horizon_days():g}",
        labels=LABELS,
        advanced=advanced,
    )


@bp.route("/new", methods=["GET", "POST"])
@writer_required
def create():
    """A new plan with the seed's defaults; its limits fields are always shown here."""
    form = PlanForm(show_limits=True)
    if request.method == "GET":
        form.company_id.data = current_user.company_id
    if form.validate_on_submit():
        plan = RoutingPlan()
        form.apply(plan)
        db.session.add(plan)
        db.session.flush()
        writes.create(plan, after=_plan_state(plan))
        flash(f"Routing plan {plan.name} created. Add its rules here.", "success")
        return redirect(url_for("plans.show", plan_id=plan.id))
    status = 422 if request.method == "POST" else 200
    return render(
        "plans/form.html", "plans/_plan_form.html", status=status, form=form, plan=None, show_limits=True
    )


@bp.route("/<int:plan_id>/edit", methods=["GET", "POST"])
@writer_required(reads="reader")
def update(plan_id: int):
    """The Routing Plan tab: the plan's settings (read only for viewers)."""
    plan = get_or_404(RoutingPlan, plan_id)
    show_limits = limits_shown(plan)
    form = PlanForm(plan=plan, show_limits=show_limits)
    if request.method == "GET":
        form.fill(plan)
    elif form.validate_on_submit():
        with writes.change(plan, version=form.version.data, state=_plan_state):
            form.apply(plan)
        flash(f"Routing plan {plan.name} saved. {next_run_note().removeprefix('Saved. ')}", "success")
        return redirect(url_for("plans.update", plan_id=plan.id))
    status = 422 if request.method == "POST" else 200
    return render(
        "plans/edit.html",
        "plans/_plan_form.html",
        status=status,
        form=form,
        plan=plan,
        show_limits=show_limits,
        tab="plan",
        rule_total=service.rule_counts([plan.id]).get(plan.id, 0),
    )


@bp.route("/<int:plan_id>/copy", methods=["POST"])
@writer_required
def copy(plan_id: int):
    """Copy the plan with all its rules as `<name> (copy)`."""
    plan = get_or_404(RoutingPlan, plan_id)
    new = service.copy_plan(plan)
    writes.commit(new)
    flash(f"Routing plan {plan.name} copied to {new.name}.", "success")
    return redirect(url_for("plans.show", plan_id=new.id))


@bp.route("/<int:plan_id>/delete", methods=["POST"])
@writer_required
def delete(plan_id: int):
    """Delete the plan and its rules, refused while a client, account or other plan uses it."""
    plan = get_or_404(RoutingPlan, plan_id)
    name = plan.name
    refusal = service.delete_plan(plan)
    if refusal:
        db.session.rollback()
        flash(refusal, "error")
        return redirect(request.referrer if _local(request.referrer) else url_for("plans.index"))
    writes.commit(plan)
    flash(f"Routing plan {name} deleted with its rules.", "success")
    return redirect(url_for("plans.index"))


def _local(url: str | None) -> bool:
    """True for a URL of this panel (a safe place to go back to)."""
    return bool(url) and url.startswith(request.host_url)


# ---------------------------------------------------------------- rules tab


def _rule_filters(plan: RoutingPlan, form: RuleFilterForm, now: datetime) -> list:
    """SQL conditions of the rules tab's filter."""
    conditions = []
    code = "".join(ch for ch in (form.code.data or "") if ch.isdigit() or ch == "*")
    if code:
        # A range the (plan_id, code) index can serve, and startswith for any collation.
        upper = code[:-1] + chr(ord(code[-1]) + 1)
        conditions += [RoutingRule.code >= code, RoutingRule.code < upper, RoutingRule.code.startswith(code)]
    if form.type.data in fields.TYPE_LABELS:
        conditions.append(RoutingRule.type == form.type.data)
    terminator = form.terminator.data or ""
    if len(terminator) > 1 and parse_id(terminator[1:]) is not None:
        kind, object_id = terminator[0], parse_id(terminator[1:])
        if kind == "c":
            # The client's accounts as a list (a client has few): each side of the OR then uses its index.
            accounts = list(db.session.scalars(select(Account.id).where(Account.client_id == object_id)))
            conditions.append(
                or_(
                    RoutingRule.terminator_client_id == object_id,
                    RoutingRule.terminator_account_id.in_(accounts),
                )
            )
        elif kind == "a":
            conditions.append(RoutingRule.terminator_account_id == object_id)
        elif kind == "p":
            conditions.append(RoutingRule.policy_id == object_id)
    if form.state.data == "expired":
        conditions.append(and_(RoutingRule.expires_at.is_not(None), RoutingRule.expires_at <= now))
    elif form.state.data == "active":
        conditions.append(or_(RoutingRule.expires_at.is_(None), RoutingRule.expires_at > now))
    within = expiry.within_condition(form.expiring.data, now)
    if within is not None:
        conditions.append(within)
    return [RoutingRule.plan_id == plan.id, *conditions]


RULE_SORTS = {
    "code": (RoutingRule.code, RoutingRule.priority, RoutingRule.id),
    "priority": (RoutingRule.priority, RoutingRule.code, RoutingRule.id),
}


def rules_page(where: list) -> paging.Page:
    """A page of the rules under `where` in the asked order (keyset through the plan_id + sort column index).

    The sort column goes the asked way; ties stay in ascending order of the other column, then the id. Ids
    first: the order and the filters read ids and sort columns only (from the index alone where it holds
    them, as the expiry index does on PostgreSQL), then the page's rules are loaded by id.
    """
    key = paging.sort_key(RULE_SORTS, "code")
    first, *rest = RULE_SORTS[key.lstrip("-")]
    keys = [paging.Key(first, key.startswith("-")), *(paging.Key(c) for c in rest)]
    return paging.paginate(select(RoutingRule.id).where(*where), keys, sort=key, load=_load_rules)


def _load_rules(ids: list[int]) -> list[RoutingRule]:
    """The rules of these ids, in this order, with the names a row shows."""
    if not ids:
        return []
    stmt = select(RoutingRule).where(RoutingRule.id.in_(ids)).options(*_rule_eager())
    found = {rule.id: rule for rule in db.session.scalars(stmt)}
    return [found[i] for i in ids if i in found]


def _rule_eager():
    """Load the names a rule row shows with one query per kind for the page's rules, not one per row.

    Not joins: a filter that the database answers by sorting (a code prefix sorted by priority) would then
    sort the joined rows of every match instead of the rules alone.
    """
    return (
        selectinload(RoutingRule.terminator_client),
        selectinload(RoutingRule.terminator_account).selectinload(Account.client),
        selectinload(RoutingRule.policy),
        selectinload(RoutingRule.time_profile),
    )


@bp.route("/<int:plan_id>/")
@reader_required
def show(plan_id: int):
    """The Routing Rules tab: the plan's rules, filtered and paged (a plan may hold 50,000 rules)."""
    plan = get_or_404(RoutingPlan, plan_id)
    form = RuleFilterForm(formdata=request.args)
    terminator_groups = []
    if not is_htmx():  # the filter's picker is part of the page, not of the table fragment
        terminator_groups = [
            ("Clients", [(f"c{i}", n) for i, n in lookups.terminator_clients()]),
            ("Accounts", [(f"a{i}", n) for i, n in lookups.terminator_accounts()]),
            ("Policies", [(f"p{i}", n) for i, n in lookups.policies()]),
        ]
    now = utcnow()
    if any(request.args.get(k) for k in ("code", "type", "terminator", "state", "expiring")):
        paging.plan_for_the_values()
    pagination = rules_page(_rule_filters(plan, form, now))
    rules = list(pagination.items)
    filtered = any(request.args.get(k) for k in ("code", "type", "terminator", "state", "expiring"))
    return render(
        "plans/rules.html",
        "plans/_rules_table.html",
        plan=plan,
        form=form,
        pagination=pagination,
        rules=rules,
        names=lookups.code_names(plan.code_deck_id, [r.code for r in rules]),
        now=now,
        filtered=filtered,
        terminator_groups=terminator_groups,
        labels=LABELS,
        tab="rules",
        rule_total=None,
        sort=pagination.sort,
        expiry_refresh=expiry.refresh_seconds(),
    )


@bp.route("/<int:plan_id>/expiry-marks")
@reader_required
def expiry_marks(plan_id: int):
    """The expiry marks of some rules of the plan as they are now (out-of-band swaps; the rules tab polls)."""
    plan = get_or_404(RoutingPlan, plan_id)
    ids = [i for i in (parse_id(part) for part in request.args.getlist("watch")[:MAX_MARKS]) if i]
    rules = []
    if ids:
        rules = db.session.execute(
            select(RoutingRule.id, RoutingRule.expires_at).where(
                RoutingRule.plan_id == plan.id, RoutingRule.id.in_(ids), RoutingRule.expires_at.is_not(None)
            )
        ).all()
    return render_template("plans/_expiry_marks.html", rules=rules, now=utcnow())


@bp.route("/<int:plan_id>/code-name")
@reader_required
def code_name(plan_id: int):
    """The deck's name for the code being typed (htmx fills the Code name cell with it)."""
    plan = get_or_404(RoutingPlan, plan_id)
    try:
        code = fields.parse_code(request.args.get("code", ""))
    except ValueError:
        return '<span class="error">not a code</span>'
    if plan.code_deck_id is None:
        return '<span class="muted">no code deck</span>'
    name = lookups.code_name(plan.code_deck_id, code)
    return str(escape(name)) if name else '<span class="muted">—</span>'


def _found(plan: RoutingPlan) -> dict | None:
    """The rules tab's "N found" after an add or delete, under the filter of the page the user is on.

    None when the request does not come from this plan's rules tab (nothing to update there).
    """
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if not is_htmx() or current.path != url_for("plans.show", plan_id=plan.id):
        return None
    args = MultiDict(parse_qsl(current.query))
    form = RuleFilterForm(formdata=args, meta={"csrf": False})
    total = paging.count_capped(select(RoutingRule.id).where(*_rule_filters(plan, form, utcnow())))
    if total > paging.COUNT_LIMIT:
        return {"text": f"more than {paging.COUNT_LIMIT:,} found"}
    text = f"{total:,} found"
    page = parse_id(args.get("page"))
    if not any(args.get(k) for k in paging.CURSOR_ARGS):
        per_page = min(parse_id(args.get("per_page")) or current_app.config["PAGE_SIZE"], 500)
        pages = max(1, math.ceil(total / per_page))
        if pages > 1:
            text += f" · page {min(page or 1, pages)} of {pages:,}"
    return {"text": text}


def _row(rule: RoutingRule, status: int = 200, notice: str | None = None, fresh: bool = False):
    """A rule's row in reading mode (a page when asked without htmx); `fresh` marks a rule just added."""
    plan = rule.plan
    response = render(
        "plans/rule.html",
        "plans/_row.html",
        status=status,
        plan=plan,
        rule=rule,
        names={rule.code: lookups.code_name(plan.code_deck_id, rule.code)},
        now=utcnow(),
        labels=LABELS,
        tab="rules",
        editing=False,
        fresh=fresh,
        found=_found(plan) if fresh else None,
    )
    return trigger(response, "ruleChanged", notice) if notice else response


def _edit_row(
    plan: RoutingPlan, form: RuleForm, rule: RoutingRule | None, status: int = 200, conflict: str = ""
):
    """A rule's row in edit mode: its fields, the additional parameters, save and cancel."""
    key = str(rule.id) if rule is not None and rule.id else f"new-{secrets.token_hex(4)}"
    # Several rows may be open at once: ids (and the labels pointing at them) are made unique per row.
    for form_field in form:
        form_field.id = f"{form_field.name}-{key}"
        form_field.label.field_id = form_field.id
    return render(
        "plans/rule.html",
        "plans/_row_edit.html",
        status=status,
        plan=plan,
        rule=rule,
        form=form,
        key=key,
        code_name=lookups.code_name(plan.code_deck_id, _safe_code(form.code.data)),
        now=utcnow(),
        labels=LABELS,
        tab="rules",
        editing=True,
        conflict=conflict,
    )


def _safe_code(text: str | None) -> str:
    """The code typed, for naming it, or '' when it is not a code."""
    try:
        return fields.parse_code(text or "")
    except ValueError:
        return ""


@bp.route("/<int:plan_id>/rules/new")
@writer_required
def rule_new(plan_id: int):
    """An empty rule row in edit mode (htmx inserts it at the top of the table)."""
    plan = get_or_404(RoutingPlan, plan_id)
    refresh = request.args.get("refresh") == "1"
    form = RuleForm(formdata=request.args if refresh else None)
    if not refresh:
        # The plan's own habit, not 0: a plan whose rules mostly use 10 gets 10.
        form.priority.data = service.common_priority(plan.id, form.priority.data)
    return _edit_row(plan, form, None)


@bp.route("/<int:plan_id>/rules", methods=["POST"])
@writer_required
def rule_create(plan_id: int):
    """Save a new rule; a bad value keeps the row in edit mode with the message (422)."""
    plan = get_or_404(RoutingPlan, plan_id)
    form = RuleForm()
    if not form.validate():
        return _edit_row(plan, form, None, status=422)
    rule = RoutingRule(plan_id=plan.id, plan=plan)
    form.apply(rule)
    writes.create(rule, note=f"rule of plan {plan.name}")
    return _row(rule, notice=next_run_note(), fresh=True)


@bp.route("/rules/<int:rule_id>")
@reader_required
def rule_show(rule_id: int):
    """A rule's row in reading mode (Cancel swaps the edit row back with it)."""
    rule = get_or_404(RoutingRule, rule_id)
    return _row(rule)


@bp.route("/rules/<int:rule_id>/edit")
@writer_required
def rule_edit(rule_id: int):
    """A rule's row in edit mode (clicking the row opens it; changing the type redraws it)."""
    rule = get_or_404(RoutingRule, rule_id)
    refresh = request.args.get("refresh") == "1"
    form = RuleForm(formdata=request.args if refresh else None, rule=rule)
    if not refresh:
        form.fill(rule)
    return _edit_row(rule.plan, form, rule)


@bp.route("/rules/<int:rule_id>", methods=["POST"])
@writer_required
def rule_update(rule_id: int):
    """Save a rule from its edit row; a bad value keeps the row in edit mode with the message (422)."""
    rule = get_or_404(RoutingRule, rule_id)
    form = RuleForm(rule=rule)
    if not form.validate():
        return _edit_row(rule.plan, form, rule, status=422)
    plan = rule.plan
    try:
        with writes.change(rule, version=form.version.data, note=f"rule of plan {plan.name}"):
            form.apply(rule)
    except writes.Conflict as conflict:
        return _rule_conflict(plan, rule_id, conflict)
    return _row(rule, notice=next_run_note())


def _rule_conflict(plan: RoutingPlan, rule_id: int, conflict: writes.Conflict):
    """A stale save: the row again with the current values and the message; a rule gone says so (422)."""
    if conflict.deleted or conflict.current is None:
        body = render_template("writes/_gone_row.html", key=rule_id, message=conflict.message, colspan=10)
        return make_response(body, 422)
    fresh = RuleForm(rule=conflict.current)
    fresh.fill(conflict.current)
    return _edit_row(plan, fresh, conflict.current, status=422, conflict=conflict.message)


@bp.route("/rules/<int:rule_id>/delete", methods=["POST"])
@writer_required
def rule_delete(rule_id: int):
    """Delete a rule (htmx removes its row)."""
    rule = get_or_404(RoutingRule, rule_id)
    plan = rule.plan
    try:
        writes.delete(rule, note=f"rule of plan {plan.name}")
    except writes.Conflict as conflict:
        if not conflict.deleted:
            raise
        # Deleted meanwhile (by someone else, or a replace import): what was asked is done.
    note = next_run_note().replace("Saved.", "Rule deleted.")
    if is_htmx():
        found = _found(plan)
        body = render_template("plans/_found.html", found=found) if found else ""
        return trigger(make_response(body), "ruleChanged", note)
    flash(note, "success")
    return redirect(url_for("plans.show", plan_id=plan.id))


# ---------------------------------------------------------------- import / export


@bp.route("/<int:plan_id>/import", methods=["GET", "POST"])
@writer_required(reads="reader")
def import_(plan_id: int):
    """The Import/Export tab: upload a rules file (a replace is previewed first; all rows or none)."""
    return flow.handle(rules_csv.IMPORT, get_or_404(RoutingPlan, plan_id))


@bp.route("/<int:plan_id>/export")
@reader_required
def export(plan_id: int):
    """Download the plan's rules as CSV in the documented column order."""
    plan = get_or_404(RoutingPlan, plan_id)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in plan.name)[:60] or "plan"
    filename = f"routing-plan-{plan.id}-{safe}-{utcnow():%Y%m%d-%H%M}.csv"
    return csv_export.response(filename, rules_csv.COLUMNS, rules_csv.export_rows(plan))
