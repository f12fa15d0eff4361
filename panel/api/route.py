"""`POST /api/v1/route` (SPEC §7): the switch asks where to send a call; the answer comes from the snapshot.

The request is validated strictly (an unknown field, malformed JSON, a number that is not digits, a bad IP
answer 400 with the field named), identification is limited to the token's company and its descendants, and
the routing itself is `panel.routing.engine.route` on this process's snapshot with the live call counts.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime

from panel import livecalls, snapshots
from panel.api.auth import error_text, switch_endpoint
from panel.routing.engine import RouteQuery, route

FIELDS = ("number", "src_ip", "login", "ani", "gateway", "at", "explain", "brief")
# Digits, a leading `+` (dropped), and `#` only as the end of a tech prefix before the dialled digits.
NUMBER = re.compile(r"^\+?(?:[0-9]+#)?[0-9]+$")
MAX_TEXT = {"login": 255, "ani": 64, "gateway": 255}


class RequestError(ValueError):
    """A field of the request that cannot be used."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def parse_request(payload) -> tuple[RouteQuery, bool, bool]:
    """Validate the JSON body; return the query and the explain and brief flags, or raise RequestError."""
    if not isinstance(payload, dict):
        raise RequestError(None, "the body must be a JSON object")
    for key in payload:
        if key not in FIELDS:
            raise RequestError(key, f"unknown field {key!r}; the fields are {', '.join(FIELDS)}")
    number = payload.get("number")
    if number is None or number == "":
        raise RequestError("number", "number is required")
    if not isinstance(number, str):
        raise RequestError("number", "number must be a string of digits")
    number = number.strip()
    if not NUMBER.match(number) or not number.isascii():
        raise RequestError(
            "number", "number must be digits (a leading + is dropped; # only at the end of a tech prefix)"
        )
    number = number.removeprefix("+")

    values: dict[str, str | None] = {}
    for key, limit in MAX_TEXT.items():
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise RequestError(key, f"{key} must be a string")
        value = (value or "").strip()
        if len(value) > limit:
            raise RequestError(key, f"{key} is longer than {limit} characters")
        values[key] = value or None

    src_ip = payload.get("src_ip")
    if src_ip is not None and not isinstance(src_ip, str):
        raise RequestError("src_ip", "src_ip must be a string")
    src_ip = _address(src_ip) if src_ip else None

    at = payload.get("at")
    if at is not None:
        at = parse_moment(at)

    explain, brief = _flag(payload, "explain"), _flag(payload, "brief")
    if explain and brief:
        raise RequestError("brief", "brief and explain cannot be combined")

    query = RouteQuery(
        number=number,
        src_ip=src_ip,
        login=values["login"],
        ani=values["ani"],
        gateway=values["gateway"],
        at=at,
        company_id=None,
    )
    return query, explain, brief


def _flag(payload: dict, key: str) -> bool:
    """A true/false field (absent or null: false), or RequestError."""
    value = payload.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(key, f"{key} must be true or false")
    return value


# The callers' addresses as routing reads them (a switch sends the same few addresses again and again).
_ADDRESSES: dict[str, str | None] = {}


def _address(text: str) -> str | None:
    """An IPv4 or IPv6 address in its standard form (None for an empty one), or RequestError."""
    found = _ADDRESSES.get(text)
    if found is None:
        stripped = text.strip()
        try:
            found = str(ipaddress.ip_address(stripped)) if stripped else ""
        except ValueError:
            raise RequestError("src_ip", f"{stripped!r} is not an IPv4 or IPv6 address") from None
        if len(_ADDRESSES) >= 10_000:
            _ADDRESSES.clear()
        _ADDRESSES[text] = found
    return found or None


def parse_moment(value) -> datetime:
    """ISO 8601 (`2024-03-04T12:00:00Z`; no zone means UTC) as an aware datetime, or RequestError."""
    if not isinstance(value, str) or not value.strip():
        raise RequestError("at", "at must be an ISO 8601 time such as 2024-03-04T12:00:00Z")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RequestError("at", f"{value!r} is not an ISO 8601 time such as 2024-03-04T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past the last datetime once in UTC
        moment = None
    if moment is None or not 1900 <= moment.year <= 2999:
        raise RequestError("at", "at must be a time between the years 1900 and 2999")
    return moment


def _route(payload, company_id: int | None) -> tuple[int, str]:
    """Route one call for the token's company: 200 with the routes (or the reason there are none)."""
    try:
        query, explain, brief = parse_request(payload)
    except RequestError as error:
        return 400, error_text(error.message, error.field)
    query.company_id = company_id
    result = route(snapshots.get_snapshot(), query, live=livecalls.counts())
    # Compact JSON in the answer's own key order (cheaper than jsonify's sorted, spaced output).
    return 200, json.dumps(brief_json(result) if brief else result.to_json(explain), separators=(",", ":"))


def brief_json(result) -> dict:
    """The brief answer (`"brief": true`): what a switch needs to place the call, the fields of the whole
    answer (`Result.to_json`) that docs/kamailio/kamailio.cfg reads, in its order. A switch reads the answer
    of every call, so a quarter of its size saves the switch's JSON parsing as much as the panel's writing."""
    origin = result.originator
    return {
        "status": result.status,
        "reason": result.reason,
        "number": result.number,
        "originator": None if origin is None else {"account_id": origin.id},
        "routes": [
            {
                "account_id": r.account.id,
                "host": r.account.host,
                "port": r.account.port,
                "protocol": r.account.protocol,
                "proxy": r.account.proxy or "",
                "tech_prefix": r.account.tech_prefix,
                "rule_id": r.rule.id,
            }
            for r in result.routes
        ],
    }


# The status and JSON text answering a route request's body (the view and panel.api.fastpath).
answer = switch_endpoint("/route", "route_call", _route)
