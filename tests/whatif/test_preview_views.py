"""What-if pages (issue 15.1): rule edit preview and apply, conflicts, import previews, roles and scope."""

import io

import pytest

from panel.extensions import db
from panel.models import AuditEntry, Rate, RoutingRule
from tests import factories as f
from tests.whatif.conftest import alpha_plan

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _kept_files_in_tmp(app, tmp_path, monkeypatch):
    """Previewed uploads are kept under the instance folder: a temporary one here."""
    monkeypatch.setattr(app, "instance_path", str(tmp_path))


@pytest.fixture
def alpha(tree):
    """Alpha's plan (deck 44, 447) with a customer; vendors V1 (0.05) and V2 (0.06); rule 44 -> V1."""
    return alpha_plan(tree, [("44", "UK"), ("447", "UK mobile")])


def _edit(alpha, client_id):
    return {
        "priority": "0",
        "code": "44",
        "type": "static_client",
        "terminator": str(client_id),
        "orig_tags_mode": "all",
    }


def test_rule_preview_shows_old_and_new_first_route_and_writes_nothing(alpha, login):
    web = login(alpha.alpha_operator)
    response = web.post(
        f"/whatif/rules/{alpha.rule.id}/preview", data=_edit(alpha, alpha.v2.client.id), headers=HTMX
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "whatif-dialog" in html
    assert "V1 / v1 → V2 / v2" in html and "0.05 → 0.04" in html
    assert "2 changes" in html  # 44 and 447 (routed by the 44 rule)
    db.session.expire_all()
    assert db.session.get(RoutingRule, alpha.rule.id).terminator_client_id == alpha.v1.client.id


def test_apply_saves_the_previewed_edit(alpha, login):
    web = login(alpha.alpha_operator)
    html = web.post(f"/whatif/rules/{alpha.rule.id}/preview", data=_edit(alpha, alpha.v2.client.id)).get_data(
        as_text=True
    )
    version = html.split('name="whatif_version" value="')[1].split('"')[0]
    response = web.post(
        f"/whatif/rules/{alpha.rule.id}/apply",
        data={**_edit(alpha, alpha.v2.client.id), "whatif_version": version},
    )
    assert response.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(RoutingRule, alpha.rule.id).terminator_client_id == alpha.v2.client.id
    assert db.session.query(AuditEntry).filter_by(action="update", object_id=alpha.rule.id).count() == 1


def test_apply_fails_cleanly_when_the_rules_changed_meanwhile(alpha, login):
    web = login(alpha.alpha_operator)
    html = web.post(f"/whatif/rules/{alpha.rule.id}/preview", data=_edit(alpha, alpha.v2.client.id)).get_data(
        as_text=True
    )
    version = html.split('name="whatif_version" value="')[1].split('"')[0]
    f.rule(alpha.plan, "447", "static_client", terminator_client_id=alpha.v1.client.id)  # someone else
    db.session.commit()
    response = web.post(
        f"/whatif/rules/{alpha.rule.id}/apply",
        data={**_edit(alpha, alpha.v2.client.id), "whatif_version": version},
    )
    assert response.status_code == 409 and "nothing was applied" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(RoutingRule, alpha.rule.id).terminator_client_id == alpha.v1.client.id


def test_new_rule_preview_and_apply(alpha, login):
    web = login(alpha.alpha_operator)
    data = {
        "priority": "0",
        "code": "447",
        "type": "static_client",
        "terminator": str(alpha.v2.client.id),
        "orig_tags_mode": "all",
    }
    html = web.post(f"/whatif/plans/{alpha.plan.id}/rules/preview", data=data).get_data(as_text=True)
    assert "1 change" in html and 'data-code="447"' in html
    version = html.split('name="whatif_version" value="')[1].split('"')[0]
    assert web.post(
        f"/whatif/plans/{alpha.plan.id}/rules/apply", data={**data, "whatif_version": version}
    ).status_code in (302, 303)
    assert db.session.query(RoutingRule).filter_by(plan_id=alpha.plan.id, code="447").count() == 1


def test_bad_rule_values_answer_422(alpha, login):
    response = login(alpha.alpha_operator).post(
        f"/whatif/rules/{alpha.rule.id}/preview", data={**_edit(alpha, alpha.v2.client.id), "code": "4x"}
    )
    assert response.status_code == 422 and "Fix the rule first" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "user, status",
    [
        ("alpha_viewer", 403),  # a viewer of the plan's company: no previews, no apply
        ("beta_admin", 404),  # a reseller previews only its own objects
        ("sub_operator", 404),  # the sub-reseller sees Alpha's plan neither
    ],
)
def test_who_may_not_preview_or_apply(alpha, login, user, status):
    web = login(getattr(alpha, user))
    edit = _edit(alpha, alpha.v2.client.id)
    assert [
        web.post(f"/whatif/rules/{alpha.rule.id}/preview", data=edit).status_code,
        web.post(f"/whatif/rules/{alpha.rule.id}/preview", data={}).status_code,
        web.post(f"/whatif/rules/{alpha.rule.id}/apply", data=edit).status_code,
        web.post(f"/whatif/plans/{alpha.plan.id}/rules/preview", data=edit).status_code,
        web.get(f"/whatif/rate-tables/{alpha.v1.table.id}/import-preview").status_code,
        web.get(f"/whatif/plans/{alpha.plan.id}/import-preview").status_code,
    ] == [status] * 6


