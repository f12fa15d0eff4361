"""Rate tables read by columns (panel/routing/rateread.py): whatever the rows hold (one date or several, open
or closed ends, fees and increments that differ per code, codes at several dates, an empty table), the
snapshot's rates are what reading the stored rows one by one gives, in memory and mapped from the host's
files alike."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from panel.extensions import db
from panel.models import Company, Rate, RateTable
from panel.routing import build, rateread
from panel.routing.build import read_connection
from panel.routing.ratestore import MappedRates, RateStore
from panel.routing.snapshot import INFINITY
from tests import factories as f

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
DATES = [DAY0, DAY0 + timedelta(days=30), DAY0 + timedelta(days=30, seconds=1, microseconds=250)]
ENDS = [None, DAY0 + timedelta(days=90)]

ROW = st.fixed_dictionaries(
    {
        "rate": st.decimals(0, 10, places=6),
        "date": st.integers(0, len(DATES) - 1),
        "end": st.integers(0, len(ENDS) - 1),
        "setup_fee": st.sampled_from([Decimal(0), Decimal("0.05"), Decimal("1.234567")]),
        "min_time": st.sampled_from([0, 1, 30, 60]),
        "interval": st.sampled_from([1, 6, 60]),
    }
)
# A table: code -> its rows (each at another date); `plain`: only the code and the rate vary.
TABLE = st.tuples(
    st.dictionaries(st.text("0123456789", min_size=1, max_size=5), st.lists(ROW, min_size=1, max_size=3)),
    st.booleans(),
)


def expected(table_id: int) -> dict:
    """The table's rates as the stored rows say, one by one: code -> rows, latest effective_from first."""
    found: dict[str, set] = {}
    for rate in db.session.scalars(select(Rate).where(Rate.rate_table_id == table_id)):
        row = (
            int(rate.rate * 1_000_000),
            int(rate.setup_fee * 1_000_000),
            rate.min_time,
            rate.interval,
            rate.effective_from.timestamp(),
            rate.end.timestamp() if rate.end else INFINITY,
        )
        found.setdefault(rate.code, set()).add(row)
    return {code: tuple(sorted(rows, key=lambda r: -r[4])) for code, rows in found.items()}


EXAMPLES: list[int] = []


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tables=st.lists(TABLE, min_size=1, max_size=3))
@example(tables=[({}, True)])
@example(tables=[({"44": [{"rate": Decimal("0.1"), "date": 0, "end": 0, "setup_fee": Decimal(0),
                           "min_time": 1, "interval": 1}]}, True)])  # fmt: skip
def test_columns_read_what_the_rows_hold(app, tmp_path_factory, tables):
    root = f.company(f"Operator {len(EXAMPLES)}", "root")
    EXAMPLES.append(root.id)
    ids = []
    for n, (codes, plain) in enumerate(tables):
        table = f.rate_table(root, f"T{n}")
        ids.append(table.id)
        for code, rows in codes.items():
            seen = set()
            for row in rows if not plain else rows[:1]:
                if row["date"] in seen:
                    continue
                seen.add(row["date"])
                others = {} if plain else row
                db.session.add(
                    Rate(
                        rate_table_id=table.id,
                        code=code,
                        rate=row["rate"],
                        effective_from=DATES[others.get("date", 0)],
                        end=ENDS[others.get("end", 0)],
                        setup_fee=others.get("setup_fee", Decimal(0)),
                        min_time=others.get("min_time", 1),
                        interval=others.get("interval", 1),
                    )
                )
    db.session.commit()
    try:
        store = RateStore(tmp_path_factory.mktemp("rates").resolve())
        with read_connection(db.engine) as conn:
            in_memory = build._read_rates(conn)
            mapped = build._read_rates(conn, store=store)
        for tid in ids:
            want = expected(tid)
            assert in_memory[tid].rates == want
            assert isinstance(mapped[tid].rates, MappedRates) and dict(mapped[tid].rates) == want
    finally:
        db.session.execute(delete(Rate))
        db.session.execute(delete(RateTable))
        db.session.execute(delete(Company).where(Company.id == root.id))
        db.session.commit()


def test_a_code_the_texts_cannot_carry_is_read_row_by_row(app):
    """A code holding the line break that separates the texts (the panel never stores one; a database
    edited by hand may): that table is read row by row, and still holds every rate."""
    root = f.company("Operator", "root")
    table = f.rate_table(root, "Odd", [("44", "0.1"), ("4\n4", "0.2"), ("45", "0.3")])
    plain = f.rate_table(root, "Plain", [("1", "0.01")])
    db.session.commit()
    with read_connection(db.engine) as conn:
        read = build._read_rates(conn)
    assert read[table.id].rates == expected(table.id) and len(read[table.id].rates) == 3
    assert read[plain.id].rates == expected(plain.id)


def test_one_aggregate_read_a_table_whose_rows_differ_only_in_rate(app, monkeypatch):
    """The common table (one date, one set of increments) takes no grouped query."""
    root = f.company("Operator", "root")
    table = f.rate_table(root, "Deck", [(f"44{i}", f"0.0{i}") for i in range(1, 10)])
    dated = f.rate_table(
        root, "Dated", [{"code": "1", "rate": "0.1", "effective_from": DATES[1]}, ("2", "0.2")]
    )
    db.session.commit()
    parts = {}
    real = rateread._fetch

    def counted(conn, tid):
        parts[tid] = real(conn, tid)
        return parts[tid]

    monkeypatch.setattr(rateread, "_fetch", counted)
    with read_connection(db.engine) as conn:
        read = build._read_rates(conn)
    assert len(parts[table.id]) == 1 and len(parts[dated.id]) == 2
    assert read[table.id].rates == expected(table.id) and read[dated.id].rates == expected(dated.id)
