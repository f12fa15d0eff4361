"""The four policies every install ships (SPEC §5 step 8): Simple LCR, Simple Quality, Proportional,
Random."""

from types import SimpleNamespace

from sqlalchemy import select

from panel import writes
from panel.extensions import db
from panel.models import Policy

# name, weights, notes
DEFAULT_POLICIES = [
    ("Simple LCR", {"rate_weight": 1}, "Least cost routing: the cheapest vendor rate first."),
    ("Simple Quality", {"asr_weight": 1, "acd_weight": 1}, "The best answer ratio and call duration first."),
    (
        "Proportional",
        {"rate_weight": 2, "asr_weight": 1, "acd_weight": 1},
        "Rate counts twice as much as ASR and ACD each.",
    ),
    ("Random", {}, "No factor: every route has the same appeal, so the order is shuffled for each call."),
]

SYSTEM = SimpleNamespace(id=None, username="system")


def ensure_default_policies(company_id: int) -> list[Policy]:
    """Create the shipped policies the (root) company lacks, by name; returns those created.

    Each gets an audit entry by `system`. The caller commits (the demo data, create-admin and the policies
    list call this).
    """
    existing = set(db.session.scalars(select(Policy.name).where(Policy.company_id == company_id)))
    created = []
    for name, weights, notes in DEFAULT_POLICIES:
        if name in existing:
            continue
        policy = Policy(company_id=company_id, name=name, notes=notes, **weights)
        writes.create(policy, note="Shipped default policy.", user=SYSTEM, commit_now=False)
        created.append(policy)
    return created
