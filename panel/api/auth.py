"""Bearer-token authentication, the JSON body, and JSON errors for the API.

Every error under /api/ is `{"error": <message>, "field": <field or null>}` (docs/api.md): bad input 400, no
or bad token 401, an unknown path 404, a wrong method 405 (with `Allow`), a body over the limit 413, and a
database too busy to take the write 503 (with `Retry-After`, see panel.txn).
"""

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import current_app, g, has_app_context, jsonify, request
from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError

from panel.api import bp
from panel.extensions import db
from panel.models import ApiToken, Company
from panel.models.types import utcnow

TOKEN_PREFIX = "rp_"  # noqa: S105 - a visible prefix, not a secret
# A valid token is remembered this long by each process, so that a route request reads no database: at
# hundreds of calls per second the token query cost more than the route. A revoked token, or one of a
# deactivated company, stops working at once in the process that made the change and within this many
# seconds in the others.
TOKEN_CACHE_SECONDS = 2.0
# last_used_at is written at most this often per token and process.
TOUCH_SECONDS = 60.0


def new_token() -> tuple[str, str]:
    """A new token and its stored hash: the token is shown once, only the hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """SHA-256 of the token (tokens are long and random, so a fast hash is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_required(view):
    """Authenticate the request by its bearer token, setting g.api_token_id and g.company_id; else 401."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        known, refusal = authenticate(request.headers.get("Authorization", ""))
        if known is None:
            return api_error(refusal, "Authorization", 401)
        g.api_token_id = known.token_id
        g.company_id = known.company_id
        return view(*args, **kwargs)

    return wrapper


# The token hash of each Authorization header seen lately: a switch sends the same header on every request,
# so decoding and hashing it once is enough (whether the hash is a valid token is checked every time). Keyed
# by a digest of the header, so the process keeps no credential in clear.
_HASHES: dict[bytes, str] = {}


def authenticate(header: str, *, touch: bool = True) -> "tuple[_KnownToken, None] | tuple[None, str]":
    """The valid token an Authorization header carries (its last use recorded unless `touch` is false: it
    stays due for the next request), else None and why.

    Needs an app context; the views (token_required) and panel.api.fastpath both authenticate here.
    """
    key = hashlib.blake2b(header.encode("utf-8", "surrogateescape"), digest_size=16).digest()
    token_hash = _HASHES.get(key)
    if token_hash is None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "basic":
            token = _basic_auth_token(token)
        elif scheme.lower() != "bearer":
            token = ""
        token_hash = hash_token(token.strip()) if token.strip() else ""
        if len(_HASHES) >= 1000:
            _HASHES.clear()
        _HASHES[key] = token_hash
    if not token_hash:
        return None, "missing bearer token"
    known = _known_token(token_hash)
    if known is None:
        return None, "invalid or revoked token"
    if touch:
        _touch(known)
    return known, None


def _basic_auth_token(credentials: str) -> str:
    """The token sent as HTTP Basic credentials (`any-user:<token>`): switches such as Kamailio's
    http_client keep a connection alive only with a fixed connection, which can carry Basic auth but no
    Authorization: Bearer header (docs/kamailio/README.md)."""
    try:
        user, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return ""
    return password or user


@dataclass(slots=True)
class _KnownToken:
    """A valid token as this process last read it."""

    token_id: int
    company_id: int
    read_at: float  # time.monotonic() of the database read
    touch_due: float  # time.monotonic() when last_used_at should be written again


def _token_cache() -> dict[str, _KnownToken]:
    """This app's remembered tokens, by hash (one cache per app: tests run several apps in one process)."""
    return current_app.extensions.setdefault("panel_api_tokens", {})


def _known_token(token_hash: str) -> _KnownToken | None:
    """The valid, unrevoked token of an active company with this hash; None otherwise."""
    cache = _token_cache()
    now = time.monotonic()
    known = cache.get(token_hash)
    if known is not None and now - known.read_at < TOKEN_CACHE_SECONDS:
        return known
    row = db.session.execute(
        select(ApiToken.id, ApiToken.company_id, ApiToken.last_used_at)
        .join(Company, Company.id == ApiToken.company_id)
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None), Company.active.is_(True))
    ).first()
    if row is None:
        cache.pop(token_hash, None)
        return None
    if known is not None:
        touch_due = known.touch_due
    elif row.last_used_at is None:
        touch_due = now
    else:
        touch_due = now + TOUCH_SECONDS - (utcnow() - row.last_used_at).total_seconds()
    known = _KnownToken(row.id, row.company_id, now, touch_due)
    cache[token_hash] = known
    return known


