"""DIDs: scoped list and search, create/edit/delete with the terminator picker, CSV import and export."""

import csv
import io

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import Did
from tests import factories
from tests.import_jobs import failed_job_errors, last_job
from tests.reference.conftest import audit_entries, upload


@pytest.fixture
def setup(tree):
    """Alpha's Acme (gw: terminator; orig: not), Alpha Sub's SubCo (t1), Beta's BetaTel (bt); two DIDs."""
    acme = factories.client(tree.alpha, "Acme")
    gw = factories.account(acme, "gw", term_enabled=True)
    orig = factories.account(acme, "orig", orig_enabled=True)
    subco = factories.client(tree.sub, "SubCo")
    t1 = factories.account(subco, "t1", term_enabled=True)
    betatel = factories.client(tree.beta, "BetaTel")
    bt = factories.account(betatel, "bt", term_enabled=True)
    alpha_did = factories.did(gw, "442000001")
    beta_did = factories.did(bt, "15550000")
    db.session.commit()
    return type(
        "Setup",
        (),
        {"gw": gw, "orig": orig, "t1": t1, "bt": bt, "alpha_did": alpha_did, "beta_did": beta_did},
    )


def _numbers() -> dict[str, int]:
    db.session.expire_all()
    return dict(db.session.execute(select(Did.number, Did.account_id)).all())


def _import(client, text, mode="add_update"):
    return client.post(
        "/dids/import", data={"file": upload(text), "mode": mode}, content_type="multipart/form-data"
    )


def test_list_is_scoped_and_searchable(login, tree, setup, text_of):
    """Alpha sees its DIDs only; digits search number prefixes, words search clients and accounts."""
    client = login(tree.alpha_viewer)
    page = text_of(client.get("/dids/"))
    assert "442000001" in page and "Acme" in page and "15550000" not in page
    assert "New DID" not in page
    assert "442000001" in text_of(client.get("/dids/?q=+4420"))
    assert "No DID matches" in text_of(client.get("/dids/?q=4421"))
    assert "442000001" in text_of(client.get("/dids/?q=acm", headers={"HX-Request": "true"}))
    assert "No DID matches" in text_of(client.get("/dids/?q=subco"))


def test_picker_offers_terminator_accounts_in_scope(login, tree, setup, text_of):
    """Only terminator-enabled accounts of the user's companies are offered."""
    page = text_of(login(tree.alpha_operator).get("/dids/new"))
    assert "Acme / gw" in page and "SubCo / t1" in page
    assert "Acme / orig" not in page and "BetaTel" not in page


def test_create_normalises_the_number_and_is_audited(login, tree, setup):
    """`+44 200 0002` is stored as digits; the audit entry belongs to the account's company."""
    client = login(tree.alpha_operator)
    response = client.post(
        "/dids/new", data={"number": "+44 200 0002", "account_id": setup.t1.id, "notes": "trunk"}
    )
    assert response.status_code == 303
    assert _numbers()["442000002"] == setup.t1.id
    entry = audit_entries("did", "create")[0]
    assert entry.company_id == tree.sub.id and entry.after["number"] == "442000002"


@pytest.mark.parametrize(
    ("number", "account", "message"),
    [
        ("442000001", "gw", "already assigned to Acme / gw"),
        ("15550000", "gw", "already assigned to an account of another company"),
        ("44-20", "gw", "use digits only"),
        ("", "gw", "The number is required"),
        ("4420009", "orig", "Not a valid choice"),
        ("4420009", "bt", "Not a valid choice"),
    ],
)
def test_create_refusals(login, tree, setup, text_of, number, account, message):
    """Taken numbers, bad digits and accounts that are not offered answer 422 with the reason."""
    client = login(tree.alpha_operator)
    account_id = getattr(setup, account).id
    response = client.post("/dids/new", data={"number": number, "account_id": account_id})
    assert response.status_code == 422
    assert message in text_of(response)
    assert len(_numbers()) == 2


