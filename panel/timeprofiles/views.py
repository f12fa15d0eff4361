"""Time profiles: list (with "inside now?"), show (check a moment), create, edit, delete (unless used)."""

from panel.access import get_or_404, reader_required
from panel.htmx import render
from panel.models import RoutingRule, TimeProfile
from panel.models.types import utcnow
from panel.reference.owners import count_by, moment_arg, used_by_rules
from panel.reference.views import OwnedSection
from panel.timeprofile import CompiledProfile, TimeProfileError, weekdays_label, zone_names
from panel.timeprofiles import bp
from panel.timeprofiles.forms import TimeProfileForm


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
    at_text, at, at_error = moment_arg("at", "moment")
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
        rules=section.users_of(profile)[0],
        weekdays_label=weekdays_label,
    )


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
    bp,
    TimeProfile,
    TimeProfileForm,
    used_by_rules(RoutingRule.time_profile_id),
    sortable={"timezone": TimeProfile.timezone},
    refused_to="show",
    list_context=_list_context,
    form_context=lambda profile: {"zones": sorted(zone_names())},
    new_form_defaults=_weekdays_default,
)
