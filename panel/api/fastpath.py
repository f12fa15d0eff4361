"""A lean WSGI path for the three switch endpoints: `POST /api/v1/route`, `/api/v1/calls`, `/api/v1/cdrs`.

A switch call costs the panel one route query, two call events and one CDR. Through Flask each request also
pays for what a page needs and the API does not: the request context and its URL adapter, the session
cookie, the before/after hooks, the Response object; measured (bench/switch_profile.py, cProfile) that was
about a third of a route request's CPU. This middleware sits in front of Flask (`app.wsgi_app`) and answers
those three requests itself, with the same pieces the views use: `panel.api.auth.authenticate` (the same
token cache and rules), then the view module's `answer(body, company_id)` (the same validation, scoping,
service call and JSON text), and the same headers (security headers, `Cache-Control: no-store`). So each
answer is the view's answer, byte for byte; tests/routing/test_fastpath.py compares them.

Anything out of the ordinary goes to Flask untouched, before the body is read: another method or path, a
body without a Content-Length or over MAX_CONTENT_LENGTH (Flask answers 413). Database contention answers
503 as `panel.txn` does; an unexpected error is raised in tests (like Flask's PROPAGATE_EXCEPTIONS) and
otherwise logged and answered 500. A write is answered only after its transaction committed: the answer is
built from the result of `ingest` / `apply_events`, which return after their commit.

`PANEL_API_FASTPATH=0` (or the API_FASTPATH setting False) leaves every request to Flask.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

from flask import Flask
from flask.globals import _cv_app
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from panel import security_headers, txn
from panel.api import auth, calls, cdrs, route
from panel.api.worker import INLINE
from panel.extensions import db

Answer = Callable[[bytes, "int | None"], tuple[int, str]]
ANSWERS: dict[str, Answer] = {
    "/api/v1/route": route.answer,
    "/api/v1/calls": calls.answer,
    "/api/v1/cdrs": cdrs.answer,
}
# The headers every API answer carries: panel.security_headers adds them to Flask's responses, and Flask
# adds Vary: Cookie because a request hook reads the session.
HEADERS = [*security_headers.HEADERS.items(), ("Cache-Control", "no-store"), ("Vary", "Cookie")]


def install(app: Flask) -> None:
    """Put the fast path in front of the app, unless API_FASTPATH (PANEL_API_FASTPATH) is off."""
    enabled = app.config.get("API_FASTPATH", os.environ.get("PANEL_API_FASTPATH", "1") != "0")
    if enabled:
        app.wsgi_app = FastPath(app, app.wsgi_app)


class FastPath:
    """WSGI middleware: the switch endpoints answered directly, everything else passed to `wsgi_app`."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        post = environ.get("REQUEST_METHOD") == "POST"
        answer = ANSWERS.get(environ.get("PATH_INFO", "")) if post else None
        length = _length(environ, self.app.config.get("MAX_CONTENT_LENGTH")) if answer else None
        if answer is None or length is None:
            return self.wsgi_app(environ, start_response)
        data = environ["wsgi.input"].read(length) if length else b""
        current = _cv_app.get(None)
        try:
            if environ.get(INLINE):
                status, text, extra = self._answer_inline(answer, environ, data, current)
            elif current is not None and current.app is self.app:
                # Like Flask: a request inside an app context (tests) uses it and its session.
                status, text, extra = self._answer(answer, environ, data)
            else:
                with self.app.app_context():
                    status, text, extra = self._answer(answer, environ, data)
        except Exception:
            if self.app.testing or self.app.config.get("PROPAGATE_EXCEPTIONS"):
                raise
            self.app.logger.error("Exception on %s [POST]", environ.get("PATH_INFO"), exc_info=sys.exc_info())
            response = InternalServerError().get_response(environ)
            response.headers.extend(HEADERS)
            return response(environ, start_response)
        body = text.encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *HEADERS, *extra]
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
        return [body]

    def _answer_inline(self, answer: Answer, environ: dict, data: bytes, current) -> tuple[int, str, list]:
        """A route request in the switch worker's main thread (panel.api.worker), which answers nothing else:
        in an app context pushed once and kept in that thread (pushing and popping one per request cost a
        tenth of the route), its database session ended after each request that used one, as the teardown
        of a request's own context ends it."""
        if current is None or current.app is not self.app:
            self.app.app_context().push()
        try:
            return self._answer(answer, environ, data)
        finally:
            if db.session.registry.has():
                db.session.remove()

    @staticmethod
    def _answer(answer: Answer, environ: dict, data: bytes) -> tuple[int, str, list]:
        """Authenticate, then the view's answer; contention that outlived the retries answers 503."""
        # In the switch worker's main thread (panel.api.worker) no write may hold it up: the token's
        # last_used_at is left to the next request a pool thread answers (the switch's call events).
        touch = not environ.get(INLINE)
        known, refusal = auth.authenticate(environ.get("HTTP_AUTHORIZATION", ""), touch=touch)
        if known is None:
            return 401, auth.error_text(refusal, "Authorization"), []
        try:
            status, text = answer(data, known.company_id)
        except OperationalError as exc:
            if not txn.is_contention(exc):
                raise
            db.session.rollback()
            retry = [("Retry-After", str(txn.RETRY_AFTER_SECONDS))]
            return 503, auth.error_text("the database is busy; try again in a moment"), retry
        return status, text, []


def _length(environ: dict, limit: int | None) -> int | None:
    """The body's length when the fast path may read it: a plain Content-Length within the limit."""
    if environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if length < 0 or (limit is not None and length > limit):
        return None
    return length
