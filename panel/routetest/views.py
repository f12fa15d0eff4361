"""Routing > Route test: the same computation as the switch API, shown in full for an operator.

A GET form (so the URL can be shared) that answers as you type: pick an originator account, or type the
source IP / login / ANI and gateway the switch would send; the number; the moment (UTC). The page shows the
identified account, plan, customer rate, the matched rules in order, the routes with vendor rate, margin and
appeal, and every rejected candidate with its reason in words. It calls `panel.routing.engine.route` on this
process's routing snapshot, limited to the user's company subtree like an API token of that company.

Routing data: before answering, the page takes the snapshot the Traffic Rules manager last published (a
cheap version check; it updates only when data changed), and "Refresh now" (operators and admins) brings it
up to date with the database at once, reading again only what changed (`panel.snapshots.update`: one
update per process at a time, however many ask), so an edit made a moment ago can be tested without waiting
for the manager's next run. A viewer's `refresh=1` is ignored with a message: it never costs a build.
"""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime

from flask import current_app, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.routing import BuildError

from panel import htmx, livecalls, scope, snapshots
from panel.access import reader_required
from panel.api.route import NUMBER, RequestError, parse_moment
from panel.extensions import db
from panel.models import Account, Client, Gateway, Rate
from panel.routetest import bp
from panel.routetest.misses import explain
from panel.routing.engine import REASON_TEXT, RouteQuery, route
from panel.routing.snapshot import decimal_text

FIELDS = ("account_id", "src_ip", "login", "ani", "gateway", "number", "at")
MAX_ACCOUNTS = 2000


def _args() -> dict[str, str]:
    """The form's values from the query string, trimmed."""
    return {key: request.args.get(key, "").strip() for key in FIELDS}


def _validate(values: dict[str, str]) -> tuple[RouteQuery | None, dict[str, str]]:
    """A query from the form, or the errors by field; (None, {}) while the form is still empty."""
    errors: dict[str, str] = {}
    number = values["number"]
    if not number:
        return None, {}
    if not NUMBER.match(number) or not number.isascii():
        errors["number"] = "Digits only (a leading + is dropped; # only at the end of a tech prefix)."
    account_id = None
    if values["account_id"]:
        try:
            account_id = int(values["account_id"])
        except ValueError:
            errors["account_id"] = "Choose an account from the list."
        else:
            if not scope.in_scope(Account, account_id):
                errors["account_id"] = "No such account in your companies."
    src_ip = values["src_ip"] or None
    if src_ip:
        try:
            src_ip = str(ipaddress.ip_address(src_ip))
        except ValueError:
            errors["src_ip"] = f"{src_ip!r} is not an IPv4 or IPv6 address."
    if account_id is None and not (src_ip or values["login"] or values["ani"]) and "account_id" not in errors:
        errors["account_id"] = "Pick an account, or give the source IP, login or ANI the switch would send."
    at = None
    if values["at"]:
        try:
            at = parse_moment(values["at"])
        except RequestError as error:
            errors["at"] = error.message
    if errors:
        return None, errors
    query = RouteQuery(
        number=number.removeprefix("+"),
        src_ip=src_ip,
        login=values["login"] or None,
        ani=values["ani"] or None,
        gateway=values["gateway"] or None,
        at=at,
        account_id=account_id,
        company_id=current_user.company_id,
    )
    return query, {}


def _current_snapshot(refresh: bool):
    """The snapshot to route with: brought up to date now when asked, else the manager's latest."""
    if refresh:
        return snapshots.update()
    try:
        from panel import manager

        sync = getattr(manager, "sync_snapshot", None)
        if sync is not None:
            sync(current_app._get_current_object())
    except Exception:  # noqa: BLE001 - a failed version check must not stop the page; use what we have
        current_app.logger.exception("route test: snapshot version check failed")
    return snapshots.get_snapshot()


def _originator_choices() -> list[tuple[int, str]]:
    """Originator-enabled accounts of the user's companies, by client and name (at most MAX_ACCOUNTS)."""
    stmt = (
        scope.scoped(Account)
        .join(Client, Account.client_id == Client.id)
        .where(Account.orig_enabled.is_(True))
        .with_only_columns(Account.id, Client.name, Account.name)
        .order_by(Client.name, Account.name)
        .limit(MAX_ACCOUNTS + 1)
    )
    return [(aid, f"{client} / {name}") for aid, client, name in db.session.execute(stmt)]


def _gateway_choices() -> list[str]:
    """Names of the gateways of the user's companies."""
    stmt = scope.scoped(Gateway).with_only_columns(Gateway.name).distinct().order_by(Gateway.name)
    return list(db.session.scalars(stmt))


def _link(endpoint: str, **values) -> str | None:
    """A URL when that section has the page, else None (sections are built independently)."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def _code_names(result) -> dict[tuple[int, str], str]:
    """Destination names of the customer and vendor codes shown, from their rate tables (one query)."""
    pairs = set()
    if result.customer_table is not None and result.customer_code:
        pairs.add((result.customer_table.id, result.customer_code))
    for item in list(result.routes) + list(result.rejections):
        table = item.account.term_rates if item.account is not None else None
        if table is not None and item.vendor_code:
            pairs.add((table.id, item.vendor_code))
    if not pairs:
        return {}
    tables = {t for t, _ in pairs}
    codes = {c for _, c in pairs}
    stmt = select(Rate.rate_table_id, Rate.code, Rate.name).where(
        Rate.rate_table_id.in_(tables), Rate.code.in_(codes), Rate.name != ""
    )
    return {(t, c): n for t, c, n in db.session.execute(stmt) if (t, c) in pairs}


def _share_url(values: dict[str, str]) -> str:
    """This test's URL without empty fields (and without `refresh`), to share or bookmark."""
    return url_for("routetest.index", **{k: v for k, v in values.items() if v})


@bp.route("/")
@reader_required
def index():
    """The route test form and, once a number is given, the answer."""
    values = _args()
    query, errors = _validate(values)
    asked = request.args.get("refresh") == "1"
    can_refresh = bool(getattr(current_user, "can_write", False))
    refresh = asked and can_refresh
    result = None
    snapshot = None
    misses = []
    if query is not None:
        snapshot = _current_snapshot(refresh)
        # A fixed seed per test URL: the same test shows the same shuffle when reloaded.
        rng = random.Random(request.full_path)
        result = route(snapshot, query, rng=rng, live=livecalls.counts())
        if result.reason == "unknown_originator" and query.account_id is None:
            misses = explain(query.number, query.src_ip, query.login, query.ani, query.gateway)
    elif refresh:
        snapshot = snapshots.update()
    if snapshot is None:
        snapshot = snapshots.current()
    response = htmx.render(
        "routetest/index.html",
        "routetest/_result.html",
        values=values,
        errors=errors,
        result=result,
        snapshot=snapshot,
        now=datetime.now(UTC),
        accounts=_originator_choices() if not htmx.is_htmx() else [],
        max_accounts=MAX_ACCOUNTS,
        gateways=_gateway_choices() if not htmx.is_htmx() else [],
        code_names=_code_names(result) if result is not None else {},
        reason_text=REASON_TEXT,
        money=decimal_text,
        link=_link,
        share_url=_share_url(values),
        can_refresh=can_refresh,
        refresh_refused=asked and not can_refresh,
        misses=misses,
    )
    if asked and htmx.is_htmx():
        response.headers["HX-Push-Url"] = _share_url(values)
    return response
