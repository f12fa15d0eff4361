"""Rate deck import and export (CSV `code,name,rate,effective_from,end,setup_fee,min_time,interval`).

One function, `import_rates`, does the whole import for the UI's background job and for `bench/import.py`:
parse every line with `panel.imports.reader` (nothing is written while any line is wrong), then write all
rows in one transaction with the bulk writer, and record one audit entry that states the counts.
See docs/csv-formats.md.
"""

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter

from psycopg import errors as psycopg_errors
from sqlalchemy import delete, func, or_, select

from panel import writes
from panel.extensions import db
from panel.imports import bulk, flow, preview, reader
from panel.imports.jobs import ImportFailed, mark_writing
from panel.models import Rate, RateTable
from panel.models.types import utcnow
from panel.rates.forms import MODES  # the upload form's choices
from panel.values import (
    NAME_MAX,
    format_decimal,
    format_moment,
    parse_digits,
    parse_moment,
    parse_money,
    parse_name,
    parse_seconds,
)

RATE_COLUMNS = ["code", "name", "rate", "effective_from", "end", "setup_fee", "min_time", "interval"]
REQUIRED_COLUMNS = ["code", "rate"]
DEFAULT_MIN_TIME = 1
DEFAULT_INTERVAL = 1
_WRITE_COLUMNS = ["rate_table_id", *RATE_COLUMNS]

Progress = Callable[[int, int], None]


def rate_row_parser(
    rate_table_id: int, default_effective_from: datetime, seen: dict | None = None
) -> Callable[[dict[str, str], int], dict]:
    """A row parser for rate lines; it also refuses a code and effective_from twice in one file.

    `seen` ({(code, effective_from): line}) may be shared with the fast path of `parse_deck`.
    """
    seen = {} if seen is None else seen
    zero = Decimal(0)

    def parse_row(raw: dict[str, str], line: int) -> dict:
        column = "code"
        try:
            code = parse_digits(raw["code"])
            column = "name"
            name = parse_name(raw.get("name", ""))
            column = "rate"
            rate = parse_money(raw["rate"])
            column = "effective_from"
            effective_from = (
                parse_moment(raw.get("effective_from", ""), "effective_from") or default_effective_from
            )
            column = "end"
            end = parse_moment(raw.get("end", ""), "end")
            column = "setup_fee"
            setup_fee = parse_money(raw.get("setup_fee", ""), "setup fee", required=False, default=zero)
            column = "min_time"
            min_time = parse_seconds(raw.get("min_time", ""), "min time", minimum=0, default=DEFAULT_MIN_TIME)
            column = "interval"
            interval = parse_seconds(raw.get("interval", ""), "interval", minimum=1, default=DEFAULT_INTERVAL)
        except ValueError as exc:
            raise reader.RowError(column, str(exc)) from None
        if end is not None and end <= effective_from:
            raise reader.RowError(
                "end", f"the end must be after effective_from ({format_moment(effective_from)})"
            )
        key = (code, effective_from)
        first = seen.get(key)
        if first is not None:
            raise reader.RowError(
                "code", f"{code} from {format_moment(effective_from)} is already on line {first}"
            )
        seen[key] = line
        return {
            "rate_table_id": rate_table_id,
            "code": code,
            "name": name,
            "rate": rate,
            "effective_from": effective_from,
            "end": end,
            "setup_fee": setup_fee,
            "min_time": min_time,
            "interval": interval,
        }

    return parse_row


def _count(rate_table_id: int) -> int:
    """How many rates the table holds (inside the import's transaction)."""
    return db.session.scalar(
        select(func.count()).select_from(Rate).where(Rate.rate_table_id == rate_table_id)
    )


class Deck:
    """A parsed deck column by column: equal-length lists in file order, keyed by the rates table's columns.

    What the bulk writer takes as it is (no dict per rate); `rows()` gives `rate_row_parser`'s rate dicts.
    Undated rates carry the very `start` object the parse was given.
    """

    def __init__(
        self, table_id: int, start: datetime, columns: dict[str, list], order: list[int] | None = None
    ):
        self.table_id = table_id
        self.start = start
        self.columns = columns
        self.order = order  # the positions of the rates sorted by code, when known (the write's order)

    def __len__(self) -> int:
        return len(self.columns["code"])

    @classmethod
    def from_rows(cls, table_id: int, start: datetime, rows: Sequence[dict]) -> "Deck":
        """The deck of rate dicts (from the line-by-line parse)."""
        return cls(table_id, start, {name: list(map(itemgetter(name), rows)) for name in _WRITE_COLUMNS})

    def rows(self) -> list[dict]:
        """The rates as dicts, in file order."""
        values = zip(*(self.columns[name] for name in _WRITE_COLUMNS), strict=True)
        return [dict(zip(_WRITE_COLUMNS, row, strict=True)) for row in values]

    def only(self, indexes: Sequence[int]) -> "Deck":
        """The deck of the rates at `indexes` (in that order)."""
        columns = {name: [values[i] for i in indexes] for name, values in self.columns.items()}
        return Deck(self.table_id, self.start, columns)


