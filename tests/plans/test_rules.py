"""The Routing Rules tab: the table, filters and paging, inline editing, the code name, expired rules."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from panel import manager
from panel.extensions import db
from panel.models import RoutingRule
from tests import factories
from tests.plans.conftest import audit_entries, future, past, rule_fields, stored_wrong, typed_form

HX = {"HX-Request": "true"}


def _rule(rule_id: int) -> RoutingRule | None:
    db.session.expire_all()
    return db.session.get(RoutingRule, rule_id)


def _count_rules(plan_id: int) -> int:
    return db.session.scalar(select(func.count()).where(RoutingRule.plan_id == plan_id))


def _rows(page: str) -> list[str]:
    """The rule tbodies of a rules table, in order."""
    parts = page.split('<tbody id="rule-')[1:]
    return [part[: part.index("</tbody>")] for part in parts]


# ---------------------------------------------------------------- the table


def test_rules_table_shows_every_column(world, login):
    """Priority, code, code name (from the deck), type, terminator, PM, parameters, capacity, stop hunt."""
    world.rule_uk.pm_value, world.rule_uk.pm_percent = Decimal("12"), True
    world.rule_uk.orig_tags, world.rule_uk.orig_tags_mode = "gold silver", "any"
    world.rule_uk.time_profile_id = world.office.id
    world.rule_uk.min_length, world.rule_uk.max_length, world.rule_uk.min_asr = 10, 12, Decimal("20")
    db.session.commit()
    page = login(world.tree.alpha_viewer).get(f"/plans/{world.plan.id}/").data.decode()
    for header in (
        "Priority",
        "Code",
        "Code name",
        "Type",
        "Terminator / policy",
        "PM",
        "Parameters",
        "Capacity",
    ):
        assert f">{header}" in page
    rows = _rows(page)
    assert len(rows) == 3
    # Ordered by code: 44, 447*, 4479.
    uk, mobile, dyn = rows
    assert "United Kingdom" in uk and "Carrier A" in uk and "12%" in uk and "Static client" in uk
    assert "orig tags gold silver (any)" in uk and "time Office hours" in uk and "length 10–12" in uk
    assert "ASR ≥ 20%" in uk
    assert "447*" in mobile and "UK Mobile" in mobile and "Carrier B / b1" in mobile and ">30<" in mobile
    assert "UK Mobile Vodafone" in dyn and "Cheapest" in dyn and "gold" in dyn and "stop" in dyn
    assert "3 found" in page


def test_expired_rule_is_red_and_says_it_is_not_used(world, login):
    """A rule past its expiration is marked expired (red) with the manager's note; a future one is not."""
    world.rule_uk.expires_at = past()
    world.rule_mobile.expires_at = future()
    db.session.commit()
    page = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/").data.decode()
    uk, mobile, _dyn = _rows(page)
    assert 'class="rule expired"' in uk and '<tr class="expired"' in uk
    assert "expired</strong> — no longer used; the Traffic Rules manager deletes it at its next run" in uk
    assert "expired" not in mobile.replace("expires", "") and f"expires {future():%Y-%m-%d}" in mobile


def test_filter_by_code_type_terminator_and_state(world, login):
    """The filter narrows by code prefix, type, terminator (a client includes its accounts), policy, state."""
    factories.rule(
        world.plan, "33", "static_client", terminator_client_id=world.carrier_b.id, expires_at=past()
    )
    factories.rule(world.plan, "", "did", priority=3)
    db.session.commit()
    client = login(world.tree.alpha_operator)

    def codes(query: str) -> list[str]:
        page = client.get(f"/plans/{world.plan.id}/?{query}").data.decode()
        return [row.split('<td class="code">')[1].split("<")[0] for row in _rows(page)]

    assert codes("code=447") == ["447*", "4479"]
    assert codes("code=44") == ["44", "447*", "4479"]
    assert codes("code=4") == ["44", "447*", "4479"]
    assert codes("code=5") == []
    assert codes("type=dynamic") == ["4479"]
    assert codes("type=did") == [""]
    assert codes(f"terminator=c{world.carrier_b.id}") == ["33", "447*"]
    assert codes(f"terminator=a{world.b1.id}") == ["447*"]
    assert codes(f"terminator=p{world.cheapest.id}") == ["4479"]
    assert codes("state=expired") == ["33"]
    assert "33" not in codes("state=active")
    page = client.get(f"/plans/{world.plan.id}/?code=9").data.decode()
    assert "No rule matches this filter." in page


