"""The company-scope helper (SPEC §1): descendants seen, parent and siblings never; usable plans."""

import pytest
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from panel import scope
from panel.extensions import db
from panel.models import Account, AuditEntry, Client, Company, RateTable, RoutingPlan, RoutingRule, User
from tests import factories


@pytest.fixture
def objects(tree):
    """One client with an account, one rate table and one plan with a rule in each company of the tree."""
    made = {}
    for key in ("root", "alpha", "sub", "beta"):
        company = getattr(tree, key)
        client = factories.client(company, f"{company.name} client")
        account = factories.account(client, "acc", ident_by="name", ident_value=f"{key}-login")
        table = factories.rate_table(company, f"{company.name} rates", rates=[("44", "0.01")])
        plan = factories.plan(company, f"{company.name} plan")
        rule = factories.rule(plan, "44", terminator_client_id=client.id)
        made[key] = {"client": client, "account": account, "table": table, "plan": plan, "rule": rule}
    db.session.commit()
    return made


def _names(model, user) -> set[str]:
    """The names of the objects of `model` the user sees."""
    return {obj.name for obj in db.session.scalars(scope.scoped(model, user))}


def test_descendants_and_ancestors(tree):
    """The tree helpers: a company and everything below it; a company and everything above it."""
    assert scope.descendant_ids(tree.root.id) == {tree.root.id, tree.alpha.id, tree.sub.id, tree.beta.id}
    assert scope.descendant_ids(tree.alpha.id) == {tree.alpha.id, tree.sub.id}
    assert scope.descendant_ids(tree.sub.id) == {tree.sub.id}
    assert scope.ancestor_ids(tree.sub.id) == [tree.sub.id, tree.alpha.id, tree.root.id]
    assert scope.ancestor_ids(tree.beta.id) == [tree.beta.id, tree.root.id]


def test_reseller_sees_its_subtree_only(tree, objects):
    """Alpha's users see Alpha's and Alpha Sub's objects, never the operator's (parent) or Beta's."""
    for user in (tree.alpha_admin, tree.alpha_operator, tree.alpha_viewer):
        assert _names(Client, user) == {"Alpha client", "Alpha Sub client"}
        assert _names(RateTable, user) == {"Alpha rates", "Alpha Sub rates"}
        assert _names(RoutingPlan, user) == {"Alpha plan", "Alpha Sub plan"}
        assert _names(Company, user) == {"Alpha", "Alpha Sub"}
    accounts = db.session.scalars(scope.scoped(Account, tree.alpha_operator)).all()
    assert {a.ident_value for a in accounts} == {"alpha-login", "sub-login"}
    rules = db.session.scalars(scope.scoped(RoutingRule, tree.alpha_operator)).all()
    assert {r.plan_id for r in rules} == {objects["alpha"]["plan"].id, objects["sub"]["plan"].id}


def test_sub_reseller_sees_neither_parent_nor_uncle(tree, objects):
    """Three levels down: Alpha Sub sees only itself, not Alpha (parent), the operator or Beta."""
    assert _names(Client, tree.sub_operator) == {"Alpha Sub client"}
    assert _names(Company, tree.sub_operator) == {"Alpha Sub"}
    users = {u.username for u in db.session.scalars(scope.scoped(User, tree.sub_operator))}
    assert users == {"sub_operator"}


def test_root_sees_everything(tree, objects):
    """The operator's users see every company's objects."""
    assert _names(Client, tree.root_admin) == {
        "Operator client",
        "Alpha client",
        "Alpha Sub client",
        "Beta client",
    }


def test_out_of_scope_object_is_404(app, tree, objects):
    """get_or_404 answers 404 for a sibling's and a parent's object, and for junk ids."""
    with app.test_request_context():
        assert (
            scope.get_or_404(Client, objects["sub"]["client"].id, tree.alpha_operator).name
            == "Alpha Sub client"
        )
        for key in ("beta", "root"):
            with pytest.raises(NotFound):
                scope.get_or_404(Client, objects[key]["client"].id, tree.alpha_operator)
            with pytest.raises(NotFound):
                scope.get_or_404(RoutingRule, objects[key]["rule"].id, tree.alpha_operator)
        with pytest.raises(NotFound):
            scope.get_or_404(Client, "x1", tree.alpha_operator)
        assert scope.in_scope(Account, objects["alpha"]["account"].id, tree.alpha_viewer)
        assert not scope.in_scope(Account, objects["beta"]["account"].id, tree.alpha_viewer)
        assert not scope.in_scope(Account, "", tree.alpha_viewer)


