"""One contract for the five reference sections' generic views (panel.reference.views).

Each section declares only its model, form and columns; these tests check once, over all five, what the
generic views promise: the list shows the section's objects, an edit made on a stale form is refused with a
conflict message and the current values (nothing overwritten), an edit of an object deleted meanwhile says so,
and a viewer may read the form but not save it.
"""

import re

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import AuditEntry
from tests import factories


def _rate_table(tree):
    table = factories.rate_table(tree.alpha, "Wholesale")
    return table, f"/rate-tables/{table.id}/edit", {"name": "Wholesale 2", "currency": "USD"}


def _code_deck(tree):
    deck = factories.code_deck(tree.alpha, "World")
    return deck, f"/code-decks/{deck.id}/edit", {"name": "World 2"}


def _time_profile(tree):
    profile = factories.time_profile(tree.alpha, "Office")
    data = {"name": "Office 2", "weekdays": ["1", "2"], "ranges": "08:00-18:00", "timezone": "UTC"}
    return profile, f"/time-profiles/{profile.id}/edit", data


def _policy(tree):
    policy = factories.policy(tree.alpha, "Cheap", rate_weight=1)
    data = {"name": "Cheap 2", "rate_weight": "1", "asr_weight": "0", "acd_weight": "0", "pdd_weight": "0"}
    return policy, f"/policies/{policy.id}/edit", data


def _did(tree):
    vendor = factories.client(tree.alpha, "Vendor")
    account = factories.account(vendor, "gw", term_enabled=True)
    did = factories.did(account, "442000001")
    return did, f"/dids/{did.id}/edit", {"number": "442000002", "account_id": account.id}


SECTIONS = {
    "rate table": (_rate_table, "/rate-tables/", "Wholesale"),
    "code deck": (_code_deck, "/code-decks/", "World"),
    "time profile": (_time_profile, "/time-profiles/", "Office"),
    "policy": (_policy, "/policies/", "Cheap"),
    "DID": (_did, "/dids/", "442000001"),
}


def _make(tree, kind):
    make, list_url, label = SECTIONS[kind]
    obj, edit_url, data = make(tree)
    if hasattr(obj, "company_id"):
        data = data | {"company_id": tree.alpha.id}
    db.session.commit()
    return obj, edit_url, data, list_url, label


@pytest.mark.parametrize("kind", SECTIONS)
def test_list_shows_the_sections_objects_to_their_company_only(login, tree, kind):
    """The list (the one generic list view) shows Alpha's object to Alpha and not to Beta."""
    _obj, _edit, _data, list_url, label = _make(tree, kind)
    assert label in login(tree.alpha_operator).get(list_url).get_data(as_text=True)
    assert label not in login(tree.beta_admin).get(list_url).get_data(as_text=True)


@pytest.mark.parametrize("kind", SECTIONS)
def test_stale_edit_is_a_conflict_with_the_current_values(login, tree, kind):
    """Two users open the same form; the second save is refused (409) and shows the first one's values."""
    obj, edit_url, data, _list, _label = _make(tree, kind)
    first, second = login(tree.alpha_operator), login(tree.alpha_admin)
    page = second.get(edit_url).get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    assert first.post(edit_url, data=data | {"version": version}).status_code == 303
    saved = {k: v for k, v in data.items()}
    stale = data | {"version": version}
    if "name" in stale:
        stale["name"] = stale["name"] + " (mine)"
    else:
        stale["notes"] = "mine"
    response = second.post(edit_url, data=stale)
    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone else saved" in text
    current = saved.get("name") or saved.get("number")
    assert current in text  # the current values are shown
    db.session.expire_all()
    fresh = db.session.get(type(obj), obj.id)
    assert (getattr(fresh, "name", None) or fresh.number) == current  # nothing overwritten
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.object_id == obj.id, AuditEntry.action == "update")
    ).all()
    assert len([e for e in entries if e.object_type == entries[0].object_type]) == 1


@pytest.mark.parametrize("kind", SECTIONS)
def test_edit_of_an_object_deleted_meanwhile_says_so(login, tree, kind):
    """The form was open while someone deleted the object: a clear answer, never a 500."""
    obj, edit_url, data, _list, _label = _make(tree, kind)
    client = login(tree.alpha_operator)
    version = re.search(r'name="version" value="(\d+)"', client.get(edit_url).get_data(as_text=True))
    delete_url = edit_url.replace("/edit", "/delete")
    assert login(tree.alpha_admin).post(delete_url).status_code == 303
    response = client.post(edit_url, data=data | {"version": version.group(1)})
    assert response.status_code == 404  # gone: not found, like any object outside the scope


@pytest.mark.parametrize("kind", SECTIONS)
def test_viewer_reads_the_form_but_cannot_save(login, tree, kind):
    """A viewer gets the form (read-only) and 403 on saving or deleting."""
    obj, edit_url, data, _list, _label = _make(tree, kind)
    viewer = login(tree.alpha_viewer)
    assert viewer.get(edit_url).status_code == 200
    assert viewer.post(edit_url, data=data).status_code == 403
    assert viewer.post(edit_url.replace("/edit", "/delete")).status_code == 403
    db.session.expire_all()
    assert db.session.get(type(obj), obj.id) is not None
