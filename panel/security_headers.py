"""Security headers on every response: no sniffing, no framing, a Content-Security-Policy, no caching.

The policy allows scripts and style sheets only from the panel itself: every script lives in static/js/
(no inline script element, no on*= handler, no `javascript:` link) and htmx runs with `allowEval: false` and
without its injected indicator <style> (see the `htmx-config` meta tag in templates/base.html and the
indicator rules in static/css/panel.css). Style *attributes* stay allowed (`style-src-attr`): they cannot run
code, and many templates use them for one-off layout.

Every response except static files is `Cache-Control: no-store`: pages show balances and, on demand, account
passwords and new API tokens, which must never be kept by the browser or a proxy.
"""

from flask import Flask, request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
}


def install(app: Flask) -> None:
    """Add the headers to every response of the app."""

    @app.after_request
    def _security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            # no-store is the strictest answer, so it replaces whatever a view set; static files keep
            # Flask's revalidation.
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        return response
