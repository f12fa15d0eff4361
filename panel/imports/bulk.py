"""Bulk writes for the big imports (rate decks, code decks, DIDs): hundreds of thousands of rows in seconds.

Not one ORM object per row, and no per-row Python loop: the rows are taken apart column by column (`map`
over each column, each type's conversion once per distinct value, as dates repeat) and put back together with
`zip`, all at C speed. On SQLite: the `INSERT … ON CONFLICT` is compiled once and run with the driver's
`executemany` over those tuples, sorted by the key, in chunks. On PostgreSQL: the rows become COPY text and go
by `COPY` straight into an empty (or emptied) table, or into a temporary table followed by one set-based
`INSERT … SELECT … ON CONFLICT`. Both run in the caller's session transaction, so an import stays all or
nothing.

An update only touches a row whose values differ (`ON CONFLICT … DO UPDATE … WHERE … IS DISTINCT FROM …`), so
re-importing a deck where few prices changed rewrites few rows, and `write` returns how many rows it inserted
or changed.
"""

import gc
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from operator import itemgetter

from psycopg import errors as psycopg_errors
from psycopg import sql
from sqlalchemy import Table, column, or_, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from panel.extensions import db
from panel.imports.jobs import ImportFailed

CHUNK = 20_000
# SQLite's page cache during a bulk write, in KiB (its default is 2 MiB).
SQLITE_CACHE_KIB = 65_536
# What to do with a row whose key already exists: fail (the caller removed them first), update it, or skip it.
ON_CONFLICT = ("error", "update", "nothing")