def _touch(known: _KnownToken) -> None:
    """Record last use at most once a minute (a write per routed call would cost more than the route).

    Best effort: when the database is busy with writers the stamp waits for the next minute rather than
    failing the request.
    """
    now = time.monotonic()
    if now >= known.touch_due:
        known.touch_due = now + TOUCH_SECONDS
        stmt = update(ApiToken).where(ApiToken.id == known.token_id).values(last_used_at=utcnow())
        try:
            db.session.execute(stmt)
            db.session.commit()
        except OperationalError:
            db.session.rollback()


def _forget_tokens(_mapper, _connection, target) -> None:
    """A token or company changed in this process: read every token again on its next use."""
    if has_app_context():
        _token_cache().clear()


for _model in (ApiToken, Company):
    event.listen(_model, "after_update", _forget_tokens)
    event.listen(_model, "after_delete", _forget_tokens)


def api_error(message: str, field: str | None = None, status: int = 400):
    """`{"error": ..., "field": ...}` with a status code."""
    return jsonify(error=message, field=field), status


class BodyError(ValueError):
    """The request body is not a JSON document the API can read."""


def json_body():
    """The request's JSON document; BodyError when it is not valid JSON or nested too deeply to read."""
    return parse_body(request.get_data(cache=False))


def parse_body(data: bytes):
    """A request body's JSON document; BodyError when it is not valid JSON or nested too deeply to read."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        # RecursionError: thousands of nested brackets (Python's parser recurses once per level).
        raise BodyError("the body is not valid JSON") from None


def switch_endpoint(path: str, name: str, handle: Callable[[object, "int | None"], tuple[int, str]]):
    """`POST /api/v1<path>` for the switches: the token checked, the body read as JSON (400 when it is not),
    then `handle(payload, company id)` answers (status, JSON text).

    Registers the Flask view (endpoint `api.<name>`) and returns `answer(body bytes, company id)`, the
    same answer for panel.api.fastpath.
    """

    def answer(data: bytes, company_id: int | None) -> tuple[int, str]:
        try:
            payload = parse_body(data)
        except BodyError as exc:
            return 400, error_text(str(exc))
        return handle(payload, company_id)

    @token_required
    def view():
        return json_response(*answer(request.get_data(cache=False), g.company_id))

    view.__name__ = view.__qualname__ = name
    bp.add_url_rule(path, name, view, methods=["POST"])
    return answer


def json_text(obj) -> str:
    """The body jsonify() sends for `obj` (the app's JSON provider: sorted keys, compact unless debug)."""
    provider = current_app.json
    compact = getattr(provider, "compact", None)
    if (compact is None and current_app.debug) or compact is False:
        return provider.dumps(obj, indent=2) + "\n"
    return provider.dumps(obj, separators=(",", ":")) + "\n"


def error_text(message: str, field: str | None = None) -> str:
    """The body of api_error(message, field)."""
    return json_text({"error": message, "field": field})


def json_response(status: int, text: str):
    """A response of the app with this status and JSON text."""
    return current_app.response_class(text, status=status, mimetype="application/json")


@bp.before_app_request
def _api_routing_errors():
    """An unknown path or a wrong method under /api/ answers the JSON error body, not the HTML page."""
    failure = request.routing_exception
    if failure is None or not request.path.startswith("/api/"):
        return None
    code = getattr(failure, "code", 404)
    if code == 405:
        response = api_error("method not allowed", None, 405)[0]
        response.status_code = 405
        response.headers["Allow"] = ", ".join(getattr(failure, "valid_methods", None) or [])
        return response
    if code in (301, 302, 307, 308):
        return None  # a redirect (e.g. a missing trailing slash) stays a redirect
    return api_error("not found", None, 404)


@bp.errorhandler(404)
def _not_found(_error):
    return api_error("not found", None, 404)


@bp.errorhandler(405)
def _method_not_allowed(_error):
    return api_error("method not allowed", None, 405)


@bp.errorhandler(413)
def _too_large(_error):
    return api_error("request body too large", None, 413)
