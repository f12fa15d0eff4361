"""Routing policies: list, create, edit, copy, delete (refused while a dynamic rule uses it)."""

from flask import flash, url_for
from sqlalchemy import select

from panel import writes
from panel.access import get_or_404, writer_required
from panel.extensions import db
from panel.htmx import redirect
from panel.models import Policy, RoutingRule
from panel.models.rates import POLICY_FACTORS
from panel.policies import bp
from panel.policies.forms import PolicyForm
from panel.reference.owners import count_by, used_by_rules
from panel.reference.views import OwnedSection

FACTOR_LABELS = {"rate": "Rate", "asr": "ASR", "acd": "ACD", "pdd": "PDD"}


def describe(policy: Policy) -> str:
    """`Rate 2 · ASR 1 · ACD 1`, or a plain statement for a policy without factors."""
    factors = policy.factors
    if not factors:
        return "no factor: routes are shuffled"
    return " · ".join(f"{FACTOR_LABELS[f]} {w}" for f, w in factors.items())


section = OwnedSection(
    bp,
    Policy,
    PolicyForm,
    used_by_rules(RoutingRule.policy_id),
    plural="Routing policies",
    container="policies",
    after_save="index",
    intro=(
        "A dynamic rule orders its routes by appeal: each factor is scaled to 0..1 across the routes "
        "(rate and PDD: lower is better; ASR and ACD: higher is better) and the appeal is the weighted mean."
    ),
    list_context=lambda items: {
        "rule_counts": count_by(RoutingRule.policy_id, [p.id for p in items]),
        "describe": describe,
    },
    form_context=lambda policy: {
        "rules": section.users_of(policy)[0] if policy else [],
        "factors": POLICY_FACTORS,
    },
)


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
    writes.create(policy, note=f"Copy of policy {original.name}.")
    flash(f"Policy {original.name} copied as {policy.name}.", "success")
    return redirect(url_for("policies.update", policy_id=policy.id))
