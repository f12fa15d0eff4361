"""Rate deck import and export (CSV `code,name,rate,effective_from,end,setup_fee,min_time,interval`).

One function, `import_rates`, does the whole import for the UI's background job and for `bench/import.py`:
parse every line with `panel.imports.reader` (nothing is written while any line is wrong), then write all
rows in one transaction with the bulk writer, and record one audit entry that states the counts.
See docs/csv-formats.md.
"""

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from operator import itemgetter

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


def _drop_undated_repeats(rate_table_id: int, rows: list[dict], start: datetime) -> list[dict]:
    """The rows to write: without the undated ones that equal the rate in force at `start` (SPEC §3 rule)."""
    # Undated rows carry the very `start` object the parser was given.
    if not any(row["effective_from"] is start for row in rows):
        return rows
    values = (Rate.name, Rate.rate, Rate.end, Rate.setup_fee, Rate.min_time, Rate.interval)
    stmt = (
        select(Rate.code, *values)
        .where(
            Rate.rate_table_id == rate_table_id,
            Rate.effective_from <= start,
            or_(Rate.end.is_(None), Rate.end > start),
        )
        .order_by(Rate.code, Rate.effective_from)
    )
    in_force = {}
    for code, *current in db.session.execute(stmt.execution_options(yield_per=20_000)):
        in_force[code] = tuple(current)  # the latest effective_from of a code comes last and wins
    return [
        row
        for row in rows
        if row["effective_from"] is not start
        or in_force.get(row["code"])
        != (row["name"], row["rate"], row["end"], row["setup_fee"], row["min_time"], row["interval"])
    ]


def parse_deck(
    table_id: int,
    data: bytes,
    start: datetime,
    progress: Progress | None = None,
    on_chunk: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Every line of the deck as a rate row; ImportFailed lists the wrong lines (nothing is written).

    Most lines of a vendor deck are plain (digits, a decimal rate, a date the file repeats): a fast path
    checks them with a few compiled patterns and caches (dates, fees and increments repeat). Any other
    line goes through `rate_row_parser`, so its value, or its `line N, column: message`, is exactly that
    parser's. `on_chunk(rows)` receives the good rows in chunks as they come, while no line was wrong yet.
    """
    try:
        table, records = reader.open_table(data, RATE_COLUMNS, required=REQUIRED_COLUMNS)
        return _parse_records(table_id, table, records, start, progress, on_chunk)
    except reader.CsvError as exc:
        raise ImportFailed(f"Nothing was imported: {exc}") from None


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


def _parse_records(table_id: int, table, records, start: datetime, progress, on_chunk) -> list[dict]:
    """The fast path of parse_deck over the file's records (see there)."""
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
    sent = 0
    try:
        for line_no, values in records:
            if len(values) != width:
                reader.add_error(errors, f"line {line_no}: expected {width} columns, found {len(values)}")
                continue
            if unquote:
                values = [reader.unquote_formula(v) for v in values]
            if line_no % 5000 == 0:
                if progress:
                    progress(line_no - 1, total)
                if on_chunk and not errors and len(rows) - sent >= bulk.CHUNK:
                    on_chunk(rows[sent:])
                    sent = len(rows)
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
    if progress:
        progress(total, total)
    if errors:
        raise ImportFailed(reader.failure_message(errors), errors)
    if not rows:
        raise ImportFailed("Nothing was imported: the file has a header but no rates.")
    if on_chunk and len(rows) > sent:
        on_chunk(rows[sent:])
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
    rows = parse_deck(table.id, data, start)
    incoming = (((r["code"], r["effective_from"]), _normal(r[c] for c in _VALUES)) for r in rows)
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
    if bulk.streams() and (mode == "replace" or not _count(table.id)):
        # PostgreSQL into an empty (or emptied) table: the rows go by COPY while the file is still being
        # parsed, so the database works in parallel; a wrong line found later rolls it all back.
        with bulk.one_transaction():
            before = _count(table.id)
            if mode == "replace":
                db.session.execute(delete(Rate).where(Rate.rate_table_id == table.id))
            with bulk.copy_stream(Rate.__table__, _WRITE_COLUMNS) as send:
                rows = parse_deck(table.id, data, start, progress, on_chunk=send)
            if job_id is not None:
                mark_writing(job_id, len(rows))
            note = _note(mode, filename, before, len(rows), added=len(rows), changed=0)
            counts = {"mode": MODES[mode], "rates in the file": len(rows), "rates before": before}
            with writes.change(table, action="import", after=counts, note=note):
                pass  # the rows are written above, in this transaction: the entry and the commit go with them
        return note

    rows = parse_deck(table.id, data, start, progress)
    if job_id is not None:
        mark_writing(job_id, len(rows))

    with bulk.one_transaction():
        before = _count(table.id)
        if mode == "replace":
            db.session.execute(delete(Rate).where(Rate.rate_table_id == table.id))
            bulk.write(Rate.__table__, rows, _WRITE_COLUMNS, key=("rate_table_id", "code", "effective_from"))
            note = _note(mode, filename, before, len(rows))
        else:
            kept = rows if not before else _drop_undated_repeats(table.id, rows, start)
            written = bulk.write(
                Rate.__table__,
                kept,
                _WRITE_COLUMNS,
                key=("rate_table_id", "code", "effective_from"),
                # An empty table has nothing to update: the plain (faster) insert is enough.
                on_conflict="update" if before else "error",
            )
            added = _count(table.id) - before
            note = _note(mode, filename, before, len(rows), added=added, changed=written - added)
        counts = {"mode": MODES[mode], "rates in the file": len(rows), "rates before": before}
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
