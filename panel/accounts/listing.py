"""The accounts list at scale (100,000 accounts and more): search conditions, the plan of the query, the page.

Three choices keep every request fast on SQLite and PostgreSQL alike:

- **Ids first.** The filtering and sorting run on a narrow query that returns account ids only; the 50 rows of
  the page are then loaded by primary key with their client, and the rate tables and plans they name in one
  small query each (`attach_names`).
- **The scope drives the plan.** A user who sees most of the clients (the operator) is best served by walking
  the primary key (or the sort column's index) and checking the scope on the way; a reseller that owns a small
  share is best served by the `client_id` index. The share of clients in scope decides which condition the
  query gets; both are the same company-scope condition (`scope.scope_condition`), written so the database
  can or cannot use the `client_id` index.
- **Keyset pages, bounded counts** (panel.paging): pages are read through the sort column's index from a
  cursor, and the count stops at COUNT_LIMIT + 1 ("more than 10,000"), so no request reads the whole table.
- **Searches an index serves** (panel.search): contains-searches use trigram indexes on PostgreSQL, the tech
  prefix an index range, an address the networks' index. SQLite has no trigram index: its quick search
  matches the start of the name, the ident value or any of the addresses (index ranges, read as one sorted
  list of ids). A contains-search on SQLite is offered too, bounded to the newest CONTAINS_BUDGET accounts,
  and the page says so.
"""

import ipaddress
import re
from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import aliased, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from panel import paging
from panel import search as searching
from panel.extensions import db
from panel.models import Account, AccountNetwork, Client, Company, RateTable, RoutingPlan
from panel.models.accounts import IDENT_BY_LABELS
from panel.scope import scope_condition
from panel.values import is_digits

SORTABLE = {
    "id": (Account.id,),
    "client": (Client.name, Client.id, Account.id),
    "name": (Account.name, Account.id),
    "ident": (Account.ident_value, Account.id),
    "tech_prefix": (Account.tech_prefix, Account.id),
}
DEFAULT_SORT = "-id"
COUNT_LIMIT = paging.COUNT_LIMIT
# Above this share of the clients in scope, walk the primary key instead of the client_id index.
SCAN_SHARE = 0.2
# How the quick search matches: the start of a name, ident value or address, or anywhere in them.
MATCHES = {"start": "starts with", "contains": "contains"}
# A contains-search on SQLite (no index serves it) reads at most this many accounts, the newest.
CONTAINS_BUDGET = 100_000
# The start of an IPv4 or IPv6 address ("198.51.100", "2001:db8:"): matched against every network.
ADDRESS_START = re.compile(r"^[0-9a-fA-F]*[.:][0-9a-fA-F.:]*$")


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
    match: str = "contains"

    @property
    def filtered(self) -> bool:
        """True when anything beyond the client filter narrows the list."""
        return bool(
            self.text or self.ident_by or self.rate_table_id or self.routing_plan_id or self.tag or self.state
        )


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


def default_match() -> str:
    """Contains-search where an index serves it (PostgreSQL), starts-with on SQLite."""
    return "contains" if db.session.get_bind().dialect.name == "postgresql" else "start"


def quick_search_condition(text: str, match: str = "contains", model=Account):
    """Account name or ident value containing the text (or starting with it, `match="start"`, where also any
    of the account's addresses may start with it), tech prefix starting with it, the account ID, and for an
    IP address every account whose networks contain it (an indexed lookup of the 33 or 129 networks).

    `model`: the accounts table or an alias of it (for a subquery over the same table).
    """
    conditions = []
    if match == "start":
        conditions += [
            searching.starts_with(model.name, text),
            searching.starts_with(model.ident_value, text),
        ]
        if ADDRESS_START.match(text):
            starting = searching.prefix(AccountNetwork.network, text.lower())
            conditions.append(model.id.in_(select(AccountNetwork.account_id).where(starting)))
    else:
        conditions += [searching.contains(model.name, text), searching.contains(model.ident_value, text)]
    conditions.append(searching.prefix(model.tech_prefix, text))
    if is_digits(text) and len(text) < 12:
        conditions.append(model.id == int(text))
    networks = networks_containing(text)
    if networks:
        # The ids first (a few index probes): a list of ids keeps the OR one the indexes can serve.
        ids = db.session.scalars(
            select(AccountNetwork.account_id)
            .where(AccountNetwork.network.in_(networks))
            .limit(COUNT_LIMIT + 1)
        ).all()
        if ids:
            conditions.append(model.id.in_(ids))
    return or_(*conditions)


