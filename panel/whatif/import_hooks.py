"""The routing effect on the import preview page of panel.imports (its `flow.extend` hook).

When the one import flow previews a replace import of a routing plan's rules or of a rate table, this adds
the what-if of that file: the destinations whose first route, route list or margin would change. The import
flow's own confirm (with its fingerprint check) applies the file. Registered only when the flow has the hook.
"""

from __future__ import annotations

from datetime import UTC, datetime

from panel.access import user_company_ids
from panel.imports import flow
from panel.routing.snapshot import decimal_text
from panel.whatif import preview_views, service


def _context(preview) -> dict:
    """What templates/imports/_preview_extra.html shows."""
    return {
        "whatif": preview,
        "whatif_shown": preview.changes[: preview_views.SHOWN],
        "money": decimal_text,
    }


def rules_effect(plan, _diff, upload) -> dict:
    """The routing effect of a rules file about to replace (or extend) a plan's rules."""
    rows, errors = preview_views._rules_from_file(plan, upload.data, upload.mode)
    if errors:
        return {}
    now = datetime.now(UTC).replace(microsecond=0)
    preview, _ = service.rules_preview(service.current_snapshot(), plan.id, rows, user_company_ids(), now)
    return _context(preview)


def rates_effect(table, _diff, upload) -> dict:
    """The routing effect of a rate deck about to replace (or update) a table's rates."""
    now = datetime.now(UTC).replace(microsecond=0)
    snapshot = service.current_snapshot()
    if table.id not in snapshot.rate_tables:
        return {}
    rates, errors = preview_views._rates_from_file(table, upload.data, upload.mode, now)
    if errors:
        return {}
    preview, _ = service.rates_preview(snapshot, table.id, rates, user_company_ids(), now)
    return _context(preview)


flow.extend("routing_rules")(rules_effect)
flow.extend("rates")(rates_effect)
