"""`POST /api/v1/calls`: call start and end events that keep the live-call counts for capacity (SPEC §8)."""

from flask import g, request

from panel import livecalls
from panel.api import bp
from panel.api.auth import BodyError, error_text, json_response, json_text, parse_body, token_required
from panel.records import CdrError


@bp.route("/calls", methods=["POST"])
@token_required
def post_calls():
    """Apply one event or a list of up to 1,000 in order; 400 names the first bad event and field."""
    return json_response(*answer(request.get_data(cache=False), g.company_id))


def answer(data: bytes, company_id: int | None) -> tuple[int, str]:
    """The status and JSON text answering a call events body (this view and panel.api.fastpath)."""
    try:
        payload = parse_body(data)
    except BodyError as exc:
        return 400, error_text(str(exc))
    try:
        result = livecalls.apply_events(payload, company_id=company_id)
    except CdrError as exc:
        return 400, json_text(exc.as_json())
    return 200, json_text(result)
