"""The audit log section: scoped entries, the difference field by field, filters, links, paging, no writes."""

import html
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from panel import audit
from panel.extensions import db
from panel.models import AuditEntry
from tests import factories


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _table(response) -> str:
    """The entries table only (the page header names the logged-in user)."""
    return _text(response).split('id="audit-table"')[1]


@pytest.fixture
def history(tree):
    """A client with two accounts in Alpha, changed by alpha_operator; a client in Beta; an old entry."""
    acme = factories.client(tree.alpha, "Acme")
    a1 = factories.account(acme, "acme-1", ident_by="name", ident_value="acme1")
    a2 = factories.account(acme, "acme-2", ident_by="name", ident_value="acme2")
    other = factories.client(tree.alpha, "Other")
    beta = factories.client(tree.beta, "Beta Client")
    for obj in (acme, a1, a2, other, beta):
        audit.record("create", obj, user=tree.alpha_operator if obj is not beta else tree.beta_admin)
    before = audit.state(a1)
    a1.tech_prefix = "99#"
    a1.orig_capacity = 30
    audit.record("update", a1, before=before, user=tree.alpha_admin)
    old = audit.record(
        "update", other, before={"notes": ""}, after={"notes": "old"}, user=tree.alpha_operator
    )
    old.at = datetime(2021, 3, 4, 12, 0, tzinfo=UTC)
    db.session.commit()
    return {"acme": acme, "a1": a1, "a2": a2, "other": other, "beta": beta}


def test_entries_are_scoped(login, tree, history):
    """Alpha's users read Alpha's history only; Beta's entries answer 404 to them."""
    table = _table(login(tree.alpha_viewer).get("/audit/"))
    assert "Acme" in table and "acme-1" in table and "Beta Client" not in table
    beta_entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_label == "Beta Client"))
    assert login(tree.alpha_admin).get(f"/audit/{beta_entry.id}").status_code == 404
    assert login(tree.beta_admin).get(f"/audit/{beta_entry.id}").status_code == 200
    assert "Acme" not in _table(login(tree.beta_admin).get("/audit/"))
    assert "Beta Client" in _table(login(tree.root_admin).get("/audit/"))


def test_update_shows_difference_field_by_field(login, tree, history):
    """The list shows the changed fields by their form labels; the entry page shows every changed field with
    before and after (issue 14.5: labels as the forms name them, "—" for an empty value as the pages show)."""
    client = login(tree.alpha_viewer)
    table = _table(client.get("/audit/?action=update&object_type=account"))
    assert "Originator capacity" in table and "Tech prefix" in table and "99#" in table
    assert "orig_capacity" not in table and "tech_prefix" not in table
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "update", AuditEntry.object_type == "account")
    )
    page = _text(client.get(f"/audit/{entry.id}"))
    assert "alpha_admin" in page and "Alpha" in page
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    assert "<td>Tech prefix</td><td>—</td><td>99#</td>" in rows
    assert "<td>Originator capacity</td><td>—</td><td>30</td>" in rows
    # Unchanged fields are not listed (updated_at moves with every change).
    assert "<td>Name</td>" not in rows and rows.count("<tr>") == 3 and "<td>Updated at</td>" in rows


def test_filter_by_client_includes_its_accounts(login, tree, history):
    """`?client_id=N` (the client's change history link) lists the client and all its accounts."""
    table = _table(login(tree.alpha_viewer).get(f"/audit/?client_id={history['acme'].id}"))
    assert "acme-1" in table and "acme-2" in table and "Acme" in table
    assert "Other" not in table
    assert "history of Acme and its accounts" in _text(
        login(tree.alpha_viewer).get(f"/audit/?client_id={history['acme'].id}")
    )


def test_filter_by_object(login, tree, history):
    """`?object_type=account&object_id=N` (the account's history link) lists that account only."""
    a1 = history["a1"]
    table = _table(login(tree.alpha_viewer).get(f"/audit/?object_type=account&object_id={a1.id}"))
    assert "acme-1" in table and "acme-2" not in table
    assert "2 found" in table


def test_filter_by_user_action_and_dates(login, tree, history):
    """User (any case), action and date range filters; a bad date is reported, not a failure."""
    client = login(tree.alpha_viewer)
    table = _table(client.get("/audit/?user=ALPHA_ADMIN"))
    assert "1 found" in table and "acme-1" in table
    audit.record("update", history["a2"], before={}, note="by the manager")
    db.session.commit()
    table = _table(client.get("/audit/?user=system"))
    assert "1 found" in table and "by the manager" in table
    assert "No change matches." in _table(client.get("/audit/?user=nobody"))
    table = _table(client.get("/audit/?since=2021-03-01&until=2021-03-04"))
    assert "1 found" in table and "Other" in table
    table = _table(client.get("/audit/?until=2021-03-03"))
    assert "No change matches." in table
    response = client.get("/audit/?since=2021-13-45&object_id=abc")
    assert response.status_code == 200
    text = _text(response)
    assert "From: '2021-13-45' is not a date; use YYYY-MM-DD." in text
    assert "Object ID: 'abc' is not a number." in text
    # Digits that are not ASCII (`²`), and ids beyond 64 bits, are refused with the same message.
    for value in ("²", "١٢٣", "9" * 30):
        response = client.get(f"/audit/?object_id={value}&client_id={value}")
        assert response.status_code == 200 and "is not a number." in _text(response)


