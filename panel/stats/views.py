"""Statistics (SPEC §8): calls with filters and totals, vendor quality by destination, balancing, live calls.

Scope: a user sees the calls whose originator or terminator belongs to one of its companies. Names of the
other side's accounts, and charges or costs of accounts outside the user's companies, are not shown; the
totals say how many calls that concerns.
"""

from datetime import UTC, datetime, time, timedelta

from flask import current_app, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased, selectinload

from panel import livecalls, paging, search
from panel.access import reader_required
from panel.accounts.views import client_filter_choices
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.htmx import render
from panel.imports import export as csv_export
from panel.listing import paginate
from panel.models import Account, CallStat, Client, LiveCall, Rate, RoutingPlan, RoutingRule
from panel.models.types import utcnow
from panel.quality import acd_sql, asr_sql
from panel.scope import get_or_404, scope_condition, scoped, user_company_ids
from panel.stats import bp
from panel.stats.forms import WINDOWS, CallFilterForm, QualityFilterForm
from panel.stats.queries import (
    ANSWERED,
    ANSWERED_SECONDS,
    CallFilter,
    balancing_groups,
    client_sides,
    filter_totals,
)

DEFAULT_DAYS = 7


def _visible_clients():
    """Subquery: ids of the clients of the user's companies."""
    return select(Client.id).where(Client.company_id.in_(list(user_company_ids())))


def _day_start(day) -> datetime:
    return datetime.combine(day, time(), UTC)


def _client_and_account(form, every: str) -> tuple[Client | None, Account | None]:
    """Fill a filter's client choices and return the client and account it names (404 outside the scope); an
    account of another client than the one chosen is dropped from the filter.

    The choices are the accounts list's client filter (panel.accounts): the first clients of the user's scope
    by name, those whose name contains the text typed beside the filter (`client_q`), and the chosen one;
    never the whole list (a carrier may have 10,000 clients).
    """
    choices, form.client_id.more = client_filter_choices(form)
    form.client_id.choices = [("", every), *choices[1:]]
    client = get_or_404(Client, form.client_id.data) if form.client_id.data else None
    account = get_or_404(Account, form.account_id.data) if form.account_id.data else None
    if client is not None and account is not None and account.client_id != client.id:
        account = None
        form.account_id.data = None
    return client, account


# --- calls ------------------------------------------------------------------------------------------------


def _call_filter() -> tuple[CallFilterForm, list, dict]:
    """The calls filter from the query string: the form (with its errors), SQL conditions, and context."""
    form = CallFilterForm(formdata=request.args)
    form.validate()
    # ?hours=24: the last hours up to now (the home page's figures link here with exactly its window).
    hours = request.args.get("hours", type=int)
    hours = hours if hours and 1 <= hours <= 24 * 31 else None
    if "date_from" not in request.args and "date_to" not in request.args and hours is None:
        form.date_from.data = utcnow().date() - timedelta(days=DEFAULT_DAYS - 1)
    client, account = _client_and_account(form, "every client")
    accounts = client.accounts if client is not None else ([account] if account is not None else [])
    form.account_id.choices = as_choices(
        [(a.id, a.name) for a in accounts], "every account" if client or account else "choose a client first"
    )

    ids = user_company_ids()
    visible = _visible_clients()
    orig_visible = CallStat.orig_client_id.in_(visible)
    term_visible = CallStat.term_client_id.in_(visible)
    conditions = [scope_condition(CallStat, ids)]
    direction = form.direction.data or ""
    since = until = None
    if form.date_from.data and not form.date_from.errors:
        since = _day_start(form.date_from.data)
    if form.date_to.data and not form.date_to.errors:
        until = _day_start(form.date_to.data + timedelta(days=1))
    if hours is not None:
        recent = utcnow() - timedelta(hours=hours)
        since = max(since, recent) if since is not None else recent
    if account is not None:
        sides = {"orig": [CallStat.orig_account_id], "term": [CallStat.term_account_id]}.get(
            direction, [CallStat.orig_account_id, CallStat.term_account_id]
        )
        conditions.append(or_(*(column == account.id for column in sides)))
    elif client is not None:
        # Either side: only the sides the client's calls of the window are on (a customer's calls are all
        # originated), so the list reads one index in its order instead of merging two and sorting.
        sides = {"orig": ["orig"], "term": ["term"]}.get(direction) or client_sides(client.id, since, until)
        columns = {"orig": CallStat.orig_client_id, "term": CallStat.term_client_id}
        conditions.append(or_(*(columns[side] == client.id for side in sides or ("orig", "term"))))
    elif direction == "orig":
        conditions.append(orig_visible)
    elif direction == "term":
        conditions.append(term_visible)
    if form.answered.data == "yes":
        conditions.append(CallStat.answered.is_(True))
    elif form.answered.data == "no":
        conditions.append(CallStat.answered.is_(False))
    number = form.number.data.lstrip("+") if form.number.data and not form.number.errors else ""
    if number:
        conditions.append(search.prefix(CallStat.number, number))
    base = list(conditions)  # without the window: the list narrows it to a cursor (call_page)
    conditions += _between(since, until)
    query = CallFilter(conditions, orig_visible, term_visible, ids, since, until)
    query.client_id = client.id if client is not None else None
    query.direction, query.answered = direction, form.answered.data or ""
    query.by_call = account is not None or bool(number)
    context = {"hours": hours, "client": client, "account": account, "query": query, "base": base}
    return form, conditions, context