def test_rules_are_paged_and_sorted(world, login, app):
    """The tab pages on the server, keeps the filter in the page links, and sorts by priority."""
    app.config["PAGE_SIZE"] = 2
    client = login(world.tree.alpha_operator)
    first = client.get(f"/plans/{world.plan.id}/").data.decode()
    assert len(_rows(first)) == 2 and "page 1 of 2" in first
    second = client.get(f"/plans/{world.plan.id}/?page=2").data.decode()
    assert len(_rows(second)) == 1 and "4479" in second
    by_priority = client.get(f"/plans/{world.plan.id}/?sort=priority").data.decode()
    assert [r.split('"', 1)[0] for r in _rows(by_priority)] == [
        str(world.rule_dyn.id),
        str(world.rule_mobile.id),
    ]
    filtered = client.get(f"/plans/{world.plan.id}/?code=44&page=1").data.decode()
    assert "code=44&amp;page=2" in filtered


def test_rules_tab_reads_names_without_a_query_per_row(world, login):
    """The number of queries of the tab does not grow with the number of rules shown (no N+1)."""
    world.rule_uk.time_profile_id = world.office.id
    db.session.commit()
    client = login(world.tree.alpha_operator)
    url = f"/plans/{world.plan.id}/"
    plan_id, carrier_b, a1, lcr, office = (
        world.plan.id,
        world.carrier_b.id,
        world.a1.id,
        world.simple_lcr.id,
        world.office.id,
    )

    def count_queries() -> int:
        seen = []

        def before(*_args):
            seen.append(1)

        db.session.expunge_all()  # the tests share the session with the requests: start each one cold
        event.listen(db.engine, "before_cursor_execute", before)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        return len(seen)

    few = count_queries()
    for i in range(20):
        db.session.add(
            RoutingRule(plan_id=plan_id, code=f"49{i}", type="static_client", terminator_client_id=carrier_b)
        )
        db.session.add(
            RoutingRule(plan_id=plan_id, code=f"39{i}", type="static_account", terminator_account_id=a1)
        )
        db.session.add(
            RoutingRule(plan_id=plan_id, code=f"29{i}", type="dynamic", policy_id=lcr, time_profile_id=office)
        )
    db.session.commit()
    assert count_queries() == few


def test_htmx_filter_answers_the_table_fragment(world, login):
    """Filtering with htmx answers only the rules table."""
    body = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/?code=447", headers=HX).data.decode()
    assert body.lstrip().startswith('<div id="rules-table">') and "<html" not in body


# ---------------------------------------------------------------- inline editing


def test_click_a_row_opens_it_for_editing_and_cancel_restores_it(world, login):
    """The edit fragment holds the rule's values; cancel answers the reading row."""
    client = login(world.tree.alpha_operator)
    world.rule_mobile.expires_at = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    world.rule_mobile.balancing = 50
    db.session.commit()
    page = client.get(f"/plans/{world.plan.id}/").data.decode()
    assert f'hx-get="/plans/rules/{world.rule_mobile.id}/edit"' in page
    edit = client.get(f"/plans/rules/{world.rule_mobile.id}/edit", headers=HX).data.decode()
    assert edit.lstrip().startswith(f'<tbody id="rule-{world.rule_mobile.id}" class="rule editing"')
    assert 'value="447*"' in edit and 'value="5"' in edit and 'value="30"' in edit
    assert f'<option selected value="{world.b1.id}">Carrier B / b1</option>' in edit
    assert 'value="2031-05-06T07:08"' in edit and 'value="50"' in edit
    assert "<details open>" in edit  # parameters are set, so they open with the row
    assert "Terminator tags" not in edit  # only dynamic rules have them
    cancel = client.get(f"/plans/rules/{world.rule_mobile.id}", headers=HX).data.decode()
    assert cancel.lstrip().startswith(f'<tbody id="rule-{world.rule_mobile.id}" class="rule">')
    assert "editing" not in cancel