def test_api_scope_by_company(tree, objects):
    """The API's scope (company_id instead of a user) follows the same rule."""
    names = {c.name for c in db.session.scalars(scope.scoped(Client, company_id=tree.beta.id))}
    assert names == {"Beta client"}


def test_anonymous_sees_nothing(app, tree, objects):
    """Without a logged-in user the scope is empty."""
    with app.test_request_context():
        assert db.session.scalars(scope.scoped(Client)).all() == []


def test_audit_entries_are_scoped(tree, objects):
    """Audit entries belong to the company that owns the object."""
    from panel import audit

    for key in ("alpha", "sub", "beta", "root"):
        audit.record("update", objects[key]["client"], before={}, user=tree.root_admin)
    db.session.commit()
    seen = {e.object_label for e in db.session.scalars(scope.scoped(AuditEntry, tree.alpha_viewer))}
    assert seen == {"Alpha client", "Alpha Sub client"}


def _usable(company) -> set[str]:
    return {p.name for p in db.session.scalars(scope.usable_plans(company))}


def test_usable_plans_without_limits(tree, objects):
    """An unlimited plan is usable by its owner's whole subtree, never by the owner's parent or siblings."""
    assert _usable(tree.sub) == {"Operator plan", "Alpha plan", "Alpha Sub plan"}
    assert _usable(tree.alpha) == {"Operator plan", "Alpha plan"}
    assert _usable(tree.beta) == {"Operator plan", "Beta plan"}
    assert _usable(tree.root.id) == {"Operator plan"}


def test_usable_plans_with_origination_limits(tree, objects):
    """Origination limits: the listed companies and their descendants only, not the owner itself."""
    operator_plan = objects["root"]["plan"]
    operator_plan.origination_limits = [tree.alpha]
    alpha_plan = objects["alpha"]["plan"]
    alpha_plan.origination_limits = [tree.sub]
    db.session.commit()
    # Alpha is listed: Alpha and its descendant Alpha Sub may use the operator's plan; Beta may not.
    assert "Operator plan" in _usable(tree.alpha)
    assert "Operator plan" in _usable(tree.sub)
    assert "Operator plan" not in _usable(tree.beta)
    # Limiting to Alpha Sub excludes the owner Alpha itself.
    assert "Alpha plan" not in _usable(tree.alpha)
    assert "Alpha plan" in _usable(tree.sub)
    # A limit naming a company outside the owner's subtree grants nothing.
    beta_plan = objects["beta"]["plan"]
    beta_plan.origination_limits = [tree.alpha]
    db.session.commit()
    assert "Beta plan" not in _usable(tree.alpha)
    assert "Beta plan" not in _usable(tree.beta)


def test_usable_rate_tables(tree, objects):
    """Rate tables: a company's own and its ancestors', never a sibling's or a descendant's."""
    names = {t.name for t in db.session.scalars(scope.usable_rate_tables(tree.sub))}
    assert names == {"Operator rates", "Alpha rates", "Alpha Sub rates"}
    names = {t.name for t in db.session.scalars(scope.usable_rate_tables(tree.alpha))}
    assert names == {"Operator rates", "Alpha rates"}


def test_visible_companies_sorted(tree):
    """visible_companies lists the user's company and its descendants by name."""
    names = [c.name for c in db.session.scalars(scope.visible_companies(tree.alpha_admin))]
    assert names == ["Alpha", "Alpha Sub"]


def test_new_company_is_seen_after_forget_tree(app, tree):
    """The per-request tree cache is refreshed by forget_tree after a company is created."""
    with app.test_request_context():
        assert scope.descendant_ids(tree.alpha.id) == {tree.alpha.id, tree.sub.id}
        extra = factories.company("Alpha Two", "sub_reseller", tree.alpha)
        scope.forget_tree()
        assert extra.id in scope.descendant_ids(tree.alpha.id)
        assert db.session.scalar(select(Company).where(Company.id == extra.id)).parent_id == tree.alpha.id