def _drop_undated_repeats(deck: Deck) -> Deck:
    """The rates to write: without the undated ones that equal the rate in force at `start` (SPEC §3 rule)."""
    start, effective = deck.start, deck.columns["effective_from"]
    if not any(moment is start for moment in effective):
        return deck
    values = (Rate.name, Rate.rate, Rate.end, Rate.setup_fee, Rate.min_time, Rate.interval)
    stmt = (
        select(Rate.code, *values)
        .where(
            Rate.rate_table_id == deck.table_id,
            Rate.effective_from <= start,
            or_(Rate.end.is_(None), Rate.end > start),
        )
        .order_by(Rate.code, Rate.effective_from)
    )
    in_force = {}
    for code, *current in db.session.execute(stmt.execution_options(yield_per=20_000)):
        in_force[code] = tuple(current)  # the latest effective_from of a code comes last and wins
    columns = deck.columns
    compared = zip(
        columns["code"],
        effective,
        zip(*(columns[name] for name in _VALUES), strict=True),
        strict=True,
    )
    kept = [
        i
        for i, (code, moment, incoming) in enumerate(compared)
        if moment is not start or in_force.get(code) != incoming
    ]
    return deck if len(kept) == len(effective) else deck.only(kept)


def parse_deck(table_id: int, data: bytes, start: datetime, progress: Progress | None = None) -> list[dict]:
    """Every line of the deck as a rate row (`rate_row_parser`'s dicts); ImportFailed says which are wrong."""
    return read_deck(table_id, data, start, progress).rows()


def read_deck(table_id: int, data: bytes, start: datetime, progress: Progress | None = None) -> Deck:
    """Every line of the deck, column by column; ImportFailed lists the wrong lines (nothing is written).

    A deck whose lines are all good is read column by column (`_plain_deck`: each column checked and
    converted at C speed, each distinct date, fee or increment parsed once). When some line is wrong (or
    the file is unusual: a line with another number of cells, a line the CSV reader cannot read), the
    file is read again line by line (`_read_lines`), which says which lines are wrong and why exactly as
    `rate_row_parser` does.
    """
    table, _records = _open(data)
    with bulk.gc_paused():
        deck = _plain_deck(table_id, table, start)
    if deck is None:
        return _read_lines(table_id, data, start, progress)
    if progress:
        progress(table.total, table.total)
    return deck


def _open(data: bytes):
    """The file's table and records (reader.open_table); ImportFailed when the file cannot be read."""
    try:
        return reader.open_table(data, RATE_COLUMNS, required=REQUIRED_COLUMNS)
    except reader.CsvError as exc:
        raise ImportFailed(f"Nothing was imported: {exc}") from None


def _read_lines(table_id: int, data: bytes, start: datetime, progress: Progress | None) -> Deck:
    """The deck read line by line: ImportFailed with every wrong line (or the deck, when none is)."""
    table, records = _open(data)
    deck = Deck.from_rows(table_id, start, _parse_records(table_id, table, records, start, progress))
    if progress:
        progress(table.total, table.total)
    return deck


def _distinct(cells: Sequence[str] | None, parse: Callable, count: int, default) -> list:
    """A column converted once per distinct cell (dates, fees and increments repeat); an absent column is
    `default` everywhere. ValueError when a cell is wrong."""
    if cells is None:
        return [default] * count
    converted = {text: parse(text) for text in set(cells)}
    return list(map(converted.__getitem__, cells))


