"""Paging a plan's rules quickly when the plan holds tens of thousands of them.

A deep page (page 400 of a 50,000-rule plan) would make the database read and sort every row before it.
Rules are shown sorted by an indexed column first (code or priority), so rows with the same value of that
column stay together in any order that starts with it. The page's first and last values of that column are
read from the index alone; then only the rows between them are read, in the display order, and the page is cut
out of them.
"""

from flask_sqlalchemy.pagination import SelectPagination
from sqlalchemy import func, select

from panel.extensions import db
from panel.listing import page_args
from panel.models import RoutingRule

# Below this offset the plain LIMIT/OFFSET query is as fast.
DEEP_OFFSET = 1000


class RulePagination(SelectPagination):
    """Flask-SQLAlchemy's pagination for rules, with a fast path for deep pages and a lean count."""

    def _query_items(self) -> list[RoutingRule]:
        """The rules of the page, in display order."""
        args = self._query_args
        offset = self._query_offset
        if offset < DEEP_OFFSET:
            return super()._query_items()
        session, where = args["session"], args["where"]
        column, descending = args["group"]
        window = session.scalars(
            select(column)
            .where(*where)
            .order_by(column.desc() if descending else column)
            .offset(offset)
            .limit(self.per_page)
        ).all()
        if not window:
            return []
        first, last = window[0], window[-1]
        before = session.scalar(
            select(func.count())
            .select_from(RoutingRule)
            .where(*where, column > first if descending else column < first)
        )
        spanned = column.between(last, first) if descending else column.between(first, last)
        stmt = args["select"].where(spanned).offset(offset - before).limit(self.per_page)
        return list(session.execute(stmt).unique().scalars())

    def _query_count(self) -> int:
        """How many rules match (a plain count, no subquery of every column)."""
        args = self._query_args
        return args["session"].scalar(select(func.count()).select_from(RoutingRule).where(*args["where"]))


def paginate_rules(stmt, where: list, group: tuple) -> RulePagination:
    """Page `stmt` (rules under `where`, ordered starting with `group` = (column, descending))."""
    page, per_page = page_args()
    return RulePagination(
        select=stmt,
        session=db.session(),
        where=where,
        group=group,
        page=page,
        per_page=per_page,
        max_per_page=None,
        error_out=False,
        count=True,
    )
