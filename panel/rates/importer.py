"""Rate deck import and export (CSV `code,name,rate,effective_from,end,setup_fee,min_time,interval`).

One function, `import_rates`, does the whole import for the UI's background job and for `bench/import.py`:
parse every line with `panel.imports.reader` (nothing is written while any line is wrong), then write all
rows in one transaction with the bulk writer, and record one audit entry that states the counts.
See docs/csv-formats.md.
"""

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from psycopg import errors as psycopg_errors
from sqlalchemy import delete, func, select

from panel import writes
from panel.extensions import db
from panel.imports import bulk, flow, preview
from panel.imports.jobs import ImportFailed, mark_writing
from panel.models import Rate, RateTable
from panel.models.types import utcnow
from panel.rates import integrity  # noqa: F401 - create_all's triggers for the rates' key on PostgreSQL
from panel.rates.deck import (
    RATE_COLUMNS,
    REQUIRED_COLUMNS,
    VALUE_COLUMNS,
    WRITE_COLUMNS,
    Deck,
    DeckHead,
    DeckLines,
    NotPlain,
    Progress,
    deck_head,
    deck_lines,
    drop_undated_repeats,
    open_deck,
    read_deck,
    read_lines,
    whole_deck,
)
from panel.rates.forms import MODES  # the upload form's choices
from panel.values import (
    format_decimal,
    format_moment,
    parse_moment,
)


def _count(rate_table_id: int) -> int:
    """How many rates the table holds (inside the import's transaction)."""
    return db.session.scalar(
        select(func.count()).select_from(Rate).where(Rate.rate_table_id == rate_table_id)
    )


def _current(table_id: int):
    """(key, values) of the table's rates, for a preview."""
    columns = [Rate.code, Rate.effective_from, *(getattr(Rate, c) for c in VALUE_COLUMNS)]
    stmt = select(*columns).where(Rate.rate_table_id == table_id).execution_options(yield_per=5000)
    for code, effective_from, *values in db.session.execute(stmt):
        yield (code, effective_from), _normal(values)


def _normal(values) -> tuple:
    """Rate values compared by value (0.010000 is 0.01)."""
    return tuple(format_decimal(v) if isinstance(v, Decimal) else v for v in values)


def _display(key: tuple, values: tuple) -> dict:
    """A rate of a preview as the export writes it."""
    row = dict(zip(("code", "effective_from", *VALUE_COLUMNS), (*key, *values), strict=True))
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
            columns["code"], columns["effective_from"], *(columns[c] for c in VALUE_COLUMNS), strict=True
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
        opened, _records = open_deck(data)
        if bulk.copies() and (mode == "replace" or not _count(table.id)):
            # PostgreSQL into an empty (or emptied) table: the rows go by COPY in code order while the rest of
            # the deck is still being cut and checked, so the database works in parallel; a wrong cell found
            # on the way rolls it all back, and the line-by-line read says which lines are wrong.
            rates = deck_lines(table.id, opened, start)
            if rates is None:
                rates = deck_head(table.id, opened, start)
            if rates is not None:
                try:
                    return _stream(table, rates, mode, filename, job_id)
                except NotPlain:
                    db.session.rollback()
            deck = read_lines(table.id, data, start, progress)
        else:
            head = deck_head(table.id, opened, start)
            deck = whole_deck(head) if head is not None else None
            if deck is None:
                deck = read_lines(table.id, data, start, progress)
            elif progress:
                progress(opened.total, opened.total)
        if job_id is not None:
            mark_writing(job_id, len(deck))
        return _write(table, deck, mode, filename)


def _stream(
    table: RateTable, head: DeckHead | DeckLines, mode: str, filename: str, job_id: int | None
) -> str:
    """PostgreSQL, into an empty table or with replace: one COPY fed chunk by chunk in code order, the
    audit entry, one commit; NotPlain (nothing written) when a cell turns out wrong."""
    if job_id is not None:
        mark_writing(job_id, len(head))
    with bulk.one_transaction():
        before = _count(table.id)
        if mode == "replace":
            db.session.execute(delete(Rate).where(Rate.rate_table_id == table.id))
        try:
            bulk.copy_chunks(Rate.__table__, WRITE_COLUMNS, head.chunks(bulk.CHUNK))
        except psycopg_errors.UniqueViolation:
            # The table's unique key (table, code, effective_from) refuses a code and effective_from twice
            # in the deck (not checked before, to start the COPY sooner), or a rate someone else just added:
            # the line-by-line read then says which lines repeat, or finds none and the deck is merged.
            raise NotPlain from None
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
            kept = drop_undated_repeats(deck) if before else deck
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