class _Head:
    """A deck's first look: its cells by column, codes and moments checked, the positions in code order.

    The other columns (`_rest`) are checked and converted either over the whole deck or chunk by chunk in
    code order while the rows already go to the database (PostgreSQL's COPY, see `_stream`).
    """

    def __init__(
        self, table_id: int, start: datetime, cells: dict, codes: list, effective: list, order: list
    ):
        self.table_id, self.start = table_id, start
        self.cells, self.codes, self.effective, self.order = cells, codes, effective, order

    def __len__(self) -> int:
        return len(self.codes)

    def chunks(self, size: int) -> Iterator[dict[str, list]]:
        """The rates as columns, `size` rows at a time in code order; _Wrong when a cell is wrong."""
        names = ["code", "effective_from", *self.cells]
        # One tuple per rate (in file order, read straight through), then one pick per rate and chunk: far
        # cheaper than picking every column's cells in code order one by one.
        rows = list(zip(self.codes, self.effective, *self.cells.values(), strict=True))
        for start in range(0, len(self.order), size):
            positions = self.order[start : start + size]
            picked = zip(*map(rows.__getitem__, positions), strict=True)
            chunk = dict(zip(names, map(list, picked), strict=True))
            rest = _rest(chunk, len(positions), chunk["effective_from"])
            if rest is None:
                raise _Wrong
            yield {
                "rate_table_id": [self.table_id] * len(positions),
                "code": chunk["code"],
                "effective_from": chunk["effective_from"],
                **rest,
            }


class _Wrong(Exception):
    """Some line of a deck being written is wrong (the line-by-line read then says which)."""


def _head(table_id: int, table, start: datetime) -> _Head | None:
    """The first look at a deck (see `_Head`); None when some line is not good (or may not be)."""
    cut = table.columns()
    if not cut or not cut[0]:
        return None
    if table.unquote:
        cut = [list(map(reader.unquote_formula, column)) for column in cut]
    count = len(cut[0])
    cells = dict(zip(table.header, cut, strict=True))
    try:
        codes = cells.pop("code")
        codes = codes if all(map(_FAST_CODE, codes)) else list(map(parse_digits, codes))
        effective = _distinct(
            cells.pop("effective_from", None), lambda text: parse_moment(text) or start, count, start
        )
    except ValueError:
        return None
    return _Head(table_id, start, cells, codes, effective, sorted(range(count), key=codes.__getitem__))


def _rest(cells: dict, count: int, effective: list) -> dict[str, list] | None:
    """The name, rate, end, fee and increments of `count` rates (cells by column), checked and converted
    column by column; None when a cell is wrong or an end is not after its effective_from."""
    try:
        names = list(map(str.strip, cells["name"])) if "name" in cells else [""] * count
        if max(map(len, names), default=0) > NAME_MAX:
            return None
        rates = cells["rate"]
        rates = list(map(Decimal, rates)) if all(map(_FAST_MONEY, rates)) else list(map(_money, rates))
        ends = _distinct(cells.get("end"), parse_moment, count, None)
        fees = _distinct(cells.get("setup_fee"), _fee, count, Decimal(0))
        min_times = _distinct(cells.get("min_time"), _min_time, count, DEFAULT_MIN_TIME)
        intervals = _distinct(cells.get("interval"), _interval, count, DEFAULT_INTERVAL)
    except ValueError:
        return None
    if any(end is not None and end <= moment for moment, end in set(zip(effective, ends, strict=True))):
        return None
    return {
        "name": names,
        "rate": rates,
        "end": ends,
        "setup_fee": fees,
        "min_time": min_times,
        "interval": intervals,
    }


def _plain_deck(table_id: int, table, start: datetime) -> Deck | None:
    """The deck column by column, when every line is good; None when some line is not (or may not be).

    Each column is checked as a whole: codes and rates by a compiled pattern over every cell (a cell that
    does not match goes through the row parser's own function), names by their stripped length, dates, fees
    and increments by parsing each distinct cell once; then end after effective_from, then no code and
    effective_from twice. A good deck gives exactly the rows of `rate_row_parser`; any wrong cell gives None.
    """
    head = _head(table_id, table, start)
    return None if head is None else _whole(head)


def _whole(head: _Head) -> Deck | None:
    """The deck of a first look, every column converted (None when a cell is wrong or a code and
    effective_from come twice)."""
    rest = _rest(head.cells, len(head), head.effective)
    if rest is None or _repeats(head.codes, head.effective):
        return None
    columns = {
        "rate_table_id": [head.table_id] * len(head),
        "code": head.codes,
        "effective_from": head.effective,
        **rest,
    }
    return Deck(head.table_id, head.start, {name: columns[name] for name in _WRITE_COLUMNS}, head.order)


def _repeats(codes: list[str], effective: list[datetime]) -> bool:
    """Whether a code and effective_from come twice (most decks have each code once: one set of codes)."""
    count = len(codes)
    return len(set(codes)) != count and len(set(zip(codes, effective, strict=True))) != count


