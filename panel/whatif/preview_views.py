"""What-if previews (issue 15.1): the effect of a rule edit, a rules import or a rate deck import, before it.

Each preview routes the touched destinations of the plans' decks on the current snapshot and on a copy with
the change applied in memory (panel.whatif.overlay), and lists the changes costly first. Nothing is written
until "Apply"; Apply carries the version (a digest of the plan's rules or the table's rates) the preview was
computed from and is refused when the data moved meanwhile. Viewers cannot preview a change they cannot make.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from flask import current_app, flash, make_response, render_template, request, url_for
from flask_login import current_user

from panel import htmx, writes
from panel.access import get_or_404, user_company_ids, writer_required
from panel.extensions import db
from panel.imports import reader
from panel.models import RateTable, RoutingPlan, RoutingRule
from panel.plans.forms import RuleForm
from panel.routing.snapshot import decimal_text
from panel.whatif import bp, overlay, service

SHOWN = 200  # changes listed on the page (the count says how many there are)


# --- rule edits (inline editor) ---------------------------------------------------------------------------


def _rule_values(form: RuleForm, base: dict) -> dict:
    """The rule row `base` with the form's validated values applied."""
    values = SimpleNamespace()
    form.apply(values)
    return {**base, **vars(values)}


def _render_preview(
    preview,
    *,
    title: str,
    apply_url: str,
    hidden: dict,
    version: str,
    status: int = 200,
    back: str | None = None,
    message: str | None = None,
):
    """The preview as a dialog (htmx) or a page, with Apply and Cancel."""
    context = dict(
        preview=preview,
        shown=preview.changes[:SHOWN] if preview else [],
        title=title,
        apply_url=apply_url,
        hidden=hidden,
        version=version,
        money=decimal_text,
        back=back,
        message=message,
    )
    return htmx.render("whatif/preview.html", "whatif/_preview_modal.html", status, **context)


def _fields() -> dict:
    """The rule row's posted fields (to post them again with Apply)."""
    return {k: v for k, v in request.form.items() if k not in ("whatif_version", "csrf_token")}


