"""Routing > LCR sheet: route() over every code of a plan's deck for one originator and moment (issue 15.3).

Per destination: the customer rate, the routes in order (vendor, vendor rate, margin, appeal), and flags for
no route and for a negative margin. Filters: code prefix and country; paged (only the page's codes are
routed); CSV export of every filtered code. Scoped like every page; viewers may read it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, request, url_for
from flask_login import current_user
from sqlalchemy import func

from panel import htmx
from panel.access import get_or_404, reader_required, scoped, usable_rate_tables
from panel.extensions import db
from panel.models import Account, Client, RateTable, RoutingPlan
from panel.plans.fields import parse_expires
from panel.routing.snapshot import decimal_text
from panel.whatif import bp, overlay, service, sheet

PER_PAGE = 100
MAX_ACCOUNTS = 2000
CSV_HEADER = [
    "code",
    "name",
    "country",
    "customer_rate",
    "status",
    "flags",
    "position",
    "vendor",
    "vendor_rate",
    "margin",
    "appeal",
]


def csv_response(filename: str, header: list[str], rows):
    """A CSV download through the one export writer (formula cells neutralised)."""
    from panel.imports import export

    return export.response(filename, header, rows)


class SheetArgs:
    """The sheet's query string, checked against the user's scope (404 for an object outside it)."""

    def __init__(self):
        args = request.args
        self.errors: dict[str, str] = {}
        self.plan = get_or_404(RoutingPlan, args["plan_id"]) if args.get("plan_id") else None
        self.account = get_or_404(Account, args["account_id"]) if args.get("account_id") else None
        self.rate_table = None
        if args.get("rate_table_id"):
            self.rate_table = db.session.scalar(
                usable_rate_tables(current_user.company_id).where(RateTable.id == _int(args["rate_table_id"]))
            ) or get_or_404(RateTable, args["rate_table_id"])
        self.prefix = "".join(ch for ch in args.get("prefix", "") if ch.isdigit())[:20]
        self.country = args.get("country", "").strip()[:60]
        self.at_text = args.get("at", "").strip()
        try:
            self.at = parse_expires(self.at_text) or datetime.now(UTC).replace(second=0, microsecond=0)
        except ValueError as exc:
            self.errors["at"] = str(exc)
            self.at = datetime.now(UTC)
        self.page = max(1, _int(args.get("page")) or 1)
        # With a plan alone, the sheet prices with the rate table most of the plan's customers have.
        self.defaulted = False
        if self.plan is not None and self.account is None and self.rate_table is None:
            self.rate_table = _customers_table(self.plan)
            self.defaulted = self.rate_table is not None
            if self.rate_table is None:
                self.errors["account_id"] = (
                    "No customer of this plan has a rate table: choose an originator account or a rate table."
                )

    @property
    def ready(self) -> bool:
        """A plan and an originator (or a rate table) are chosen, and nothing is wrong."""
        return self.plan is not None and not self.errors

    def query(self, **changes) -> dict:
        """The arguments as a query string dict (for links)."""
        values = {
            "plan_id": self.plan.id if self.plan else "",
            "account_id": self.account.id if self.account else "",
            "rate_table_id": self.rate_table.id if self.rate_table else "",
            "at": self.at_text,
            "prefix": self.prefix,
            "country": self.country,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}


def _customers_table(plan: RoutingPlan) -> RateTable | None:
    """The originator rate table most of the plan's customers (the user's clients routed by it) have."""
    usable = usable_rate_tables(current_user.company_id).with_only_columns(RateTable.id)
    found = db.session.execute(
        scoped(Client)
        .where(Client.routing_plan_id == plan.id, Client.orig_rate_table_id.in_(usable.order_by(None)))
        .with_only_columns(Client.orig_rate_table_id, func.count())
        .group_by(Client.orig_rate_table_id)
        .order_by(func.count().desc(), Client.orig_rate_table_id)
        .limit(1)
    ).first()
    return db.session.get(RateTable, found[0]) if found else None


def _int(text) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _rows(args: SheetArgs, codes) -> list[sheet.SheetRow]:
    """The sheet rows of these codes."""
    snapshot = service.current_snapshot()
    if args.plan.id not in snapshot.plans:
        abort(409, "The routing plan is not in the routing data yet: wait for the manager's next run.")
    origin = overlay.originator(
        snapshot,
        args.account.id if args.account else None,
        args.plan.id,
        args.rate_table.id if args.rate_table else None,
        args.plan.company_id,
    )
    return sheet.sheet(snapshot, origin, codes, args.at)


def _choices():
    """Plans, originator accounts and rate tables the user may pick."""
    plans = db.session.execute(
        scoped(RoutingPlan).with_only_columns(RoutingPlan.id, RoutingPlan.name).order_by(RoutingPlan.name)
    ).all()
    accounts = db.session.execute(
        scoped(Account)
        .join(Client, Account.client_id == Client.id)
        .where(Account.orig_enabled.is_(True))
        .with_only_columns(Account.id, Client.name, Account.name)
        .order_by(Client.name, Account.name)
        .limit(MAX_ACCOUNTS)
    ).all()
    tables = db.session.execute(
        usable_rate_tables(current_user.company_id).with_only_columns(RateTable.id, RateTable.name)
    ).all()
    return plans, [(a, f"{c} / {n}") for a, c, n in accounts], tables


@bp.route("/lcr")
@reader_required
def lcr():
    """The LCR sheet of a plan, one page of destinations."""
    args = SheetArgs()
    rows, total, pages = [], 0, 0
    if args.ready:
        deck_id = args.plan.code_deck_id
        codes = service.deck_codes(deck_id, args.prefix, args.country)
        total = len(codes)
        pages = max(1, -(-total // PER_PAGE))
        page = min(args.page, pages)
        args.page = page
        rows = _rows(args, codes[(page - 1) * PER_PAGE : page * PER_PAGE])
    plans, accounts, tables = _choices() if not htmx.is_htmx() else ([], [], [])
    return htmx.render(
        "whatif/lcr.html",
        "whatif/_lcr_table.html",
        args=args,
        rows=rows,
        total=total,
        pages=pages,
        plans=plans,
        accounts=accounts,
        tables=tables,
        money=decimal_text,
        title="LCR sheet",
    )


@bp.route("/lcr.csv")
@reader_required
def lcr_csv():
    """Every filtered destination of the sheet as CSV: one line per route (or one for no route)."""
    args = SheetArgs()
    if not args.ready:  # nothing chosen yet: the header line alone
        return csv_response("lcr.csv", CSV_HEADER, [])
    rows = _rows(args, service.deck_codes(args.plan.code_deck_id, args.prefix, args.country))

    def lines():
        for row in rows:
            flags = " ".join(
                f for f, on in (("no_route", row.no_route), ("negative_margin", row.negative)) if on
            )
            base = [
                row.code,
                row.name,
                row.country,
                decimal_text(row.customer_rate),
                row.reason or "ok",
                flags,
            ]
            if not row.routes:
                yield [*base, "", "", "", "", ""]
            for position, r in enumerate(row.routes, start=1):
                yield [
                    *base,
                    position,
                    r.label,
                    decimal_text(r.vendor_rate),
                    decimal_text(r.margin),
                    f"{r.appeal:.4f}",
                ]

    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in args.plan.name)[:60] or "plan"
    return csv_response(f"lcr-{args.plan.id}-{name}-{args.at:%Y%m%d-%H%M}.csv", CSV_HEADER, lines())


def sheet_link(**query) -> str:
    """URL of the LCR sheet with these arguments."""
    return url_for("whatif.lcr", **query)