def test_save_a_rule_inline(world, login):
    """Saving answers the reading row, announces when it takes effect, and writes an audit entry."""
    client = login(world.tree.alpha_operator)
    fields = [
        ("priority", "7", "priority", 7),
        ("code", "4478", "code", "4478"),
        ("type", "static_client", "type", "static_client"),
        ("terminator", str(world.carrier_b.id), "terminator_client_id", world.carrier_b.id),
        ("profit_margin", "0.5", "profit_margin", "0.5"),
        ("orig_tags", "vip", "orig_tags", "vip"),
        ("orig_tags_mode", "any", "orig_tags_mode", "any"),
        ("time_profile_id", str(world.office.id), "time_profile_id", world.office.id),
        ("expires_at", "2030-01-02T03:04", "expires_at", datetime(2030, 1, 2, 3, 4, tzinfo=UTC)),
        ("balancing", "33", "balancing", 33),
        ("min_length", "11", "min_length", 11),
        ("max_length", "13", "max_length", 13),
        ("min_asr", "25.5", "min_asr", Decimal("25.5")),
        ("min_acd", "1.5", "min_acd", Decimal("1.5")),
        ("capacity", "40", "capacity", 40),
        ("stop_hunt", "y", "stop_hunt", True),
    ]
    data = rule_fields(**typed_form(fields))
    response = client.post(f"/plans/rules/{world.rule_uk.id}", data=data, headers=HX)
    assert response.status_code == 200
    row = response.data.decode()
    assert row.lstrip().startswith(f'<tbody id="rule-{world.rule_uk.id}" class="rule">')
    assert "4478" in row and "UK Mobile" in row and "Carrier B" in row
    notice = json.loads(response.headers["HX-Trigger"])["ruleChanged"]
    assert "takes effect at the next run of the Traffic Rules manager" in notice
    rule = _rule(world.rule_uk.id)
    assert stored_wrong(rule, fields) == []
    entry = audit_entries("routingrule", "update")[-1]
    assert entry.object_id == rule.id and entry.before["code"] == "44" and entry.after["code"] == "4478"
    assert entry.company_id == world.tree.alpha.id


def test_note_names_the_next_run_when_the_manager_says(world, login, monkeypatch):
    """When the manager exposes next_run_at(), the note gives its time."""
    monkeypatch.setattr(
        manager, "next_run_at", lambda: datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC), raising=False
    )
    data = rule_fields(code="44", terminator=str(world.carrier_a.id))
    response = login(world.tree.alpha_operator).post(
        f"/plans/rules/{world.rule_uk.id}", data=data, headers=HX
    )
    assert "(12:00:10 UTC)" in json.loads(response.headers["HX-Trigger"])["ruleChanged"]


BAD_VALUES = [
    ({"code": "44a"}, "is not a code: use digits, and * for any run of digits."),
    ({"code": ""}, "Give a code (digits, * for any run of digits)."),
    ({"terminator": ""}, "A static_client rule needs a terminator client."),
    ({"priority": "first"}, "&#39;first&#39; is not a whole number."),
    ({"profit_margin": "10 USD"}, "is not a profit margin"),
    ({"orig_tags_mode": "most"}, "Not a valid choice"),
    ({"term_tags": "gold"}, "Only dynamic rules have terminator tags."),
    ({"expires_at": "tomorrow"}, "is not a date and time: write YYYY-MM-DD HH:MM (UTC)."),
    ({"min_length": "12", "max_length": "10"}, "The maximum length is below the minimum length."),
    ({"min_asr": "101"}, "Must be between 0 and 100."),
    ({"capacity": "-1"}, "Must be between 0 and 1,000,000."),
    ({"orig_tags": "a/b"}, "is not a tag"),
]