def _between(since: datetime | None, until: datetime | None) -> list:
    """The calls from `since` up to (not including) `until`, either None for no bound."""
    return [
        *([CallStat.start_at >= since] if since is not None else []),
        *([CallStat.start_at < until] if until is not None else []),
    ]


def _filter_args(form: CallFilterForm) -> dict:
    """The filter as query arguments (for the export link)."""
    args = {}
    for name in ("client_id", "account_id", "direction", "answered", "number"):
        value = getattr(form, name).data
        if value not in (None, ""):
            args[name] = value
    for name in ("date_from", "date_to"):
        value = getattr(form, name).data
        args[name] = value.isoformat() if value else ""
    return args


CALL_SORTS = {
    "start": CallStat.start_at,
    "number": CallStat.number,
    "duration": CallStat.duration,
    "charge": CallStat.customer_charge,
    "cost": CallStat.vendor_cost,
}


def call_page(base: list, query: CallFilter, total: int | None) -> tuple[paging.Page, dict]:
    """One page of the calls matching `base` (the filter without its window) in the query's window, read
    through the sort column's index (keyset pages), and the names of the clients and accounts it shows that
    the user may see: {"client": {id: name}, "account": {id: name}}.

    Under the default sort a cursor's start bounds the window too: the database then reads the index from the
    cursor on (SQLite otherwise starts its range at the window's start and walks up to a week of calls to
    reach a page near the newest).
    """
    since, until = query.since, query.until
    window = _between(since, until)
    sort, keys = paging.keys_from_request(CALL_SORTS, "-start", CallStat.id.desc())
    after, before = request.args.get("after"), request.args.get("before")
    if sort.lstrip("-") == "start" and not request.args.get("last") and (after or before):
        values = paging.decode_cursor(after or before, sort, keys)
        if values is not None:
            at = values[0] if values[0].tzinfo is not None else values[0].replace(tzinfo=UTC)
            if bool(after) == (sort == "start"):  # toward later calls: from the cursor's start on
                window = _between(at if since is None or at > since else since, until)
            elif until is None or at < until:  # toward earlier calls: up to the cursor's start
                window = [*_between(since, None), CallStat.start_at <= at]
    conditions = [*base, *window]
    stmt = select(CallStat).where(*conditions)
    pagination = paginate(stmt, CALL_SORTS, "-start", CallStat.id.desc(), total=total)
    calls = pagination.items
    client_ids = {c for call in calls for c in (call.orig_client_id, call.term_client_id) if c}
    account_ids = {a for call in calls for a in (call.orig_account_id, call.term_account_id) if a}
    clients = dict(
        db.session.execute(
            select(Client.id, Client.name).where(
                Client.id.in_(client_ids), scope_condition(Client, user_company_ids())
            )
        ).all()
    )
    accounts = dict(
        db.session.execute(
            select(Account.id, Account.name).where(
                Account.id.in_(account_ids), Account.client_id.in_(list(clients))
            )
        ).all()
    )
    return pagination, {"client": clients, "account": accounts}


