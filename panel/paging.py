"""The one paginator: page numbers for small results, keyset cursors for large ones, counts that stay cheap.

Every list orders by its sort key, then by the row's id (a unique, stable order). Three ways to reach a page:

- `?page=N`: an offset, for results small enough to count (the pager numbers their pages).
- `?after=<cursor>` / `?before=<cursor>`: the page after or before a row, found through the sort key's index
  (keyset paging), as fast on page 20,000 as on page 2. The cursor holds the sort values of that row.
- `?last=1`: the last page (the order reversed, then the page turned back).

Counting reads at most COUNT_LIMIT + 1 rows: an exact number when small, "more than 10,000" beyond (the
pager then offers First / Previous / Next / Last instead of page numbers). No page view scans a large table.
"""

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask import current_app, request
from sqlalchemy import Select, and_, false, func, literal, or_, select, text, tuple_
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.types import TypeEngine

from panel.extensions import db

COUNT_LIMIT = 10_000
CURSOR_ARGS = ("after", "before", "last")
_MAX_CURSOR = 2000


@dataclass(frozen=True)
class Key:
    """One sort expression of a list's order and its direction."""

    expr: object
    descending: bool = False

    @property
    def nullable(self) -> bool:
        """Whether the expression may be NULL (columns say so; anything else is assumed to)."""
        column = getattr(self.expr, "expression", self.expr)
        return bool(getattr(column, "nullable", True))

    def ordered(self, reverse: bool = False):
        """The ORDER BY element (the direction flipped when reading backwards)."""
        return self.expr.desc() if self.descending != reverse else self.expr.asc()


def page_args() -> tuple[int, int]:
    """(page, per_page) from the query string, bounded."""
    default = current_app.config["PAGE_SIZE"]
    page = request.args.get("page", 1, type=int) or 1
    per_page = request.args.get("per_page", default, type=int) or default
    # A page beyond a billion is empty anyway; bounding it keeps the offset inside a 64-bit integer.
    return min(max(page, 1), 10**9), min(max(per_page, 1), 500)


def sort_key(sortable: dict, default: str) -> str:
    """The requested sort (`name` or `-name`), or the default when it is not one of `sortable`."""
    key = request.args.get("sort", default)
    return key if key.lstrip("-") in sortable else default


def keys_from_request(sortable: dict, default: str, tiebreak=None) -> tuple[str, list[Key]]:
    """The sort asked for (whitelisted in `sortable`: name -> expression or tuple of them) and its keys.

    The sort's expressions take the asked direction; the tiebreak (the id; `Model.id.desc()` for newest
    first) keeps its own, so ties stay in the order they always had.
    """
    sort = sort_key(sortable, default)
    descending = sort.startswith("-")
    exprs = sortable[sort.lstrip("-")]
    exprs = list(exprs) if isinstance(exprs, tuple | list) else [exprs]
    keys = [Key(e, descending) for e in exprs]
    if tiebreak is not None:
        if isinstance(tiebreak, UnaryExpression):
            keys.append(Key(tiebreak.element, tiebreak.modifier is operators.desc_op))
        elif not any(e is tiebreak for e in exprs):
            keys.append(Key(tiebreak))
    return sort, keys


# ---------------------------------------------------------------- cursors