def test_bad_value_keeps_the_row_in_edit_mode(world, login):
    """A validation error answers 422 with the edit row, message and typed values; nothing is saved."""
    client = login(world.tree.alpha_operator)
    for changes, message in BAD_VALUES:
        data = rule_fields(code="4470", priority="9", terminator=str(world.carrier_a.id))
        data.update(changes)
        response = client.post(f"/plans/rules/{world.rule_uk.id}", data=data, headers=HX)
        assert response.status_code == 422, changes
        row = response.data.decode()
        assert f'<tbody id="rule-{world.rule_uk.id}" class="rule editing"' in row
        assert message in row, changes
        assert f'value="{changes.get("priority", "9")}"' in row
    rule = _rule(world.rule_uk.id)
    assert (rule.code, rule.priority) == ("44", 10)
    assert not audit_entries("routingrule", "update")


def test_terminator_outside_the_pickers_is_refused(world, login):
    """A client the user cannot see (Beta's) or a policy of a sibling cannot be posted."""
    client = login(world.tree.alpha_operator)
    data = rule_fields(code="44", terminator=str(world.beta_vendor.id))
    response = client.post(f"/plans/rules/{world.rule_uk.id}", data=data, headers=HX)
    assert (
        response.status_code == 422 and "Choose a terminator client from the list." in response.data.decode()
    )
    data = rule_fields(code="44", type="dynamic", terminator=str(world.beta_policy.id))
    response = client.post(f"/plans/rules/{world.rule_uk.id}", data=data, headers=HX)
    assert response.status_code == 422 and "Choose a routing policy from the list." in response.data.decode()


def test_pickers_offer_what_the_user_may_use(world, login):
    """Terminator-enabled clients and accounts the user sees; policies and profiles of its tree and up."""
    client = login(world.tree.alpha_operator)

    def picker(rule_type: str) -> str:
        edit = client.get(
            f"/plans/{world.plan.id}/rules/new?refresh=1&type={rule_type}", headers=HX
        ).data.decode()
        select_html = edit[edit.index('name="terminator"') :]
        return select_html[: select_html.index("</select>")]

    clients = picker("static_client")
    assert "Carrier A" in clients and "Carrier B" in clients and "Sub Vendor" in clients
    assert "Beta Vendor" not in clients and "Root Vendor" not in clients
    accounts = picker("static_account")
    assert "Carrier A / a1" in accounts and "Carrier B / b1" in accounts
    assert "a2" not in accounts  # not terminator-enabled
    policies = picker("dynamic")
    assert "Cheapest" in policies and "Simple LCR" in policies and "Beta Policy" not in policies
    edit = client.get(f"/plans/{world.plan.id}/rules/new", headers=HX).data.decode()
    assert "Office hours" in edit


def test_changing_the_type_redraws_the_row(world, login):
    """DID rules have no code and no terminator; terminator tags appear only for dynamic rules."""
    client = login(world.tree.alpha_operator)
    base = f"/plans/rules/{world.rule_uk.id}/edit?refresh=1&code=44&priority=10&orig_tags=vip"
    did = client.get(base + "&type=did", headers=HX).data.decode()
    assert 'name="code"' not in did and 'name="terminator"' not in did and "DID list" in did
    assert 'value="vip"' in did  # what was typed is kept
    dynamic = client.get(base + "&type=dynamic", headers=HX).data.decode()
    assert 'name="term_tags"' in dynamic and "Cheapest" in dynamic
    static = client.get(base + "&type=static_client", headers=HX).data.decode()
    assert 'name="term_tags"' not in static


NEW_RULES = [
    ("static_client", "carrier_a", {}, lambda r, w: r.terminator_client_id == w.carrier_a.id),
    ("static_account", "a1", {}, lambda r, w: r.terminator_account_id == w.a1.id),
    (
        "dynamic",
        "simple_lcr",
        {"term_tags": "gold, silver"},
        lambda r, w: (r.policy_id, r.term_tags) == (w.simple_lcr.id, "gold silver"),
    ),
    ("did", None, {"code": ""}, lambda r, w: r.code == "" and r.terminator_client_id is None),
]