@bp.route("/")
@reader_required
def index():
    """The calls list with its filters and totals (attempts, ASR, ACD, minutes, revenue, cost, margin)."""
    form, conditions, context = _call_filter()
    summary = filter_totals(context["query"])
    # The totals counted the calls already: no count of the list.
    pagination, names = call_page(context["base"], context["query"], summary.attempts)
    return render(
        "stats/calls.html",
        "stats/_calls.html",
        form=form,
        summary=summary,
        pagination=pagination,
        names=names,
        export_args=_filter_args(form),
        **context,
    )


EXPORT_HEADER = [
    "start",
    "call_id",
    "orig_client",
    "orig_account",
    "number",
    "orig_code",
    "term_client",
    "term_account",
    "term_code",
    "duration",
    "answered",
    "sip_code",
    "pdd_ms",
    "orig_billed",
    "customer_rate",
    "customer_charge",
    "term_billed",
    "vendor_rate",
    "vendor_cost",
]


@bp.route("/export")
@reader_required
def export():
    """The filtered calls as CSV (UTC times; charges and costs of other companies' accounts left empty)."""
    form, conditions, _context = _call_filter()
    oa, ta, oc, tc = aliased(Account), aliased(Account), aliased(Client), aliased(Client)
    stmt = (
        select(
            CallStat.start_at,
            CallStat.call_id,
            CallStat.orig_client_id,
            oc.name,
            oa.name,
            CallStat.number,
            CallStat.orig_code,
            CallStat.term_client_id,
            tc.name,
            ta.name,
            CallStat.term_code,
            CallStat.duration,
            CallStat.answered,
            CallStat.sip_code,
            CallStat.pdd_ms,
            CallStat.orig_billed,
            CallStat.customer_rate,
            CallStat.customer_charge,
            CallStat.term_billed,
            CallStat.vendor_rate,
            CallStat.vendor_cost,
        )
        .outerjoin(oa, oa.id == CallStat.orig_account_id)
        .outerjoin(oc, oc.id == CallStat.orig_client_id)
        .outerjoin(ta, ta.id == CallStat.term_account_id)
        .outerjoin(tc, tc.id == CallStat.term_client_id)
        .where(*conditions)
        .order_by(CallStat.start_at, CallStat.id)
        .execution_options(yield_per=2000)
    )
    visible = set(db.session.scalars(_visible_clients()))

    def rows():
        for r in db.session.execute(stmt):
            orig_ok, term_ok = r[2] in visible, r[7] in visible
            yield [
                r[0].strftime("%Y-%m-%d %H:%M:%S"),
                r[1],
                r[3] if orig_ok else "",
                r[4] if orig_ok else "",
                r[5],
                r[6],
                r[8] if term_ok else "",
                r[9] if term_ok else "",
                r[10],
                r[11],
                1 if r[12] else 0,
                r[13],
                r[14],
                r[15] if orig_ok else "",
                r[16] if orig_ok else "",
                r[17] if orig_ok else "",
                r[18] if term_ok else "",
                r[19] if term_ok else "",
                r[20] if term_ok else "",
            ]

    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return csv_export.response(f"calls-{stamp}.csv", EXPORT_HEADER, rows())


# --- quality ----------------------------------------------------------------------------------------------