def _encode_value(value):
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _decode_value(value):
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if isinstance(text, str):
            if tag == "t":
                return datetime.fromisoformat(text)
            if tag == "d":
                return date.fromisoformat(text)
            if tag == "n" and Decimal(text).is_finite():
                return Decimal(text)
        raise ValueError("unknown value")
    if value is None or isinstance(value, bool | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    raise ValueError("bad value")


def encode_cursor(sort: str, values: Sequence) -> str:
    """A URL-safe token of a row's sort values (under the list's sort, so another sort ignores it)."""
    raw = json.dumps([sort, [_encode_value(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _expected_type(key: Key):
    try:
        return key.expr.type.python_type
    except (AttributeError, NotImplementedError):
        return None


def decode_cursor(token: str, sort: str, keys: Sequence[Key]) -> list | None:
    """The sort values in `token`, or None when it is not a cursor of this sort (tampered, stale, foreign)."""
    if not token or len(token) > _MAX_CURSOR:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tag, values = json.loads(raw)
        values = [_decode_value(v) for v in values]
    except (ValueError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError):
        return None
    if tag != sort or len(values) != len(keys):
        return None
    for key, value in zip(keys, values, strict=True):
        expected = _expected_type(key)
        if value is None:
            if not key.nullable:
                return None
        elif expected is not None and not _fits(value, expected):
            return None
    return values


def _fits(value, expected: type) -> bool:
    """Whether a decoded value may be bound where `expected` is (no database error from a crafted cursor)."""
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is Decimal or expected is float:
        return isinstance(value, Decimal | int | float) and not isinstance(value, bool)
    if expected is datetime:
        return isinstance(value, datetime)
    if expected is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if expected is str:
        return isinstance(value, str) and len(value) <= 1000
    return isinstance(value, expected)


# ---------------------------------------------------------------- keyset conditions


def _nulls_high() -> bool:
    """PostgreSQL sorts NULL above every value, SQLite below."""
    return db.session.get_bind().dialect.name == "postgresql"


def _beyond(key: Key, value, forward: bool):
    """`key` strictly past `value` in the reading direction (NULLs where the database sorts them)."""
    up = forward != key.descending  # past = greater in raw order
    expr = key.expr
    if not key.nullable:
        return expr > value if up else expr < value
    high = _nulls_high()
    if value is None:
        return (false() if high else expr.is_not(None)) if up else (expr.is_not(None) if high else false())
    if up:
        return or_(expr > value, expr.is_(None)) if high else expr > value
    return expr < value if high else or_(expr < value, expr.is_(None))


def _same(key: Key, value):
    return key.expr.is_(None) if value is None else key.expr == value


def keyset_condition(keys: Sequence[Key], values: Sequence, forward: bool = True):
    """Rows strictly after (forward) or before the row whose sort values are `values`, in the keys' order."""
    plain = all(not k.nullable for k in keys) and len({k.descending for k in keys}) == 1
    if plain:
        # One row comparison: both databases turn it into a range of the composite index.
        up = forward != keys[0].descending
        # Each value bound with its column's type (money is stored as millionths on SQLite).
        left = tuple_(*(k.expr for k in keys))
        right = tuple_(*(literal(v, type_=k.expr.type) for k, v in zip(keys, values, strict=True)))
        return left > right if up else left < right
    terms = []
    for i, key in enumerate(keys):
        terms.append(
            and_(
                *(_same(k, v) for k, v in zip(keys[:i], values[:i], strict=True)),
                _beyond(key, values[i], forward),
            )
        )
    condition = or_(*terms)
    first, value = keys[0], values[0]
    if not first.nullable:
        # The leading column's bound (not strict) lets the index start at the cursor instead of the top.
        up = forward != first.descending
        condition = and_(first.expr >= value if up else first.expr <= value, condition)
    return condition


def plan_for_the_values() -> None:
    """PostgreSQL: plan the rest of this transaction's statements for their values, never generically.

    psycopg prepares a statement once a connection has run it five times, and PostgreSQL may then keep one
    generic plan for it, made without the values: for `name ILIKE $1 ... ORDER BY id DESC LIMIT $2` that is a
    walk of the whole primary key testing every account (0.9 s at a million accounts) instead of the trigram
    indexes a search text's own plan reads (a few ms). A long-running worker repeats its lists' statements:
    searches and filters call this first.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


# ---------------------------------------------------------------- counting


def count_capped(stmt: Select, limit: int | None = None) -> int:
    """How many rows `stmt` gives, reading at most `limit` + 1 of them (so a result > limit is > limit)."""
    limit = COUNT_LIMIT if limit is None else limit
    bounded = stmt.with_only_columns(literal(1), maintain_column_froms=True).order_by(None).limit(limit + 1)
    return db.session.scalar(select(func.count()).select_from(bounded.subquery())) or 0


# ---------------------------------------------------------------- the page


@dataclass
class Page:
    """One page of a list and how to reach the others (what the pager macro reads)."""

    items: list
    per_page: int
    page: int | None = None  # the page number when reached by number
    total: int | None = None  # exact count, None when capped or not counted
    capped: bool = False  # more than `limit` rows
    limit: int = COUNT_LIMIT
    has_prev: bool = False
    has_next: bool = False
    sort: str = ""
    first_values: list | None = field(default=None, repr=False)
    last_values: list | None = field(default=None, repr=False)

    def __iter__(self):
        return iter(self.items)

    @property
    def pages(self) -> int | None:
        """How many pages there are (known only when the count is exact)."""
        if self.total is None:
            return None
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def numbered(self) -> bool:
        """Page numbers are shown: a small exact count and a page reached by number (larger: cursors)."""
        return self.total is not None and self.total <= self.limit and self.page is not None

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.page and self.page > 1 else None

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.page and self.has_next else None

    @property
    def count_text(self) -> str:
        """ "7 found", "more than 10,000 found"; empty when not counted."""
        if self.capped:
            return f"more than {self.limit:,} found"
        return f"{self.total:,} found" if self.total is not None else ""

    def iter_pages(self, left_edge=1, left_current=2, right_current=3, right_edge=1):
        """Page numbers with None for a gap (as Flask-SQLAlchemy's Pagination gives them)."""
        pages, page = self.pages or 1, self.page or 1
        shown = [
            n
            for n in range(1, pages + 1)
            if n <= left_edge or page - left_current <= n < page + right_current or n > pages - right_edge
        ]
        previous = 0
        for n in shown:
            if n != previous + 1:
                yield None
            yield n
            previous = n

    def _cursor(self, values) -> str:
        return encode_cursor(self.sort, values)

    @property
    def first_args(self) -> dict:
        return {"page": None, "after": None, "before": None, "last": None}

    @property
    def last_args(self) -> dict:
        if self.numbered:
            return {"page": self.pages, "after": None, "before": None, "last": None}
        return {"page": None, "after": None, "before": None, "last": 1}

    @property
    def prev_args(self) -> dict | None:
        """Query arguments of the previous page (None on the first)."""
        if not self.has_prev:
            return None
        if self.numbered or self.first_values is None:
            return {"page": self.prev_num, "after": None, "before": None, "last": None}
        return {"page": None, "after": None, "before": self._cursor(self.first_values), "last": None}

    @property
    def next_args(self) -> dict | None:
        """Query arguments of the next page (None on the last)."""
        if not self.has_next:
            return None
        if self.numbered or self.last_values is None:
            return {"page": self.next_num, "after": None, "before": None, "last": None}
        return {"page": None, "after": self._cursor(self.last_values), "before": None, "last": None}


def _collect(ordered: Select, keys: Sequence[Key], offset: int, limit: int) -> tuple[list, int | None]:
    """Rows `offset` to `offset + limit` of `ordered` (whose last columns are the keys) and the number of its
    rows up to COUNT_LIMIT + 1, in one statement. The count is None when a page past the first is past the end
    (no row to carry it).

    SQLite: `count(*) OVER ()` over the bounded rows. PostgreSQL planned that form badly (a scan under the
    window), so there the bounded rows are a materialized CTE, read once by the plan they have alone (what the
    rows fetched whole ran as) and then counted and cut: 10,001 rows handed to Python cost 12 ms of CPU."""
    bounded_rows = ordered.limit(COUNT_LIMIT + 1)
    if db.session.get_bind().dialect.name == "postgresql":
        bounded = bounded_rows.cte("collected").prefix_with("MATERIALIZED")
        count = select(func.count()).select_from(bounded).scalar_subquery()
    else:
        bounded = bounded_rows.subquery()
        count = func.count().over()
    columns = list(bounded.c)
    key_columns = columns[-len(keys) :]
    order = [Key(column, key.descending).ordered() for column, key in zip(key_columns, keys, strict=True)]
    page = select(*columns, count).order_by(*order).offset(offset or None).limit(limit)
    rows = db.session.execute(page).all()
    if rows:
        return [row[:-1] for row in rows], rows[0][-1]
    return [], None if offset else 0


def paginate(
    stmt: Select,
    keys: Sequence[Key] = (),
    *,
    sort: str = "",
    count: bool = True,
    total: int | None = None,
    load: Callable[[list], list] | None = None,
    rows: bool = False,
    collect: bool = False,
    capped: bool = False,
) -> Page:
    """Order `stmt` by `keys` and cut the page the request asks for (by number, cursor or `last`).

    `keys` must end with a unique column (the id). `total` is a count the caller has already; `count=False`
    skips counting. Items are the selected entity (or the single column); with `rows=True`, whole rows
    (offset paging only: keyset needs the keys' values). `load` turns the page's items into what is shown
    (e.g. ids into loaded objects). `collect=True` (for narrow selects, e.g. ids under a search that may
    have to read the whole table): numbered pages come out of one pass that collects up to COUNT_LIMIT + 1
    rows, which also gives the count.
    """
    page_no, per_page = page_args()
    args = request.args
    keyset = bool(keys) and not rows
    values, forward, reverse, mode = None, True, False, "offset"
    if keyset:
        if args.get("last"):
            mode, reverse = "last", True
        elif args.get("after"):
            values = decode_cursor(args["after"], sort, keys)
            mode = "after" if values is not None else "offset"
        elif args.get("before"):
            values = decode_cursor(args["before"], sort, keys)
            if values is not None:
                mode, forward, reverse = "before", False, True
    counted = COUNT_LIMIT + 1 if capped else total
    if counted is None and count and mode != "offset":
        counted = count_capped(stmt)
        capped = counted > COUNT_LIMIT
    if mode == "last" and counted is not None and not capped and counted <= COUNT_LIMIT:
        # A small result's last page is its numbered last page (the same rows the page links show).
        mode, reverse, page_no = "offset", False, max(1, math.ceil(counted / per_page))

    ordered = stmt.order_by(None).order_by(*(k.ordered(reverse) for k in keys)) if keys else stmt
    if values is not None:
        ordered = ordered.where(keyset_condition(keys, values, forward))
    if keyset:
        ordered = ordered.add_columns(*(k.expr for k in keys))
    offset = (page_no - 1) * per_page if mode == "offset" else 0
    if collect and keyset and mode == "offset" and counted is None and count and offset < COUNT_LIMIT:
        # One bounded pass gives the count and the page: a search with few matches reads the table once. On
        # SQLite the database counts the (at most COUNT_LIMIT + 1) rows and hands over only the page's.
        columns_only = all(isinstance(d["type"], TypeEngine) for d in ordered.column_descriptions)
        if columns_only:
            fetched, counted = _collect(ordered, keys, offset, per_page + 1)
        else:
            # Entities (joined eager loads) do not fit in a subquery: the rows come over.
            fetched = list(db.session.execute(ordered.limit(COUNT_LIMIT + 1)).unique())
            counted = len(fetched)
            fetched = fetched[offset : offset + per_page + 1]
        capped = counted is not None and counted > COUNT_LIMIT
    else:
        # Every row holds a unique key, so unique() changes nothing but lets joined eager loads through.
        fetched = list(db.session.execute(ordered.offset(offset or None).limit(per_page + 1)).unique())
    more = len(fetched) > per_page
    fetched = fetched[:per_page]
    if reverse:
        fetched.reverse()
    page = Page(items=fetched if rows else [row[0] for row in fetched], per_page=per_page, sort=sort)
    page.limit = COUNT_LIMIT
    if keyset and fetched:
        page.first_values = list(fetched[0][-len(keys) :])
        page.last_values = list(fetched[-1][-len(keys) :])
    if mode == "offset":
        page.page, page.has_prev, page.has_next = page_no, page_no > 1, more
    elif mode == "after":
        page.has_prev, page.has_next = True, more
    elif mode == "before":
        page.has_prev, page.has_next = more, True
    else:  # the last page of a large result
        page.has_prev, page.has_next = more, False

    if counted is None and count:
        counted = count_capped(stmt)
        capped = counted > COUNT_LIMIT
    page.capped = capped
    page.total = None if capped else counted
    if load is not None:
        page.items = load(page.items)
    return page
