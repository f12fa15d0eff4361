"""Server-side paging and sorting for every list (one way to do it, used by every section)."""

from flask import current_app, request
from sqlalchemy import Select

from panel.extensions import db


def page_args() -> tuple[int, int]:
    """(page, per_page) from the query string, bounded."""
    page = request.args.get("page", 1, type=int) or 1
    per_page = (
        request.args.get("per_page", current_app.config["PAGE_SIZE"], type=int)
        or current_app.config["PAGE_SIZE"]
    )
    # A page beyond a billion is empty anyway; bounding it keeps the offset inside a 64-bit integer.
    return min(max(page, 1), 10**9), min(max(per_page, 1), 500)


def id_arg(name: str) -> int | None:
    """An id from the query string (a filter): None when absent, not ASCII digits, or out of the id range."""
    from panel.forms import parse_id

    return parse_id(request.args.get(name))


def sort_key(sortable: dict, default: str) -> str:
    """The requested sort (`name` or `-name`), or the default when it is not one of `sortable`."""
    key = request.args.get("sort", default)
    return key if key.lstrip("-") in sortable else default


def apply_sort(stmt: Select, sortable: dict, default: str, tiebreak=None) -> Select:
    """Order `stmt` by the requested column (whitelisted in `sortable`: name -> column), then `tiebreak`."""
    key = sort_key(sortable, default)
    column = sortable[key.lstrip("-")]
    stmt = stmt.order_by(column.desc() if key.startswith("-") else column.asc())
    return stmt.order_by(tiebreak) if tiebreak is not None else stmt


def paginate(
    stmt: Select,
    sortable: dict | None = None,
    default_sort: str | None = None,
    tiebreak=None,
    count: bool = True,
):
    """Sort and page a select; returns Flask-SQLAlchemy's Pagination (items, page, pages, total)."""
    if sortable:
        stmt = apply_sort(stmt, sortable, default_sort or next(iter(sortable)), tiebreak)
    page, per_page = page_args()
    return db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=count)
