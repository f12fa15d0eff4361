"""Rate tables: list, scope, create/edit/delete, rates grid (search, date filter, inline edit), CSV."""

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from panel.extensions import db
from panel.models import Rate, RateTable
from tests import factories
from tests.import_jobs import last_job
from tests.reference.conftest import audit_entries, upload

HEADER = "code,name,rate,effective_from,end,setup_fee,min_time,interval\n"


def _rates(table_id: int) -> list[tuple]:
    """The table's rates as (code, rate, effective_from) sorted."""
    db.session.expire_all()
    rows = db.session.execute(
        select(Rate.code, Rate.rate, Rate.effective_from)
        .where(Rate.rate_table_id == table_id)
        .order_by(Rate.code, Rate.effective_from)
    ).all()
    return [tuple(r) for r in rows]


@pytest.fixture
def tables(tree):
    """A table per company: Operator, Alpha (used by a client), Alpha Sub, Beta."""
    root = factories.rate_table(tree.root, "Root rates", [("44", "0.01")])
    alpha = factories.rate_table(
        tree.alpha, "Alpha retail", [("44", "0.02"), ("4420", "0.03"), ("33", "0.05")]
    )
    sub = factories.rate_table(tree.sub, "Sub rates")
    beta = factories.rate_table(tree.beta, "Beta rates", [("1", "0.001")])
    acme = factories.client(tree.alpha, "Acme", orig_rate_table_id=alpha.id)
    factories.account(acme, "sip1", term_enabled=True, term_rate_table_id=alpha.id)
    db.session.commit()
    return type("Tables", (), {"root": root, "alpha": alpha, "sub": sub, "beta": beta})


# ---------------------------------------------------------------------------------------------------------
# List and scope


def test_list_shows_own_and_descendant_tables_with_counts_and_users(login, tree, tables, text_of):
    """An Alpha user sees Alpha's and Alpha Sub's tables with their rates count and who uses them."""
    page = text_of(login(tree.alpha_operator).get("/rate-tables/"))
    assert "Alpha retail" in page and "Sub rates" in page
    assert "Root rates" not in page and "Beta rates" not in page
    assert "1 client (orig)" in page and "1 account (term)" in page
    row = page.split(f'id="rate-table-{tables.alpha.id}"')[1].split("</tr>")[0]
    assert ">3<" in row and "USD" in row


def test_list_search_by_name_returns_the_fragment_for_htmx(login, tree, tables, text_of):
    """The search box filters by name; htmx gets only the table fragment."""
    client = login(tree.root_admin)
    response = client.get("/rate-tables/?q=beta", headers={"HX-Request": "true"})
    assert response.status_code == 200
    page = text_of(response)
    assert "Beta rates" in page and "Alpha retail" not in page
    assert "<html" not in page


@pytest.mark.parametrize(
    "path",
    [
        "/rate-tables/{id}",
        "/rate-tables/{id}/edit",
        "/rate-tables/{id}/import",
        "/rate-tables/{id}/export",
    ],
)
def test_tables_outside_scope_answer_404(login, tree, tables, path):
    """A parent's or a sibling's table is not found, on every page."""
    client = login(tree.alpha_admin)
    for table in (tables.root, tables.beta):
        assert client.get(path.format(id=table.id)).status_code == 404
    assert client.post(f"/rate-tables/{tables.beta.id}/delete").status_code == 404
    assert client.get(path.format(id=tables.sub.id)).status_code == 200


def test_rate_of_another_table_answers_404(login, tree, tables):
    """A rate id is only found under its own table."""
    client = login(tree.alpha_operator)
    beta_rate = db.session.scalar(select(Rate.id).where(Rate.rate_table_id == tables.beta.id))
    alpha_rate = db.session.scalar(select(Rate.id).where(Rate.rate_table_id == tables.alpha.id))
    assert client.get(f"/rate-tables/{tables.alpha.id}/rates/{beta_rate}/edit").status_code == 404
    assert client.get(f"/rate-tables/{tables.sub.id}/rates/{alpha_rate}/edit").status_code == 404
    assert client.get(f"/rate-tables/{tables.alpha.id}/rates/{alpha_rate}/edit").status_code == 200


