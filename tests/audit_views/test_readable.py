"""The audit log reads as the pages do (issue 14.5): form labels, referenced objects by name with a link,
yes/no for booleans, money with its decimals, and an import into an existing plan shows its figures."""

import html
from decimal import Decimal

from sqlalchemy import select

from panel import audit, writes
from panel.extensions import db
from panel.models import AuditEntry
from tests import factories


def _page(client, entry: AuditEntry) -> str:
    return html.unescape(client.get(f"/audit/{entry.id}").get_data(as_text=True))


def test_referenced_object_by_name_with_link_and_booleans_as_yes_no(tree, login):
    """A rule given a time profile: "Time profile: — → Office hours" linked to the profile; PM % yes/no."""
    profile = factories.time_profile(tree.alpha, "Office hours")
    plan = factories.plan(tree.alpha, "Main")
    rule = factories.rule(plan, "44", pm_percent=False)
    db.session.commit()
    with writes.change(rule, user=tree.alpha_operator):
        rule.time_profile_id = profile.id
        rule.pm_percent = True
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update"))
    page = _page(login(tree.alpha_viewer), entry)
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    link = f'<a href="/time-profiles/{profile.id}">Office hours</a>'
    assert f"<td>Time profile</td><td>—</td><td>{link}</td>" in rows
    assert "time_profile_id" not in page and "pm_percent" not in rows
    assert "<td>no</td><td>yes</td>" in rows
    # The list says the same in a line.
    listing = html.unescape(login(tree.alpha_viewer).get("/audit/").get_data(as_text=True))
    assert "Time profile" in listing and link in listing


def test_names_survive_a_rename_and_money_shows_its_decimals(tree, login):
    """The name is the one of the moment of the change; a balance of 12.5 reads 12.50, 0.000001 in full."""
    profile = factories.time_profile(tree.alpha, "Nights")
    plan = factories.plan(tree.alpha, "Main")
    rule = factories.rule(plan, "44")
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    with writes.change(rule, user=tree.alpha_operator):
        rule.time_profile_id = profile.id
    profile.name = "Renamed later"
    with writes.change(client, user=tree.alpha_operator):
        client.balance = Decimal("12.5")
    with writes.change(client, user=tree.alpha_operator):
        client.balance = Decimal("12.500001")
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    viewer = login(tree.alpha_viewer)
    assert "Nights" in _page(viewer, entries[0]) and "Renamed later" not in _page(viewer, entries[0])
    assert "<td>Balance</td><td>0.00</td><td>12.50</td>" in _page(viewer, entries[1])
    assert "<td>Balance</td><td>12.50</td><td>12.500001</td>" in _page(viewer, entries[2])


def test_import_into_an_existing_plan_shows_figures_not_a_created_diff(tree, login):
    """An import entry lists what it did (mode, counts) under What/Value; no Before column of empty fields."""
    plan = factories.plan(tree.alpha, "Main")
    db.session.commit()
    with writes.change(plan, action="import", after={"mode": "replace", "added": 3}, user=tree.alpha_admin):
        pass
    entry = db.session.scalar(select(AuditEntry))
    page = _page(login(tree.alpha_viewer), entry)
    assert "<th>What</th><th>Value</th>" in page and "<th>Before</th>" not in page
    assert "<td>Added</td><td>3</td>" in page and "<td>Mode</td><td>replace</td>" in page
    assert "Name" not in page.split("<tbody>")[1].split("</tbody>")[0]
    listing = html.unescape(login(tree.alpha_viewer).get("/audit/").get_data(as_text=True))
    assert "created" not in listing.split('id="audit-table"')[1]


def test_audit_state_names_what_its_ids_point_to(tree):
    """The stored state keeps the raw id and the referenced object's name (for a readable log later)."""
    profile = factories.time_profile(tree.alpha, "Office hours")
    plan = factories.plan(tree.alpha, "Main")
    rule = factories.rule(plan, "44", time_profile_id=profile.id)
    db.session.commit()
    state = audit.state(rule)
    assert state["time_profile_id"] == profile.id
    expected = {"type": "timeprofile", "id": profile.id, "name": "Office hours"}
    assert state["_refs"]["time_profile_id"] == expected
    assert state["_refs"]["plan_id"]["name"] == "Main"
