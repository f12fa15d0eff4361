"""`POST /api/v1/calls`: call start and end events that keep the live-call counts for capacity (SPEC §8)."""

from flask import g, jsonify, request

from panel import livecalls
from panel.api import bp
from panel.api.auth import api_error, token_required
from panel.cdrs import CdrError


@bp.route("/calls", methods=["POST"])
@token_required
def post_calls():
    """Apply one event or a list of up to 1,000 in order; 400 names the first bad event and field."""
    payload = request.get_json(force=True, silent=True)
    if payload is None:
        return api_error("the body is not valid JSON", None, 400)
    try:
        result = livecalls.apply_events(payload, company_id=g.company_id)
    except CdrError as exc:
        return jsonify(exc.as_json()), 400
    return jsonify(result), 200
