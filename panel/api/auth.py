"""Bearer-token authentication and JSON errors for the API."""

import base64
import hashlib
import secrets
from functools import wraps

from flask import g, jsonify, request
from sqlalchemy import select, update

from panel.api import bp
from panel.extensions import db
from panel.models import ApiToken
from panel.models.types import utcnow

TOKEN_PREFIX = "rp_"  # noqa: S105 - a visible prefix, not a secret


def new_token() -> tuple[str, str]:
    """A new token and its stored hash: the token is shown once, only the hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """SHA-256 of the token (tokens are long and random, so a fast hash is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_required(view):
    """Authenticate the request by its bearer token; g.api_token and g.company_id are set. 401 otherwise."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "basic":
            token = _basic_auth_token(token)
        elif scheme.lower() != "bearer":
            token = ""
        if not token.strip():
            return api_error("missing bearer token", "Authorization", 401)
        api_token = db.session.scalar(
            select(ApiToken).where(
                ApiToken.token_hash == hash_token(token.strip()), ApiToken.revoked_at.is_(None)
            )
        )
        if api_token is None or not api_token.company.active:
            return api_error("invalid or revoked token", "Authorization", 401)
        g.api_token = api_token
        g.company_id = api_token.company_id
        _touch(api_token)
        return view(*args, **kwargs)

    return wrapper


def _basic_auth_token(credentials: str) -> str:
    """The token sent as HTTP Basic credentials (`any-user:<token>`): switches such as Kamailio's
    http_client keep a connection alive only with a fixed connection, which can carry Basic auth but no
    Authorization: Bearer header (docs/kamailio/README.md)."""
    try:
        user, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return ""
    return password or user


def _touch(api_token: ApiToken) -> None:
    """Record last use at most once a minute (a write per routed call would cost more than the route)."""
    now = utcnow()
    if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
        db.session.execute(update(ApiToken).where(ApiToken.id == api_token.id).values(last_used_at=now))
        db.session.commit()


def api_error(message: str, field: str | None = None, status: int = 400):
    """`{"error": ..., "field": ...}` with a status code."""
    return jsonify(error=message, field=field), status


@bp.errorhandler(404)
def _not_found(_error):
    return api_error("not found", None, 404)


@bp.errorhandler(405)
def _method_not_allowed(_error):
    return api_error("method not allowed", None, 405)


@bp.errorhandler(413)
def _too_large(_error):
    return api_error("request body too large", None, 413)
