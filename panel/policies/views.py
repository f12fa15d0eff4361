"""Routing policies: list, create, edit, copy, delete (refused while a dynamic rule uses it)."""

from flask import flash, request, url_for
from sqlalchemy import select

from panel import audit
from panel.access import reader_required, writer_required
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.forms import name_taken
from panel.htmx import redirect, render
from panel.models import Company, Policy, RoutingRule
from panel.models.rates import POLICY_FACTORS
from panel.policies import bp
from panel.policies.forms import PolicyForm
from panel.rates.shared import (
    count_by,
    default_owner,
    name_list,
    owned_list,
    owner_change_error,
    owner_choices,
    rule_label,
    rules_using,
)
from panel.scope import get_or_404

SORTABLE = {"name": Policy.name, "company": Company.name}
FACTOR_LABELS = {"rate": "Rate", "asr": "ASR", "acd": "ACD", "pdd": "PDD"}


def describe(policy: Policy) -> str:
    """`Rate 2 · ASR 1 · ACD 1`, or a plain statement for a policy without factors."""
    factors = policy.factors
    if not factors:
        return "no factor: routes are shuffled"
    return " · ".join(f"{FACTOR_LABELS[f]} {w}" for f, w in factors.items())


@bp.route("/")
@reader_required
def index():
    """The policies of the user's companies with their weights and how many rules use them."""
    pagination, q, company_id = owned_list(Policy, SORTABLE)
    return render(
        "policies/list.html",
        "policies/_table.html",
        pagination=pagination,
        rule_counts=count_by(RoutingRule.policy_id, [p.id for p in pagination.items]),
        describe=describe,
        companies=owner_choices(),
        q=q,
        company_id=company_id,
    )


def _form(policy: Policy | None = None) -> PolicyForm:
    """The form with the owner choices."""
    form = PolicyForm(obj=policy)
    choices = owner_choices()
    form.company_id.choices = as_choices(choices)
    if policy is None and request.method == "GET":
        form.company_id.data = default_owner(choices)
    return form


def _page(form: PolicyForm, policy: Policy | None, status: int):
    """The form page, with the rules that use the policy when editing."""
    rules = (
        [rule_label(rule, plan) for rule, plan in rules_using(RoutingRule.policy_id, policy.id)]
        if policy
        else []
    )
    return render(
        "policies/form.html", status=status, form=form, policy=policy, rules=rules, factors=POLICY_FACTORS
    )


@bp.route("/new", methods=["GET", "POST"])
@writer_required(reads="reader")
def create():
    """Create a policy."""
    form = _form()
    if form.validate_on_submit() and not name_taken(form, Policy, None, "policy"):
        policy = Policy()
        form.populate_obj(policy)
        db.session.add(policy)
        audit.record("create", policy)
        db.session.commit()
        flash(f"Policy {policy.name} created.", "success")
        return redirect(url_for("policies.index"))
    return _page(form, None, 422 if form.is_submitted() else 200)


@bp.route("/<int:policy_id>/edit", methods=["GET", "POST"])
@writer_required(reads="reader")
def update(policy_id: int):
    """Edit a policy (routing follows at the manager's next run)."""
    policy = get_or_404(Policy, policy_id)
    form = _form(policy)
    if form.validate_on_submit() and not name_taken(form, Policy, policy, "policy"):
        if form.company_id.data != policy.company_id:
            companies = {plan.company_id for _, plan in rules_using(RoutingRule.policy_id, policy.id)}
            error = owner_change_error(form.company_id.data, companies, "policy")
            if error:
                form.company_id.errors.append(error)
                return _page(form, policy, 422)
        before = audit.state(policy)
        form.populate_obj(policy)
        audit.record("update", policy, before=before)
        db.session.commit()
        flash(f"Policy {policy.name} saved.", "success")
        return redirect(url_for("policies.index"))
    return _page(form, policy, 422 if form.is_submitted() else 200)


def _copy_name(policy: Policy) -> str:
    """`<name> (copy)`, or `(copy 2)`, `(copy 3)`… when taken in the same company."""
    taken = set(db.session.scalars(select(Policy.name).where(Policy.company_id == policy.company_id)))
    base = f"{policy.name} (copy)"[:120]
    name, n = base, 2
    while name in taken:
        name = f"{policy.name} (copy {n})"[:120]
        n += 1
    return name


@bp.route("/<int:policy_id>/copy", methods=["POST"])
@writer_required
def copy(policy_id: int):
    """Copy a policy into the same company as `<name> (copy)` and open it for editing."""
    original = get_or_404(Policy, policy_id)
    policy = Policy(
        company_id=original.company_id,
        name=_copy_name(original),
        notes=original.notes,
        **{f"{f}_weight": getattr(original, f"{f}_weight") for f in POLICY_FACTORS},
    )
    db.session.add(policy)
    audit.record("create", policy, note=f"Copy of policy {original.name}.")
    db.session.commit()
    flash(f"Policy {original.name} copied as {policy.name}.", "success")
    return redirect(url_for("policies.update", policy_id=policy.id))


@bp.route("/<int:policy_id>/delete", methods=["POST"])
@writer_required
def delete(policy_id: int):
    """Delete a policy; refused while a routing rule uses it."""
    policy = get_or_404(Policy, policy_id)
    rules = rules_using(RoutingRule.policy_id, policy.id)
    if rules:
        names = name_list(rule_label(rule, plan) for rule, plan in rules)
        flash(f"Policy {policy.name} is not deleted: it is used by {names}.", "error")
        return redirect(url_for("policies.index"))
    before = audit.state(policy)
    audit.record("delete", policy, before=before)
    db.session.delete(policy)
    db.session.commit()
    flash(f"Policy {policy.name} deleted.", "success")
    return redirect(url_for("policies.index"))