def test_object_links_only_while_the_object_exists(login, tree, history):
    """An entry links to its object's page while the object exists; a deleted object is plain text."""
    user = tree.sub_operator
    before = audit.state(user)
    user.full_name = "Sub Op"
    audit.record("update", user, before=before, user=tree.alpha_admin)
    gone = factories.company("Gone", "manager", tree.alpha)
    audit.record("create", gone, user=tree.alpha_admin)
    db.session.commit()
    client = login(tree.alpha_admin)
    assert f'href="/users/{user.id}"' in _table(client.get("/audit/?object_type=user"))
    assert f'href="/companies/{gone.id}"' in _table(client.get("/audit/?object_type=company"))
    gone_entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_label == "Gone"))
    gone_entry.company_id = tree.alpha.id  # as the companies section does when it deletes one
    gone_id = gone.id
    db.session.delete(gone)
    db.session.commit()
    table = _table(client.get("/audit/?object_type=company"))
    assert "Gone" in table and f'href="/companies/{gone_id}"' not in table
    assert "no page: deleted or not viewable" in _text(client.get(f"/audit/{gone_entry.id}"))


def test_paging(login, tree, history):
    """The list is paged server-side, newest first."""
    client = login(tree.alpha_viewer)
    first = _table(client.get("/audit/?per_page=2"))
    assert "6 found" in first and "page 1 of 3" in first  # Beta's entry is not counted
    last = _table(client.get("/audit/?per_page=2&page=3"))
    assert "Other" in last and "2021-03-04" in last


def test_labels_are_escaped(login, tree):
    """Labels and values with markup are shown as text, in the list and on the entry page."""
    client_ = factories.client(tree.alpha, "<img src=x onerror=alert(1)>")
    before = audit.state(client_)
    client_.notes = "<script>alert(2)</script>"
    audit.record("update", client_, before=before, user=tree.alpha_admin)
    db.session.commit()
    client = login(tree.alpha_admin)
    for url in ("/audit/", f"/audit/{db.session.scalar(select(AuditEntry.id))}"):
        raw = client.get(url).get_data(as_text=True)
        assert "<img src=x" not in raw and "<script>alert(2)" not in raw
        assert "&lt;img src=x onerror=alert(1)&gt;" in raw or "&lt;script&gt;alert(2)" in raw


def test_export_follows_filters_and_scope(login, tree, history):
    """The CSV export has a header and only the filtered entries of the user's scope."""
    response = login(tree.alpha_viewer).get(f"/audit/export?client_id={history['acme'].id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert lines[0] == "at,user,company,object_type,object_id,object,action,changes,note"
    assert len(lines) == 1 + 4  # Acme, its two accounts, and the account's update
    assert any("tech_prefix:  -> 99#" in line for line in lines)
    assert "Beta" not in response.get_data(as_text=True)


def test_no_write_endpoints(app, login, tree, history):
    """The section has no endpoint that edits or deletes an entry: every route answers GET only."""
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("audit_views.")]
    assert rules
    for rule in rules:
        assert rule.methods - {"GET", "HEAD", "OPTIONS"} == set(), rule.rule
    entry_id = db.session.scalar(select(AuditEntry.id))
    client = login(tree.root_admin)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(f"/audit/{entry_id}").status_code == 405


def test_rows_of_a_parent_link_to_the_parent(app, login, tree):
    """A rule links to its plan's page and an API token to its company's page (they have no own page)."""
    from panel.models import ApiToken

    plan = factories.plan(tree.alpha, "P1")
    rule = factories.rule(plan, "44")
    token = ApiToken(company_id=tree.alpha.id, name="sw", token_hash="d" * 64, prefix="rp_d")
    db.session.add(token)
    db.session.flush()
    audit.record("create", rule, user=tree.alpha_admin)
    audit.record("create", token, user=tree.alpha_admin)
    db.session.commit()
    table = _table(login(tree.alpha_admin).get("/audit/"))
    if "plans.show" in app.view_functions:
        with app.test_request_context():
            from flask import url_for

            assert f'href="{url_for("plans.show", plan_id=plan.id)}"' in table
    assert f'href="/companies/{tree.alpha.id}"' in table