def test_add_rule_of_every_type(world, login):
    """Add rule: a new row in edit mode, saved as a rule of the plan with an audit entry."""
    client = login(world.tree.alpha_operator)
    new_row = client.get(f"/plans/{world.plan.id}/rules/new", headers=HX).data.decode()
    # The plan's rules use priorities 10, 5 and 1 once each: the new row offers the lowest of them.
    assert '<tbody id="rule-new-' in new_row and 'name="priority" size="6" type="text" value="1"' in new_row
    for rule_type, terminator, extra, check in NEW_RULES:
        data = rule_fields(
            code="49", type=rule_type, terminator=str(getattr(world, terminator).id) if terminator else ""
        )
        data.update(extra)
        response = client.post(f"/plans/{world.plan.id}/rules", data=data, headers=HX)
        assert response.status_code == 200, response.data.decode()
        rule = db.session.scalars(select(RoutingRule).order_by(RoutingRule.id.desc())).first()
        assert rule.plan_id == world.plan.id and rule.type == rule_type and check(rule, world)
        assert f'<tbody id="rule-{rule.id}" class="rule new">' in response.data.decode()
        assert audit_entries("routingrule", "create")[-1].object_id == rule.id
    assert _count_rules(world.plan.id) == 3 + len(NEW_RULES)


def test_did_rule_may_not_have_a_code_or_terminator(world, login):
    """A DID rule posted with a code is refused: DID rules match the DID list."""
    data = rule_fields(code="44", type="did")
    response = login(world.tree.alpha_operator).post(f"/plans/{world.plan.id}/rules", data=data, headers=HX)
    # The DID row has no code input, but a crafted post is still refused.
    assert response.status_code == 422
    assert "A DID rule has no code" in response.data.decode()
    assert db.session.scalar(select(func.count()).where(RoutingRule.plan_id == world.plan.id)) == 3


def test_new_rule_error_keeps_the_new_row(world, login):
    """A new rule with an error stays a new row (not saved) with its message."""
    data = rule_fields(code="x", terminator=str(world.carrier_a.id))
    response = login(world.tree.alpha_operator).post(f"/plans/{world.plan.id}/rules", data=data, headers=HX)
    assert response.status_code == 422
    assert '<tbody id="rule-new-' in response.data.decode()
    assert db.session.scalar(select(func.count()).where(RoutingRule.plan_id == world.plan.id)) == 3


def test_delete_rule(world, login):
    """Deleting a rule removes it, records the rule as it was, and announces when it takes effect."""
    response = login(world.tree.alpha_operator).post(
        f"/plans/rules/{world.rule_mobile.id}/delete", headers=HX
    )
    assert response.status_code == 200
    assert "Rule deleted" in json.loads(response.headers["HX-Trigger"])["ruleChanged"]
    assert _rule(world.rule_mobile.id) is None
    entry = audit_entries("routingrule", "delete")[-1]
    assert entry.object_id == world.rule_mobile.id and entry.before["code"] == "447*"


def test_rule_of_another_company_answers_404(world, login):
    """Alpha cannot open, save or delete a rule of Beta's plan."""
    client = login(world.tree.alpha_operator)
    rule_id = world.beta_rule.id
    assert client.get(f"/plans/rules/{rule_id}/edit", headers=HX).status_code == 404
    assert client.post(f"/plans/rules/{rule_id}", data=rule_fields(code="1"), headers=HX).status_code == 404
    assert client.post(f"/plans/rules/{rule_id}/delete", headers=HX).status_code == 404
    assert (
        client.post(f"/plans/{world.beta_plan.id}/rules", data=rule_fields(code="1"), headers=HX).status_code
        == 404
    )
    assert _rule(rule_id).code == "33"


def test_viewer_rows_are_not_editable(world, login):
    """A viewer's rows carry no editor and no buttons."""
    page = login(world.tree.alpha_viewer).get(f"/plans/{world.plan.id}/").data.decode()
    assert "/edit" not in "".join(_rows(page)) and ">Add rule<" not in page and ">Delete<" not in page


# ---------------------------------------------------------------- code name


