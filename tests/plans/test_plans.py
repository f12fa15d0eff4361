"""Routing plans: the list and its searches, the plan form, copy, delete, limits, the additional plan."""

import pytest
from sqlalchemy import func, select

from panel.extensions import db
from panel.models import AuditEntry, RoutingPlan, RoutingRule
from tests import factories
from tests.plans.conftest import audit_entries, stored_wrong, typed_form

PLAN_FORM = {
    "name": "New Plan",
    "additional_plan_id": "",
    "code_deck_id": "",
    "loop_protection": "y",
    "rules_hunting": "longest_only",
    "dr_order": "code_appeal",
    "match_increments": "disabled",
    "profit_margin": "",
    "vendor_limit": "",
    "tags": "",
    "notes": "",
}


def _form(world, **overrides) -> dict:
    data = {**PLAN_FORM, "company_id": str(world.tree.alpha.id)}
    data.update(overrides)
    return data


def _plan(name: str) -> RoutingPlan | None:
    return db.session.scalar(select(RoutingPlan).where(RoutingPlan.name == name))


# ---------------------------------------------------------------- list


def test_list_shows_own_plans_with_columns(world, login):
    """The list shows ID, name, reseller, code deck, hunting, DR order and rule count of plans in scope."""
    factories.plan(world.tree.sub, "Sub Plan")
    db.session.commit()
    page = login(world.tree.alpha_operator).get("/plans/").data.decode()
    for header in ("ID", "Name", "Reseller", "Code Deck", "Rules Hunting", "DR Order", "Rules"):
        assert f">{header}" in page
    assert (
        "Alpha Main" in page and "Alpha deck" in page and "Longest only" in page and "By code/appeal" in page
    )
    assert "Sub Plan" in page  # a descendant's plan is in scope
    assert "Beta Plan" not in page  # a sibling's plan is not
    row = page[page.index(">Alpha Main</a>") :]
    assert '<td class="num">3</td>' in row[: row.index("</tr>")]


def test_plans_a_company_may_only_use_are_not_listed_nor_editable(world, login):
    """A plan of the operator usable by Alpha (origination limits) is not in Alpha's list and answers 404."""
    root_plan = factories.plan(world.tree.root, "Operator Wholesale")
    root_plan.origination_limits = [world.tree.alpha]
    db.session.commit()
    client = login(world.tree.alpha_admin)
    assert ">Operator Wholesale</a>" not in client.get("/plans/").data.decode()
    for url in (f"/plans/{root_plan.id}/", f"/plans/{root_plan.id}/edit", f"/plans/{root_plan.id}/export"):
        assert client.get(url).status_code == 404
    assert client.post(f"/plans/{root_plan.id}/delete").status_code == 404
    assert _plan("Operator Wholesale") is not None
    # But Alpha may pick it as an additional plan.
    assert "Operator Wholesale" in client.get("/plans/new").data.decode()


def test_quick_search_and_advanced_search(world, login):
    """Quick search by name; advanced search by reseller, allowed for, code deck, tag, additional plan and
    terminator client used by any rule."""
    other = factories.plan(
        world.tree.alpha, "Premium Route", tags="gold premium", additional_plan_id=world.plan.id
    )
    other.origination_limits = [world.tree.sub]
    factories.rule(other, "49", "static_account", terminator_account_id=world.a1.id)
    sub_plan = factories.plan(world.tree.sub, "Sub Plan")
    db.session.commit()
    client = login(world.tree.alpha_operator)

    def names(query: str) -> set[str]:
        page = client.get(f"/plans/?{query}").data.decode()
        return {n for n in ("Alpha Main", "Premium Route", "Sub Plan") if f">{n}</a>" in page}

    assert names("q=premium") == {"Premium Route"}
    assert names("q=main") == {"Alpha Main"}
    assert names(f"q={other.id}") >= {"Premium Route"}
    assert names(f"company_id={world.tree.sub.id}") == {"Sub Plan"}
    assert names(f"allowed_for={world.tree.sub.id}") == {"Premium Route"}
    assert names(f"code_deck_id={world.deck.id}") == {"Alpha Main"}
    assert names("tag=gold") == {"Premium Route"}
    assert names("tag=gol") == set()
    assert names(f"additional_plan_id={world.plan.id}") == {"Premium Route"}
    # Carrier A is used by Alpha Main (static client) and Premium Route (its account a1).
    assert names(f"term_client_id={world.carrier_a.id}") == {"Alpha Main", "Premium Route"}
    assert names(f"term_client_id={world.carrier_b.id}") == {"Alpha Main"}
    assert sub_plan.id


