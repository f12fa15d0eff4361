"""Demo data: a believable small carrier with resellers, customers, vendors, rates, routing plans and traffic.

`flask --app wsgi demo-data` loads it (`--if-empty` does nothing when companies exist): the objects
(`panel.demo.data`, each with its "created" entry in the change history), then a few days of calls routed by
the routing engine and billed through the CDR ingest (`panel.demo.calls`). With PANEL_DEMO_TRAFFIC=1 a
generator keeps calls coming while the panel runs (`panel.demo.traffic`).
"""

from panel.demo.data import COMPANY_NAMES, DEMO_USERS, LOGIN_HELP, has_demo_users
from panel.demo.data import load as load_objects

__all__ = ["COMPANY_NAMES", "DEMO_USERS", "LOGIN_HELP", "has_demo_users", "load"]

# Days of call history the demo starts with.
HISTORY_DAYS = 3


def load(if_empty: bool = False, history_days: int = HISTORY_DAYS) -> bool:
    """Load the demo carrier and its call history; False (nothing done) when `if_empty` and data exists."""
    if not load_objects(if_empty=if_empty):
        return False
    if history_days:
        from panel.demo import calls
        from panel.extensions import db
        from panel.models.types import utcnow
        from panel.routing.build import build_snapshot

        calls.seed(build_snapshot(db.engine), utcnow(), days=history_days)
    return True
