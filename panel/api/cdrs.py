"""`POST /api/v1/cdrs`: the switch reports call records, rated and charged at once (SPEC §7; docs/cdrs.md)."""

from panel import cdrs
from panel.api.auth import json_text, switch_endpoint


def _records(payload, company_id: int | None) -> tuple[int, str]:
    """Store one call record or a list of up to 1,000; 400 names the first bad record and field."""
    try:
        return 200, json_text(cdrs.ingest(payload, company_id=company_id).as_json())
    except cdrs.CdrError as exc:
        return 400, json_text(exc.as_json())


# The status and JSON text answering a call records body (the view and panel.api.fastpath).
answer = switch_endpoint("/cdrs", "post_cdrs", _records)
