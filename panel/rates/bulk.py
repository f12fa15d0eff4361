"""Bulk writes for the big imports (rate decks, code decks): hundreds of thousands of rows in seconds.

Not one ORM object per row: on SQLite an `executemany` of `INSERT … ON CONFLICT` in chunks; on PostgreSQL a
`COPY` into a temporary table, then one `INSERT … SELECT … ON CONFLICT`. Both run in the caller's session
transaction, so the import stays all or nothing.
"""

from collections.abc import Callable, Sequence

from psycopg import sql
from sqlalchemy import Table, column, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from panel.extensions import db

CHUNK = 20_000
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
) -> None:
    """Insert `rows` (dicts with every name in `columns`) into `target` in the session's transaction.

    `key` names the unique columns `on_conflict` refers to; `update` overwrites the columns named in `update`
    (default: every column not in the key).
    """
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {ON_CONFLICT}")
    if not rows:
        return
    columns, key = list(columns), list(key)
    updated = [c for c in (update if update is not None else columns) if c not in key]
    if db.session.get_bind().dialect.name == "postgresql":
        _write_postgresql(target, rows, columns, key, on_conflict, updated, progress)
    else:
        _write_executemany(target, rows, columns, key, on_conflict, updated, progress)


def _write_executemany(target, rows, columns, key, on_conflict, updated, progress) -> None:
    """SQLite (and any other database): executemany in chunks."""
    stmt = sqlite_insert(target) if db.session.get_bind().dialect.name == "sqlite" else target.insert()
    if on_conflict == "update" and key:
        stmt = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in updated})
    elif on_conflict == "nothing" and key:
        stmt = stmt.on_conflict_do_nothing(index_elements=key)
    total = len(rows)
    exact = set(rows[0]) == set(columns)
    for start in range(0, total, CHUNK):
        chunk = rows[start : start + CHUNK]
        db.session.execute(stmt, chunk if exact else [{c: row[c] for c in columns} for row in chunk])
        if progress:
            progress(min(start + CHUNK, total), total)


def _write_postgresql(target, rows, columns, key, on_conflict, updated, progress) -> None:
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
        copy_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(temp_name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        total = len(rows)
        with cursor.copy(copy_stmt) as copy:
            for i, row in enumerate(rows, start=1):
                copy.write_row([row[c] for c in columns])
                if progress and i % CHUNK == 0:
                    progress(i, total)
    source = table_clause(temp_name, *(column(c) for c in columns))
    stmt = pg_insert(target).from_select(columns, select(*(source.c[c] for c in columns)))
    if on_conflict == "update" and key:
        stmt = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in updated})
    elif on_conflict == "nothing" and key:
        stmt = stmt.on_conflict_do_nothing(index_elements=key)
    db.session.execute(stmt)
    if progress:
        progress(len(rows), len(rows))