def _money(text: str) -> Decimal:
    """A rate cell: plain decimals directly, anything else as the row parser reads it."""
    return Decimal(text) if _FAST_MONEY(text) else parse_money(text)


_FAST_CODE = re.compile(r"[0-9]{1,32}").fullmatch
_FAST_MONEY = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?").fullmatch
_BAD = object()


def _cached(cache: dict, text: str, parse: Callable):
    """parse(text) remembered per text; _BAD when it raises (the slow path then says why)."""
    try:
        value = parse(text)
    except ValueError:
        value = _BAD
    cache[text] = value
    return value


def _parse_records(table_id: int, table, records, start: datetime, progress) -> list[dict]:
    """The deck line by line: the rows, or ImportFailed with every wrong line (`line N, column: message`).

    Most lines of a vendor deck are plain (digits, a decimal rate, a date the file repeats): they are checked
    with a few compiled patterns and caches (dates, fees and increments repeat). Any other line goes through
    `rate_row_parser`, so its value, or its error, is exactly that parser's.
    """
    header = table.header
    width = len(header)
    position = {name: i for i, name in enumerate(header)}
    getter = itemgetter(*(position.get(name, width) for name in RATE_COLUMNS))  # width: an empty cell
    seen: dict = {}
    slow = rate_row_parser(table_id, start, seen)
    zero = Decimal(0)
    moments: dict = {"": None}
    fees: dict = {"": zero}
    min_times: dict = {"": DEFAULT_MIN_TIME}
    intervals: dict = {"": DEFAULT_INTERVAL}
    rows: list[dict] = []
    errors: list[str] = []
    total, unquote = table.total, table.unquote
    missing = [""]
    try:
        for line_no, values in records:
            if len(values) != width:
                reader.add_error(errors, f"line {line_no}: expected {width} columns, found {len(values)}")
                continue
            if unquote:
                values = [reader.unquote_formula(v) for v in values]
            if progress and line_no % 5000 == 0:
                progress(line_no - 1, total)
            code, name, rate, effective, end, fee, min_time, interval = getter(values + missing)
            if _FAST_CODE(code) and _FAST_MONEY(rate) and len(name) <= NAME_MAX and name == name.strip():
                effective = (
                    moments.get(effective, _BAD)
                    if effective in moments
                    else _cached(moments, effective, parse_moment)
                )
                end = moments[end] if end in moments else _cached(moments, end, parse_moment)
                fee = fees[fee] if fee in fees else _cached(fees, fee, _fee)
                min_time = (
                    min_times[min_time] if min_time in min_times else _cached(min_times, min_time, _min_time)
                )
                interval = (
                    intervals[interval] if interval in intervals else _cached(intervals, interval, _interval)
                )
                if effective is None:
                    effective = start
                key = (code, effective)
                if (
                    effective is not _BAD
                    and end is not _BAD
                    and fee is not _BAD
                    and min_time is not _BAD
                    and interval is not _BAD
                    and (end is None or end > effective)
                    and key not in seen
                ):
                    seen[key] = line_no
                    rows.append(
                        {
                            "rate_table_id": table_id,
                            "code": code,
                            "name": name,
                            "rate": Decimal(rate),
                            "effective_from": effective,
                            "end": end,
                            "setup_fee": fee,
                            "min_time": min_time,
                            "interval": interval,
                        }
                    )
                    continue
            # Anything else: the row parser decides (and says what is wrong).
            raw = {name: value.strip() for name, value in zip(header, values, strict=True)}
            try:
                rows.append(slow(raw, line_no))
            except reader.RowError as exc:
                reader.add_error(errors, f"line {line_no}, {exc.column}: {exc.message}")
    except reader.CsvError as exc:
        reader.add_error(errors, str(exc))
    if errors:
        raise ImportFailed(reader.failure_message(errors), errors)
    if not rows:
        raise ImportFailed("Nothing was imported: the file has a header but no rates.")
    return rows


def _fee(text: str) -> Decimal:
    return parse_money(text, "setup fee", required=False, default=Decimal(0))


def _min_time(text: str) -> int:
    return parse_seconds(text, "min time", minimum=0, default=DEFAULT_MIN_TIME)


def _interval(text: str) -> int:
    return parse_seconds(text, "interval", minimum=1, default=DEFAULT_INTERVAL)


_VALUES = ("name", "rate", "end", "setup_fee", "min_time", "interval")


