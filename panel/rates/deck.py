"""Reading a rate deck (CSV `code,name,rate,effective_from,end,setup_fee,min_time,interval`): `read_deck`
gives the rates of a deck in columns, or raises ImportFailed with every wrong line (nothing is written while
any line is wrong). A deck whose lines are all plain is read column by column (`plain_deck`); any other is
read line by line with `rate_row_parser`, which also says which lines are wrong. `panel.rates.importer`
writes what it reads. See docs/csv-formats.md.
"""

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter

from sqlalchemy import or_, select

from panel.extensions import db
from panel.imports import bulk, reader
from panel.imports.jobs import ImportFailed
from panel.models import Rate
from panel.values import (
    NAME_MAX,
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
WRITE_COLUMNS = ["rate_table_id", *RATE_COLUMNS]
VALUE_COLUMNS = ("name", "rate", "end", "setup_fee", "min_time", "interval")


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
        return cls(table_id, start, {name: list(map(itemgetter(name), rows)) for name in WRITE_COLUMNS})

    def rows(self) -> list[dict]:
        """The rates as dicts, in file order."""
        values = zip(*(self.columns[name] for name in WRITE_COLUMNS), strict=True)
        return [dict(zip(WRITE_COLUMNS, row, strict=True)) for row in values]

    def only(self, indexes: Sequence[int]) -> "Deck":
        """The deck of the rates at `indexes` (in that order)."""
        columns = {name: [values[i] for i in indexes] for name, values in self.columns.items()}
        return Deck(self.table_id, self.start, columns)


def drop_undated_repeats(deck: Deck) -> Deck:
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
        zip(*(columns[name] for name in VALUE_COLUMNS), strict=True),
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

    A deck whose lines are all good is read column by column (`plain_deck`: each column checked and
    converted at C speed, each distinct date, fee or increment parsed once). When some line is wrong (or
    the file is unusual: a line with another number of cells, a line the CSV reader cannot read), the
    file is read again line by line (`read_lines`), which says which lines are wrong and why exactly as
    `rate_row_parser` does.
    """
    table, _records = open_deck(data)
    with bulk.gc_paused():
        deck = plain_deck(table_id, table, start)
    if deck is None:
        return read_lines(table_id, data, start, progress)
    if progress:
        progress(table.total, table.total)
    return deck


def open_deck(data: bytes):
    """The file's table and records (reader.open_table); ImportFailed when the file cannot be read."""
    try:
        return reader.open_table(data, RATE_COLUMNS, required=REQUIRED_COLUMNS)
    except reader.CsvError as exc:
        raise ImportFailed(f"Nothing was imported: {exc}") from None


def read_lines(table_id: int, data: bytes, start: datetime, progress: Progress | None) -> Deck:
    """The deck read line by line: ImportFailed with every wrong line (or the deck, when none is)."""
    table, records = open_deck(data)
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


class DeckHead:
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
        """The rates as columns, `size` rows at a time in code order; NotPlain when a cell is wrong."""
        names = ["code", "effective_from", *self.cells]
        # One tuple per rate (in file order, read straight through), then one pick per rate and chunk: far
        # cheaper than picking every column's cells in code order one by one.
        rows = list(zip(self.codes, self.effective, *self.cells.values(), strict=True))
        for start in range(0, len(self.order), size):
            positions = self.order[start : start + size]
            picked = zip(*map(rows.__getitem__, positions), strict=True)
            chunk = dict(zip(names, map(list, picked), strict=True))
            rest = _rest(chunk, len(positions), chunk["effective_from"], texts=True)
            if rest is None:
                raise NotPlain
            yield {
                "rate_table_id": [self.table_id] * len(positions),
                "code": chunk["code"],
                "effective_from": chunk["effective_from"],
                **rest,
            }


class NotPlain(Exception):
    """Some line of a deck being written is wrong (the line-by-line read then says which)."""


class DeckLines:
    """A deck of plain lines (no quotes, one line per rate) whose first column is the code, its lines sorted.

    Sorted lines are in code order (the comma after a code sorts before any digit: `44,` before `441,`),
    and sorting the lines of a file is all that must be done before the first rows can go to the database:
    each chunk is then cut by its commas and checked column by column (`chunks`) while the database writes
    the previous one (PostgreSQL's COPY, see `panel.rates.importer._stream`).
    """

    def __init__(self, table_id: int, start: datetime, header: list[str], lines: list[str]):
        self.table_id, self.start, self.header, self.lines = table_id, start, header, lines

    def __len__(self) -> int:
        return len(self.lines)

    def chunks(self, size: int) -> Iterator[dict[str, list]]:
        """The rates as columns, `size` rows at a time in code order; NotPlain when a line is wrong."""
        width = len(self.header)
        for at in range(0, len(self.lines), size):
            part = self.lines[at : at + size]
            if set(map(str.count, part, itertools.repeat(","))) != {width - 1}:
                raise NotPlain
            cells = ",".join(part).split(",")
            yield _checked(self.table_id, self.start, {n: cells[i::width] for i, n in enumerate(self.header)})


def deck_lines(table_id: int, table, start: datetime) -> DeckLines | None:
    """The deck's lines sorted (`DeckLines`), when the file is plain enough to be cut by its commas and its
    first column is the code; None otherwise (the caller takes `deck_head`)."""
    text = table.text
    if table.header[0] != "code" or len(table.header) < 2 or table.unquote or '"' in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    lines = text.partition("\n")[2].split("\n")  # the header is line 1
    if "" in lines:
        lines = [line for line in lines if line]
    if not lines:
        return None
    lines.sort()
    return DeckLines(table_id, start, table.header, lines)


def _checked(table_id: int, start: datetime, cells: dict[str, list]) -> dict[str, list]:
    """A chunk's rates by column (cells keyed by the header), checked and converted; NotPlain when a cell
    is wrong."""
    count = len(cells["code"])
    try:
        codes, effective = _codes_and_moments(cells, count, start)
    except ValueError:
        raise NotPlain from None
    rest = _rest(cells, count, effective, texts=True)
    if rest is None:
        raise NotPlain
    return {"rate_table_id": [table_id] * count, "code": codes, "effective_from": effective, **rest}


def deck_head(table_id: int, table, start: datetime) -> DeckHead | None:
    """The first look at a deck (see `DeckHead`); None when some line is not good (or may not be)."""
    cut = table.columns()
    if not cut or not cut[0]:
        return None
    if table.unquote:
        cut = [list(map(reader.unquote_formula, column)) for column in cut]
    count = len(cut[0])
    cells = dict(zip(table.header, cut, strict=True))
    try:
        codes, effective = _codes_and_moments(cells, count, start)
    except ValueError:
        return None
    return DeckHead(table_id, start, cells, codes, effective, sorted(range(count), key=codes.__getitem__))


def _codes_and_moments(cells: dict[str, list], count: int, start: datetime) -> tuple[list, list]:
    """The codes and effective_from of `count` rates, taken out of `cells`; ValueError when one is wrong."""
    codes = cells.pop("code")
    codes = codes if all(map(_FAST_CODE, codes)) else list(map(parse_digits, codes))
    effective = _distinct(
        cells.pop("effective_from", None), lambda text: parse_moment(text) or start, count, start
    )
    return codes, effective


def _rest(cells: dict, count: int, effective: list, *, texts: bool = False) -> dict[str, list] | None:
    """The name, rate, end, fee and increments of `count` rates (cells by column), checked and converted
    column by column; None when a cell is wrong or an end is not after its effective_from.

    With `texts` (rows for COPY), a column of plain decimal rates stays as its cells: the database reads them
    as the decimals they are, and the panel saves making and printing 250,000 Decimals."""
    try:
        names = list(map(str.strip, cells["name"])) if "name" in cells else [""] * count
        if max(map(len, names), default=0) > NAME_MAX:
            return None
        rates = cells["rate"]
        if all(map(_FAST_MONEY, rates)):
            rates = rates if texts else list(map(Decimal, rates))
        else:
            rates = list(map(_money, rates))
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


def plain_deck(table_id: int, table, start: datetime) -> Deck | None:
    """The deck column by column, when every line is good; None when some line is not (or may not be).

    Each column is checked as a whole: codes and rates by a compiled pattern over every cell (a cell that
    does not match goes through the row parser's own function), names by their stripped length, dates, fees
    and increments by parsing each distinct cell once; then end after effective_from, then no code and
    effective_from twice. A good deck gives exactly the rows of `rate_row_parser`; any wrong cell gives None.
    """
    head = deck_head(table_id, table, start)
    return None if head is None else whole_deck(head)


def whole_deck(head: DeckHead) -> Deck | None:
    """The deck of a first look, every column converted (None when a cell is wrong or a code and
    effective_from come twice)."""
    rest = _rest(head.cells, len(head), head.effective)
    if rest is None or has_repeats(head.codes, head.effective):
        return None
    columns = {
        "rate_table_id": [head.table_id] * len(head),
        "code": head.codes,
        "effective_from": head.effective,
        **rest,
    }
    return Deck(head.table_id, head.start, {name: columns[name] for name in WRITE_COLUMNS}, head.order)


def has_repeats(codes: list[str], effective: list[datetime]) -> bool:
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