def _upload(text: str):
    return {"file": (io.BytesIO(text.encode()), "deck.csv"), "mode": "replace"}


def test_rate_deck_import_preview_then_apply(alpha, login):
    web = login(alpha.alpha_operator)
    url = f"/whatif/rate-tables/{alpha.v1.table.id}/import-preview"
    response = web.post(url, data=_upload("code,rate\n44,0.09\n"), content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "0.05 → 0.01" in html  # V1's margin on 44 (0.10 - 0.09)
    assert str(db.session.query(Rate).filter_by(rate_table_id=alpha.v1.table.id).one().rate) == "0.050000"
    token = html.split('name="token" value="')[1].split('"')[0]
    version = html.split('name="whatif_version" value="')[1].split('"')[0]
    apply_url = f"/whatif/rate-tables/{alpha.v1.table.id}/import-apply"
    assert web.post(apply_url, data={"token": token, "whatif_version": version}).status_code in (302, 303)
    db.session.expire_all()
    assert str(db.session.query(Rate).filter_by(rate_table_id=alpha.v1.table.id).one().rate) == "0.090000"
    # The kept file is gone: applying twice is not possible.
    again = web.post(apply_url, data={"token": token, "whatif_version": version})
    assert again.status_code == 422 and "no longer kept" in again.get_data(as_text=True)


def test_rate_import_apply_refused_when_rates_changed(alpha, login):
    web = login(alpha.alpha_operator)
    url = f"/whatif/rate-tables/{alpha.v1.table.id}/import-preview"
    html = web.post(url, data=_upload("code,rate\n44,0.09\n"), content_type="multipart/form-data").get_data(
        as_text=True
    )
    token = html.split('name="token" value="')[1].split('"')[0]
    version = html.split('name="whatif_version" value="')[1].split('"')[0]
    db.session.query(Rate).filter_by(rate_table_id=alpha.v1.table.id).update({"rate": 0.051})
    db.session.commit()
    apply_url = f"/whatif/rate-tables/{alpha.v1.table.id}/import-apply"
    response = web.post(apply_url, data={"token": token, "whatif_version": version})
    assert response.status_code == 409 and "nothing was imported" in response.get_data(as_text=True)


def test_rules_import_preview_lists_lost_destinations(alpha, login):
    web = login(alpha.alpha_operator)
    url = f"/whatif/plans/{alpha.plan.id}/import-preview"
    csv = "priority,code,type,terminator\n0,33,static_client,V2\n"
    html = web.post(url, data=_upload(csv), content_type="multipart/form-data").get_data(as_text=True)
    assert "lose every route" in html and 'data-code="44"' in html
    token = html.split('name="token" value="')[1].split('"')[0]
    version = html.split('name="whatif_version" value="')[1].split('"')[0]
    assert web.post(
        f"/whatif/plans/{alpha.plan.id}/import-apply", data={"token": token, "whatif_version": version}
    ).status_code in (302, 303)
    assert [r.code for r in db.session.query(RoutingRule).filter_by(plan_id=alpha.plan.id)] == ["33"]


def test_import_preview_reports_file_errors(alpha, login):
    web = login(alpha.alpha_operator)
    response = web.post(
        f"/whatif/rate-tables/{alpha.v1.table.id}/import-preview",
        data=_upload("code,rate\n44,abc\n"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and "line 2" in response.get_data(as_text=True)


def test_import_pages_link_to_the_routing_preview(alpha, login):
    plan_page = login(alpha.alpha_operator).get(f"/plans/{alpha.plan.id}/import").get_data(as_text=True)
    assert f"/whatif/plans/{alpha.plan.id}/import-preview" in plan_page
    rates_page = (
        login(alpha.alpha_operator).get(f"/rate-tables/{alpha.v1.table.id}/import").get_data(as_text=True)
    )
    assert f"/whatif/rate-tables/{alpha.v1.table.id}/import-preview" in rates_page
    viewer_page = login(alpha.alpha_viewer).get(f"/plans/{alpha.plan.id}/import").get_data(as_text=True)
    assert "import-preview" not in viewer_page