CODE_NAMES = [
    ("44", "United Kingdom"),
    ("4420", "United Kingdom"),
    ("447", "UK Mobile"),
    ("4479123", "UK Mobile Vodafone"),
    ("447*", "UK Mobile"),
    ("44*9", "United Kingdom"),
    ("33", '<span class="muted">—</span>'),
    ("4x", '<span class="error">not a code</span>'),
]


def test_code_name_is_the_longest_deck_prefix(world, login):
    """The code name is the longest deck code that prefixes the rule code (digits before a `*`)."""
    client = login(world.tree.alpha_operator)
    for code, name in CODE_NAMES:
        response = client.get(f"/plans/{world.plan.id}/code-name?code={code}", headers=HX)
        assert response.data.decode() == name, code


def test_code_name_without_deck(world, login):
    """A plan without a code deck says so."""
    plan = factories.plan(world.tree.alpha, "No Deck")
    db.session.commit()
    response = login(world.tree.alpha_operator).get(f"/plans/{plan.id}/code-name?code=44", headers=HX)
    assert "no code deck" in response.data.decode()


def test_deep_pages_match_the_plain_order(world, login, app, monkeypatch):
    """Numbered pages and keyset cursors (Next from the first page, Previous from the last) hold exactly the
    rules the plain order puts there, every sort."""
    import html
    import re

    from panel import paging

    app.config["PAGE_SIZE"] = 4
    for i in range(30):
        factories.rule(
            world.plan,
            f"49{i % 4}",
            "static_client",
            priority=(i * 7) % 5,
            terminator_client_id=world.carrier_a.id,
        )
    factories.rule(world.plan, "", "did", priority=2)
    db.session.commit()
    rules = list(db.session.scalars(select(RoutingRule).where(RoutingRule.plan_id == world.plan.id)))
    orders = {
        "code": sorted(rules, key=lambda r: (r.code, r.priority, r.id)),
        "-code": sorted(sorted(rules, key=lambda r: (r.priority, r.id)), key=lambda r: r.code, reverse=True),
        "priority": sorted(rules, key=lambda r: (r.priority, r.code, r.id)),
        "-priority": sorted(
            sorted(rules, key=lambda r: (r.code, r.id)), key=lambda r: r.priority, reverse=True
        ),
    }
    client = login(world.tree.alpha_operator)
    for sort, expected in orders.items():
        shown = []
        for page in range(1, 11):
            body = client.get(f"/plans/{world.plan.id}/?sort={sort}&page={page}", headers=HX).data.decode()
            shown += [int(row.split('"', 1)[0]) for row in _rows(body)]
        assert shown == [r.id for r in expected], sort
    monkeypatch.setattr(paging, "COUNT_LIMIT", 5)  # "large": the pager links cursors
    for sort, expected in orders.items():
        for start, rel in (("", "next"), ("&last=1", "prev")):
            shown, url = [], f"/plans/{world.plan.id}/?sort={sort}{start}"
            for _ in range(12):
                body = client.get(url, headers=HX).data.decode()
                ids = [int(row.split('"', 1)[0]) for row in _rows(body)]
                shown = shown + ids if rel == "next" else ids + shown
                link = re.search(rf'href="([^"]*)" rel="{rel}"', body)
                if link is None:
                    break
                url = html.unescape(link.group(1))
            assert shown == [r.id for r in expected], (sort, rel)
    filtered = client.get(f"/plans/{world.plan.id}/?code=491&page=2", headers=HX).data.decode()
    assert [int(r.split('"', 1)[0]) for r in _rows(filtered)] == [
        r.id for r in orders["code"] if r.code == "491"
    ][4:8]


# ---------------------------------------------------------------- expiry you can see coming (issue 14.1)


def _soon(**delta) -> datetime:
    """A moment ahead of now (UTC)."""
    from datetime import timedelta

    return datetime.now(UTC) + timedelta(**delta)