def _rule_errors(form: RuleForm):
    """A 422 answer naming the fields the preview cannot use."""
    lines = [f"{getattr(form, name).label.text}: {'; '.join(errors)}" for name, errors in form.errors.items()]
    return htmx.render(
        "whatif/preview.html",
        "whatif/_preview_modal.html",
        422,
        preview=None,
        shown=[],
        title="Preview",
        message="Fix the rule first: " + " ".join(lines),
        hidden={},
        version="",
        apply_url="",
        money=decimal_text,
        back=None,
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@bp.route("/rules/<int:rule_id>/preview", methods=["POST"])
@writer_required
def rule_preview(rule_id: int):
    """The effect of saving the rule's edit row."""
    rule = get_or_404(RoutingRule, rule_id)
    form = RuleForm(rule=rule)
    if not form.validate():
        return _rule_errors(form)
    rows = service.rule_rows(rule.plan_id)
    new_rows = [_rule_values(form, row) if row["id"] == rule.id else row for row in rows]
    return _rules_preview_page(
        rule.plan_id,
        new_rows,
        f"Preview: rule {rule.code or 'DID'} of plan {rule.plan.name}",
        url_for("whatif.rule_apply", rule_id=rule.id),
    )


def _rules_preview_page(plan_id: int, new_rows: list[dict], title: str, apply_url: str):
    """The preview page of a plan's rules becoming `new_rows` (the form's fields ride along to "apply")."""
    snapshot = service.current_snapshot()
    preview, _ = service.rules_preview(snapshot, plan_id, new_rows, user_company_ids(), _now())
    return _render_preview(
        preview,
        title=title,
        apply_url=apply_url,
        hidden=_fields(),
        version=service.version_of_rules(plan_id),
        back=url_for("plans.show", plan_id=plan_id),
    )


@bp.route("/plans/<int:plan_id>/rules/preview", methods=["POST"])
@writer_required
def new_rule_preview(plan_id: int):
    """The effect of adding the new rule row."""
    plan = get_or_404(RoutingPlan, plan_id)
    form = RuleForm()
    if not form.validate():
        return _rule_errors(form)
    base = {c: None for c in service.RULE_COLUMNS}
    base.update(id=service.next_rule_id(), plan_id=plan.id)
    new_rows = [*service.rule_rows(plan.id), _rule_values(form, base)]
    apply_url = url_for("whatif.new_rule_apply", plan_id=plan.id)
    return _rules_preview_page(plan.id, new_rows, f"Preview: new rule of plan {plan.name}", apply_url)


def _stale(plan_id: int) -> bool:
    """True when the plan's rules moved since the preview (its version is posted)."""
    return request.form.get("whatif_version", "") != service.version_of_rules(plan_id)


def _conflict(back: str):
    """Apply refused: the data changed since the preview."""
    message = (
        "The plan's rules changed since this preview (someone saved or imported rules): nothing was "
        "applied. Preview again to see the effect on the current rules."
    )
    return htmx.render(
        "whatif/preview.html",
        "whatif/_preview_modal.html",
        409,
        preview=None,
        shown=[],
        title="Not applied",
        message=message,
        hidden={},
        version="",
        apply_url="",
        money=decimal_text,
        back=back,
    )


def _applied(plan_id: int, note: str):
    """After Apply: back to the plan's rules (htmx follows with a full page)."""
    flash(note, "success")
    return htmx.redirect(url_for("plans.show", plan_id=plan_id))


@bp.route("/rules/<int:rule_id>/apply", methods=["POST"])
@writer_required
def rule_apply(rule_id: int):
    """Save the previewed rule edit, unless the plan's rules changed since the preview."""
    rule = get_or_404(RoutingRule, rule_id)
    if _stale(rule.plan_id):
        return _conflict(url_for("plans.show", plan_id=rule.plan_id))
    form = RuleForm(rule=rule)
    if not form.validate():
        return _rule_errors(form)
    plan_id, note = rule.plan_id, f"rule of plan {rule.plan.name} (after a preview)"
    try:
        with writes.change(rule, version=form.version.data, note=note):
            form.apply(rule)
    except writes.Conflict:
        return _conflict(url_for("plans.show", plan_id=plan_id))
    return _applied(plan_id, "Rule saved; it takes effect at the Traffic Rules manager's next run.")


@bp.route("/plans/<int:plan_id>/rules/apply", methods=["POST"])
@writer_required
def new_rule_apply(plan_id: int):
    """Add the previewed rule, unless the plan's rules changed since the preview."""
    plan = get_or_404(RoutingPlan, plan_id)
    if _stale(plan.id):
        return _conflict(url_for("plans.show", plan_id=plan.id))
    form = RuleForm()
    if not form.validate():
        return _rule_errors(form)
    rule = RoutingRule(plan_id=plan.id)
    form.apply(rule)
    writes.create(rule, note=f"rule of plan {plan.name} (after a preview)")
    return _applied(plan.id, "Rule added; it takes effect at the Traffic Rules manager's next run.")


# --- imports: rules files and rate decks --------------------------------------------------------------------


def _upload_dir() -> Path:
    path = Path(current_app.instance_path) / "whatif"
    path.mkdir(parents=True, exist_ok=True)
    return path


KEEP_SECONDS = 86_400  # a previewed file not applied within a day is forgotten


def _keep(data: bytes, meta: dict) -> str:
    """Keep an uploaded file until Apply (files older than a day are removed first); returns its token."""
    token = secrets.token_urlsafe(18)
    folder = _upload_dir()
    too_old = time.time() - KEEP_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < too_old:
                path.unlink(missing_ok=True)
        except OSError:
            continue  # removed by another worker meanwhile
    (folder / f"{token}.csv").write_bytes(data)
    (folder / f"{token}.json").write_text(json.dumps(meta))
    return token


def _kept(token: str, kind: str, target_id: int) -> tuple[bytes, dict] | None:
    """The kept file of this user, kind and target, or None."""
    if not token or not token.replace("-", "").replace("_", "").isalnum() or len(token) > 40:
        return None
    folder = _upload_dir()
    try:
        meta = json.loads((folder / f"{token}.json").read_text())
        data = (folder / f"{token}.csv").read_bytes()
    except (OSError, ValueError):
        return None
    if (meta.get("user_id"), meta.get("kind"), meta.get("target_id")) != (current_user.id, kind, target_id):
        return None
    return data, meta


def _forget(token: str) -> None:
    for suffix in (".csv", ".json"):
        (_upload_dir() / f"{token}{suffix}").unlink(missing_ok=True)


def _read_upload() -> tuple[bytes | None, str]:
    """The uploaded file (bounded like every import) and "", or None and why it cannot be read."""
    try:
        return reader.read_upload(request.files.get("file")), ""
    except reader.CsvError as exc:
        return None, str(exc)


def _parse(data: bytes, columns, parser, required):
    """Rows and errors of a CSV file through the one import reader."""
    try:
        return reader.parse(data, columns, parser, required=required)
    except reader.CsvError as exc:
        return [], [str(exc)]


def _rules_from_file(plan: RoutingPlan, data: bytes, mode: str):
    """The plan's rule rows after importing `data` (append or replace), or the file's errors."""
    from panel.plans import rules_csv
    from panel.plans.lookups import NameResolver

    rows, errors = _parse(
        data,
        rules_csv.COLUMNS,
        rules_csv.row_parser(plan.id, NameResolver(plan.company_id)),
        rules_csv.REQUIRED,
    )
    if errors or not rows:
        return None, errors or ["The file has a header but no rules."]
    current = service.rule_rows(plan.id) if mode == "append" else []
    first = service.next_rule_id()
    base = {c: None for c in service.RULE_COLUMNS}
    added = [{**base, **row, "id": first + i} for i, row in enumerate(rows)]
    return current + added, []


def _rates_from_file(table: RateTable, data: bytes, mode: str, start: datetime):
    """The table's rates (snapshot form) after importing `data`, or the file's errors."""
    from panel.rates import deck

    parse_row = deck.rate_row_parser(table.id, start)
    rows, errors = _parse(data, deck.RATE_COLUMNS, parse_row, deck.REQUIRED_COLUMNS)
    if errors or not rows:
        return None, errors or ["The file has a header but no rates."]
    new = overlay.rate_rows(rows)
    if mode == "replace":
        return new, []
    snapshot = service.current_snapshot()
    current = snapshot.rate_tables[table.id].rates if table.id in snapshot.rate_tables else {}
    return overlay.merged_rates(current, new), []


IMPORTS = {
    "rules": (RoutingPlan, ("append", "replace"), "routing plan"),
    "rates": (RateTable, ("add_update", "replace"), "rate table"),
}


@bp.route("/plans/<int:plan_id>/import-preview", methods=["GET", "POST"])
@writer_required
def import_rules_preview(plan_id: int):
    """Upload a rules file and see its effect before importing it."""
    return _import_preview("rules", plan_id)


@bp.route("/rate-tables/<int:rate_table_id>/import-preview", methods=["GET", "POST"])
@writer_required
def import_rates_preview(rate_table_id: int):
    """Upload a rate deck and see its effect before importing it."""
    return _import_preview("rates", rate_table_id)


@bp.route("/plans/<int:plan_id>/import-apply", methods=["POST"])
@writer_required
def import_rules_apply(plan_id: int):
    """Import the previewed rules file."""
    return _import_apply("rules", plan_id)


@bp.route("/rate-tables/<int:rate_table_id>/import-apply", methods=["POST"])
@writer_required
def import_rates_apply(rate_table_id: int):
    """Import the previewed rate deck."""
    return _import_apply("rates", rate_table_id)


def _urls(kind: str, target_id: int) -> dict:
    """The preview and apply URLs of an import kind."""
    arg = "plan_id" if kind == "rules" else "rate_table_id"
    return {
        "preview_url": url_for(f"whatif.import_{kind}_preview", **{arg: target_id}),
        "apply_url": url_for(f"whatif.import_{kind}_apply", **{arg: target_id}),
    }


def _import_preview(kind: str, target_id: int):
    """The upload form and, after a POST, the effect of the file."""
    model, modes, what = IMPORTS[kind]
    target = get_or_404(model, target_id)
    context = dict(
        **_urls(kind, target.id),
        kind=kind,
        target=target,
        modes=modes,
        what=what,
        preview=None,
        shown=[],
        errors=[],
        money=decimal_text,
        token="",
        version="",
        mode=modes[0],
    )
    if request.method == "POST":
        mode = request.form.get("mode", modes[0])
        context["mode"] = mode if mode in modes else modes[0]
        data, problem = _read_upload()
        if data is None:
            context["errors"] = [problem]
            return render_template("whatif/import_preview.html", **context), 422
        now = _now()
        if kind == "rules":
            rows, errors = _rules_from_file(target, data, context["mode"])
            if not errors:
                context["preview"], _ = service.rules_preview(
                    service.current_snapshot(), target.id, rows, user_company_ids(), now
                )
                context["version"] = service.version_of_rules(target.id)
        else:
            rates, errors = _rates_from_file(target, data, context["mode"], now)
            snapshot = service.current_snapshot()
            if not errors and target.id not in snapshot.rate_tables:
                errors = [
                    "The rate table is not in the routing data yet: try again after the manager's next run."
                ]
            if not errors:
                context["preview"], _ = service.rates_preview(
                    snapshot, target.id, rates, user_company_ids(), now
                )
                context["version"] = service.version_of_rates(target.id)
        if errors:
            context["errors"] = errors
            return render_template("whatif/import_preview.html", **context), 422
        context["shown"] = context["preview"].changes[:SHOWN]
        context["token"] = _keep(
            data,
            {
                "user_id": current_user.id,
                "kind": kind,
                "target_id": target.id,
                "mode": context["mode"],
                "filename": request.files["file"].filename or f"{kind}.csv",
            },
        )
    return render_template("whatif/import_preview.html", **context)


def _import_apply(kind: str, target_id: int):
    """Import the previewed file, unless the target's data changed since the preview."""
    model, _, what = IMPORTS[kind]
    target = get_or_404(model, target_id)
    token = request.form.get("token", "")
    kept = _kept(token, kind, target.id)
    urls = _urls(kind, target.id)
    back = urls["preview_url"]

    def refused(message: str, status: int):
        page = render_template(
            "whatif/import_preview.html", kind=kind, target=target, modes=IMPORTS[kind][1], what=what,
            preview=None, shown=[], errors=[message], money=decimal_text, token="", version="",
            mode=IMPORTS[kind][1][0], **urls,
        )  # fmt: skip
        return make_response(page, status)

    if kept is None:
        message = "The previewed file is no longer kept (applied, or not yours): upload it again."
        return refused(message, 422)
    data, meta = kept
    current = service.version_of_rules(target.id) if kind == "rules" else service.version_of_rates(target.id)
    if request.form.get("whatif_version", "") != current:
        _forget(token)
        message = (
            f"The {what}'s data changed since this preview: nothing was imported. "
            "Upload the file again to preview its effect on the current data."
        )
        return refused(message, 409)
    if kind == "rules":
        from panel.imports import jobs
        from panel.plans import rules_csv

        job = jobs.start(
            "routing_rules",
            company_id=target.company_id,
            target_id=target.id,
            target_label=f"routing plan {target.name}",
            filename=meta["filename"],
            mode=meta["mode"],
            work=rules_csv.import_work(target.id, data, meta["mode"]),
            synchronous=True,
        )
        ok, message = job.status == "done", job.message
        done = url_for("plans.show", plan_id=target.id)
    else:
        from panel.imports.jobs import ImportFailed
        from panel.rates import importer

        try:
            message, ok = importer.import_rates(target, data, meta["mode"], filename=meta["filename"]), True
        except ImportFailed as exc:
            db.session.rollback()
            message, ok = exc.message, False
        done = url_for("rates.show", rate_table_id=target.id)
    _forget(token)
    flash(message, "success" if ok else "error")
    return htmx.redirect(done if ok else back)