def _current(table_id: int):
    """(key, values) of the table's rates, for a preview."""
    columns = [Rate.code, Rate.effective_from, *(getattr(Rate, c) for c in _VALUES)]
    stmt = select(*columns).where(Rate.rate_table_id == table_id).execution_options(yield_per=5000)
    for code, effective_from, *values in db.session.execute(stmt):
        yield (code, effective_from), _normal(values)


def _normal(values) -> tuple:
    """Rate values compared by value (0.010000 is 0.01)."""
    return tuple(format_decimal(v) if isinstance(v, Decimal) else v for v in values)


def _display(key: tuple, values: tuple) -> dict:
    """A rate of a preview as the export writes it."""
    row = dict(zip(("code", "effective_from", *_VALUES), (*key, *values), strict=True))
    for name in ("effective_from", "end"):
        row[name] = format_moment(row[name])
    return {c: str(row[c]) for c in RATE_COLUMNS}


def fingerprint(table: RateTable) -> str:
    """A digest of the table's rates now (a confirmation compares it with the preview's)."""
    return preview.fingerprint(_current(table.id))


def preview_rates(
    table: RateTable, data: bytes, mode: str, default_effective_from: datetime | None = None
) -> preview.Diff:
    """What importing the deck would do to the table: rates added, removed (replace), changed."""
    start = default_effective_from or utcnow().replace(microsecond=0)
    columns = read_deck(table.id, data, start).columns
    incoming = (
        ((code, moment), _normal(values))
        for code, moment, *values in zip(
            columns["code"], columns["effective_from"], *(columns[c] for c in _VALUES), strict=True
        )
    )
    return preview.diff(
        _current(table.id), incoming, RATE_COLUMNS, display=_display, replace=mode == "replace"
    )


def import_rates(
    rate_table: RateTable | int,
    data: bytes,
    mode: str = "add_update",
    *,
    filename: str = "",
    default_effective_from: datetime | None = None,
    progress: Progress | None = None,
    job_id: int | None = None,
) -> str:
    """Import a rate deck into the table in one transaction; returns the summary, raises ImportFailed.

    `add_update` inserts new (code, effective_from) pairs and overwrites existing ones; `replace` deletes
    every rate of the table first. Rows without effective_from start at `default_effective_from` (the start of
    the import when not given); with `add_update`, such a row equal to the rate in force at that moment is
    left out (counted unchanged), so re-importing an undated deck does not pile up copies of the same prices.
    """
    if mode not in MODES:
        raise ImportFailed(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}.")
    table = rate_table if isinstance(rate_table, RateTable) else db.session.get(RateTable, rate_table)
    if table is None:
        raise ImportFailed("The rate table no longer exists.")
    start = default_effective_from or utcnow().replace(microsecond=0)
    with bulk.gc_paused():  # the deck's columns and the rows for the driver are 250,000s of lists and tuples
        opened, _records = _open(data)
        head = _head(table.id, opened, start)
        if head is not None and bulk.copies() and (mode == "replace" or not _count(table.id)):
            # PostgreSQL into an empty (or emptied) table: the rows go by COPY in code order while the rest of
            # their columns are still being checked, so the database works in parallel; a wrong cell found
            # on the way rolls it all back, and the line-by-line read says which lines are wrong.
            try:
                return _stream(table, head, mode, filename, job_id)
            except _Wrong:
                db.session.rollback()
            deck = _read_lines(table.id, data, start, progress)
        else:
            deck = _whole(head) if head is not None else None
            if deck is None:
                deck = _read_lines(table.id, data, start, progress)
            elif progress:
                progress(opened.total, opened.total)
        if job_id is not None:
            mark_writing(job_id, len(deck))
        return _write(table, deck, mode, filename)


def _stream(table: RateTable, head: _Head, mode: str, filename: str, job_id: int | None) -> str:
    """PostgreSQL, into an empty table or with replace: one COPY fed chunk by chunk in code order, the
    audit entry, one commit; _Wrong (nothing written) when a cell turns out wrong."""
    if job_id is not None:
        mark_writing(job_id, len(head))
    with bulk.one_transaction():
        before = _count(table.id)
        if mode == "replace":
            db.session.execute(delete(Rate).where(Rate.rate_table_id == table.id))
        try:
            bulk.copy_chunks(Rate.__table__, _WRITE_COLUMNS, head.chunks(bulk.CHUNK))
        except psycopg_errors.UniqueViolation:
            # The table's unique key (table, code, effective_from) refuses a code and effective_from twice
            # in the deck (not checked before, to start the COPY sooner), or a rate someone else just added.
            if _repeats(head.codes, head.effective):
                raise _Wrong from None
            raise
        if mode == "replace":
            note = _note(mode, filename, before, len(head))
        else:
            note = _note(mode, filename, before, len(head), added=len(head), changed=0)
        counts = {"mode": MODES[mode], "rates in the file": len(head), "rates before": before}
        with writes.change(table, action="import", after=counts, note=note):
            pass  # the rows are written above, in this transaction: the entry and the commit go with them
    return note


