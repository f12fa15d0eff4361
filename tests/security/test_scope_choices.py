"""Pickers offer only what the user's company may use (issue 13.12)."""

from panel.extensions import db
from tests import factories


def test_account_search_offers_only_usable_parent_plans(login, tree):
    """The accounts search lists Alpha's own plans and the operator's plans Alpha may use, not a parent plan
    limited to another company (Beta)."""
    factories.plan(tree.alpha, "zq-own-plan")
    factories.plan(tree.root, "zq-open-parent-plan")
    for_alpha = factories.plan(tree.root, "zq-parent-plan-for-alpha")
    for_alpha.origination_limits = [tree.alpha]
    for_beta = factories.plan(tree.root, "zq-parent-plan-for-beta")
    for_beta.origination_limits = [tree.beta]
    db.session.commit()
    page = login(tree.alpha_operator).get("/accounts/").get_data(as_text=True)
    assert "zq-own-plan" in page and "zq-open-parent-plan" in page and "zq-parent-plan-for-alpha" in page
    assert "zq-parent-plan-for-beta" not in page
    # The operator's own users see every plan of their subtree.
    assert "zq-parent-plan-for-beta" in login(tree.root_admin).get("/accounts/").get_data(as_text=True)
