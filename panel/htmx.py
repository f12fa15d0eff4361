"""The one place that knows htmx headers."""

from flask import make_response, render_template, request


def is_htmx() -> bool:
    """True when the request was made by htmx (and is not a history restore, which wants a whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(page: str, fragment: str | None = None, status: int = 200, **context):
    """Render the whole page, or only `fragment` when htmx asked; the answer varies by HX-Request."""
    template = fragment if (fragment and is_htmx()) else page
    response = make_response(render_template(template, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def trigger(response, event: str, detail: str | None = None):
    """Add an HX-Trigger event (for example a toast) to a response."""
    import json

    response.headers["HX-Trigger"] = json.dumps({event: detail or ""})
    return response


def redirect(url: str, status: int = 303):
    """Redirect: a normal 303 for browsers, HX-Redirect for htmx so the whole page changes."""
    from flask import redirect as flask_redirect

    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return flask_redirect(url, status)
