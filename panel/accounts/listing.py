"""The accounts list at scale (100,000 accounts and more): search conditions, the plan of the query, the page.

Three choices keep every request fast on SQLite and PostgreSQL alike:

- **Ids first.** The filtering and sorting run on a narrow query that returns account ids only; the 50 rows of
  the page are then loaded by primary key with their client, rate tables and plan in one joined query.
- **The scope drives the plan.** A user who sees most of the clients (the operator) is best served by walking
  the primary key (or the sort column's index) and checking the scope on the way; a reseller that owns a small
  share is best served by the `client_id` index. The share of clients in scope decides which condition the
  query gets; both are the same company-scope condition (`scope.scope_condition`), written so the database
  can or cannot use the `client_id` index.
- **Honest, bounded counts.** The plain list counts exactly (an index count). A search collects at most
  COUNT_LIMIT + 1 matching ids in one pass and says "more than 10,000" beyond that, instead of scanning the
  table twice.
"""

import ipaddress
from dataclasses import dataclass

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import joinedload, selectinload

from panel.extensions import db
from panel.models import Account, AccountNetwork, Client
from panel.models.accounts import IDENT_BY_LABELS
from panel.scope import scope_condition

SORTABLE = {
    "id": (Account.id,),
    "client": (Client.name, Client.id),
    "name": (Account.name,),
    "ident": (Account.ident_value,),
    "tech_prefix": (Account.tech_prefix,),
}
DEFAULT_SORT = "-id"
# A search collects at most this many matches; beyond it the list says "more than".
COUNT_LIMIT = 10_000
# Above this share of the clients in scope, walk the primary key instead of the client_id index.
SCAN_SHARE = 0.2


@dataclass
class Search:
    """The list's filters as read from the query string (already bounded)."""

    text: str = ""
    client_id: int | None = None
    ident_by: str = ""
    rate_table_id: int | None = None
    routing_plan_id: int | None = None
    tag: str = ""
    state: str = ""

    @property
    def filtered(self) -> bool:
        """True when anything beyond the client filter narrows the list."""
        return bool(
            self.text or self.ident_by or self.rate_table_id or self.routing_plan_id or self.tag or self.state
        )


class PagePagination(Pagination):
    """Flask-SQLAlchemy's Pagination (what the pager macro reads) over items and a total computed here."""

    def _query_items(self) -> list:
        return self._query_args["items"]

    def _query_count(self) -> int:
        return self._query_args["total"]


def _is_sqlite() -> bool:
    """SQLite's LIKE is case-insensitive for ASCII already, and much faster than lower(...) LIKE."""
    return db.session.get_bind().dialect.name == "sqlite"


def _escape(text: str) -> str:
    """LIKE wildcards in the user's text taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(column, text: str):
    """`column` contains `text`, ignoring the case of ASCII letters (the same on both databases).

    SQLite's LIKE already ignores ASCII case. On PostgreSQL a text without letters (addresses, numbers,
    prefixes) needs no case folding at all, and one with letters is matched with ILIKE under the "C"
    collation: ASCII case folding only, several times cheaper than the locale's.
    """
    pattern = f"%{_escape(text)}%"
    if _is_sqlite() or text.lower() == text.upper():
        return column.like(pattern, escape="\\")
    return column.collate("C").ilike(pattern, escape="\\")


def networks_containing(text: str) -> list[str] | None:
    """For a search that is an IP address: every canonical network that contains it; None otherwise."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return [
        str(ipaddress.ip_network(f"{address}/{length}", strict=False))
        for length in range(address.max_prefixlen, -1, -1)
    ]


def quick_search_condition(text: str):
    """Account name or ident value containing the text, tech prefix starting with it, the account ID, and for
    an IP address every account whose networks contain it (an indexed lookup of the 33 or 129 networks)."""
    conditions = [
        contains(Account.name, text),
        contains(Account.ident_value, text),
        Account.tech_prefix.like(f"{_escape(text)}%", escape="\\"),
    ]
    if text.isdigit() and len(text) < 12:
        conditions.append(Account.id == int(text))
    networks = networks_containing(text)
    if networks:
        conditions.append(
            Account.id.in_(select(AccountNetwork.account_id).where(AccountNetwork.network.in_(networks)))
        )
    return or_(*conditions)


def _tag_condition(column, tag: str):
    """Tags are space-separated words: match a whole word."""
    spaced = literal(" ") + column + literal(" ")
    return spaced.like(f"% {_escape(tag)} %", escape="\\")