def test_list_paging_and_sorting(world, login, app):
    """The list pages on the server and sorts by the rule count."""
    app.config["PAGE_SIZE"] = 2
    factories.plan(world.tree.alpha, "Aardvark")
    factories.plan(world.tree.alpha, "Zebra")
    db.session.commit()
    client = login(world.tree.alpha_operator)
    first = client.get("/plans/").data.decode()
    assert ">Aardvark</a>" in first and ">Alpha Main</a>" in first and ">Zebra</a>" not in first
    assert "page 1 of 2" in first
    assert ">Zebra</a>" in client.get("/plans/?page=2").data.decode()
    by_rules = client.get("/plans/?sort=-rules").data.decode()
    assert ">Alpha Main</a>" in by_rules and ">Zebra</a>" not in by_rules


def test_htmx_search_answers_the_table_fragment(world, login):
    """An htmx search answers only the table, so the page updates in place."""
    response = login(world.tree.alpha_operator).get("/plans/?q=alpha", headers={"HX-Request": "true"})
    body = response.data.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="plans-table">')
    assert "<html" not in body and "HX-Request" in response.headers["Vary"]


# ---------------------------------------------------------------- create and update


def test_new_plan_form_has_the_seed_defaults(world, login):
    """Loop protection on, longest only, by code/appeal, match increments disabled; limits shown."""
    page = login(world.tree.alpha_operator).get("/plans/new").data.decode()
    assert (
        'id="loop_protection"' in page and "checked" in page[page.index('id="loop_protection"') - 80 :][:200]
    )
    selected = ("longest_only", "code_appeal", "disabled")
    assert [value for value in selected if f'<option selected value="{value}">' not in page] == []
    assert 'name="origination_limits"' in page and 'name="termination_limits"' in page


def test_create_plan_with_every_field(world, login):
    """Creating a plan stores every field, records an audit entry and opens its rules tab."""
    client = login(world.tree.alpha_operator)
    fields = [
        ("name", "  Wholesale  ", "name", "Wholesale"),
        ("code_deck_id", str(world.deck.id), "code_deck_id", world.deck.id),
        ("additional_plan_id", str(world.plan.id), "additional_plan_id", world.plan.id),
        ("rules_hunting", "all_matching", "rules_hunting", "all_matching"),
        ("dr_order", "appeal_code", "dr_order", "appeal_code"),
        ("match_increments", "dynamic_static", "match_increments", "dynamic_static"),
        ("profit_margin", "16%", "profit_margin", "16%"),
        ("vendor_limit", "2", "vendor_limit", 2),
        ("tags", "gold, premium gold", "tags", "gold premium"),
        ("notes", "for resellers", "notes", "for resellers"),
    ]
    limits = [str(world.tree.alpha.id), str(world.tree.sub.id)]
    data = _form(world, **typed_form(fields), origination_limits=limits[1:], termination_limits=limits)
    data.pop("loop_protection")
    response = client.post("/plans/new", data=data)
    assert response.status_code == 303
    plan = _plan("Wholesale")
    assert response.headers["Location"].endswith(f"/plans/{plan.id}/")
    assert plan.company_id == world.tree.alpha.id
    assert stored_wrong(plan, fields) == []
    assert [c.name for c in plan.origination_limits] == ["Alpha Sub"]
    assert [c.name for c in plan.termination_limits] == ["Alpha", "Alpha Sub"]
    assert plan.loop_protection is False
    entry = audit_entries("routingplan", "create")[-1]
    assert entry.object_id == plan.id and entry.after["origination_limits"] == ["Alpha Sub"]
    assert entry.username == "alpha_operator"


