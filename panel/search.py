"""The one search helper: LIKE escaping, and the panel's search conditions in forms an index can serve.

- `contains` (a text anywhere in the column): on PostgreSQL served by a trigram index (pg_trgm, GIN) where the
  model declares one (`trigram_index`), on SQLite LIKE (which ignores ASCII case by itself).
- `prefix` (codes, numbers, tech prefixes): a range `>= text AND < next(text)` that a plain B-tree index
  serves on both databases, with the LIKE kept beside it so the match is exact under any collation;
  `starts_with` the same for names, trying the usual cases of the text (SQLite's default quick search, where
  no trigram index serves a contains-search).
- `has_word` (space-separated tags): a whole word of the column.
"""

from sqlalchemy import Index, and_, event, literal, or_, text
from sqlalchemy.sql import false

from panel.extensions import db

ESCAPE = "\\"


def escape_like(value: str) -> str:
    """The user's text with LIKE's wildcards (`%`, `_`) and the escape character itself taken literally."""
    return value.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def contains(column, value: str):
    """`column` contains `value`, ignoring the case of ASCII letters (the same on both databases)."""
    pattern = f"%{escape_like(value)}%"
    if _dialect() == "sqlite" or value.lower() == value.upper():
        # SQLite's LIKE ignores ASCII case already; a text without letters needs no case folding at all.
        return column.like(pattern, escape=ESCAPE)
    return column.ilike(pattern, escape=ESCAPE)


def _successor(value: str) -> str:
    """The smallest string above every string that starts with `value` (its last character bumped)."""
    return value[:-1] + chr(ord(value[-1]) + 1)


def prefix(column, value: str):
    """`column` starts with `value` (case as typed): an index range, exact under any collation."""
    if not value:
        return literal(True)
    return and_(
        column >= value,
        column < _successor(value),
        column.like(f"{escape_like(value)}%", escape=ESCAPE),
    )


def case_variants(value: str) -> list[str]:
    """The text as typed, in lower case, upper case and capitalised (each once): what a prefix search tries
    where no index ignores case."""
    return list(dict.fromkeys((value, value.lower(), value.upper(), value[:1].upper() + value[1:].lower())))


def starts_with(column, value: str):
    """`column` starts with `value` as typed, lower, upper or capitalised: index ranges on both databases."""
    return or_(*(prefix(column, variant) for variant in case_variants(value)))


def has_word(column, word: str):
    """The space-separated words of `column` include `word` (a whole word, not a part of one)."""
    word = word.strip()
    if not word:
        return false()
    spaced = literal(" ") + column + literal(" ")
    return spaced.like(f"% {escape_like(word)} %", escape=ESCAPE)


def trigram_index(name: str, column: str) -> Index:
    """A pg_trgm GIN index that serves `contains` on PostgreSQL; on SQLite an empty partial index (no cost).

    The index lives in the models (so `make regen-migration` keeps it); the extension it needs is created by
    migrations/env.py before the migrations run and by the DDL hook below for `create_all`.
    """
    return Index(
        name,
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
        sqlite_where=text("0"),
    )


@event.listens_for(db.metadata, "before_create")
def _create_trigram_extension(target, connection, **kw) -> None:
    """`create_all` on PostgreSQL: pg_trgm first, so the trigram indexes can be created."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
