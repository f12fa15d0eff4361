"""The routing panel: a Flask application for VoIP wholesale carriers."""

import os

from flask import Flask, abort, g, redirect, request, url_for
from flask_login import current_user

from panel import txn  # importing it installs the SQLite engine setup (BEGIN IMMEDIATE for writes)
from panel.config import Config
from panel.extensions import csrf, db, login_manager, migrate

# (import path, url prefix). Each section is one blueprint package with `bp` in its __init__.py.
BLUEPRINTS = [
    ("panel.main", ""),
    ("panel.auth", "/auth"),
    ("panel.clients", "/clients"),
    ("panel.accounts", "/accounts"),
    ("panel.gateways", "/gateways"),
    ("panel.rates", "/rate-tables"),
    ("panel.codedecks", "/code-decks"),
    ("panel.timeprofiles", "/time-profiles"),
    ("panel.policies", "/policies"),
    ("panel.dids", "/dids"),
    ("panel.plans", "/plans"),
    ("panel.routetest", "/route-test"),
    ("panel.manager_views", "/manager"),
    ("panel.stats", "/statistics"),
    ("panel.audit_views", "/audit"),
    ("panel.companies", "/companies"),
    ("panel.users", "/users"),
    ("panel.tokens", "/tokens"),
    ("panel.imports", "/imports"),
    ("panel.whatif", "/whatif"),
    ("panel.api", "/api/v1"),
]

# Endpoints reachable without a login; the API authenticates with its own bearer tokens.
PUBLIC_ENDPOINTS = {"auth.login", "static", "main.health"}
# Writes a viewer may still make (its own session and password).
VIEWER_WRITES = {"auth.logout", "auth.password"}


def create_app(test_config: dict | None = None) -> Flask:
    """Create the panel: settings, extensions, blueprints, access rules and the manager thread."""
    app = Flask(
        __name__, template_folder="../templates", static_folder="../static", instance_relative_config=True
    )
    app.config.from_object(Config)
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    migrate.init_app(
        app, db, render_as_batch=True, directory=os.path.join(os.path.dirname(__file__), "..", "migrations")
    )
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."

    import importlib

    for module, prefix in BLUEPRINTS:
        bp = importlib.import_module(module).bp
        app.register_blueprint(bp, url_prefix=prefix or None)

    _install_access_rules(app)
    _install_template_helpers(app)
    _install_error_pages(app)
    from panel import writes

    writes.install(app)  # a stale edit answers a conflict with the current values, never a 500
    txn.install(app)
    from panel import security_headers

    security_headers.install(app)
    from panel.api import fastpath

    fastpath.install(app)  # the switch's three endpoints answered without a page request's machinery

    from panel import cli

    cli.register(app)

    if app.config.get("MANAGER_ENABLED") and not app.config.get("TESTING") and not _cli_command():
        from panel import manager

        manager.start(app)
    if app.config.get("DEMO_TRAFFIC") and not app.config.get("TESTING") and not _cli_command():
        from panel.demo import traffic

        traffic.start(app)
    return app


def _cli_command() -> bool:
    """True under `flask <command>` other than `flask run` (db upgrade, demo-data): no manager thread."""
    import sys

    return os.path.basename(sys.argv[0]) == "flask" and "run" not in sys.argv[1:]


def _install_access_rules(app: Flask) -> None:
    """Login required everywhere but the public endpoints; viewers never write (403)."""

    @app.before_request
    def _fresh_request_state():
        # g belongs to the app context, which tests keep across requests: start each request clean.
        for key in [k for k in g if k.startswith("_")]:
            g.pop(key)

    @app.before_request
    def _require_login():
        endpoint = request.endpoint or ""
        if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("api."):
            return None
        if request.endpoint is None:
            return None  # 404 follows
        if not current_user.is_authenticated:
            from panel.htmx import is_htmx

            target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
            if is_htmx():
                from flask import make_response

                response = make_response("", 401)
                response.headers["HX-Redirect"] = target
                return response
            return redirect(target)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not current_user.can_write:
            if endpoint not in VIEWER_WRITES:
                abort(403)
        return None

    @app.before_request
    def _refuse_nul_characters():
        # PostgreSQL cannot store U+0000 and nobody types it: refuse it in every query string and form field
        # (the API validates its JSON itself; CSV files are checked by panel.imports.reader).
        if (request.endpoint or "").startswith("api."):
            return None
        fields = list(request.args.items(multi=True))
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            fields += list(request.form.items(multi=True))
        if any("\x00" in key or "\x00" in value for key, value in fields):
            message = "Text may not contain the NUL character (\\0); remove it and try again."
            return message, 400, {"Content-Type": "text/plain; charset=utf-8"}
        return None


def _install_template_helpers(app: Flask) -> None:
    """Filters and globals every template uses."""
    from panel import templating

    templating.install(app)


_TOO_LARGE_PAGE = """{% extends "base.html" %}{% block title %}Upload too large{% endblock %}
{% block content %}<h1>Upload too large</h1><div class="form-errors" role="alert"><p>{{ message }}</p></div>
<p><a href="{{ request.referrer or url_for('main.index') }}">Back</a></p>{% endblock %}"""


def _install_error_pages(app: Flask) -> None:
    """A clear message when an upload is over MAX_CONTENT_LENGTH (the API answers JSON on its own)."""
    from flask import render_template_string

    from panel.htmx import is_htmx
    from panel.imports.reader import size_label

    @app.errorhandler(413)
    def _too_large(_error):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        message = f"The upload is larger than the limit of {size_label(limit)}: nothing was imported."
        if is_htmx():
            return message, 413, {"Content-Type": "text/plain; charset=utf-8"}
        return render_template_string(_TOO_LARGE_PAGE, message=message), 413