def test_rules_expiring_within_the_horizon_are_marked_amber(world, login):
    """Within 7 days: "expires in 3 d" (amber); beyond: no mark; past: red "expired"."""
    world.rule_uk.expires_at = _soon(days=3, hours=2)
    world.rule_mobile.expires_at = _soon(days=30)
    world.rule_dyn.expires_at = past()
    db.session.commit()
    page = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/").data.decode()
    rows = {row.split('"', 1)[0]: row for row in _rows(page)}
    uk, mobile, dyn = (rows[str(r.id)] for r in (world.rule_uk, world.rule_mobile, world.rule_dyn))
    assert 'class="expiry soon"' in uk and "<strong>expires in 3 d</strong>" in uk
    assert 'class="expiry"' in mobile and "expires in" not in mobile.split('class="expiry"')[1]
    assert 'class="expiry expired"' in dyn and "<strong>expired</strong>" in dyn


def test_hours_and_minutes_left_are_said_so(world, login):
    """Under two days the mark counts hours, under an hour minutes."""
    world.rule_uk.expires_at = _soon(hours=5, minutes=30)
    world.rule_mobile.expires_at = _soon(minutes=12, seconds=30)
    db.session.commit()
    page = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/").data.decode()
    assert "expires in 5 h" in page and "expires in 12 min" in page


@pytest.mark.parametrize("app_config", [{"EXPIRY_HORIZON_DAYS": 2}])
def test_the_horizon_is_a_setting(world, login):
    """With a 2-day horizon a rule expiring in 3 days is not marked yet."""
    world.rule_uk.expires_at = _soon(days=3)
    world.rule_mobile.expires_at = _soon(days=1, hours=12, minutes=30)
    db.session.commit()
    page = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/").data.decode()
    assert "expires in 2 d" not in page and "expires in 36 h" in page


def test_expiring_within_filter(world, login):
    """The filter keeps rules expiring within the days chosen, not expired ones nor later ones."""
    world.rule_uk.expires_at = _soon(days=2)
    world.rule_mobile.expires_at = _soon(days=20)
    world.rule_dyn.expires_at = past()
    db.session.commit()
    client = login(world.tree.alpha_operator)
    page = client.get(f"/plans/{world.plan.id}/").data.decode()
    assert '<option value="7">expiring within 7 days</option>' in page
    within_7 = client.get(f"/plans/{world.plan.id}/?expiring=7", headers=HX).data.decode()
    assert [r.split('"', 1)[0] for r in _rows(within_7)] == [str(world.rule_uk.id)]
    within_30 = client.get(f"/plans/{world.plan.id}/?expiring=30", headers=HX).data.decode()
    assert len(_rows(within_30)) == 2
    assert len(_rows(client.get(f"/plans/{world.plan.id}/?expiring=bogus", headers=HX).data.decode())) == 3


def test_marks_refresh_out_of_band_as_the_clock_passes(world, login):
    """The tab polls the marks of its rules; the answer swaps each mark in place, scoped to the plan."""
    world.rule_uk.expires_at = _soon(days=2)
    world.rule_mobile.expires_at = past()
    db.session.commit()
    client = login(world.tree.alpha_operator)
    page = client.get(f"/plans/{world.plan.id}/").data.decode()
    # The poll sends the `watch` input of every mark on the tab (an inline-added rule's too).
    assert f'hx-get="/plans/{world.plan.id}/expiry-marks"' in page and 'hx-trigger="every 60s"' in page
    assert 'hx-include="#rules-table input[name=watch]"' in page
    ids = sorted([world.rule_uk.id, world.rule_mobile.id])
    for rule_id in ids:
        assert f'<input type="hidden" name="watch" value="{rule_id}"' in page
    poll = f"/plans/{world.plan.id}/expiry-marks?" + "&".join(f"watch={i}" for i in ids)
    marks = client.get(poll + f"&watch={world.beta_rule.id}", headers=HX).data.decode()
    assert f'id="expiry-{world.rule_uk.id}" class="expiry soon" hx-swap-oob="true"' in marks
    assert f'id="expiry-{world.rule_mobile.id}" class="expiry expired" hx-swap-oob="true"' in marks
    assert f"expiry-{world.beta_rule.id}" not in marks  # another plan's rule is not answered
    # The clock passes: the rule that was amber is now expired.
    world.rule_uk.expires_at = past()
    db.session.commit()
    marks = client.get(poll, headers=HX).data.decode()
    assert f'id="expiry-{world.rule_uk.id}" class="expiry expired"' in marks
    # Another company's plan answers 404.
    assert client.get(f"/plans/{world.beta_plan.id}/expiry-marks?watch=1").status_code == 404


