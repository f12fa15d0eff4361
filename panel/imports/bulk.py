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

from collections.abc import Callable, Iterator, Sequence
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
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {ON_CONFLICT}")
    if not rows:
        return 0
    columns, key = list(columns), list(key)
    updated = [c for c in (update if update is not None else columns) if c not in key]
    if db.session.get_bind().dialect.name == "postgresql":
        if on_conflict == "error":
            return _copy_postgresql(target, rows, columns, progress)
        return _write_postgresql(target, rows, columns, key, on_conflict, updated, progress)
    return _write_executemany(target, rows, columns, key, on_conflict, updated, progress)


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
    distinct = set(values)
    if len(distinct) * 4 < len(values):
        cache = {value: processor(value) for value in distinct}
        return list(map(cache.__getitem__, values))
    return list(map(processor, values))


def _write_executemany(target, rows, columns, key, on_conflict, updated, progress) -> int:
    """SQLite: one compiled statement, the driver's executemany over tuples built column by column, in chunks.

    The tuples are sorted by the key (after conversion: plain strings and numbers compare fast), so the
    unique index grows at its end instead of everywhere.
    """
    connection = db.session.connection()
    stmt = _on_conflict(sqlite_insert(target), target, key, on_conflict, updated)
    compiled = stmt.compile(dialect=connection.dialect, column_keys=columns)
    names = list(compiled.positiontup or [])
    if sorted(names) != sorted(columns):  # not a plain positional statement: let SQLAlchemy bind the rows
        return _write_core(stmt, rows, columns, progress)
    processors = compiled._bind_processors
    data = []
    for name in names:
        values = _column(rows, name)
        processor = processors.get(name)
        data.append(_converted(values, processor) if processor is not None else values)
    params = list(zip(*data, strict=True))
    # Sorted by the first key column that varies (a plain string or number: a fast C compare); rows are then
    # near key order, which is all the index needs.
    varying = [k for k in key if len(set(data[names.index(k)])) > 1]
    if varying:
        params.sort(key=itemgetter(names.index(varying[0])))
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


def _write_core(stmt, rows, columns, progress) -> int:
    """Any other statement shape: SQLAlchemy's executemany with dicts."""
    total, written = len(rows), 0
    for start in range(0, total, CHUNK):
        chunk = [{c: row[c] for c in columns} for row in rows[start : start + CHUNK]]
        written += max(db.session.execute(stmt, chunk).rowcount, 0)
        if progress:
            progress(min(start + CHUNK, total), total)
    return written


def streams() -> bool:
    """True when the database takes rows by COPY while the caller still parses (PostgreSQL)."""
    return db.session.get_bind().dialect.name == "postgresql"


@contextmanager
def copy_stream(target: Table, columns: Sequence[str]) -> Iterator[Callable[[Sequence[dict]], None]]:
    """PostgreSQL: one COPY into `target`, fed chunk by chunk by `send(rows)` (dicts) inside the block.

    An exception in the block abandons the COPY (the caller's transaction then rolls back).
    """
    columns = list(columns)
    raw = db.session.connection().connection.driver_connection
    copy_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(target.name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with raw.cursor() as cursor, cursor.copy(copy_stmt) as copy:

        def send(rows: Sequence[dict]) -> None:
            texts = [_copy_column(_column(rows, c)) for c in columns]
            copy.write("\n".join(map("\t".join, zip(*texts, strict=True))) + "\n")

        yield send


def _copy(cursor, name: str, rows, columns, progress) -> None:
    """COPY the rows into the table `name`: the COPY text built column by column, at C speed."""
    copy_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    texts = [_copy_column(_column(rows, c)) for c in columns]
    lines = list(map("\t".join, zip(*texts, strict=True)))
    total = len(lines)
    with cursor.copy(copy_stmt) as copy:
        for start in range(0, total, CHUNK):
            copy.write("\n".join(lines[start : start + CHUNK]) + "\n")
            if progress:
                progress(min(start + CHUNK, total), total)


_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_column(values: list) -> list[str]:
    """One column in COPY's text format: None is \\N; text escaped; dates once per distinct value."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, datetime) or sample is None:
        cache = {v: (_NULL if v is None else v.isoformat(sep=" ")) for v in set(values)}
        return list(map(cache.__getitem__, values))
    if isinstance(sample, bool):
        return list(map({True: "t", False: "f", None: _NULL}.__getitem__, values))
    has_null = None in values
    if isinstance(sample, str):
        if has_null:
            values = [_NULL if v is None else v for v in values]
        joined = "".join(values)
        if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
            return [v if v is _NULL else v.translate(_COPY_ESCAPES) for v in values]
        return values
    if has_null:
        return [_NULL if v is None else str(v) for v in values]
    return list(map(str, values))


def _copy_postgresql(target, rows, columns, progress) -> int:
    """PostgreSQL, no conflict possible (an empty or emptied table): COPY straight into the table."""
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        _copy(cursor, target.name, rows, columns, progress)
    return len(rows)


def _write_postgresql(target, rows, columns, key, on_conflict, updated, progress) -> int:
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
        _copy(cursor, temp_name, rows, columns, progress)
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
        progress(len(rows), len(rows))
    return written
