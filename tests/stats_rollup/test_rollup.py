"""The statistics' hourly and daily figures (call_hours, call_days, panel.stats.rollup) agree with the calls
they add up.

Whatever writes the calls (the CDR ingest, an account deleted with its statistics, the ORM), the figures of
both levels equal a direct aggregation of call_stats, and the totals the Calls page shows from them equal the
totals added up call by call, for every filter the page offers and for windows that start and end inside
hours and days (UTC), on SQLite and PostgreSQL.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask_login import login_user
from sqlalchemy import select

from panel import cdrs
from panel.accounts import service
from panel.extensions import db
from panel.main.health import visibility
from panel.models import CallDay, CallHour, CallStat
from panel.models.types import utcnow
from panel.scope import scope_condition, user_company_ids
from panel.stats import rollup
from panel.stats.queries import CallFilter, filter_totals, totals
from panel.stats.views import _call_filter
from tests import factories


def figures(model=CallHour) -> dict:
    """The stored hourly (or daily) figures, rows of no call left out."""
    rows = db.session.execute(select(model)).scalars()
    period = "hour" if model is CallHour else "day"
    return {
        (getattr(r, period), r.orig_client_id, r.term_client_id, r.answered): (
            r.calls,
            r.seconds,
            r.revenue,
            r.cost,
        )
        for r in rows
        if r.calls
    }


def direct(model=CallHour) -> dict:
    """The same figures added up here from every stored call (not with the code under test)."""
    found: dict = {}
    for call in db.session.scalars(select(CallStat)):
        hour = call.start_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if model is CallDay:
            hour = hour.replace(hour=0)
        key = (hour, call.orig_client_id or 0, call.term_client_id or 0, call.answered)
        calls, seconds, revenue, cost = found.get(key, (0, 0, Decimal(0), Decimal(0)))
        found[key] = (
            calls + 1,
            seconds + (call.duration if call.answered else 0),
            revenue + call.customer_charge,
            cost + call.vendor_cost,
        )
    return found


@pytest.fixture
def foreign(carrier):
    """A vendor of another company (Beta) that Alpha's calls may end at: its cost is not Alpha's to see."""
    table = factories.rate_table(
        carrier.tree.beta,
        "Beta buy",
        [{"code": "44", "name": "UK", "rate": "0.05", "min_time": 1, "interval": 1}],
    )
    vendor = factories.client(carrier.tree.beta, "Beta vendor")
    return factories.account(
        vendor, "beta-gw", ident_value="203.0.113.77", term_enabled=True, term_rate_table_id=table.id
    )


def calls(carrier, foreign, now: datetime, count: int = 60, prefix: str = "c") -> list[dict]:
    """CDRs over the last 30 hours: answered or not, to Vox, Tel, Beta's vendor or no terminator."""
    terms = [carrier.vox_gw.id, carrier.tel_gw.id, foreign.id, None]
    records = []
    for i in range(count):
        start = now - timedelta(minutes=37 * i + 3, seconds=i)
        record = {
            "call_id": f"{prefix}{i}",
            "orig_account_id": carrier.acme_main.id,
            "number": ["442071234567", "447700900123", "4930123456"][i % 3],
            "start": start.isoformat().replace("+00:00", "Z"),
            "duration": (i * 17) % 400 if i % 4 else 0,
        }
        if terms[i % 4] is not None:
            record["term_account_id"] = terms[i % 4]
        records.append(record)
    return records


def test_ingest_keeps_the_figures_equal_to_the_calls(app, carrier, foreign):
    """Batches through the ingest, a repeated batch (duplicates: nothing added), then rebuild(): the same."""
    now = utcnow()
    first = cdrs.ingest(calls(carrier, foreign, now), company_id=None)
    assert first.stored == 60
    cdrs.ingest(calls(carrier, foreign, now, count=20, prefix="d"), company_id=None)
    again = cdrs.ingest(calls(carrier, foreign, now), company_id=None)
    assert again.stored == 0
    db.session.expire_all()
    expected, days = direct(), direct(CallDay)
    assert figures() == expected
    assert figures(CallDay) == days
    assert sum(sums[0] for sums in expected.values()) == 80
    assert any(sums[2] for sums in expected.values())  # charges were added up, not only counts
    assert len({key[0] for key in days}) >= 2  # the calls span a midnight (UTC): two days at least
    rollup.rebuild()
    db.session.commit()
    assert figures() == expected
    assert figures(CallDay) == days


def test_the_rebuild_command_restores_figures_lost_or_never_kept(app, carrier, foreign):
    """`flask rebuild-call-hours`: a database whose records have no hourly figures (a bulk load, an older
    version) gets them from the records."""
    from sqlalchemy import delete

    cdrs.ingest(calls(carrier, foreign, utcnow()), company_id=None)
    expected, days = direct(), direct(CallDay)
    db.session.execute(delete(CallHour))
    db.session.execute(delete(CallDay))
    db.session.commit()
    assert figures() == {} == figures(CallDay)
    result = app.test_cli_runner().invoke(args=["rebuild-call-hours"])
    assert result.exit_code == 0, result.output
    assert "Hourly and daily call figures rebuilt" in result.output
    db.session.expire_all()
    assert figures() == expected
    assert figures(CallDay) == days