@bp.route("/quality")
@reader_required
def quality():
    """Per vendor and destination (vendor code): attempts, ASR, ACD, PDD, minutes and cost over a window."""
    form = QualityFilterForm(formdata=request.args)
    form.validate()
    window_hours = int(current_app.config.get("QUALITY_WINDOW_HOURS", 24))
    if not form.hours.data:
        form.hours.data = window_hours
    choices = list(WINDOWS)
    if form.hours.data not in dict(WINDOWS):
        form.hours.data = max(1, min(int(form.hours.data), 24 * 31))
        choices.append((form.hours.data, f"last {form.hours.data} hours"))
    form.hours.choices = as_choices(choices)
    client, account = _client_and_account(form, "every vendor")
    accounts = [a for a in client.accounts if a.term_enabled] if client is not None else []
    if account is not None and account not in accounts:
        accounts.append(account)
    form.account_id.choices = as_choices(
        [(a.id, a.name) for a in accounts], "every account" if client else "choose a vendor first"
    )

    since = utcnow() - timedelta(hours=form.hours.data)
    min_calls = int(current_app.config.get("QUALITY_MIN_CALLS", 10))
    attempts = func.count()
    answered = func.coalesce(func.sum(ANSWERED), 0)
    seconds = func.coalesce(func.sum(ANSWERED_SECONDS), 0)
    asr = asr_sql(answered, attempts)
    acd = acd_sql(answered, seconds)
    stmt = (
        select(
            CallStat.term_client_id,
            CallStat.term_account_id,
            CallStat.term_code.label("code"),
            attempts.label("attempts"),
            answered.label("answered"),
            seconds.label("seconds"),
            asr.label("asr"),
            acd.label("acd"),
            func.avg(CallStat.pdd_ms).label("pdd"),
            func.coalesce(func.sum(CallStat.vendor_cost), 0).label("cost"),
        )
        .where(
            CallStat.start_at >= since,
            CallStat.term_account_id.is_not(None),
            CallStat.term_client_id.in_(_visible_clients()),
        )
        .group_by(CallStat.term_client_id, CallStat.term_account_id, CallStat.term_code)
    )
    if client is not None:
        stmt = stmt.where(CallStat.term_client_id == client.id)
    if account is not None:
        stmt = stmt.where(CallStat.term_account_id == account.id)
    if form.code.data and not form.code.errors:
        stmt = stmt.where(search.prefix(CallStat.term_code, form.code.data))
    if form.min_attempts.data and not form.min_attempts.errors:
        stmt = stmt.having(attempts >= form.min_attempts.data)
    sortable = {
        "attempts": attempts,
        "asr": asr,
        "acd": acd,
        "pdd": func.avg(CallStat.pdd_ms),
        "code": CallStat.term_code,
        "cost": func.coalesce(func.sum(CallStat.vendor_cost), 0),
    }
    sort = paging.sort_key(sortable, "-attempts")
    keys = [paging.Key(sortable[sort.lstrip("-")], sort.startswith("-"))]
    keys += [paging.Key(c) for c in (CallStat.term_code, CallStat.term_client_id, CallStat.term_account_id)]
    # Grouped rows: numbered pages (offset) over a capped count of the groups.
    pagination = paging.paginate(stmt, keys, sort=sort, rows=True)
    names = _names(pagination.items)
    return render(
        "stats/quality.html",
        "stats/_quality.html",
        form=form,
        pagination=pagination,
        names=names,
        min_calls=min_calls,
        window_hours=window_hours,
    )


def _names(rows) -> dict:
    """Client and account names, and destination names from the vendors' rate tables, for a page of rows."""
    client_ids = {r.term_client_id for r in rows if r.term_client_id}
    account_ids = {r.term_account_id for r in rows if r.term_account_id}
    clients = dict(db.session.execute(select(Client.id, Client.name).where(Client.id.in_(client_ids))).all())
    accounts = {}
    tables = {}
    if account_ids:
        stmt = (
            select(
                Account.id, Account.name, func.coalesce(Account.term_rate_table_id, Client.term_rate_table_id)
            )
            .join(Client, Client.id == Account.client_id)
            .where(Account.id.in_(account_ids))
        )
        for account_id, name, table_id in db.session.execute(stmt):
            accounts[account_id] = name
            tables[account_id] = table_id
    destinations = {}
    codes = {r.code for r in rows if r.code}
    table_ids = {t for t in tables.values() if t}
    if codes and table_ids:
        stmt = (
            select(Rate.rate_table_id, Rate.code, Rate.name)
            .where(Rate.rate_table_id.in_(table_ids), Rate.code.in_(codes))
            .order_by(Rate.effective_from)
        )
        for table_id, code, name in db.session.execute(stmt):
            destinations[(table_id, code)] = name
    return {
        "client": clients,
        "account": accounts,
        "destination": {
            (r.term_account_id, r.code): destinations.get((tables.get(r.term_account_id), r.code), "")
            for r in rows
        },
    }


