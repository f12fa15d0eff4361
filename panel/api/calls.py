"""`POST /api/v1/calls`: call start and end events that keep the live-call counts for capacity (SPEC §8)."""

from panel import livecalls
from panel.api.auth import json_text, switch_endpoint
from panel.records import CdrError


def _events(payload, company_id: int | None) -> tuple[int, str]:
    """Apply one event or a list of up to 1,000 in order; 400 names the first bad event and field."""
    try:
        return 200, json_text(livecalls.apply_events(payload, company_id=company_id))
    except CdrError as exc:
        return 400, json_text(exc.as_json())


# The status and JSON text answering a call events body (the view and panel.api.fastpath).
answer = switch_endpoint("/calls", "post_calls", _events)
