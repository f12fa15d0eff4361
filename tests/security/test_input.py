"""Input the database cannot take is refused with a message first (NUL, huge ids, uploads over the limit)."""

import io

import pytest
from sqlalchemy import func, select

from panel.extensions import db
from panel.imports.reader import CsvError, parse
from panel.models import Company


def _companies() -> int:
    return db.session.scalar(select(func.count()).select_from(Company))


def test_nul_in_forms_and_query_strings_is_refused(login, tree):
    """A NUL character (PostgreSQL cannot store it) answers 400 with a message, in forms and in filters."""
    admin = login(tree.alpha_admin)
    response = admin.post(
        "/companies/new", data={"name": "Bad\x00Name", "parent_id": tree.alpha.id, "kind": "manager"}
    )
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
    assert _companies() == 4
    response = admin.get("/audit/?user=a%00b")
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
    assert admin.get("/audit/?user=ab").status_code == 200


def test_csv_with_nul_is_refused():
    """A CSV file with NUL characters is not a text file: refused as a whole with a message."""
    with pytest.raises(CsvError, match="NUL characters"):
        parse(b"code,name\n44,UK\x00\n", ["code", "name"], lambda row, line: row)


@pytest.mark.parametrize("url", ["/companies/2147483648", "/users/99999999999999999999", "/audit/4294967296"])
def test_ids_beyond_the_database_range_are_404(login, tree, url):
    """An id no INTEGER column can hold is simply not found (not a database error)."""
    assert login(tree.root_admin).get(url).status_code == 404


def test_pages_beyond_the_end_are_empty(login, tree):
    """A huge page number shows an empty page."""
    response = login(tree.root_admin).get("/users/?page=99999999999999999999")
    assert response.status_code == 200 and "No user matches." in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 2 * 1024 * 1024}])
def test_upload_over_the_limit_names_the_limit(login, tree):
    """A body over MAX_CONTENT_LENGTH answers 413 with the limit, as a page or as htmx text."""
    admin = login(tree.alpha_admin)
    big = {"name": "x", "file": (io.BytesIO(b"0" * (2 * 1024 * 1024 + 10)), "big.csv")}
    response = admin.post("/companies/new", data=big)
    assert response.status_code == 413
    assert "larger than the limit of 2 MB" in response.get_data(as_text=True)
    big["file"] = (io.BytesIO(b"0" * (2 * 1024 * 1024 + 10)), "big.csv")
    response = admin.post("/companies/new", data=big, headers={"HX-Request": "true"})
    assert response.status_code == 413 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith("The upload is larger than the limit of 2 MB")
    assert _companies() == 4


@pytest.mark.parametrize(
    ("query", "expected"),
    [("x=42", 42), ("x=", None), ("x=abc", None), ("x=²", None), ("x=١٢٣", None), ("x=-1", None),
     ("x=" + "9" * 30, None), ("x=2147483648", None), ("", None)],
)  # fmt: skip
def test_id_arg(app, query, expected):
    """listing.id_arg reads an id filter safely: anything that is not a plain, storable id is no filter."""
    from panel.listing import id_arg

    with app.test_request_context(f"/?{query}"):
        assert id_arg("x") == expected


def test_url_variables_repeated_in_the_query_string_change_nothing(app, login):
    """Every GET route of the URL map with URL variables answers the same with `?<variable>=1` appended as
    without it (it answered 500: the pager built its links with the variable twice), never a 5xx."""
    from flask import url_for

    from tests.security import world as w

    world = w.build()
    admin = login(world.tree.root_admin)
    checked = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.arguments or "GET" not in (rule.methods or ()):
            continue
        if not set(rule.arguments) <= set(w.URL_VARIABLES):
            continue  # static files; a variable the matrix does not know is reported by test_matrix.py
        values = w.fill(rule, world.alpha)
        with app.test_request_context():
            url = url_for(rule.endpoint, **values)
        plain = admin.get(url, buffered=True).status_code
        query = "&".join(f"{name}=1" for name in sorted(rule.arguments))
        repeated = admin.get(f"{url}{'&' if '?' in url else '?'}{query}", buffered=True).status_code
        assert repeated == plain and repeated < 500, (rule.endpoint, url, plain, repeated)
        checked += 1
    assert checked > 20


def _api_token(tree) -> str:
    from tests.manager.conftest import make_token

    return make_token(tree.alpha)


def _assert_json_error(response, status: int) -> None:
    """The documented error body of the API (docs/api.md): JSON with `error` and `field`."""
    assert response.status_code == status, response.get_data(as_text=True)[:200]
    assert response.mimetype == "application/json"
    assert response.json["error"] and "field" in response.json


@pytest.mark.parametrize("path", ["/api/v1/route", "/api/v1/cdrs", "/api/v1/calls"])
def test_api_refuses_deeply_nested_json(client, tree, path):
    """Issue 13.10: 100,000 nested brackets (Python's parser gives up) answer 400, not 500."""
    token = _api_token(tree)
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(
        path, data=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    _assert_json_error(response, 400)


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_api_refuses_times_outside_the_calendar(client, tree, at):
    """Issue 13.10: times that overflow once converted to UTC answer 400 naming `at`, on route and calls."""
    headers = {"Authorization": f"Bearer {_api_token(tree)}"}
    response = client.post("/api/v1/route", json={"number": "441234567", "at": at}, headers=headers)
    _assert_json_error(response, 400)
    assert response.json["field"] == "at"
    response = client.post("/api/v1/calls", json={"event": "end", "call_id": "x", "at": at}, headers=headers)
    _assert_json_error(response, 400)
    assert response.json["field"] == "at"


@pytest.mark.parametrize("path", ["/api/v1/cdrs", "/api/v1/calls"])
def test_api_refuses_nul_in_call_ids(client, tree, path):
    """Issue 13.10: a NUL in `call_id` (PostgreSQL cannot store it; SQLite stored it) answers 400."""
    headers = {"Authorization": f"Bearer {_api_token(tree)}"}
    body = {"event": "end", "call_id": "a\x00b"} if path.endswith("calls") else {"call_id": "a\x00b"}
    response = client.post(path, json=body, headers=headers)
    _assert_json_error(response, 400)
    assert response.json["field"] == "call_id"


def test_api_404_and_405_answer_json(client, tree):
    """Issue 13.10: an unknown path or a wrong method under /api/ answers the JSON error body, not HTML."""
    headers = {"Authorization": f"Bearer {_api_token(tree)}"}
    _assert_json_error(client.get("/api/v1/nothing-here", headers=headers), 404)
    _assert_json_error(client.post("/api/v2/route", json={}), 404)
    response = client.get("/api/v1/route", headers=headers)
    _assert_json_error(response, 405)
    assert response.headers["Allow"] and "POST" in response.headers["Allow"]
    # Outside /api/ the pages keep their HTML answers.
    assert client.get("/no-such-page").mimetype == "text/html"