# --- balancing --------------------------------------------------------------------------------------------


def _window() -> tuple[int, datetime, datetime]:
    """The window (hours from the query string, default the manager's quality window) ending now."""
    default = int(current_app.config.get("QUALITY_WINDOW_HOURS", 24))
    hours = request.args.get("hours", default, type=int) or default
    hours = max(1, min(hours, 24 * 31))
    now = utcnow()
    return hours, now - timedelta(hours=hours), now


@bp.route("/balancing")
@reader_required
def balancing():
    """Balanced rule groups of a plan: target share against the share of answered calls each rule got."""
    hours, since, until = _window()
    plan_id = request.args.get("plan_id", type=int)
    plan = get_or_404(RoutingPlan, plan_id) if request.args.get("plan_id") else None
    groups = balancing_groups(plan.id, since, until) if plan is not None else []
    plans = []
    if plan is None:
        balanced = (
            select(RoutingRule.plan_id, func.count().label("rules"))
            .where(RoutingRule.balancing.between(1, 99))
            .group_by(RoutingRule.plan_id)
            .subquery()
        )
        plans = db.session.execute(
            scoped(RoutingPlan)
            .join(balanced, balanced.c.plan_id == RoutingPlan.id)
            .add_columns(balanced.c.rules)
            .order_by(RoutingPlan.name)
        ).all()
    return render(
        "stats/balancing.html",
        "stats/_balancing.html",
        plan=plan,
        plans=plans,
        groups=groups,
        hours=hours,
        windows=WINDOWS,
    )


@bp.route("/balancing/rules/<int:rule_id>")
@reader_required
def balancing_rule(rule_id: int):
    """The balancing chart of one rule's group, small enough to show beside the rule (a fragment for htmx)."""
    rule = get_or_404(RoutingRule, rule_id)
    hours, since, until = _window()
    groups = balancing_groups(rule.plan_id, since, until, rule_id=rule.id)
    return render(
        "stats/balancing_rule.html",
        "stats/_balancing_rule.html",
        rule=rule,
        plan=rule.plan,
        groups=groups,
        hours=hours,
    )


# --- live calls -------------------------------------------------------------------------------------------


@bp.route("/live")
@reader_required
def live():
    """Calls in progress per originator and terminator account, against their capacity."""
    ids = user_company_ids()
    max_age = livecalls.max_age()
    fresh = LiveCall.started_at > utcnow() - max_age
    in_scope = scope_condition(Account, ids)

    def per_account(column, capacity):
        stmt = (
            select(Account, func.count(LiveCall.id).label("live"))
            .join(LiveCall, column == Account.id)
            .where(fresh, in_scope)
            .group_by(Account.id)
            .order_by(func.count(LiveCall.id).desc(), Account.name)
            .options(selectinload(Account.client))
            .limit(500)
        )
        return [(account, count, getattr(account, capacity)) for account, count in db.session.execute(stmt)]

    originators = per_account(LiveCall.orig_account_id, "orig_capacity")
    terminators = per_account(LiveCall.term_account_id, "term_capacity")
    scoped_live = select(func.count()).select_from(LiveCall).where(scope_condition(LiveCall, ids))
    total = db.session.scalar(scoped_live.where(fresh))
    stale = db.session.scalar(scoped_live.where(~fresh))
    return render(
        "stats/live.html",
        "stats/_live.html",
        originators=originators,
        terminators=terminators,
        total=total,
        stale=stale,
        max_age=max_age,
    )
