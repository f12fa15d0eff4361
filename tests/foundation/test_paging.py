"""The one paginator (keyset cursors, first/last, capped counts) and the one search helper (LIKE escaping)."""

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from panel import paging, search
from panel.extensions import db
from panel.models import Client, Company
from tests import factories

HX = {"HX-Request": "true"}


@pytest.fixture
def clients(app):
    """An operator with 23 clients whose names tie in threes (the id breaks the ties)."""
    root = Company(name="Operator", kind="root")
    db.session.add(root)
    db.session.flush()
    rows = [Client(company_id=root.id, name=f"c{i // 3:02d}", notes=str(i)) for i in range(23)]
    # Unique names are required per company: give the ties a company each.
    companies = [Company(name=f"Sub {i}", kind="reseller", parent_id=root.id) for i in range(3)]
    db.session.add_all(companies)
    db.session.flush()
    for i, client in enumerate(rows):
        client.company_id = companies[i % 3].id
    db.session.add_all(rows)
    db.session.commit()
    return root, rows


def _page(app, url: str, stmt, keys, sort: str, **kw) -> paging.Page:
    with app.test_request_context(url):
        return paging.paginate(stmt, keys, sort=sort, **kw)


def _args(page_args: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in page_args.items() if v is not None)


def _walk(app, stmt, keys, sort, per_page: int, forward: bool = True) -> list[list[int]]:
    """Every page by Next from the first (or by Previous from the last), as the pager's links go."""
    url = f"/?per_page={per_page}" + ("" if forward else "&last=1")
    pages = []
    for _ in range(50):
        page = _page(app, url, stmt, keys, sort)
        pages.append([c.id for c in page.items])
        step = page.next_args if forward else page.prev_args
        if step is None:
            return pages if forward else pages[::-1]
        url = f"/?per_page={per_page}&{_args(step)}"
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize("sort", ["name", "-name", "balance", "-balance"])
def test_keyset_walks_give_the_plain_order_over_ties(app, clients, monkeypatch, sort):
    """Next from the first page and Previous from the last give exactly the ORDER BY's rows, ties included
    (money too: SQLite stores it as millionths, the cursor's value must be bound as money)."""
    monkeypatch.setattr(paging, "COUNT_LIMIT", 5)  # 23 rows: "large", so the pager uses cursors
    _, rows = clients
    for i, client in enumerate(rows):
        client.balance = Decimal(i % 4) / 4 - 1
    db.session.commit()
    descending = sort.startswith("-")
    column = getattr(Client, sort.lstrip("-"))
    expected = [
        c.id for c in sorted(rows, key=lambda c: (getattr(c, sort.lstrip("-")), c.id), reverse=descending)
    ]
    keys = [paging.Key(column, descending), paging.Key(Client.id, descending)]
    stmt = select(Client)
    forward = _walk(app, stmt, keys, sort, 4)
    backward = _walk(app, stmt, keys, sort, 4, forward=False)
    assert [i for p in forward for i in p] == expected
    assert [i for p in backward for i in p] == expected
    assert all(len(p) == 4 for p in forward[:-1]) and len(forward[-1]) == 3
    # From the last page, the last page holds the last rows and there is no Next.
    last = _page(app, "/?per_page=4&last=1", stmt, keys, sort)
    assert [c.id for c in last.items] == expected[-4:] and last.next_args is None and last.has_prev


def test_keyset_with_mixed_directions_and_nulls(app, clients):
    """A descending first key with ascending ties, over a nullable column: still the plain order."""
    _, rows = clients
    for i, client in enumerate(rows):
        client.routing_plan_id = None  # nullable column, all NULL: the cursor holds None
        client.notes = "" if i % 4 else "x"
    db.session.commit()
    keys = [paging.Key(Client.notes, True), paging.Key(Client.routing_plan_id), paging.Key(Client.id)]
    expected = [c.id for c in sorted(sorted(rows, key=lambda c: c.id), key=lambda c: c.notes, reverse=True)]
    with app.test_request_context("/"):
        plain = [c.id for c in db.session.scalars(select(Client).order_by(*(k.ordered() for k in keys)))]
    assert plain == expected
    walked = _walk(app, select(Client), keys, "notes", 5)
    assert [i for p in walked for i in p] == expected


@pytest.mark.parametrize("collect", [False, True])
def test_first_and_numbered_pages_when_small(app, clients, collect):
    """A small result is counted exactly and numbered; page N holds the same rows as before (an offset),
    whether counted apart or collected in the same pass."""
    keys = [paging.Key(Client.name), paging.Key(Client.id)]
    stmt = select(Client)
    page = _page(app, "/?per_page=5&page=3", stmt, keys, "name", collect=collect)
    assert page.total == 23 and page.pages == 5 and page.numbered and page.count_text == "23 found"
    with app.test_request_context("/"):
        ordered = [c.id for c in db.session.scalars(stmt.order_by(Client.name, Client.id))]
    assert [c.id for c in page.items] == ordered[10:15]
    assert page.prev_args["page"] == 2 and page.next_args["page"] == 4 and page.last_args["page"] == 5
    assert page.first_args == {"page": None, "after": None, "before": None, "last": None}
    last = _page(app, "/?per_page=5&last=1", stmt, keys, "name")
    assert [c.id for c in last.items] == ordered[20:] and last.page == 5


