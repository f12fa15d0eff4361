"""Read rate tables from the database by columns: the bulk of a full build.

A snapshot of 500 vendor tables holds 30 M rates. Read row by row (a driver row, a Python tuple, a dict
entry, its conversions) a rate costs 3-6 µs of this process's CPU: minutes for a full build. So each table is
read by **one aggregate query** that returns its codes and their rates as two texts (one value a line), and
how many of its rows differ from its first row in another column. Splitting the texts, and turning each
*distinct* rate into its row once, are a few C calls for the whole table; the database's own work per rate
is a fraction of a microsecond (an index range of one table, a number formatted).

That covers the common table, whose rows differ only in code and rate (one deck, one date, one set of
increments). A table whose other columns differ (a new price from a date, per-code increments) is read by a
second query grouped by those columns: one group per distinct (setup fee, increments, dates), each with its
codes and rates the same way. A code with rows at several dates then appears in several groups; its rows are
merged, latest `effective_from` first (what routing reads). A code holding the separator (a line break: the
panel never stores one, see `panel.values`) makes the split disagree with the count: that table is read row
by row instead.

The result is the same as the rows read one by one (a property test in tests/routing compares them): rates
and fees as integer millionths rounded by the database, times as POSIX seconds (`to_timestamp`), open-ended
rows ending at INFINITY, equal rows shared.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, String, case, cast, func, or_, select
from sqlalchemy.engine import Connection

from panel.routing.snapshot import INFINITY, MICRO
from panel.routing.tables import rate_tables, rates

SEP = "\n"


def to_timestamp(value) -> float | None:
    """A stored time (aware or naive UTC datetime, or SQLite's text) as POSIX seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def to_datetime(value) -> datetime | None:
    """A stored time as an aware UTC datetime."""
    ts = to_timestamp(value)
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def micro(value) -> int | None:
    """A stored Decimal/float/str amount as integer millionths."""
    if value is None or value == "":
        return None
    return int((Decimal(str(value)) * MICRO).to_integral_value())


def micro_column(col):
    """SQL: an amount with up to 6 decimals as integer millionths, rounded by the database."""
    return cast(func.round(func.coalesce(col, 0) * MICRO), BigInteger)


class RateColumns(Mapping):
    """A table's rates by columns: its codes, and for each the index (`index`) of its rows in `groups` (the
    table's distinct rows tuples). What `read_rate_tables` gives: packed into a rate file without a dict
    (`ratestore.pack`), and a read-only mapping code -> rows otherwise."""

    __slots__ = ("codes", "index", "groups", "_dict")

    def __init__(self, codes: list[str], index: list[int], groups: list[tuple]):
        self.codes = codes
        self.index = index
        self.groups = groups
        self._dict: dict | None = None

    def as_dict(self) -> dict[str, tuple]:
        """code -> rows (made once)."""
        if self._dict is None:
            self._dict = dict(zip(self.codes, self.values(), strict=True))
        return self._dict

    def __getitem__(self, code):
        return self.as_dict()[code]

    def __iter__(self):
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def values(self):  # a list, in the order of the codes
        return list(map(self.groups.__getitem__, self.index))


class _Rows:
    """Row tuples shared by every table of one read: equal rows are one object (and so are their
    one-row groups), and each stored time is parsed once."""

    def __init__(self):
        self.singles: dict[tuple, tuple] = {}
        self.times: dict[object, float] = {None: INFINITY}

    def time(self, value) -> float:
        found = self.times.get(value)
        if found is None:
            found = self.times[value] = to_timestamp(value)
        return found

    def single(self, rate, setup, min_time, interval, start, end) -> tuple:
        """The one-row group of these values (converted: integers, POSIX seconds)."""
        times = self.time(start), self.time(end)
        row = (int(rate), int(setup), int(min_time or 0), int(interval or 1), *times)
        found = self.singles.get(row)
        if found is None:
            found = self.singles[row] = (row,)
        return found


Consumer = Callable[[int, str, str, RateColumns], None]


def read_rate_tables(conn: Connection, table_ids, consume: Consumer) -> None:
    """Every rate table (or those of `table_ids`), each handed to `consume(id, name, currency, its rates by
    column)`, one table at a time, in table order (from a worker thread; the rare table read row by row
    last, from this one).

    This thread runs each table's queries while the worker turns the previous table's texts into columns and
    consumes them: the database driver leaves Python's lock while it waits for the database (PostgreSQL) or
    steps through the rows (SQLite), so the database's work and this process's overlap (a machine with two
    CPUs does both at once). At most a few tables' texts are held at a time."""
    tables_stmt = select(rate_tables.c.id, rate_tables.c.name, rate_tables.c.currency)
    tables_stmt = tables_stmt.order_by(rate_tables.c.id)
    if table_ids is not None:
        tables_stmt = tables_stmt.where(rate_tables.c.id.in_(sorted(table_ids)))
    found = conn.execute(tables_stmt).all()
    shared = _Rows()
    whole: list[tuple] = []  # tables the texts cannot carry: read row by row, after the others

    def finish(entry: tuple, parts: list) -> None:
        columns = _columns(parts, shared)
        if columns is None:
            whole.append(entry)
        else:
            consume(*entry, columns)

    with ThreadPoolExecutor(1, thread_name_prefix="rate-read") as worker:
        pending: deque[Future] = deque()
        for tid, name, currency in found:
            pending.append(worker.submit(finish, (tid, name, currency or ""), _fetch(conn, tid)))
            while len(pending) > 2:
                pending.popleft().result()  # the worker's exception, if any, raised here
        for future in pending:
            future.result()
    for tid, name, currency in whole:
        consume(tid, name, currency, _read_rows(conn, tid, shared))


def _text(col):
    """SQL: the values of a column joined by SEP, in the order of the query's rows."""
    return func.aggregate_strings(cast(col, String), SEP)


# What a rate's row holds besides its code and rate: equal across a common table.
_OTHERS = (
    micro_column(rates.c.setup_fee),
    func.coalesce(rates.c.min_time, 0),
    func.coalesce(rates.c.interval, 1),
    rates.c.effective_from,
    rates.c.end,
)


# The same columns as stored (compared as they are).
_STORED = (rates.c.setup_fee, rates.c.min_time, rates.c.interval, rates.c.effective_from, rates.c.end)


def _rate_text(conn: Connection):
    """SQL: a rate as text for the texts of a table. PostgreSQL's numeric as it is (formatting it is a third
    of what a multiplication and a rounding cost there; it becomes millionths here, once per distinct
    value, exactly: the column holds 6 decimals); SQLite's float as millionths rounded by the database
    (cheaper there than formatting a float, and as the rows read one by one always were)."""
    if conn.dialect.name == "postgresql":
        return cast(rates.c.rate, String)
    return micro_column(rates.c.rate)


def rate_micro(text: str) -> int:
    """A rate from a table's text (see `_rate_text`) as integer millionths."""
    if text.isdigit():
        return int(text)
    return int((Decimal(text) * MICRO).quantize(1, ROUND_HALF_UP))


def _summary(conn: Connection, tid: int, first: tuple):
    """SQL: a table's count, codes and rates, and how many of its rows differ from `first` (its first row's
    stored values) in another column."""
    differs = or_(*(col.is_distinct_from(value) for col, value in zip(_STORED, first, strict=True)))
    return select(
        func.count(),
        _text(rates.c.code),
        _text(_rate_text(conn)),
        func.count(case((differs, 1))),
    ).where(rates.c.rate_table_id == tid)


def _fetch(conn: Connection, tid: int) -> list[tuple]:
    """A table's rates as the database gives them: a list of (its other columns, its codes, their rates),
    one for the whole table in the common case, else one a distinct combination of the other columns."""
    first = conn.execute(select(*_OTHERS, *_STORED).where(rates.c.rate_table_id == tid).limit(1)).first()
    if first is None:
        return []
    count, codes_text, rates_text, differ = conn.execute(_summary(conn, tid, tuple(first[5:]))).one()
    if not differ:
        return [(count, tuple(first[:5]), codes_text, rates_text)]
    grouped = (
        select(func.count(), *_OTHERS, _text(rates.c.code), _text(_rate_text(conn)))
        .where(rates.c.rate_table_id == tid)
        .group_by(*_OTHERS)
    )
    return [(row[0], tuple(row[1:6]), row[6], row[7]) for row in conn.execute(grouped)]


def _columns(parts: list[tuple], shared: _Rows) -> RateColumns | None:
    """A table's columns from what `_fetch` gave; None when a code held the separator (the texts then
    disagree with the counts)."""
    codes: list[str] = []
    index: list[int] = []
    groups: list[tuple] = []
    for count, (setup, min_time, interval, start, end), part_codes, part_rates in parts:
        names = part_codes.split(SEP)
        values = part_rates.split(SEP)
        if not len(names) == len(values) == count:
            return None
        index_of = dict.fromkeys(values)  # each distinct rate (one pass, in C), then its index
        for text in index_of:
            index_of[text] = len(groups)
            groups.append(shared.single(rate_micro(text), setup, min_time, interval, start, end))
        if len(parts) == 1:
            return RateColumns(names, list(map(index_of.__getitem__, values)), groups)
        codes += names
        index += map(index_of.__getitem__, values)
    if len(set(codes)) != len(codes):
        return _merge(codes, list(map(groups.__getitem__, index)))
    return RateColumns(codes, index, groups)


def _merge(codes: list[str], rows_of: list[tuple]) -> RateColumns:
    """Codes with rows at several dates: one group each, latest effective_from first."""
    merged: dict[str, tuple] = {}
    several = []
    for code, group in zip(codes, rows_of, strict=True):
        previous = merged.get(code)
        if previous is None:
            merged[code] = group
        else:
            merged[code] = previous + group
            several.append(code)
    for code in several:
        merged[code] = tuple(sorted(set(merged[code]), key=lambda row: -row[4]))
    groups = list({id(group): group for group in merged.values()}.values())
    position = {id(group): i for i, group in enumerate(groups)}
    return RateColumns(list(merged), [position[id(group)] for group in merged.values()], groups)


def _read_rows(conn: Connection, tid: int, shared: _Rows) -> RateColumns:
    """One table read row by row (the rare table the column texts cannot carry)."""
    stmt = select(rates.c.code, micro_column(rates.c.rate), *_OTHERS).where(rates.c.rate_table_id == tid)
    codes, groups = [], []
    for code, rate, *others in conn.execute(stmt):
        codes.append(code)
        groups.append(shared.single(rate, *others))
    return _merge(codes, groups)