def test_deleting_an_account_takes_its_calls_out(app, carrier, foreign):
    """An account deleted with its statistics rows: the figures lose exactly those calls."""
    now = utcnow()
    cdrs.ingest(calls(carrier, foreign, now), company_id=None)
    other = factories.account(carrier.acme, "acme-second", ident_value="198.51.100.11", orig_enabled=True)
    db.session.commit()
    mine = calls(carrier, foreign, now, count=10, prefix="o")
    for record in mine:
        record["orig_account_id"] = other.id
    cdrs.ingest(mine, company_id=None)
    rows, _refund = service.delete_account(db.session.get(type(other), other.id))
    assert rows == 10
    db.session.expire_all()
    assert figures() == direct()
    assert figures(CallDay) == direct(CallDay)
    assert sum(sums[0] for sums in figures(CallDay).values()) == 60


def test_calls_written_through_the_orm_are_followed(app, carrier):
    """A call added, changed (answered, moved to another hour) and deleted through the ORM."""
    start = datetime(2026, 5, 1, 10, 20, tzinfo=UTC)
    call = CallStat(
        call_id="orm-1",
        orig_account_id=carrier.acme_main.id,
        orig_client_id=carrier.acme.id,
        number="4420",
        start_at=start,
        customer_charge=Decimal("0.25"),
    )
    db.session.add(call)
    db.session.commit()
    assert (
        figures()
        == direct()
        == {(start.replace(minute=0), carrier.acme.id, 0, False): (1, 0, Decimal("0.25"), 0)}
    )
    assert figures(CallDay) == {
        (datetime(2026, 5, 1, tzinfo=UTC), carrier.acme.id, 0, False): (1, 0, Decimal("0.25"), 0)
    }
    call.answered, call.duration, call.start_at = True, 90, start + timedelta(hours=2)
    db.session.commit()
    assert figures() == direct()
    assert list(figures()) == [(datetime(2026, 5, 1, 12, tzinfo=UTC), carrier.acme.id, 0, True)]
    assert figures(CallDay) == direct(CallDay)
    # Moved across midnight (UTC): out of one day, into the next.
    call.start_at = datetime(2026, 5, 1, 23, 59, 30, tzinfo=UTC) + timedelta(minutes=1)
    db.session.commit()
    assert figures(CallDay) == direct(CallDay)
    assert figures(CallDay) == {
        (datetime(2026, 5, 2, tzinfo=UTC), carrier.acme.id, 0, True): (1, 90, Decimal("0.25"), 0)
    }
    db.session.delete(call)
    db.session.commit()
    assert figures() == direct() == {}
    assert figures(CallDay) == {}


FILTERS = [
    "",  # the default window: the last 7 days (whole days: hourly figures only)
    "?hours=5",  # a window starting inside an hour: its first minutes added up call by call
    "?hours=24&answered=yes",
    "?answered=no",
    "?direction=orig",
    "?direction=term",
    "?date_from={yesterday}&date_to={yesterday}",
    "?date_from={yesterday}",
    "?date_from={two_days_ago}&date_to={yesterday}",  # whole days that end before today
    "?hours=30",  # across midnight: the minutes of an hour, hours of yesterday, today as a day
    "?hours=30&client_id={acme}&direction=orig",
    "?date_from=&date_to=",  # no window at all
    "?client_id={acme}",
    "?client_id={vox}&direction=term&hours=7",
    "?account_id={acme_main}",  # by account and by number: call by call
    "?number=447",
]


@pytest.mark.parametrize("user", ["alpha_admin", "root_admin", "beta_admin"])
def test_page_totals_equal_the_totals_call_by_call(app, carrier, foreign, user):
    """For every filter and scope: the totals from the hourly figures are the totals of the calls."""
    now = utcnow()
    cdrs.ingest(calls(carrier, foreign, now), company_id=None)
    values = {
        "yesterday": (now - timedelta(days=1)).date().isoformat(),
        "two_days_ago": (now - timedelta(days=2)).date().isoformat(),
        "acme": carrier.acme.id,
        "vox": carrier.vox.id,
        "acme_main": carrier.acme_main.id,
    }
    seen = set()
    for url in FILTERS:
        if user == "beta_admin" and "{" in url and "yesterday" not in url:
            continue  # Alpha's clients and accounts are not Beta's to filter by (404)
        with app.test_request_context("/statistics/" + url.format(**values)):
            login_user(getattr(carrier.tree, user))
            _form, _conditions, context = _call_filter()
            query = context["query"]
            expected = totals(query.conditions, query.orig_visible, query.term_visible)
            assert filter_totals(query) == expected, url
            seen.add(expected.attempts)
    assert len(seen) > 3  # the filters chose different calls