MARGINS = [
    ("16%", "16", True),
    ("5", "5", False),
    ("0.25", "0.25", False),
    ("12.5 %", "12.5", True),
    ("", None, False),
]


def test_profit_margin_accepts_percent_or_amount(world, login):
    """`16%` is a percent of the customer rate, `5` an amount per minute, empty is none."""
    client = login(world.tree.alpha_operator)
    for number, (typed, value, percent) in enumerate(MARGINS):
        response = client.post("/plans/new", data=_form(world, name=f"Plan {number}", profit_margin=typed))
        assert response.status_code == 303, typed
        plan = _plan(f"Plan {number}")
        assert (None if plan.pm_value is None else format(plan.pm_value.normalize(), "f")) == value
        assert plan.pm_percent is percent


def test_profit_margin_rejects_anything_else(world, login):
    """Anything but a percent or an amount is refused with a message, and nothing is created."""
    client = login(world.tree.alpha_operator)
    for typed in ["abc", "16%%", "-5", "5$", "%16", "1e3", "150%", "5,5", "0.0000001"]:
        response = client.post("/plans/new", data=_form(world, profit_margin=typed))
        assert response.status_code == 422, typed
        page = response.data.decode()
        assert "The plan was not saved" in page
        assert "not a profit margin" in page or "exceed" in page or "decimals" in page, typed
    assert _plan("New Plan") is None


def test_bad_plan_fields_are_reported(world, login):
    """Missing or duplicate name, bad vendor limit, bad tags: each gets its message; typed values stay."""
    client = login(world.tree.alpha_operator)
    page = client.post("/plans/new", data=_form(world, name="")).data.decode()
    assert "Give the plan a name." in page
    page = client.post("/plans/new", data=_form(world, name="Alpha Main")).data.decode()
    assert "already has a routing plan named Alpha Main" in page
    response = client.post("/plans/new", data=_form(world, vendor_limit="0", tags="ok bad/tag", notes="kept"))
    page = response.data.decode()
    assert response.status_code == 422
    assert "Must be between 1 and 1,000." in page and "is not a tag" in page and "kept" in page
    assert db.session.scalar(select(func.count()).select_from(RoutingPlan)) == 2


def test_same_name_is_allowed_in_another_company(world, login):
    """Plan names are unique within a company only."""
    response = login(world.tree.alpha_operator).post(
        "/plans/new", data=_form(world, name="Alpha Main", company_id=str(world.tree.sub.id))
    )
    assert response.status_code == 303


def test_create_for_a_company_out_of_scope_is_refused(world, login):
    """The reseller picker offers only the user's companies; another company's id is refused."""
    client = login(world.tree.alpha_operator)
    page = client.get("/plans/new").data.decode()
    assert "Beta" not in page[page.index('name="company_id"') :][:600]
    response = client.post("/plans/new", data=_form(world, company_id=str(world.tree.beta.id)))
    assert response.status_code == 422 and _plan("New Plan") is None


def test_origination_limits_must_be_in_the_owners_tree(world, login):
    """A plan of Alpha Sub may not be limited to Alpha (its parent)."""
    response = login(world.tree.alpha_operator).post(
        "/plans/new",
        data=_form(world, company_id=str(world.tree.sub.id), origination_limits=[str(world.tree.alpha.id)]),
    )
    assert response.status_code == 422
    assert "Not in the owner&#39;s company tree: Alpha." in response.data.decode()