@dataclass
class QuickSearch:
    """The quick search as the page query uses it: its condition, and what the page should say."""

    condition: object
    capped: bool = False  # more than COUNT_LIMIT accounts match the text (known without counting the list)
    bounded: int = 0  # a contains-search that read the newest this many accounts only (SQLite)


def quick_search(text: str, match: str) -> QuickSearch:
    """The quick search shaped for the database (see the module's notes)."""
    if db.session.get_bind().dialect.name != "sqlite":
        return QuickSearch(quick_search_condition(text, match))
    if match == "contains":
        # No index serves it: read the newest accounts only, and say so when the table holds more.
        floor = db.session.scalar(
            select(Account.id).order_by(Account.id.desc()).offset(CONTAINS_BUDGET).limit(1)
        )
        condition = quick_search_condition(text, match)
        if floor is None:
            return QuickSearch(condition)
        return QuickSearch(and_(Account.id > floor, condition), bounded=CONTAINS_BUDGET)
    # The matching ids from the index ranges, as a subquery: SQLite reads them (the OR of the ranges) into a
    # sorted list and walks it in the list's order, whatever the LIMIT (the OR itself in the page query let
    # the planner walk the whole table instead for a large LIMIT).
    inner = aliased(Account)
    matching = select(inner.id).where(quick_search_condition(text, match, inner))
    capped = paging.count_capped(matching) > COUNT_LIMIT
    return QuickSearch(Account.id.in_(matching), capped=capped)