def write(
    target: Table,
    rows: Sequence[dict],
    columns: Sequence[str],
    *,
    key: Sequence[str] = (),
    on_conflict: str = "error",
    update: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Insert `rows` (dicts with every name in `columns`) into `target`; returns the rows inserted or changed.

    `key` names the unique columns `on_conflict` refers to; `update` overwrites the columns named in `update`
    (default: every column not in the key) of an existing row, when one of them differs. With `error`, a
    conflict fails the statement: callers use it for a table they emptied or that was empty.
    """
    if not rows:
        return 0
    data = {name: _column(rows, name) for name in columns}
    return write_columns(target, data, key=key, on_conflict=on_conflict, update=update, progress=progress)


def write_columns(
    target: Table,
    data: Mapping[str, Sequence],
    *,
    key: Sequence[str] = (),
    on_conflict: str = "error",
    update: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    order: Sequence[int] | None = None,
) -> int:
    """`write` for rows given column by column: `data` maps each column to its values (lists of one length).

    The rows are written in the order of the first key column that varies (codes, numbers): a unique index
    then grows at its end instead of everywhere, on both databases. A caller that knows that order already
    passes it as `order` (the rows' positions in that order).
    """
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {ON_CONFLICT}")
    columns, key = list(data), list(key)
    if not columns or not len(data[columns[0]]):
        return 0
    updated = [c for c in (update if update is not None else columns) if c not in key]
    with gc_paused():
        order = _key_order(data, key) if order is None else order
        if db.session.get_bind().dialect.name == "postgresql":
            if on_conflict == "error":
                return _copy_postgresql(target, data, columns, order, progress)
            return _write_postgresql(target, data, columns, key, on_conflict, updated, order, progress)
        return _write_executemany(target, data, columns, key, on_conflict, updated, order, progress)


def _key_order(data: Mapping[str, Sequence], key: list[str]) -> Sequence[int] | None:
    """The positions of the rows sorted by the first key column that varies (None: keep them as they are).

    A stable sort of plain strings or numbers (a fast C compare): rows are then near key order, which is
    all an index needs.
    """
    for name in key:
        values = data.get(name)
        if values is None:
            continue
        if values.count(values[0]) != len(values):
            if all(map(operator.le, values, itertools.islice(values, 1, None))):
                return None  # already in order
            return sorted(range(len(values)), key=values.__getitem__)
    return None


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside the block (a bulk step that keeps 250,000 lists or tuples).

    Python starts a collection every few hundred new containers and walks the ones still alive, again and
    again while they pile up: that doubles the time of reading a deck into columns and of building the
    rows for the driver. Nothing of a bulk step is garbage in a cycle; the collector runs again after it.
    """
    if not gc.isenabled():  # paused already (a nested step, another import's thread)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def one_transaction() -> Iterator[None]:
    """Around an import's writes: a unique key taken meanwhile by someone else fails the import cleanly."""
    try:
        yield
    except (IntegrityError, psycopg_errors.IntegrityError):
        db.session.rollback()
        raise ImportFailed(
            "Nothing was imported: the same rows were changed by someone else while this import ran. "
            "Import the file again."
        ) from None


def _on_conflict(stmt, target: Table, key: list[str], on_conflict: str, updated: list[str]):
    """Add the conflict clause (the same on both dialects): update changed rows, or skip existing ones."""
    if on_conflict == "update" and key and updated:
        return stmt.on_conflict_do_update(
            index_elements=key,
            set_={c: stmt.excluded[c] for c in updated},
            where=or_(*(target.c[c].is_distinct_from(stmt.excluded[c]) for c in updated)),
        )
    if on_conflict in ("update", "nothing") and key:
        return stmt.on_conflict_do_nothing(index_elements=key)
    return stmt


def _column(rows, name: str) -> list:
    """One column of the rows (dicts), read at C speed."""
    return list(map(itemgetter(name), rows))


def _converted(values: list, processor) -> list:
    """The column through the driver's bind conversion; once per distinct value when values repeat (dates)."""
    sample = values[:1000]
    if len(set(sample)) * 4 < len(sample):  # repeats (checked on a sample: hashing every value costs too)
        cache = {value: processor(value) for value in set(values)}
        return list(map(cache.__getitem__, values))
    return list(map(processor, values))


def _write_executemany(target, data, columns, key, on_conflict, updated, order, progress) -> int:
    """SQLite: one compiled statement, the driver's executemany over tuples built column by column."""
    connection = db.session.connection()
    stmt = _on_conflict(sqlite_insert(target), target, key, on_conflict, updated)
    compiled = stmt.compile(dialect=connection.dialect, column_keys=columns)
    names = list(compiled.positiontup or [])
    if sorted(names) != sorted(columns):  # not a plain positional statement: let SQLAlchemy bind the rows
        return _write_core(stmt, data, columns, order, progress)
    processors = compiled._bind_processors
    converted = []
    for name in names:
        values = data[name]
        processor = processors.get(name)
        converted.append(_converted(values, processor) if processor is not None else values)
    params = _ordered(list(zip(*converted, strict=True)), order)
    del converted
    total, written = len(params), 0
    # A page cache that holds the table's indexes while they grow; the connection's own size comes back
    # before it returns to the pool.
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size={-SQLITE_CACHE_KIB}")
    try:
        for start in range(0, total, CHUNK):
            result = connection.exec_driver_sql(compiled.string, params[start : start + CHUNK])
            written += max(result.rowcount, 0)
            if progress:
                progress(min(start + CHUNK, total), total)
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
    return written


def _ordered(values: Sequence, order: Sequence[int] | None) -> Sequence:
    """The column in the write's order."""
    return values if order is None else list(map(values.__getitem__, order))


def _write_core(stmt, data, columns, order, progress) -> int:
    """Any other statement shape: SQLAlchemy's executemany with dicts."""
    rows = [
        dict(zip(columns, values, strict=True))
        for values in zip(*(_ordered(data[c], order) for c in columns), strict=True)
    ]
    total, written = len(rows), 0
    for start in range(0, total, CHUNK):
        written += max(db.session.execute(stmt, rows[start : start + CHUNK]).rowcount, 0)
        if progress:
            progress(min(start + CHUNK, total), total)
    return written


def _copy(cursor, name: str, data, columns, order, progress) -> None:
    """COPY the rows into the table `name`: the lines built column by column (at C speed), then sent in
    chunks, in `order` (the database takes one chunk while the next is joined)."""
    copy_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    texts = [_copy_column(data[c]) for c in columns]
    lines = list(map("\t".join, zip(*texts, strict=True)))
    del texts
    total = len(lines)
    with cursor.copy(copy_stmt) as copy:
        for start in range(0, total, CHUNK):
            stop = min(start + CHUNK, total)
            chunk = lines[start:stop] if order is None else map(lines.__getitem__, order[start:stop])
            copy.write("\n".join(chunk) + "\n")
            if progress:
                progress(stop, total)


def copies() -> bool:
    """True when the database takes rows by COPY (PostgreSQL) while the caller prepares the next ones."""
    return db.session.get_bind().dialect.name == "postgresql"


def copy_chunks(target: Table, columns: Sequence[str], chunks: Iterable[Mapping[str, Sequence]]) -> int:
    """PostgreSQL: one COPY of rows given chunk by chunk (each a mapping of `columns` to lists of one length)
    into `target`, an empty or emptied table (a conflict fails it); returns the rows written.

    Each chunk is prepared while the database takes the previous one. An exception from `chunks` abandons
    the COPY; the caller's transaction then rolls back.
    """
    columns = list(columns)
    raw = db.session.connection().connection.driver_connection
    copy_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(target.name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    written = 0
    with raw.cursor() as cursor, cursor.copy(copy_stmt) as copy:
        for chunk in chunks:
            texts = [_copy_column(chunk[c]) for c in columns]
            copy.write("\n".join(map("\t".join, zip(*texts, strict=True))) + "\n")
            written += len(texts[0])
    return written


_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_column(values: list) -> list[str]:
    """One column in COPY's text format: None is \\N; text escaped; a value that repeats (dates, fees,
    increments) converted once."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, str):
        if any(map(operator.is_, values, itertools.repeat(None))):
            values = [_NULL if v is None else v for v in values]
        joined = "".join(values)
        if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
            return [v if v is _NULL else v.translate(_COPY_ESCAPES) for v in values]
        return values
    if isinstance(sample, bool):
        convert = {True: "t", False: "f"}.__getitem__
    elif isinstance(sample, datetime):
        convert = _moment_text
    else:
        convert = str
    head = values[:1000]
    if sample is None or convert is _moment_text or len(set(head)) * 4 < len(head):
        cache = {v: _NULL if v is None else convert(v) for v in set(values)}
        return list(map(cache.__getitem__, values))
    if any(map(operator.is_, values, itertools.repeat(None))):  # `is`: comparing a decimal with None is slow
        return [_NULL if v is None else convert(v) for v in values]
    return list(map(convert, values))


def _moment_text(value: datetime) -> str:
    return value.isoformat(sep=" ")


def _copy_postgresql(target, data, columns, order, progress) -> int:
    """PostgreSQL, no conflict possible (an empty or emptied table): COPY straight into the table."""
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        _copy(cursor, target.name, data, columns, order, progress)
    return len(data[columns[0]])


def _write_postgresql(target, data, columns, key, on_conflict, updated, order, progress) -> int:
    """PostgreSQL: COPY into a temporary table (dropped at commit), then INSERT … SELECT … ON CONFLICT."""
    connection = db.session.connection()
    raw = connection.connection.driver_connection
    temp_name = f"import_{target.name}"
    with raw.cursor() as cursor:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(temp_name)))
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                sql.Identifier(temp_name),
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                sql.Identifier(target.name),
            )
        )
        _copy(cursor, temp_name, data, columns, order, progress)
    source = table_clause(temp_name, *(column(c) for c in columns))
    # include_defaults=False: columns the rows do not carry get their server defaults.
    stmt = pg_insert(target).from_select(
        columns, select(*(source.c[c] for c in columns)), include_defaults=False
    )
    compiled = _on_conflict(stmt, target, key, on_conflict, updated).compile(dialect=connection.dialect)
    with raw.cursor() as cursor:
        cursor.execute(compiled.string, compiled.params or None)
        # The command tag counts the rows inserted or updated, not those skipped.
        written = max(cursor.rowcount, 0)
    if progress:
        total = len(data[columns[0]])
        progress(total, total)
    return written
