"""`POST /api/v1/cdrs`: the switch reports call records, rated and charged at once (SPEC §7; docs/cdrs.md)."""

from flask import g, request

from panel import cdrs
from panel.api import bp
from panel.api.auth import BodyError, error_text, json_response, json_text, parse_body, token_required


@bp.route("/cdrs", methods=["POST"])
@token_required
def post_cdrs():
    """Store one call record or a list of up to 1,000; 400 names the first bad record and field."""
    return json_response(*answer(request.get_data(cache=False), g.company_id))


def answer(data: bytes, company_id: int | None) -> tuple[int, str]:
    """The status and JSON text answering a call records body (this view and panel.api.fastpath)."""
    try:
        payload = parse_body(data)
    except BodyError as exc:
        return 400, error_text(str(exc))
    try:
        result = cdrs.ingest(payload, company_id=company_id)
    except cdrs.CdrError as exc:
        return 400, json_text(exc.as_json())
    return 200, json_text(result.as_json())