def test_edit_moves_the_did_and_delete_removes_it(login, tree, setup):
    """Edit reassigns (audited with before/after), delete removes; a Beta DID answers 404."""
    client = login(tree.alpha_operator)
    did_id = setup.alpha_did.id
    response = client.post(f"/dids/{did_id}/edit", data={"number": "442000001", "account_id": setup.t1.id})
    assert response.status_code == 303
    assert _numbers()["442000001"] == setup.t1.id
    entry = audit_entries("did", "update")[0]
    assert entry.before["account_id"] == setup.gw.id and entry.after["account_id"] == setup.t1.id
    assert client.get(f"/dids/{setup.beta_did.id}/edit").status_code == 404
    assert client.post(f"/dids/{setup.beta_did.id}/delete").status_code == 404
    assert client.post(f"/dids/{did_id}/delete").status_code == 303
    assert "442000001" not in _numbers()


def test_import_add_and_update(login, tree, setup):
    """New numbers are added, an existing one is moved; one audit entry with the counts."""
    client = login(tree.alpha_operator)
    assert (
        _import(client, "number,account,notes\n442000001,SubCo/t1,moved\n+44 200 0003,acme/gw,\n").status_code
        == 303
    )
    job = last_job()
    assert job.status == "done", job.errors
    assert "1 added, 1 changed, 0 unchanged" in job.message
    numbers = _numbers()
    assert numbers["442000001"] == setup.t1.id and numbers["442000003"] == setup.gw.id
    entry = audit_entries("did", "import")[0]
    assert entry.company_id == tree.alpha.id and entry.after["added"] == 1


def test_import_only_new_leaves_existing_numbers(login, tree, setup):
    """Only new numbers: the existing DID keeps its account."""
    client = login(tree.alpha_operator)
    _import(client, "account,number\nSubCo/t1,442000001\nSubCo/t1,442000004\n", "only_new")
    assert "1 added, 1 already assigned" in last_job().message
    numbers = _numbers()
    assert numbers["442000001"] == setup.gw.id and numbers["442000004"] == setup.t1.id


def test_import_errors_are_listed_and_nothing_is_written(login, tree, setup):
    """Every wrong line is reported with its column; no DID changes."""
    client = login(tree.alpha_operator)
    text = (
        "number,account,notes\n"
        "442000005,Acme/gw,ok\n"
        "15550000,Acme/gw,held by Beta\n"
        "442000006,Acme/orig,not a terminator\n"
        "442000007,Nobody/x,unknown\n"
        "442000005,Acme/gw,again\n"
        "44x,Acme/gw,bad\n"
        "442000008,BetaTel/bt,out of scope\n"
    )
    _import(client, text)
    assert failed_job_errors() == [
        "line 3, number: 15550000 is assigned to an account of another company",
        "line 4, account: Acme/orig is not a terminator: enable Terminator on the account first",
        "line 5, account: no account 'Nobody/x' (write it as client/account)",
        "line 6, number: 442000005 is already on line 2",
        "line 7, number: '44x' is not a number: use digits only",
        "line 8, account: no account 'BetaTel/bt' (write it as client/account)",
    ]
    assert len(_numbers()) == 2


def test_export_round_trip(login, tree, setup, text_of):
    """The export lists the user's DIDs as number,client/account,notes and imports back unchanged."""
    client = login(tree.alpha_operator)
    client.post("/dids/new", data={"number": "442000002", "account_id": setup.t1.id, "notes": "a, b"})
    exported = text_of(client.get("/dids/export"))
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows == [
        ["number", "account", "notes"],
        ["442000001", "Acme/gw", ""],
        ["442000002", "SubCo/t1", "a, b"],
    ]
    before = _numbers()
    _import(client, exported)
    assert last_job().status == "done" and _numbers() == before


def test_hostile_filters_never_fail(login, tree, setup, text_of):
    """Odd filter values answer a page, never an error: a client id that is not an id is ignored."""
    client = login(tree.alpha_operator)
    for query in ("client_id=99999999999999999999999", "client_id=-5", "client_id=x"):
        response = client.get(f"/dids/?{query}")
        assert response.status_code == 200 and "442000001" in text_of(response), query
    for query in ("q=%25", "q=_"):
        assert "No DID matches" in text_of(client.get(f"/dids/?{query}")), query
