"""Jinja filters and globals shared by every template."""

from datetime import datetime
from decimal import Decimal

from flask import Flask, request, url_for

# The navigation of SPEC's sections: (group, [(label, endpoint)]).
NAVIGATION = [
    (
        "Management",
        [
            ("Clients", "clients.index"),
            ("Accounts", "accounts.index"),
            ("Gateways", "gateways.index"),
            ("DIDs", "dids.index"),
        ],
    ),
    ("Rates", [("Rate tables", "rates.index"), ("Code decks", "codedecks.index")]),
    (
        "Routing",
        [
            ("Routing plans", "plans.index"),
            ("Routing policies", "policies.index"),
            ("Time profiles", "timeprofiles.index"),
            ("Route test", "routetest.index"),
            ("LCR sheet", "whatif.lcr"),
        ],
    ),
    ("Statistics", [("Calls", "stats.index")]),
    (
        "System",
        [
            ("Traffic Rules manager", "manager_views.index"),
            ("Audit log", "audit_views.index"),
            ("Companies", "companies.index"),
            ("Users", "users.index"),
            ("API tokens", "tokens.index"),
        ],
    ),
]


def money(value, places: int = 2) -> str:
    """A Decimal as money with thousands separators: 1,234.50."""
    if value is None:
        return ""
    return f"{Decimal(value):,.{places}f}"


def rate(value) -> str:
    """A per-minute rate with its significant decimals (up to 6)."""
    if value is None:
        return ""
    text = f"{Decimal(value):.6f}".rstrip("0")
    return text[:-1] if text.endswith(".") else text


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp as the operator reads it."""
    return value.strftime(fmt) if value else ""


def url_with(**changes) -> str:
    """The current URL with some query arguments changed (None removes one): keeps filters when paging."""
    view_args = request.view_args or {}
    # A query argument named like a URL variable (`/plans/5/?plan_id=1`) or like an option of url_for
    # (`_external`, `_anchor`) is not a filter: dropped, or url_for would get it twice (a 500) or obey it.
    args = {k: v for k, v in request.args.to_dict().items() if k not in view_args and not k.startswith("_")}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint, **view_args, **args)


def expiry_mark(expires_at: datetime | None, now: datetime):
    """A rule's expiry mark at `now` (panel.expiry.Mark: "expires in 3 d" soon, or expired), or None."""
    from panel import expiry

    return expiry.mark(expires_at, now)


def install(app: Flask) -> None:
    """Register the filters and globals."""
    app.jinja_env.filters.update(money=money, rate=rate, when=when)
    app.jinja_env.globals.update(NAVIGATION=NAVIGATION, url_with=url_with)
    app.jinja_env.globals.update(expiry_mark=expiry_mark)