def _write(table: RateTable, deck: Deck, mode: str, filename: str) -> str:
    """Write the deck into the table and its audit entry, in one transaction; returns the summary."""
    key = ("rate_table_id", "code", "effective_from")
    with bulk.one_transaction():
        before = _count(table.id)
        if mode == "replace":
            db.session.execute(delete(Rate).where(Rate.rate_table_id == table.id))
            bulk.write_columns(Rate.__table__, deck.columns, key=key, order=deck.order)
            note = _note(mode, filename, before, len(deck))
        else:
            kept = _drop_undated_repeats(deck) if before else deck
            written = bulk.write_columns(
                Rate.__table__,
                kept.columns,
                key=key,
                order=kept.order,
                # An empty table has nothing to update: the plain (faster) insert is enough.
                on_conflict="update" if before else "error",
            )
            added = _count(table.id) - before if before else written
            note = _note(mode, filename, before, len(deck), added=added, changed=written - added)
        counts = {"mode": MODES[mode], "rates in the file": len(deck), "rates before": before}
        with writes.change(table, action="import", after=counts, note=note):
            pass  # the rows are written above, in this transaction: the entry and the commit go with them
    return note


def _note(mode: str, filename: str, before: int, rows: int, *, added: int = 0, changed: int = 0) -> str:
    """The import's summary, as the job's outcome and the audit entry say it."""
    source = filename or "a file"
    if mode == "replace":
        return f"Replaced the table's {before:,} rates with {rows:,} rates from {source}."
    return (
        f"Imported {rows:,} rates from {source} (add and update): "
        f"{added:,} added, {changed:,} changed, {rows - added - changed:,} unchanged."
    )


def export_rows(stmt) -> Iterator[list]:
    """CSV rows (in RATE_COLUMNS order) for the rates selected by `stmt` (a select of Rate), read in batches.

    Plain column tuples, not ORM objects: a 200,000-rate table exports in seconds.
    """
    columns = [getattr(Rate, name) for name in RATE_COLUMNS]
    result = db.session.execute(stmt.with_only_columns(*columns).execution_options(yield_per=5000))
    moments: dict = {}

    def moment(value):
        text = moments.get(value)
        if text is None:
            text = moments[value] = format_moment(value)
        return text

    for code, name, rate, effective_from, end, setup_fee, min_time, interval in result:
        yield [
            code,
            name,
            format_decimal(rate),
            moment(effective_from),
            moment(end) if end is not None else "",
            format_decimal(setup_fee),
            min_time,
            interval,
        ]


def _form(**kwargs):
    """The upload form (imported late: the forms import this module's modes)."""
    from panel.rates.forms import RateImportForm

    return RateImportForm(**kwargs)


def _start_moment(options: dict) -> datetime | None:
    """The "effective from" the operator chose for undated lines (None: when the import starts)."""
    return parse_moment(options.get("effective_from", ""), "effective_from")


def _run(table_id, data, mode, options, filename, job_id, progress) -> str:
    """The import job's work (flow.ImportSpec.run)."""
    start = _start_moment(options)
    return import_rates(
        table_id,
        data,
        mode,
        filename=filename,
        default_effective_from=start,
        progress=progress,
        job_id=job_id,
    )


IMPORT = flow.ImportSpec(
    "rates",
    "rates.import_",
    _form,
    MODES,
    _run,
    id_arg="rate_table_id",
    fragment="rates/_import_form.html",  # the shared upload form and a link to preview the routing effect
    preview=lambda table, data, mode, options: preview_rates(table, data, mode, _start_moment(options)),
    fingerprint=fingerprint,
    preview_modes=frozenset({"replace"}),
    options=lambda form: {"effective_from": (form.effective_from.data or "").strip()},
    context=lambda table: {"table": table, "columns": RATE_COLUMNS, "required": REQUIRED_COLUMNS},
)
