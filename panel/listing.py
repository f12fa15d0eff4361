"""Sorting and paging of the sections' lists: a thin front of the one paginator (panel.paging)."""

from flask import request
from sqlalchemy import Select

from panel import paging
from panel.paging import page_args, sort_key

__all__ = ["id_arg", "page_args", "paginate", "sort_key"]


def id_arg(name: str) -> int | None:
    """An id from the query string (a filter): None when absent, not ASCII digits, or out of the id range."""
    from panel.forms import parse_id

    return parse_id(request.args.get(name))


def _primary_key(stmt: Select):
    """The id column of the select's entity (the tiebreak that makes any order unique), or None."""
    entity = stmt.column_descriptions[0].get("entity") if stmt.column_descriptions else None
    mapper = getattr(entity, "__mapper__", None)
    if mapper is None or len(mapper.primary_key) != 1:
        return None
    return getattr(entity, mapper.primary_key[0].key)


def paginate(
    stmt: Select,
    sortable: dict | None = None,
    default_sort: str | None = None,
    tiebreak=None,
    count: bool = True,
    total: int | None = None,
) -> paging.Page:
    """Sort `stmt` by the asked column (whitelisted in `sortable`: name -> column), then the id: one page."""
    if tiebreak is None:
        tiebreak = _primary_key(stmt)
    if not sortable:
        keys = [paging.Key(tiebreak)] if tiebreak is not None else []
        return paging.paginate(stmt, keys, count=count, total=total)
    sort, keys = paging.keys_from_request(sortable, default_sort or next(iter(sortable)), tiebreak)
    return paging.paginate(stmt, keys, sort=sort, count=count, total=total)