def test_update_plan_tab(world, login):
    """The Routing Plan tab shows the values and saves changes with a before/after audit entry."""
    client = login(world.tree.alpha_operator)
    page = client.get(f"/plans/{world.plan.id}/edit").data.decode()
    assert 'value="Alpha Main"' in page and "Routing Plan" in page
    data = _form(world, name="Alpha Main 2", code_deck_id=str(world.deck.id), profit_margin="5", tags="x")
    response = client.post(f"/plans/{world.plan.id}/edit", data=data)
    assert response.status_code == 303
    db.session.expire_all()
    plan = db.session.get(RoutingPlan, world.plan.id)
    assert plan.name == "Alpha Main 2" and plan.profit_margin == "5" and plan.tags == "x"
    entry = audit_entries("routingplan", "update")[-1]
    assert entry.before["name"] == "Alpha Main" and entry.after["name"] == "Alpha Main 2"
    follow = client.get(response.headers["Location"]).data.decode()
    assert "next run of the Traffic Rules manager" in follow


def test_viewer_sees_the_plan_tab_read_only(world, login):
    """A viewer sees the plan's values with disabled inputs and no Save button."""
    page = login(world.tree.alpha_viewer).get(f"/plans/{world.plan.id}/edit").data.decode()
    assert 'value="Alpha Main"' in page and "<fieldset disabled>" in page
    assert "read-only access" in page and ">Save<" not in page


# ---------------------------------------------------------------- limits visibility


def test_limits_shown_on_create_and_for_owners_with_companies_below(world, login):
    """Shown on create and when the owner has a sub-reseller or manager; hidden for a leaf owner."""
    client = login(world.tree.alpha_operator)
    alpha_page = client.get(f"/plans/{world.plan.id}/edit").data.decode()
    assert 'name="origination_limits"' in alpha_page and 'name="termination_limits"' in alpha_page
    leaf_plan = factories.plan(world.tree.sub, "Leaf Plan")
    db.session.commit()
    leaf_page = client.get(f"/plans/{leaf_plan.id}/edit").data.decode()
    assert 'name="origination_limits"' not in leaf_page and 'name="termination_limits"' not in leaf_page
    assert "has no company below it" in leaf_page
    # A manager under Alpha Sub makes them appear.
    factories.company("Sub Manager", "manager", world.tree.sub)
    db.session.commit()
    page = client.get(f"/plans/{leaf_plan.id}/edit").data.decode()
    assert 'name="origination_limits"' in page