@pytest.mark.parametrize("user", ["alpha_admin", "beta_admin"])
def test_totals_of_any_window_equal_the_calls(app, carrier, foreign, user):
    """Windows that start and end inside hours, on hour and day boundaries, across midnights (UTC), and
    without a start or an end (the home page's window ends at "now"): the days, hours and minutes the totals
    read add up to the calls of the window, never one counted twice or left out."""
    now = datetime(2026, 6, 10, 1, 17, 30, tzinfo=UTC)  # early in a day: the calls span three days
    cdrs.ingest(calls(carrier, foreign, now), company_id=None)
    day = datetime(2026, 6, 9, tzinfo=UTC)
    points = [
        None,
        day - timedelta(days=1),  # the start of a day
        day - timedelta(hours=3, minutes=10),  # inside an hour, the evening before a midnight
        day - timedelta(hours=2),  # the start of an hour
        day,
        day + timedelta(minutes=1),
        day + timedelta(hours=13, minutes=59, seconds=59),
        day + timedelta(days=1),
        day + timedelta(days=1, hours=1, minutes=5),
        now,
    ]
    checked = set()
    with app.test_request_context("/statistics/"):
        login_user(getattr(carrier.tree, user))
        ids = user_company_ids()
        orig_visible, term_visible = visibility(ids)
        for since in points:
            for until in points:
                if since is not None and until is not None and since >= until:
                    continue
                conditions = [scope_condition(CallStat, ids)]
                conditions += [CallStat.start_at >= since] if since is not None else []
                conditions += [CallStat.start_at < until] if until is not None else []
                query = CallFilter(conditions, orig_visible, term_visible, frozenset(ids), since, until)
                expected = totals(conditions, orig_visible, term_visible)
                assert filter_totals(query) == expected, (since, until)
                checked.add(expected.attempts)
    assert len(checked) > 10  # the windows held different calls


@pytest.mark.parametrize(
    "window",
    ["", "&date_from={two_days_ago}&date_to={yesterday}", "&hours=20", "&sort=start", "&sort=start&hours=20"],
)
def test_calls_pages_by_cursor_show_every_call_once(app, carrier, foreign, window):
    """Next from the first page to the last, then Previous back from the last page: every call of the window
    once, in the list's order (the cursor also bounds the window the list reads, panel.stats.views)."""
    from urllib.parse import urlencode

    from panel.stats.views import call_page

    now = utcnow()
    cdrs.ingest(calls(carrier, foreign, now), company_id=None)
    values = {
        "yesterday": (now - timedelta(days=1)).date().isoformat(),
        "two_days_ago": (now - timedelta(days=2)).date().isoformat(),
    }
    base_url = "/statistics/?per_page=7" + window.format(**values)

    def page(args: dict | None):
        url = base_url + ("&" + urlencode({k: v for k, v in args.items() if v is not None}) if args else "")
        with app.test_request_context(url):
            login_user(carrier.tree.alpha_admin)
            _form, conditions, context = _call_filter()
            expected = db.session.scalars(select(CallStat.id).where(*conditions)).all()
            pagination, _names = call_page(context["base"], context["query"], 10_001)  # "more than 10,000"
            return pagination, [call.id for call in pagination.items], expected

    pagination, ids, expected = page(None)
    seen = list(ids)
    while pagination.next_args is not None:
        pagination, ids, _ = page(pagination.next_args)
        seen += ids
    ascending = "sort=start" in window
    starts = dict(db.session.execute(select(CallStat.id, CallStat.start_at)).all())
    order = sorted(expected, key=lambda i: (starts[i], i), reverse=not ascending)
    assert 7 < len(order) and seen == order

    pagination, ids, _ = page({"last": 1})
    back = list(ids)
    while pagination.prev_args is not None:
        pagination, ids, _ = page(pagination.prev_args)
        back = ids + back
    assert back == order


def test_a_clients_calls_on_either_side_are_all_listed(app, carrier, foreign):
    """The client filter lists the calls the client originated and those it terminated (the sides it is on
    are read from the daily figures: a vendor that also originates keeps both), and nothing else."""
    from panel.stats.views import call_page

    now = utcnow()
    cdrs.ingest(calls(carrier, foreign, now), company_id=None)  # Vox terminates some of these
    for i in range(5):  # and originates these
        db.session.add(
            CallStat(
                call_id=f"vox-orig-{i}",
                orig_client_id=carrier.vox.id,
                number="4420",
                start_at=now - timedelta(hours=3 * i + 1),
            )
        )
    db.session.commit()
    for client, sides in ((carrier.vox, 2), (carrier.acme, 1), (carrier.tel, 1)):
        with app.test_request_context(f"/statistics/?client_id={client.id}&per_page=500"):
            login_user(carrier.tree.alpha_admin)
            _form, _conditions, context = _call_filter()
            pagination, _names = call_page(context["base"], context["query"], None)
            listed = {call.id for call in pagination.items}
            since = context["query"].since
        mine = db.session.scalars(
            select(CallStat.id).where(
                (CallStat.orig_client_id == client.id) | (CallStat.term_client_id == client.id),
                CallStat.start_at >= since,
            )
        ).all()
        assert listed == set(mine) and mine, client.name
        origs = {
            c.orig_client_id == client.id
            for c in db.session.scalars(select(CallStat).where(CallStat.id.in_(mine)))
        }
        assert len(origs) == sides  # Vox's list holds calls of both sides
