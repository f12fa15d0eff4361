"""Time profiles: list (with "inside now?"), show (check a moment), create, edit, delete (unless used)."""

from flask import request

from panel.access import get_or_404, reader_required
from panel.htmx import render
from panel.models import Company, RoutingRule, TimeProfile
from panel.models.types import utcnow
from panel.reference.owners import count_by, rule_label, rules_using
from panel.reference.views import OwnedSection
from panel.timeprofile import CompiledProfile, TimeProfileError, weekdays_label, zone_names
from panel.timeprofiles import bp
from panel.timeprofiles.forms import TimeProfileForm
from panel.values import parse_moment

SORTABLE = {"name": TimeProfile.name, "company": Company.name, "timezone": TimeProfile.timezone}


def inside(profile: TimeProfile, moment) -> bool | None:
    """Whether the moment is inside the profile; None when the stored profile cannot be read."""
    try:
        return CompiledProfile(profile.weekdays, profile.ranges, profile.timezone).contains(moment)
    except TimeProfileError:
        return None


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
        rules=_users(profile)[0],
        weekdays_label=weekdays_label,
    )


def _users(profile: TimeProfile) -> tuple[list[str], set[int]]:
    """The rules that use the profile (as the operator reads them) and their plans' companies."""
    rules = rules_using(RoutingRule.time_profile_id, profile.id)
    return [rule_label(rule, plan) for rule, plan in rules], {plan.company_id for _, plan in rules}


def _list_context(items: list) -> dict:
    """Whether each profile is in force now, and how many rules use it."""
    now = utcnow()
    return {
        "inside_now": {p.id: inside(p, now) for p in items},
        "rule_counts": count_by(RoutingRule.time_profile_id, [p.id for p in items]),
        "weekdays_label": weekdays_label,
        "now": now,
    }


def _weekdays_default(form: TimeProfileForm) -> None:
    """A new profile starts on the working days."""
    form.weekdays.data = list("12345")


section = OwnedSection(
    bp=bp,
    model=TimeProfile,
    form_class=TimeProfileForm,
    noun="time profile",
    plural="Time profiles",
    sortable=SORTABLE,
    var="profile",
    users_of=_users,
    refused_to="show",
    list_context=_list_context,
    form_context=lambda profile: {"zones": sorted(zone_names())},
    new_form_defaults=_weekdays_default,
)
