"""A client edited from two browsers (panel.writes): the second save of a stale form is a conflict page with
the client's current values, not a silent overwrite of the first one's change."""

import re

from sqlalchemy import func, select

from panel.extensions import db
from panel.models import AuditEntry, Client


def _form(page: str) -> dict:
    """The version and name the edit form was drawn with."""
    version = re.search(r'id="version" name="version" type="hidden" value="(\d+)"', page)
    return {"version": version.group(1)} if version else {}


def _data(name: str, version: str) -> dict:
    return {"name": name, "currency": "EUR", "orig_rate_table_id": "", "term_rate_table_id": "",
            "routing_plan_id": "", "notes": "", "version": version, "company_id": "1"}  # fmt: skip


def test_stale_client_form_is_a_conflict_with_current_values(carrier, login):
    """Both open the form at version v; the first saves; the second gets 409 naming the current name."""
    first, second = login(carrier.tree.alpha_admin), login(carrier.tree.alpha_operator)
    url = f"/clients/{carrier.acme.id}/edit"
    opened = _form(first.get(url).get_data(as_text=True))
    assert opened and _form(second.get(url).get_data(as_text=True)) == opened
    assert first.post(url, data=_data("Acme One", opened["version"])).status_code == 303
    entries = db.session.scalar(select(func.count()).select_from(AuditEntry))
    response = second.post(url, data=_data("Acme Two", opened["version"]))
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone else saved this client after you opened the form" in page
    assert "Acme One" in page and "Acme Two" not in page
    db.session.expire_all()
    assert db.session.get(Client, carrier.acme.id).name == "Acme One"
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == entries
    # Drawn again, the form carries the new version and saves.
    fresh = _form(second.get(url).get_data(as_text=True))
    assert int(fresh["version"]) == int(opened["version"]) + 1
    assert second.post(url, data=_data("Acme Two", fresh["version"])).status_code == 303