def filter_conditions(search: Search) -> list:
    """The conditions of the quick and advanced search (the scope comes separately)."""
    conditions = []
    if search.text:
        conditions.append(quick_search_condition(search.text))
    if search.client_id:
        conditions.append(Account.client_id == search.client_id)
    if search.ident_by in IDENT_BY_LABELS:
        conditions.append(Account.ident_by == search.ident_by)
    if search.rate_table_id:
        rid = search.rate_table_id
        conditions.append(or_(Account.orig_rate_table_id == rid, Account.term_rate_table_id == rid))
    if search.routing_plan_id:
        conditions.append(Account.orig_routing_plan_id == search.routing_plan_id)
    if search.tag:
        conditions.append(
            or_(_tag_condition(Account.orig_tags, search.tag), _tag_condition(Account.term_tags, search.tag))
        )
    if search.state == "orig":
        conditions.append(Account.orig_enabled.is_(True))
    elif search.state == "term":
        conditions.append(Account.term_enabled.is_(True))
    elif search.state == "both":
        conditions.append(and_(Account.orig_enabled.is_(True), Account.term_enabled.is_(True)))
    elif search.state == "off":
        conditions.append(and_(Account.orig_enabled.is_(False), Account.term_enabled.is_(False)))
    return conditions


def scope_for_list(company_ids):
    """The company-scope condition for the list, shaped for the best plan (see the module's notes)."""
    clients_in_scope = select(Client.id).where(scope_condition(Client, company_ids))
    in_scope, every = db.session.execute(
        select(func.count(case((scope_condition(Client, company_ids), 1))), func.count()).select_from(Client)
    ).one()
    if every and in_scope >= SCAN_SHARE * every:
        # `client_id + 0` is the same condition, but no index on client_id can serve it.
        return (Account.client_id + 0).in_(clients_in_scope)
    return scope_condition(Account, company_ids)


def _ordered(stmt: Select, sort: str) -> Select:
    """Order by the sort key (ties by id, in the same direction); the client sort joins the client."""
    key = sort.lstrip("-")
    columns = SORTABLE[key]
    if key == "client":
        stmt = stmt.join(Client, Client.id == Account.client_id)
    descending = sort.startswith("-")
    order = [c.desc() if descending else c.asc() for c in columns]
    if key != "id":
        order.append(Account.id.desc() if descending else Account.id.asc())
    return stmt.order_by(*order)


def row_options() -> tuple:
    """Eager loads for list rows: many-to-one relations joined into the row query, gateways in one more."""
    return (
        joinedload(Account.client).joinedload(Client.orig_rate_table),
        joinedload(Account.client).joinedload(Client.term_rate_table),
        joinedload(Account.client).joinedload(Client.routing_plan),
        joinedload(Account.orig_rate_table),
        joinedload(Account.term_rate_table),
        joinedload(Account.orig_routing_plan),
        # Not joined: SQLite would materialise the whole account_gateways/gateways join for it.
        selectinload(Account.gateways),
    )


def load_rows(ids: list[int]) -> list[Account]:
    """The accounts of these ids, in this order, with what a row shows."""
    if not ids:
        return []
    stmt = select(Account).where(Account.id.in_(ids)).options(*row_options())
    found = {a.id: a for a in db.session.scalars(stmt).unique()}
    return [found[i] for i in ids if i in found]


def account_page(company_ids, search: Search, sort: str, page: int, per_page: int) -> tuple[Pagination, bool]:
    """One page of the list and whether the total is capped (a search with more than COUNT_LIMIT matches)."""
    scope = scope_for_list(company_ids)
    # Search conditions first: SQLite tests them in this order, and a failed LIKE is cheaper than the scope's
    # subquery probe (PostgreSQL orders them by cost itself).
    conditions = [*filter_conditions(search), scope]
    ids_stmt = _ordered(select(Account.id).where(*conditions), sort)
    offset = (page - 1) * per_page
    capped = False
    if search.filtered:
        # One pass collects the matching ids (bounded): the count and the page come from it.
        matching = list(db.session.scalars(ids_stmt.limit(COUNT_LIMIT + 1)))
        capped = len(matching) > COUNT_LIMIT
        matching = matching[:COUNT_LIMIT]
        total = len(matching)
        page_ids = matching[offset : offset + per_page]
    else:
        page_ids = list(db.session.scalars(ids_stmt.offset(offset).limit(per_page)))
        if page == 1 and len(page_ids) < per_page:
            total = len(page_ids)
        else:
            # An exact count over the client_id index (the narrowest way to count the scope).
            exact = [scope_condition(Account, company_ids), *filter_conditions(search)]
            total = db.session.scalar(select(func.count()).select_from(Account).where(*exact)) or 0
    items = load_rows(page_ids)
    pagination = PagePagination(
        page=page, per_page=per_page, max_per_page=None, error_out=False, items=items, total=total
    )
    return pagination, capped