def test_hidden_limits_are_kept_on_save(world, login):
    """Saving a plan whose limits are hidden leaves its limits as they were."""
    leaf_plan = factories.plan(world.tree.sub, "Leaf Plan")
    leaf_plan.termination_limits = [world.tree.sub]
    db.session.commit()
    response = login(world.tree.alpha_operator).post(
        f"/plans/{leaf_plan.id}/edit", data=_form(world, name="Leaf Plan", company_id=str(world.tree.sub.id))
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert [c.name for c in db.session.get(RoutingPlan, leaf_plan.id).termination_limits] == ["Alpha Sub"]


# ---------------------------------------------------------------- additional plan


def test_additional_plan_may_not_be_the_plan_itself(world, login):
    """The plan itself is not offered, and posting it is refused."""
    client = login(world.tree.alpha_operator)
    page = client.get(f"/plans/{world.plan.id}/edit").data.decode()
    picker = page[page.index('name="additional_plan_id"') :]
    assert "Alpha Main" not in picker[: picker.index("</select>")]
    data = _form(world, name="Alpha Main", additional_plan_id=str(world.plan.id))
    response = client.post(f"/plans/{world.plan.id}/edit", data=data)
    assert response.status_code == 422


def test_additional_plan_may_not_lead_back(world, login):
    """A → B → C, then C's additional plan A is refused, naming the path; B's own cycle too."""
    plan_c = factories.plan(world.tree.alpha, "Plan C")
    plan_b = factories.plan(world.tree.alpha, "Plan B", additional_plan_id=plan_c.id)
    world.plan.additional_plan_id = plan_b.id
    db.session.commit()
    client = login(world.tree.alpha_operator)
    response = client.post(
        f"/plans/{plan_c.id}/edit", data=_form(world, name="Plan C", additional_plan_id=str(world.plan.id))
    )
    assert response.status_code == 422
    assert "That leads back to this plan: Alpha Main → Plan B → Plan C." in response.data.decode()
    db.session.expire_all()
    assert db.session.get(RoutingPlan, plan_c.id).additional_plan_id is None
    # A chain that does not come back is fine.
    response = client.post(
        f"/plans/{plan_c.id}/edit", data=_form(world, name="Plan C", additional_plan_id="")
    )
    assert response.status_code == 303
    other = factories.plan(world.tree.alpha, "Other")
    db.session.commit()
    response = client.post(
        f"/plans/{other.id}/edit", data=_form(world, name="Other", additional_plan_id=str(world.plan.id))
    )
    assert response.status_code == 303


def test_additional_plan_must_be_usable_by_the_owner(world, login):
    """A plan the owner may not use (limited to another company) is refused as additional plan."""
    root_plan = factories.plan(world.tree.root, "Operator Wholesale")
    root_plan.origination_limits = [world.tree.alpha]
    db.session.commit()
    client = login(world.tree.root_admin)
    ok = client.post("/plans/new", data=_form(world, name="Ok", additional_plan_id=str(root_plan.id)))
    assert ok.status_code == 303
    refused = client.post(
        "/plans/new",
        data=_form(
            world, name="Refused", company_id=str(world.tree.beta.id), additional_plan_id=str(root_plan.id)
        ),
    )
    assert refused.status_code == 422
    assert "Beta may not use that plan" in refused.data.decode()


# ---------------------------------------------------------------- copy and delete


def test_copy_plan_with_all_rules(world, login):
    """Copy makes `<name> (copy)` with the settings and every rule, audited once; again gives (copy 2)."""
    world.plan.origination_limits = [world.tree.sub]
    db.session.commit()
    client = login(world.tree.alpha_operator)
    response = client.post(f"/plans/{world.plan.id}/copy")
    assert response.status_code == 303
    copy = _plan("Alpha Main (copy)")
    assert copy is not None and copy.code_deck_id == world.deck.id
    assert [c.name for c in copy.origination_limits] == ["Alpha Sub"]

    def rules(plan_id):
        stmt = select(RoutingRule).where(RoutingRule.plan_id == plan_id).order_by(RoutingRule.code)
        return [
            (
                r.code,
                r.type,
                r.priority,
                r.terminator_client_id,
                r.terminator_account_id,
                r.policy_id,
                r.term_tags,
            )
            for r in db.session.scalars(stmt)
        ]

    assert rules(copy.id) == rules(world.plan.id) and len(rules(copy.id)) == 3
    entry = audit_entries("routingplan", "create")[-1]
    assert entry.object_id == copy.id and "copy of Alpha Main" in entry.note and "3 rules" in entry.note
    client.post(f"/plans/{world.plan.id}/copy")
    assert _plan("Alpha Main (copy 2)") is not None
    assert "copied to Alpha Main (copy)" in client.get(response.headers["Location"]).data.decode()


def test_delete_plan_with_its_rules(world, login):
    """An unused plan is deleted with its rules and an audit entry."""
    client = login(world.tree.alpha_operator)
    response = client.post(f"/plans/{world.plan.id}/delete")
    assert response.status_code == 303
    assert _plan("Alpha Main") is None
    assert db.session.scalar(select(func.count()).where(RoutingRule.plan_id == world.plan.id)) == 0
    entry = audit_entries("routingplan", "delete")[-1]
    assert entry.object_id == world.plan.id and "3 rules" in entry.note
    assert "Routing plan Alpha Main deleted" in client.get("/plans/").data.decode()


def test_delete_refused_while_used_naming_the_users(world, login):
    """A plan used by a client, an account or another plan is not deleted; the message names them."""
    customer = factories.client(world.tree.sub, "Customer One", routing_plan_id=world.plan.id)
    factories.account(customer, "trunk-7", orig_enabled=True, orig_routing_plan_id=world.plan.id)
    factories.plan(world.tree.alpha, "Overflow", additional_plan_id=world.plan.id)
    db.session.commit()
    client = login(world.tree.alpha_operator)
    response = client.post(f"/plans/{world.plan.id}/delete", follow_redirects=True)
    page = response.data.decode()
    assert "Routing plan Alpha Main is in use" in page
    assert "client Customer One" in page and "account Customer One / trunk-7" in page
    assert "as additional plan of Overflow" in page
    assert _plan("Alpha Main") is not None
    assert db.session.scalar(select(func.count()).where(RoutingRule.plan_id == world.plan.id)) == 3
    assert not audit_entries("routingplan", "delete")


# ---------------------------------------------------------------- roles and scope


WRITES = [
    ("post", "/plans/new"),
    ("post", "/plans/{plan}/edit"),
    ("post", "/plans/{plan}/copy"),
    ("post", "/plans/{plan}/delete"),
    ("post", "/plans/{plan}/rules"),
    ("post", "/plans/{plan}/import"),
    ("post", "/plans/rules/{rule}"),
    ("post", "/plans/rules/{rule}/delete"),
    ("get", "/plans/new"),
    ("get", "/plans/{plan}/rules/new"),
    ("get", "/plans/rules/{rule}/edit"),
]
READS = [
    "/plans/{plan}/",
    "/plans/{plan}/edit",
    "/plans/{plan}/import",
    "/plans/{plan}/export",
    "/plans/{plan}/code-name?code=44",
    "/plans/rules/{rule}",
]


def test_viewer_may_not_write(world, login):
    """Every write of the section (and every editor) answers 403 to a viewer; nothing changes."""
    client = login(world.tree.alpha_viewer)
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    for method, url in WRITES:
        target = url.format(plan=world.plan.id, rule=world.rule_uk.id)
        response = getattr(client, method)(target, data=_form(world, name="Viewer Plan"))
        assert response.status_code == 403, (method, target)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == before
    assert _plan("Viewer Plan") is None and db.session.get(RoutingPlan, world.plan.id) is not None


def test_viewer_may_read(world, login):
    """A viewer reads the rules, the plan, the import tab, the export."""
    client = login(world.tree.alpha_viewer)
    for url in READS:
        response = client.get(url.format(plan=world.plan.id, rule=world.rule_uk.id))
        assert response.status_code == 200, url


@pytest.mark.parametrize("user", ["beta_admin", "sub_operator"])
def test_out_of_scope_answers_404(world, login, user):
    """Beta (a sibling) and Alpha Sub (a child) never reach Alpha's plan or its rules: 404, not 403."""
    client = login(getattr(world.tree, user))
    for method, url in [*WRITES[1:8], *WRITES[9:], *[("get", u) for u in READS]]:
        target = url.format(plan=world.plan.id, rule=world.rule_uk.id)
        response = getattr(client, method)(target, data=_form(world, name="Intruder"))
        assert response.status_code == 404, (method, target)
    assert _plan("Intruder") is None and db.session.get(RoutingPlan, world.plan.id) is not None
    assert db.session.scalar(select(func.count()).where(RoutingRule.plan_id == world.plan.id)) == 3


def test_operator_above_sees_and_edits_descendant_plans(world, login):
    """The root operator lists and edits Alpha's plan (its descendant)."""
    client = login(world.tree.root_admin)
    assert "Alpha Main" in client.get("/plans/").data.decode()
    response = client.post(f"/plans/{world.plan.id}/edit", data=_form(world, name="Renamed by root"))
    assert response.status_code == 303


# ---------------------------------------------------------------- who uses a plan (14.6), expiring counts


def test_plan_page_shows_the_clients_and_accounts_using_it(world, login):
    """Counts and links: clients with the plan as default, accounts with it as origination plan."""
    shop = factories.client(world.tree.alpha, "Shop", routing_plan_id=world.plan.id)
    cafe = factories.client(world.tree.sub, "Cafe", routing_plan_id=world.plan.id)
    factories.account(
        cafe, "cafe-1", ident_value="192.0.2.9", orig_enabled=True, orig_routing_plan_id=world.plan.id
    )
    factories.client(world.tree.beta, "Beta Shop", routing_plan_id=world.beta_plan.id)
    db.session.commit()
    page = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/").data.decode()
    usage = page[page.index('id="plan-usage"') : page.index("</section>", page.index('id="plan-usage"'))]
    assert "<strong>2 clients</strong>" in usage
    assert f'href="/clients/{shop.id}">Shop</a>' in usage and f'href="/clients/{cafe.id}">Cafe</a>' in usage
    assert f'href="/accounts/?routing_plan_id={world.plan.id}"><strong>1 account</strong>' in usage
    assert "Beta Shop" not in usage and "No client or account uses this plan yet" not in usage
    # The same header on the plan's other tabs.
    edit = login(world.tree.alpha_operator).get(f"/plans/{world.plan.id}/edit").data.decode()
    assert "<strong>2 clients</strong>" in edit


def test_a_sub_reseller_user_sees_only_its_own_clients_of_a_plan(world, login):
    """A plan's users are counted within the viewer's scope (a client of Alpha is not Alpha Sub's)."""
    factories.client(world.tree.alpha, "Shop", routing_plan_id=world.plan.id)
    sub_plan = factories.plan(world.tree.sub, "Sub Plan")
    factories.client(world.tree.sub, "Cafe", routing_plan_id=sub_plan.id)
    db.session.commit()
    page = login(world.tree.alpha_operator).get(f"/plans/{sub_plan.id}/").data.decode()
    assert "<strong>1 client</strong>" in page and "Cafe" in page
    page = login(world.tree.sub_operator).get(f"/plans/{sub_plan.id}/").data.decode()
    assert "<strong>1 client</strong>" in page and "Shop" not in page


def test_new_plan_says_how_to_assign_it(world, login):
    """Right after creating a plan: nothing uses it yet, and the page says where to choose it."""
    client = login(world.tree.alpha_operator)
    response = client.post("/plans/new", data=_form(world), follow_redirects=True)
    page = response.data.decode()
    assert "No client or account uses this plan yet." in page
    assert "choose it as the <em>Routing plan</em> of a client" in page
    assert 'href="/clients/"' in page and 'href="/accounts/"' in page
    # The same on the Import/Export tab, where a plan filled from a file is looked at next.
    plan = _plan("New Plan")
    imported = client.get(f"/plans/{plan.id}/import").data.decode()
    assert "No client or account uses this plan yet." in imported


def test_plans_list_counts_rules_expiring_soon(world, login):
    """The list says how many rules of each plan expire within the horizon, and how many expired."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    world.rule_uk.expires_at = now + timedelta(days=2)
    world.rule_mobile.expires_at = now + timedelta(days=6)
    world.rule_dyn.expires_at = now - timedelta(hours=1)
    world.beta_rule.expires_at = now + timedelta(days=1)
    db.session.commit()
    page = login(world.tree.alpha_operator).get("/plans/").data.decode()
    assert f'href="/plans/{world.plan.id}/?expiring=7"' in page and "2 within 7 d" in page
    assert f'href="/plans/{world.plan.id}/?state=expired"' in page and "1 expired" in page
    assert "Beta Plan" not in page


def test_plans_list_search_trigger_parses(world, login):
    """The advanced search's selects are named in parentheses: htmx reads `from:` up to the next space."""
    page = login(world.tree.alpha_operator).get("/plans/").data.decode()
    trigger = page[page.index('hx-trigger="') :].split('"')[1]
    assert "from:(.advanced select)" in trigger and "from:.advanced select" not in trigger
