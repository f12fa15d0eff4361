"""Time profiles: list (with "inside now?"), show (check a moment), create, edit, delete (unless used)."""

from flask import flash, request, url_for

from panel import audit
from panel.access import reader_required, writer_required
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.forms import name_taken
from panel.htmx import redirect, render
from panel.models import Company, RoutingRule, TimeProfile
from panel.models.types import utcnow
from panel.rates.shared import (
    count_by,
    default_owner,
    name_list,
    owned_list,
    owner_change_error,
    owner_choices,
    rule_label,
    rules_using,
)
from panel.rates.values import parse_moment
from panel.scope import get_or_404
from panel.timeprofile import CompiledProfile, TimeProfileError, weekdays_label, zone_names
from panel.timeprofiles import bp
from panel.timeprofiles.forms import TimeProfileForm

SORTABLE = {"name": TimeProfile.name, "company": Company.name, "timezone": TimeProfile.timezone}


def inside(profile: TimeProfile, moment) -> bool | None:
    """Whether the moment is inside the profile; None when the stored profile cannot be read."""
    try:
        return CompiledProfile(profile.weekdays, profile.ranges, profile.timezone).contains(moment)
    except TimeProfileError:
        return None


@bp.route("/")
@reader_required
def index():
    """The time profiles of the user's companies, with whether each is in force now."""
    pagination, q, company_id = owned_list(TimeProfile, SORTABLE)
    now = utcnow()
    return render(
        "timeprofiles/list.html",
        "timeprofiles/_table.html",
        pagination=pagination,
        inside_now={p.id: inside(p, now) for p in pagination.items},
        rule_counts=count_by(RoutingRule.time_profile_id, [p.id for p in pagination.items]),
        weekdays_label=weekdays_label,
        companies=owner_choices(),
        q=q,
        company_id=company_id,
        now=now,
    )


@bp.route("/<int:time_profile_id>")
@reader_required
def show(time_profile_id: int):
    """One profile: inside now?, check any moment (`at`, UTC), and the rules that use it."""
    profile = get_or_404(TimeProfile, time_profile_id)
    now = utcnow()
    at_text = request.args.get("at", "").strip()
    at, at_error = None, ""
    if at_text:
        try:
            at = parse_moment(at_text.replace("T", " "), "moment")
        except ValueError as exc:
            at_error = str(exc)
    compiled = None
    try:
        compiled = CompiledProfile(profile.weekdays, profile.ranges, profile.timezone)
    except TimeProfileError as exc:
        at_error = at_error or f"The stored profile cannot be read: {exc}"
    return render(
        "timeprofiles/show.html",
        profile=profile,
        now=now,
        now_inside=compiled.contains(now) if compiled else None,
        local_now=now.astimezone(compiled.tz) if compiled else None,
        at=at,
        at_text=at_text,
        at_error=at_error,
        at_inside=compiled.contains(at) if (compiled and at) else None,
        local_at=at.astimezone(compiled.tz) if (compiled and at) else None,
        rules=[rule_label(rule, plan) for rule, plan in rules_using(RoutingRule.time_profile_id, profile.id)],
        weekdays_label=weekdays_label,
    )


def _form(profile: TimeProfile | None = None) -> TimeProfileForm:
    """The form with the owner choices."""
    form = TimeProfileForm(obj=profile)
    choices = owner_choices()
    form.company_id.choices = as_choices(choices)
    if profile is None and request.method == "GET":
        form.company_id.data = default_owner(choices)
        form.weekdays.data = list("12345")
    return form


def _page(form: TimeProfileForm, profile: TimeProfile | None, status: int):
    """The form page."""
    return render(
        "timeprofiles/form.html", status=status, form=form, profile=profile, zones=sorted(zone_names())
    )


@bp.route("/new", methods=["GET", "POST"])
@writer_required(reads="reader")
def create():
    """Create a time profile."""
    form = _form()
    if form.validate_on_submit() and not name_taken(form, TimeProfile, None, "time profile"):
        profile = TimeProfile()
        form.populate_obj(profile)
        db.session.add(profile)
        audit.record("create", profile)
        db.session.commit()
        flash(f"Time profile {profile.name} created.", "success")
        return redirect(url_for("timeprofiles.show", time_profile_id=profile.id))
    return _page(form, None, 422 if form.is_submitted() else 200)


@bp.route("/<int:time_profile_id>/edit", methods=["GET", "POST"])
@writer_required(reads="reader")
def update(time_profile_id: int):
    """Edit a time profile (routing follows at the manager's next run)."""
    profile = get_or_404(TimeProfile, time_profile_id)
    form = _form(profile)
    if form.validate_on_submit() and not name_taken(form, TimeProfile, profile, "time profile"):
        if form.company_id.data != profile.company_id:
            companies = {plan.company_id for _, plan in rules_using(RoutingRule.time_profile_id, profile.id)}
            error = owner_change_error(form.company_id.data, companies, "time profile")
            if error:
                form.company_id.errors.append(error)
                return _page(form, profile, 422)
        before = audit.state(profile)
        form.populate_obj(profile)
        audit.record("update", profile, before=before)
        db.session.commit()
        flash(f"Time profile {profile.name} saved.", "success")
        return redirect(url_for("timeprofiles.show", time_profile_id=profile.id))
    return _page(form, profile, 422 if form.is_submitted() else 200)


@bp.route("/<int:time_profile_id>/delete", methods=["POST"])
@writer_required
def delete(time_profile_id: int):
    """Delete a time profile; refused while a routing rule uses it."""
    profile = get_or_404(TimeProfile, time_profile_id)
    rules = rules_using(RoutingRule.time_profile_id, profile.id)
    if rules:
        names = name_list(rule_label(rule, plan) for rule, plan in rules)
        flash(f"Time profile {profile.name} is not deleted: it is used by {names}.", "error")
        return redirect(url_for("timeprofiles.show", time_profile_id=profile.id))
    before = audit.state(profile)
    audit.record("delete", profile, before=before)
    db.session.delete(profile)
    db.session.commit()
    flash(f"Time profile {profile.name} deleted.", "success")
    return redirect(url_for("timeprofiles.index"))
