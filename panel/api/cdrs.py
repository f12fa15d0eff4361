"""`POST /api/v1/cdrs`: the switch reports call records, rated and charged at once (SPEC §7; docs/cdrs.md)."""

from flask import g, jsonify

from panel import cdrs
from panel.api import bp
from panel.api.auth import BodyError, api_error, json_body, token_required


@bp.route("/cdrs", methods=["POST"])
@token_required
def post_cdrs():
    """Store one call record or a list of up to 1,000; 400 names the first bad record and field."""
    try:
        payload = json_body()
    except BodyError as exc:
        return api_error(str(exc), None, 400)
    try:
        result = cdrs.ingest(payload, company_id=g.company_id)
    except cdrs.CdrError as exc:
        return jsonify(exc.as_json()), 400
    return jsonify(result.as_json()), 200