@pytest.mark.parametrize("collect", [False, True])
def test_count_is_capped_beyond_the_limit(app, clients, monkeypatch, collect):
    """Beyond the limit the count says "more than" and reads at most limit + 1 rows."""
    monkeypatch.setattr(paging, "COUNT_LIMIT", 10)
    page = _page(app, "/?per_page=4&page=2", select(Client), [paging.Key(Client.id)], "id", collect=collect)
    assert [c.id for c in page.items] == [5, 6, 7, 8]
    assert page.capped and page.total is None and page.pages is None
    assert page.count_text == "more than 10 found"
    assert not page.numbered and "after" in page.next_args and page.last_args["last"] == 1
    with app.test_request_context("/"):
        assert paging.count_capped(select(Client), limit=10) == 11
        assert paging.count_capped(select(Client).where(Client.name == "c00"), limit=10) == 3


@pytest.mark.parametrize(
    "token",
    [
        "not-a-cursor",
        "eyJ4IjoxfQ",
        paging.encode_cursor("name", ["c01"]),
        paging.encode_cursor("id", ["x"]),
        paging.encode_cursor("name", [1, "x"]),
        paging.encode_cursor("name", ["c01", 2**70]),
        paging.encode_cursor("balance", [Decimal("NaN"), 1]),
        paging.encode_cursor("balance", [float("inf"), 1]),
    ],
)
def test_a_foreign_or_tampered_cursor_gives_the_first_page(app, clients, token):
    """A cursor of another sort, with the wrong values, or garbage: the first page, never an error."""
    keys = [paging.Key(Client.name), paging.Key(Client.id)]
    page = _page(app, f"/?per_page=4&after={token}", select(Client), keys, "name")
    first = _page(app, "/?per_page=4", select(Client), keys, "name")
    money = [paging.Key(Client.balance), paging.Key(Client.id)]
    assert _page(app, f"/?per_page=4&after={token}", select(Client), money, "balance").items is not None
    assert [c.id for c in page.items] == [c.id for c in first.items]


def test_pager_shows_capped_count_and_cursor_links(app, login, monkeypatch):
    """The users list past the limit: "more than" with First / Previous / Next / Last, all working."""
    monkeypatch.setattr(paging, "COUNT_LIMIT", 3)
    tree = factories.company_tree()
    for i in range(6):
        factories.user(tree.root, username=f"pager-{i}")
    db.session.commit()
    client = login(tree.root_admin)
    html = client.get("/users/?per_page=2&sort=username").get_data(as_text=True)
    assert "more than 3 found" in html and "page 1 of" not in html
    after = re.search(r'href="([^"]*after=[^"]*)" rel="next"', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(after).query)["sort"] == ["username"]
    second = client.get(after).get_data(as_text=True)
    assert 'rel="prev"' in second and 'rel="first"' in second and 'rel="last"' in second
    last = client.get("/users/?per_page=2&sort=username&last=1").get_data(as_text=True)
    assert 'rel="next"' not in last and 'rel="prev"' in last


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100%", {"100% sure"}),
        ("a_b", {"a_b"}),
        ("back\\slash", {"back\\slash"}),
        ("%", {"100% sure"}),
        ("_", {"a_b"}),
        ("\\", {"back\\slash"}),
        ("AXB", {"axb"}),  # ASCII case ignored; `_` matched only itself
    ],
)
def test_contains_takes_wildcards_literally(app, text, expected):
    """`%`, `_` and `\\` in the user's text match themselves only, on both databases."""
    root = Company(name="Operator", kind="root")
    db.session.add(root)
    db.session.flush()
    for name in ("100% sure", "1000 sure", "a_b", "axb", "back\\slash", "backslash"):
        db.session.add(Client(company_id=root.id, name=name))
    db.session.commit()
    found = set(db.session.scalars(select(Client.name).where(search.contains(Client.name, text))))
    assert found == expected


def test_prefix_and_word(app):
    """A prefix is an index range that still matches exactly; a word is a whole space-separated word."""
    assert search.escape_like("50%_\\") == "50\\%\\_\\\\"
    root = Company(name="Operator", kind="root")
    db.session.add(root)
    db.session.flush()
    for name, notes in (("44", "gold vip"), ("441", "golden"), ("44%", ""), ("45", "old gold"), ("4", "")):
        db.session.add(Client(company_id=root.id, name=name, notes=notes))
    db.session.commit()

    def names(condition) -> set:
        return set(db.session.scalars(select(Client.name).where(condition)))

    assert names(search.prefix(Client.name, "44")) == {"44", "441", "44%"}
    assert names(search.prefix(Client.name, "44%")) == {"44%"}
    assert names(search.has_word(Client.notes, "gold")) == {"44", "45"}
    assert names(search.has_word(Client.notes, "gol")) == set()