def test_viewer_reads_but_cannot_write(login, tree, tables, text_of):
    """A viewer sees the grid without edit controls, and every write answers 403."""
    client = login(tree.alpha_viewer)
    page = text_of(client.get(f"/rate-tables/{tables.alpha.id}"))
    assert "4420" in page and "Add a rate" not in page and "Edit table" not in page
    assert client.post("/rate-tables/new", data={"name": "X", "currency": "USD"}).status_code == 403
    assert client.post(f"/rate-tables/{tables.alpha.id}/delete").status_code == 403
    assert client.post(f"/rate-tables/{tables.alpha.id}/import", data={}).status_code == 403
    page = text_of(client.get(f"/rate-tables/{tables.alpha.id}/import"))
    assert "read-only access" in page and 'type="file"' not in page


# ---------------------------------------------------------------------------------------------------------
# Create, edit, delete


def test_create_table_is_audited(login, tree):
    """A new table belongs to the chosen company and leaves an audit entry."""
    client = login(tree.alpha_operator)
    response = client.post(
        "/rate-tables/new", data={"name": "Wholesale", "currency": "eur", "company_id": tree.sub.id}
    )
    assert response.status_code == 303
    table = db.session.scalar(select(RateTable).where(RateTable.name == "Wholesale"))
    assert table.company_id == tree.sub.id and table.currency == "EUR"
    assert [e.object_id for e in audit_entries("ratetable", "create")] == [table.id]


def test_create_refuses_duplicate_name_and_foreign_company(login, tree, tables, text_of):
    """Same name in the same company: 422 with the reason; a company outside the scope is not a choice."""
    client = login(tree.alpha_operator)
    response = client.post(
        "/rate-tables/new", data={"name": "Alpha retail", "currency": "USD", "company_id": tree.alpha.id}
    )
    assert response.status_code == 422
    assert "already has a rate table with this name" in text_of(response)
    response = client.post(
        "/rate-tables/new", data={"name": "Sneaky", "currency": "USD", "company_id": tree.beta.id}
    )
    assert response.status_code == 422
    response = client.post(
        "/rate-tables/new", data={"name": "Bad", "currency": "dollars", "company_id": tree.alpha.id}
    )
    assert response.status_code == 422 and "3-letter code" in text_of(response)
    assert db.session.scalar(select(func.count()).select_from(RateTable)) == 4


