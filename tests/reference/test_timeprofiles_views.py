"""The time profiles section: list with "inside now?", create/edit, check a moment, delete unless used."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import TimeProfile
from tests import factories
from tests.reference.conftest import audit_entries


@pytest.fixture
def profiles(tree):
    """Always-on for Alpha, never-today for Alpha Sub, one for Beta; a rule uses Alpha's.

    "Not today" leaves out tomorrow too, so it is still outside when the test crosses midnight.
    """
    now = datetime.now(UTC)
    today, tomorrow = str(now.isoweekday()), str((now + timedelta(days=1)).isoweekday())
    others = "".join(d for d in "1234567" if d not in (today, tomorrow))
    always = factories.time_profile(tree.alpha, "Always", "1234567", "00:00-24:00", "UTC")
    never = factories.time_profile(tree.sub, "Not today", others, "00:00-24:00", "UTC")
    beta = factories.time_profile(tree.beta, "Beta hours")
    plan = factories.plan(tree.alpha, "Retail")
    factories.rule(plan, "44", priority=10, time_profile_id=always.id)
    db.session.commit()
    return type("Profiles", (), {"always": always, "never": never, "beta": beta})


def _form(**overrides) -> dict:
    data = {
        "name": "Nights",
        "company_id": "",
        "weekdays": ["1", "2", "3"],
        "ranges": "22:00-6:00",
        "timezone": "Europe/London",
    }
    data.update(overrides)
    return data


def test_list_shows_inside_now_and_is_scoped(login, tree, profiles, text_of):
    """Each profile says whether now is inside; other companies' profiles are absent."""
    page = text_of(login(tree.alpha_viewer).get("/time-profiles/"))
    always = page.split(f'id="time-profile-{profiles.always.id}"')[1].split("</tr>")[0]
    never = page.split(f'id="time-profile-{profiles.never.id}"')[1].split("</tr>")[0]
    assert ">inside<" in always and "every day" in always
    assert ">outside<" in never
    assert "Beta hours" not in page
    assert "New time profile" not in page  # viewers only read


def test_create_normalises_ranges_and_is_audited(login, tree, text_of):
    """Ranges are written back in the standard form; weekdays are stored as ISO numbers."""
    client = login(tree.alpha_operator)
    response = client.post("/time-profiles/new", data=_form(company_id=tree.alpha.id))
    assert response.status_code == 303
    profile = db.session.scalar(select(TimeProfile).where(TimeProfile.name == "Nights"))
    assert (profile.weekdays, profile.ranges, profile.timezone) == ("123", "22:00-06:00", "Europe/London")
    assert audit_entries("timeprofile", "create")[0].object_id == profile.id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Mars/Base"}, "is not an IANA time zone"),
        ({"ranges": "10:00-10:00"}, "the start equals the end"),
        ({"ranges": "9-17"}, "is not a range like 08:00-18:00"),
        ({"weekdays": []}, "Choose at least one weekday"),
        ({"weekdays": ["8"]}, "is not a weekday number"),
        ({"name": ""}, "Give the profile a name"),
    ],
)
def test_create_refuses_bad_fields(login, tree, text_of, overrides, message):
    """Every bad field answers 422 with the reason and creates nothing."""
    client = login(tree.alpha_operator)
    response = client.post("/time-profiles/new", data=_form(company_id=tree.alpha.id, **overrides))
    assert response.status_code == 422
    assert message in text_of(response)
    assert db.session.scalar(select(TimeProfile.id)) is None


def test_show_checks_a_moment_in_the_profile_zone(login, tree, text_of):
    """A Monday-evening New York profile contains Tuesday 01:00 UTC, shown with the local time."""
    profile = factories.time_profile(tree.alpha, "NY evening", "1", "20:00-22:00", "America/New_York")
    db.session.commit()
    client = login(tree.alpha_operator)
    page = text_of(client.get(f"/time-profiles/{profile.id}?at=2024-01-02 01:00"))
    assert "Mon 2024-01-01 20:00 in America/New_York" in page
    assert page.split('id="inside-at"')[1].split("</p>")[0].count(">inside<") == 1
    page = text_of(client.get(f"/time-profiles/{profile.id}?at=2024-01-02 04:00"))
    assert ">outside<" in page.split('id="inside-at"')[1]
    assert "is not a moment" in text_of(client.get(f"/time-profiles/{profile.id}?at=soon"))


def test_delete_refused_while_a_rule_uses_it(login, tree, profiles, text_of):
    """The message names the plan and the rule; an unused profile is deleted."""
    client = login(tree.alpha_operator)
    page = text_of(client.post(f"/time-profiles/{profiles.always.id}/delete", follow_redirects=True))
    assert "is not deleted" in page and "plan Retail rule 44 (priority 10)" in page
    assert db.session.get(TimeProfile, profiles.always.id) is not None
    assert client.post(f"/time-profiles/{profiles.never.id}/delete").status_code == 303
    assert db.session.get(TimeProfile, profiles.never.id) is None
    assert [e.action for e in audit_entries("timeprofile")] == ["delete"]


def test_edit_and_scope(login, tree, profiles):
    """Editing saves with an audit entry; a sibling's profile answers 404."""
    client = login(tree.alpha_operator)
    response = client.post(
        f"/time-profiles/{profiles.never.id}/edit",
        data=_form(
            name="Weekend", company_id=tree.sub.id, weekdays=["6", "7"], ranges="00:00-24:00", timezone="UTC"
        ),
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(TimeProfile, profiles.never.id).weekdays == "67"
    entry = audit_entries("timeprofile", "update")[0]
    assert entry.after["weekdays"] == "67" and entry.before["weekdays"] != "67"
    for path in ("", "/edit"):
        assert client.get(f"/time-profiles/{profiles.beta.id}{path}").status_code == 404
    assert client.post(f"/time-profiles/{profiles.beta.id}/delete").status_code == 404