def filter_conditions(search: Search, quick: QuickSearch | None = None) -> list:
    """The conditions of the quick and advanced search (the scope comes separately)."""
    conditions = []
    if search.text:
        conditions.append((quick or quick_search(search.text, search.match)).condition)
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
        tag = search.tag
        conditions.append(
            or_(searching.has_word(Account.orig_tags, tag), searching.has_word(Account.term_tags, tag))
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


def scope_for_list(company_ids) -> tuple[object, bool]:
    """The company-scope condition for the list, shaped for the best plan (see the module's notes), and
    whether it keeps every account (the user sees every client)."""
    if whole_tree(company_ids):
        # Every company is in scope, so is every client and account: the condition would keep every row, at
        # the price of a probe of the account's client per row read (10,001 of them for a capped count).
        return true(), True
    clients_in_scope = select(Client.id).where(scope_condition(Client, company_ids))
    in_scope, every = db.session.execute(
        select(func.count(case((scope_condition(Client, company_ids), 1))), func.count()).select_from(Client)
    ).one()
    if every and in_scope >= SCAN_SHARE * every:
        # `client_id + 0` is the same condition, but no index on client_id can serve it.
        if db.session.get_bind().dialect.name == "sqlite":
            # A probe of the client's row per account: SQLite would build the list of every client in scope
            # for each statement (10 ms for 10,000 clients), where a page reads a few dozen accounts.
            owner = aliased(Client)  # not the Client a sort by client joins
            probe = select(owner.id).where(
                owner.id == Account.client_id + 0, scope_condition(owner, company_ids)
            )
            return probe.correlate(Account).exists(), in_scope == every
        return (Account.client_id + 0).in_(clients_in_scope), in_scope == every
    return scope_condition(Account, company_ids), False


def whole_tree(company_ids) -> bool:
    """Whether `company_ids` (a user's scope) holds every company there is: the root's users. A company
    created later is created below one of them, so it is in this user's scope too."""
    if not company_ids:
        return False
    outside = select(Company.id).where(Company.id.not_in(list(company_ids))).limit(1)
    return db.session.scalar(outside) is None


def row_options() -> tuple:
    """Eager loads for list rows: the client joined into the row query, gateways in one more (the rate tables
    and routing plans a row names come from `attach_names`)."""
    # Not joined: SQLite would materialise the whole account_gateways/gateways join for it.
    return (joinedload(Account.client), selectinload(Account.gateways))


NAMED = (  # (row model, relationship, foreign key, target): what a list row shows besides the client
    (Account, "orig_rate_table", "orig_rate_table_id", RateTable),
    (Account, "term_rate_table", "term_rate_table_id", RateTable),
    (Account, "orig_routing_plan", "orig_routing_plan_id", RoutingPlan),
    (Client, "orig_rate_table", "orig_rate_table_id", RateTable),
    (Client, "term_rate_table", "term_rate_table_id", RateTable),
    (Client, "routing_plan", "routing_plan_id", RoutingPlan),
)


def attach_names(accounts: list[Account]) -> None:
    """The rate tables and routing plans the rows name (the accounts' own and their clients' defaults): one
    small query per kind, set on the rows as loaded. Joining the six of them into the row query cost
    PostgreSQL more to plan (7 ms, eight tables to order) than to run."""
    owners = {Account: accounts, Client: list({a.client.id: a.client for a in accounts}.values())}
    wanted: dict[type, set[int]] = {RateTable: set(), RoutingPlan: set()}
    for model, _, key, target in NAMED:
        wanted[target].update(v for v in (getattr(o, key) for o in owners[model]) if v is not None)
    found: dict[type, dict] = {}
    for target, ids in wanted.items():
        rows = db.session.scalars(select(target).where(target.id.in_(ids))) if ids else []
        found[target] = {row.id: row for row in rows}
    for model, relation, key, target in NAMED:
        for owner in owners[model]:
            value = getattr(owner, key)
            set_committed_value(owner, relation, found[target].get(value) if value is not None else None)


def load_rows(ids: list[int]) -> list[Account]:
    """The accounts of these ids, in this order, with what a row shows."""
    if not ids:
        return []
    stmt = select(Account).where(Account.id.in_(ids)).options(*row_options())
    found = {a.id: a for a in db.session.scalars(stmt).unique()}
    accounts = [found[i] for i in ids if i in found]
    attach_names(accounts)
    return accounts


def account_page(company_ids, search: Search, sort: str) -> paging.Page:
    """One page of the list (by number, cursor or the last), its count capped at COUNT_LIMIT; `bounded` is
    set on the page when a contains-search on SQLite read the newest accounts only."""
    if search.filtered or search.client_id:
        paging.plan_for_the_values()
    scope, everything = scope_for_list(company_ids)
    quick = quick_search(search.text, search.match) if search.text else QuickSearch(None)
    # More than COUNT_LIMIT accounts match the text: as many match the list when nothing else narrows it.
    capped = quick.capped and everything and search == Search(text=search.text, match=search.match)
    # Search conditions first: SQLite tests them in this order, and a failed LIKE is cheaper than the scope's
    # subquery probe (PostgreSQL orders them by cost itself).
    ids_stmt = select(Account.id).where(*filter_conditions(search, quick), scope)
    if sort.lstrip("-") == "client":
        ids_stmt = ids_stmt.join(Client, Client.id == Account.client_id)
    keys = [paging.Key(expr, sort.startswith("-")) for expr in SORTABLE[sort.lstrip("-")]]
    page = paging.paginate(ids_stmt, keys, sort=sort, load=load_rows, collect=search.filtered, capped=capped)
    page.bounded = quick.bounded
    return page