def test_edit_refuses_moving_a_used_table_below_its_users(login, tree, tables, text_of):
    """Alpha's table is used by an Alpha client: it cannot move down to Alpha Sub, but can be renamed."""
    client = login(tree.alpha_operator)
    response = client.post(
        f"/rate-tables/{tables.alpha.id}/edit",
        data={"name": "Alpha retail", "currency": "USD", "company_id": tree.sub.id},
    )
    assert response.status_code == 422
    assert "used by Alpha" in text_of(response)
    response = client.post(
        f"/rate-tables/{tables.alpha.id}/edit",
        data={"name": "Alpha retail 2", "currency": "USD", "company_id": tree.alpha.id},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(RateTable, tables.alpha.id).name == "Alpha retail 2"
    entry = audit_entries("ratetable", "update")[-1]
    assert entry.before["name"] == "Alpha retail" and entry.after["name"] == "Alpha retail 2"


def test_delete_refused_while_used_names_the_users(login, tree, tables, text_of):
    """A used table stays, and the message names the client and the account."""
    client = login(tree.alpha_operator)
    response = client.post(f"/rate-tables/{tables.alpha.id}/delete", follow_redirects=True)
    page = text_of(response)
    assert "is not deleted" in page and "client Acme (orig)" in page and "account Acme/sip1 (term)" in page
    assert db.session.get(RateTable, tables.alpha.id) is not None


def test_delete_unused_table_removes_its_rates(login, tree, tables):
    """An unused table goes with its rates, and the audit entry says how many."""
    client = login(tree.root_admin)
    assert client.post(f"/rate-tables/{tables.beta.id}/delete").status_code == 303
    db.session.expire_all()
    assert db.session.get(RateTable, tables.beta.id) is None
    assert _rates(tables.beta.id) == []
    assert "1 rate" in audit_entries("ratetable", "delete")[-1].note


# ---------------------------------------------------------------------------------------------------------
# The grid


def test_grid_search_by_code_prefix_and_by_name(login, tree, text_of):
    """Digits search code prefixes; words search code names."""
    table = factories.rate_table(
        tree.alpha,
        "T",
        [
            {"code": "4420", "rate": "0.1", "name": "UK London"},
            {"code": "33", "rate": "0.2", "name": "France"},
        ],
    )
    db.session.commit()
    client = login(tree.alpha_operator)
    page = text_of(client.get(f"/rate-tables/{table.id}?q=44"))
    assert "UK London" in page and "France" not in page
    page = text_of(client.get(f"/rate-tables/{table.id}?q=fran", headers={"HX-Request": "true"}))
    assert "France" in page and "UK London" not in page and "<html" not in page


def test_grid_current_rates_at_a_date(login, tree, text_of):
    """At T each code shows only the row that prices a call at T; an ended or future row is hidden."""
    d = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    table = factories.rate_table(
        tree.alpha,
        "T",
        [
            {"code": "44", "rate": "0.111", "effective_from": d(2024, 1, 1)},
            {"code": "44", "rate": "0.222", "effective_from": d(2024, 6, 1)},
            {"code": "44", "rate": "0.333", "effective_from": d(2025, 1, 1)},
            {"code": "33", "rate": "0.444", "effective_from": d(2024, 1, 1), "end": d(2024, 3, 1)},
            {"code": "33", "rate": "0.555", "effective_from": d(2024, 1, 1, 12), "end": d(2024, 7, 1)},
        ],
    )
    db.session.commit()
    client = login(tree.alpha_operator)
    page = text_of(client.get(f"/rate-tables/{table.id}?at=2024-07-01"))
    assert "0.222" in page
    assert "0.111" not in page and "0.333" not in page and "0.444" not in page and "0.555" not in page
    page = text_of(client.get(f"/rate-tables/{table.id}?at=2024-02-01 00:00"))
    assert "0.111" in page and "0.555" in page and "0.444" not in page
    page = text_of(client.get(f"/rate-tables/{table.id}"))
    assert all(v in page for v in ("0.111", "0.222", "0.333", "0.444", "0.555"))
    page = text_of(client.get(f"/rate-tables/{table.id}?at=yesterday"))
    assert "is not a date" in page


def test_grid_pages(login, tree, text_of):
    """The grid is paged on the server."""
    table = factories.rate_table(tree.alpha, "T", [(str(100 + i), "0.1") for i in range(5)])
    db.session.commit()
    client = login(tree.alpha_operator)
    page = text_of(client.get(f"/rate-tables/{table.id}?per_page=2&page=3"))
    assert "104" in page and "100" not in page
    assert "page 3 of 3" in page


def test_inline_edit_saves_and_is_audited(login, tree, tables, text_of):
    """Edit shows inputs; Save returns the plain row with the new rate and writes an audit entry."""
    client = login(tree.alpha_operator)
    rate = db.session.scalar(select(Rate).where(Rate.rate_table_id == tables.alpha.id, Rate.code == "4420"))
    url = f"/rate-tables/{tables.alpha.id}/rates/{rate.id}/edit"
    edit = text_of(client.get(url, headers={"HX-Request": "true"}))
    assert 'name="rate"' in edit and 'value="0.03"' in edit
    data = {
        "code": "4420",
        "name": "UK London",
        "rate": "0.0375",
        "effective_from": "2020-01-01 00:00",
        "end": "",
        "setup_fee": "0",
        "min_time": "60",
        "interval": "60",
    }
    response = client.post(url, data=data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    row = text_of(response)
    assert "0.0375" in row and "<input" not in row and "UK London" in row
    db.session.expire_all()
    saved = db.session.get(Rate, rate.id)
    assert saved.rate == Decimal("0.0375") and saved.min_time == 60
    entry = audit_entries("rate", "update")[-1]
    assert Decimal(entry.before["rate"]) == Decimal("0.03") and Decimal(entry.after["rate"]) == Decimal(
        "0.0375"
    )


def test_inline_edit_refusal_keeps_the_row_in_edit_mode(login, tree, tables, text_of):
    """A bad value answers 422 with the inputs and the message; nothing changes."""
    client = login(tree.alpha_operator)
    rate = db.session.scalar(select(Rate).where(Rate.rate_table_id == tables.alpha.id, Rate.code == "4420"))
    url = f"/rate-tables/{tables.alpha.id}/rates/{rate.id}/edit"
    base = {
        "code": "4420",
        "name": "",
        "rate": "0.03",
        "effective_from": "2020-01-01",
        "end": "",
        "setup_fee": "0",
        "min_time": "1",
        "interval": "1",
    }
    response = client.post(url, data=base | {"rate": "0.1234567"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    page = text_of(response)
    assert "<input" in page and "more than 6 decimals" in page and 'value="0.1234567"' in page
    response = client.post(url, data=base | {"end": "2019-01-01"}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and "end must be after" in text_of(response)
    response = client.post(url, data=base | {"code": "44"}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and "already has a rate from this moment" in text_of(response)
    response = client.post(url, data=base | {"interval": "0"}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and "at least 1" in text_of(response)
    db.session.expire_all()
    assert db.session.get(Rate, rate.id).rate == Decimal("0.03")


def test_add_and_delete_a_rate(login, tree, tables, text_of):
    """The add form creates a rate (and asks the grid to reload); delete removes it; both audited."""
    client = login(tree.alpha_operator)
    data = {
        "code": "49",
        "name": "Germany",
        "rate": "0.02",
        "effective_from": "",
        "end": "",
        "setup_fee": "",
        "min_time": "",
        "interval": "",
    }
    response = client.post(f"/rate-tables/{tables.alpha.id}/rates", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "rates-changed" in response.headers["HX-Trigger"]
    rate = db.session.scalar(select(Rate).where(Rate.rate_table_id == tables.alpha.id, Rate.code == "49"))
    assert rate.min_time == 1 and rate.interval == 1 and rate.setup_fee == 0
    assert abs((rate.effective_from - datetime.now(UTC)).total_seconds()) < 120
    response = client.post(
        f"/rate-tables/{tables.alpha.id}/rates", data=data | {"code": "4x"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422 and "digits only" in text_of(response)
    response = client.post(
        f"/rate-tables/{tables.alpha.id}/rates/{rate.id}/delete", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and text_of(response) == ""
    assert db.session.get(Rate, rate.id) is None
    assert [e.action for e in audit_entries("rate")] == ["create", "delete"]


# ---------------------------------------------------------------------------------------------------------
# Import and export


def _import(client, table_id, text, mode="add_update", **extra):
    """Post a CSV import and return the response."""
    data = {"file": upload(text), "mode": mode} | extra
    return client.post(f"/rate-tables/{table_id}/import", data=data, content_type="multipart/form-data")


def test_import_add_and_update(login, tree, tables):
    """New codes are added, an existing code and moment is updated, one audit entry states the counts."""
    client = login(tree.alpha_operator)
    text = HEADER + (
        "44,UK,0.025,2020-01-01,,,,\n"  # same code and moment as the factory's row: updated
        "49,Germany,0.02,2024-01-01 08:30,2030-01-01,0.5,60,60\n"
        "4930,Berlin,0.021,2024-01-01,,,30,6\n"
    )
    response = _import(client, tables.alpha.id, text)
    assert response.status_code == 303
    job = last_job()
    assert job.status == "done", job.message
    assert "2 added, 1 changed, 0 unchanged" in job.message
    rows = {r.code: r for r in db.session.scalars(select(Rate).where(Rate.rate_table_id == tables.alpha.id))}
    assert rows["44"].rate == Decimal("0.025") and len(rows) == 5
    assert rows["49"].effective_from == datetime(2024, 1, 1, 8, 30, tzinfo=UTC)
    assert rows["49"].end == datetime(2030, 1, 1, tzinfo=UTC) and rows["49"].setup_fee == Decimal("0.5")
    assert (rows["4930"].min_time, rows["4930"].interval) == (30, 6)
    imports = audit_entries("ratetable", "import")
    assert (
        len(imports) == 1
        and "3 rates" in imports[0].note
        and "2 added, 1 changed, 0 unchanged" in imports[0].note
    )
    # The same file again changes nothing, and says so.
    _import(client, tables.alpha.id, text)
    assert "0 added, 0 changed, 3 unchanged" in last_job().message
    assert len(_rates(tables.alpha.id)) == 5


def test_import_replace_table(login, tree, tables):
    """Replace deletes the table's rates and writes the file's."""
    client = login(tree.alpha_operator)
    preview = _import(client, tables.alpha.id, "rate,code\n0.5,7\n0.6,8\n", mode="replace")
    page = preview.get_data(as_text=True)
    assert "2 added" in page and "3 removed" in page and last_job() is None  # nothing written yet
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    response = client.post(
        f"/rate-tables/{tables.alpha.id}/import", data={"token": token, "action": "confirm"}
    )
    assert response.status_code == 303
    assert last_job().status == "done"
    assert [(c, r) for c, r, _ in _rates(tables.alpha.id)] == [("7", Decimal("0.5")), ("8", Decimal("0.6"))]
    assert "Replaced the table's 3 rates with 2 rates" in audit_entries("ratetable", "import")[-1].note


def test_import_with_bad_lines_writes_nothing_and_lists_every_line(login, tree, tables, text_of):
    """Every wrong line is reported as `line N, column: message`; the table is unchanged."""
    client = login(tree.alpha_operator)
    before = _rates(tables.alpha.id)
    text = HEADER + (
        "49,Germany,0.02,,,,,\n"
        "4x,Bad code,0.02,,,,,\n"
        "50,Bad rate,abc,,,,,\n"
        "51,Bad date,0.1,2024-13-01,,,,\n"
        "52,End first,0.1,2024-02-01,2024-01-01,,,\n"
        "49,Germany again,0.03,,,,,\n"
        "53,Bad interval,0.1,,,,1,0\n"
        "54,too,many,columns,,,,,\n"
    )
    response = _import(client, tables.alpha.id, text, mode="add_update")
    assert response.status_code == 303
    job = last_job()
    assert job.status == "failed"
    assert job.errors[:4] == [
        "line 3, code: '4x' is not a code: use digits only",
        "line 4, rate: 'abc' is not a number (write it like 0.0125)",
        "line 5, effective_from: '2024-13-01' is not a valid date (YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], UTC)",
        "line 6, end: the end must be after effective_from (2024-02-01 00:00:00)",
    ]
    assert job.errors[4].startswith("line 7, code: 49 from ") and job.errors[4].endswith(
        "is already on line 2"
    )
    assert job.errors[5:] == [
        "line 8, interval: the interval must be at least 1",
        "line 9: expected 8 columns, found 9",
    ]
    assert _rates(tables.alpha.id) == before
    assert audit_entries("ratetable", "import") == []
    status = text_of(client.get(f"/imports/{job.id}"))
    assert "nothing was imported" in status and "line 4, rate" in status


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,name\n44,UK\n", "missing required column(s) rate"),
        ("code,rate,price\n44,0.1,1\n", "unknown column(s) price"),
        ("code,rate\n", "no rates"),
    ],
)
def test_import_refuses_bad_headers(login, tree, tables, text, message):
    """A file without a required column, with an unknown one, or without rows is refused with the reason."""
    client = login(tree.alpha_operator)
    _import(client, tables.alpha.id, text)
    job = last_job()
    assert job.status == "failed" and message in job.message


def test_import_without_file_is_a_form_error(login, tree, tables, text_of):
    """No file: the form comes back (422) saying so."""
    client = login(tree.alpha_operator)
    response = client.post(
        f"/rate-tables/{tables.alpha.id}/import",
        data={"mode": "add_update"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and "Choose a CSV file" in text_of(response)


def test_import_default_effective_from_and_htmx_progress(login, tree, tables, text_of):
    """Rows without a date start at the form's moment; htmx gets the form back with the job's status."""
    client = login(tree.alpha_operator)
    response = client.post(
        f"/rate-tables/{tables.alpha.id}/import",
        data={"file": upload("code,rate\n61,0.3\n"), "mode": "add_update", "effective_from": "2026-03-01"},
        content_type="multipart/form-data",
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    page = text_of(response)
    assert 'id="import-area"' in page and "1 added, 0 changed, 0 unchanged" in page
    rate = db.session.scalar(select(Rate).where(Rate.rate_table_id == tables.alpha.id, Rate.code == "61"))
    assert rate.effective_from == datetime(2026, 3, 1, tzinfo=UTC)


def test_export_round_trips_through_import(login, tree, tables, text_of):
    """The export has the import's header and columns; importing it with replace gives the same rates."""
    client = login(tree.alpha_operator)
    _import(client, tables.alpha.id, HEADER + "49,Germany,0.02,2024-01-01 08:30,2030-01-01,0.5,60,60\n")
    response = client.get(f"/rate-tables/{tables.alpha.id}/export")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    exported = text_of(response)
    lines = list(csv.reader(io.StringIO(exported)))
    assert ",".join(lines[0]) + "\n" == HEADER
    assert ["49", "Germany", "0.02", "2024-01-01 08:30:00", "2030-01-01 00:00:00", "0.5", "60", "60"] in lines
    before = _rates(tables.alpha.id)
    _import(client, tables.alpha.id, exported, mode="replace")
    assert last_job().status == "done"
    assert _rates(tables.alpha.id) == before
    filtered = text_of(client.get(f"/rate-tables/{tables.alpha.id}/export?q=44"))
    assert len(list(csv.reader(io.StringIO(filtered)))) == 3  # header, 44, 4420


def test_import_racing_another_writer_fails_cleanly(login, tree, tables, monkeypatch):
    """When another change takes the same rows meanwhile, the import fails cleanly and writes nothing."""
    from panel.rates import importer

    monkeypatch.setattr(
        importer, "_count", lambda table_id: 0
    )  # as if the table was still empty when checked
    client = login(tree.alpha_operator)
    before = _rates(tables.alpha.id)
    _import(client, tables.alpha.id, HEADER + "49,Germany,0.02,2024-01-01,,,,\n44,UK,0.5,2020-01-01,,,,\n")
    job = last_job()
    assert job.status == "failed" and "changed by someone else while this import ran" in job.message
    assert _rates(tables.alpha.id) == before
    assert audit_entries("ratetable", "import") == []


def test_undated_deck_imported_again_adds_only_the_new_prices(login, tree):
    """A deck without dates, imported twice, adds rows only for the prices that moved."""
    table = factories.rate_table(tree.alpha, "Undated")
    db.session.commit()
    client = login(tree.alpha_operator)
    _import(client, table.id, "code,name,rate\n44,UK,0.01\n49,Germany,0.02\n", effective_from="2026-01-01")
    assert "2 added" in last_job().message
    _import(client, table.id, "code,name,rate\n44,UK,0.01\n49,Germany,0.025\n", effective_from="2026-02-01")
    assert "1 added, 0 changed, 1 unchanged" in last_job().message
    assert [(c, r, f.month) for c, r, f in _rates(table.id)] == [
        ("44", Decimal("0.01"), 1),
        ("49", Decimal("0.02"), 1),
        ("49", Decimal("0.025"), 2),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "at=0001-01-01",
        "at=9999-12-31 23:59:59",
        "at=2024-02-30",
        "q=%25",
        "q=_",
        "sort=-nope",
        "q=" + "9" * 500,
    ],
)
def test_odd_filters_never_fail(login, tree, tables, query):
    """Odd search and date values answer a page (and an export), never an error of the server."""
    client = login(tree.alpha_operator)
    for path in (f"/rate-tables/{tables.alpha.id}?{query}", f"/rate-tables/{tables.alpha.id}/export?{query}"):
        assert client.get(path).status_code == 200, path
