"""`POST /api/v1/calls`: call start and end events that keep the live-call counts for capacity (SPEC §8)."""

from flask import g, jsonify

from panel import livecalls
from panel.api import bp
from panel.api.auth import BodyError, api_error, json_body, token_required
from panel.records import CdrError


@bp.route("/calls", methods=["POST"])
@token_required
def post_calls():
    """Apply one event or a list of up to 1,000 in order; 400 names the first bad event and field."""
    try:
        payload = json_body()
    except BodyError as exc:
        return api_error(str(exc), None, 400)
    try:
        result = livecalls.apply_events(payload, company_id=g.company_id)
    except CdrError as exc:
        return jsonify(exc.as_json()), 400
    return jsonify(result), 200