def test_the_editor_shows_the_expiry_mark(world, login):
    """The inline editor keeps the mark (same id, so the refresh reaches it there too)."""
    world.rule_uk.expires_at = _soon(days=4, hours=1)
    db.session.commit()
    row = login(world.tree.alpha_operator).get(f"/plans/rules/{world.rule_uk.id}/edit", headers=HX)
    html = row.data.decode()
    assert f'id="expiry-{world.rule_uk.id}" class="expiry soon"' in html and "expires in 4 d" in html


# ---------------------------------------------------------------- the tab does not shift (issue 14.8)


def test_new_rule_priority_is_the_plans_most_common(world, login):
    """A plan whose rules mostly use 10 offers 10 for a new rule."""
    for code in ("33", "34"):
        factories.rule(world.plan, code, priority=10, terminator_client_id=world.carrier_a.id)
    db.session.commit()
    row = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/rules/new", headers=HX).data.decode()
    assert 'name="priority" size="6" type="text" value="10"' in row
    empty = factories.plan(world.tree.alpha, "Empty")
    db.session.commit()
    row = login(world.tree.alpha_operator).get(f"/plans/{empty.id}/rules/new", headers=HX).data.decode()
    assert 'name="priority" size="6" type="text" value="0"' in row


def test_add_and_delete_update_the_found_count_out_of_band(world, login):
    """After an add or a delete the pager's "N found" is swapped, counted under the page's filter."""
    client = login(world.tree.alpha_operator)
    tab = f"http://localhost/plans/{world.plan.id}/"
    page = client.get(f"/plans/{world.plan.id}/").data.decode()
    assert '<span class="muted" id="rules-table-found">3 found' in page
    data = rule_fields(priority="10", code="33", type="static_client", terminator=str(world.carrier_a.id))
    added = client.post(
        f"/plans/{world.plan.id}/rules", data=data, headers={**HX, "HX-Current-URL": tab}
    ).data.decode()
    assert '<template><span class="muted" id="rules-table-found" hx-swap-oob="true">4 found</span>' in (
        added.replace("\n", "")
    )
    assert 'class="badge new"' in added
    # Under a filter the count is the filter's.
    deleted = client.post(
        f"/plans/rules/{world.rule_uk.id}/delete", headers={**HX, "HX-Current-URL": tab + "?code=44"}
    ).data.decode()
    assert 'id="rules-table-found" hx-swap-oob="true">2 found</span>' in deleted  # 447*, 4479 remain
    # Not from the rules tab (the single rule page): no count to update.
    other = client.post(
        f"/plans/rules/{world.rule_dyn.id}/delete",
        headers={**HX, "HX-Current-URL": f"http://localhost/plans/rules/{world.rule_dyn.id}"},
    )
    assert other.status_code == 200 and "found" not in other.data.decode()


def test_sorting_is_an_htmx_swap_that_keeps_the_url(world, login):
    """The column headers are boosted into the table with the URL pushed; the table says its sort."""
    client = login(world.tree.alpha_operator)
    page = client.get(f"/plans/{world.plan.id}/?sort=-priority").data.decode()
    head = page[page.index('<thead id="rules-head"') : page.index("</thead>")]
    assert 'hx-boost="true"' in head and 'hx-push-url="true"' in head and 'hx-target="#rules-table"' in head
    assert 'data-sort="-priority"' in page
    fragment = client.get(f"/plans/{world.plan.id}/?sort=-priority", headers=HX).data.decode()
    assert [r.split('"', 1)[0] for r in _rows(fragment)] == [
        str(world.rule_uk.id),
        str(world.rule_mobile.id),
        str(world.rule_dyn.id),
    ]
