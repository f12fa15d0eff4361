"""Code decks: list, scope, create/edit/delete (refused while a plan uses it), codes grid, import, export."""

import csv
import io
import re

import pytest
from sqlalchemy import select

from panel.extensions import db
from panel.models import Code, CodeDeck
from tests import factories
from tests.import_jobs import failed_job_errors, last_job
from tests.reference.conftest import audit_entries, upload


@pytest.fixture
def decks(tree):
    """A deck per company; Alpha's is used by a routing plan."""
    root = factories.code_deck(tree.root, "World", [("44", "United Kingdom", "GB")])
    alpha = factories.code_deck(
        tree.alpha, "Alpha deck", [("44", "UK", "GB"), ("4420", "UK London", "GB"), ("33", "France", "FR")]
    )
    sub = factories.code_deck(tree.sub, "Sub deck")
    beta = factories.code_deck(tree.beta, "Beta deck", [("1", "USA", "US")])
    factories.plan(tree.alpha, "Alpha plan", code_deck_id=alpha.id)
    db.session.commit()
    return type("Decks", (), {"root": root, "alpha": alpha, "sub": sub, "beta": beta})


def _codes(deck_id: int) -> list[tuple[str, str, str]]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Code.code, Code.name, Code.country).where(Code.code_deck_id == deck_id).order_by(Code.code)
    ).all()
    return [tuple(r) for r in rows]


def _import(client, deck_id, text, mode):
    return client.post(
        f"/code-decks/{deck_id}/import",
        data={"file": upload(text), "mode": mode},
        content_type="multipart/form-data",
    )


def test_list_is_scoped_with_counts_and_plans(login, tree, decks, text_of):
    """Alpha's users see Alpha's and Alpha Sub's decks, with the codes count and the plans that use them."""
    page = text_of(login(tree.alpha_operator).get("/code-decks/"))
    assert "Alpha deck" in page and "Sub deck" in page
    assert "World" not in page and "Beta deck" not in page
    row = page.split(f'id="code-deck-{decks.alpha.id}"')[1].split("</tr>")[0]
    assert ">3<" in row and "1 routing plan" in row


@pytest.mark.parametrize(
    "path",
    ["/code-decks/{id}", "/code-decks/{id}/edit", "/code-decks/{id}/import", "/code-decks/{id}/export"],
)
def test_decks_outside_scope_answer_404(login, tree, decks, path):
    """A parent's or a sibling's deck is not found."""
    client = login(tree.alpha_operator)
    assert client.get(path.format(id=decks.root.id)).status_code == 404
    assert client.get(path.format(id=decks.beta.id)).status_code == 404
    assert client.get(path.format(id=decks.sub.id)).status_code == 200


def test_code_of_another_deck_answers_404(login, tree, decks):
    """A code is only found under its own deck."""
    client = login(tree.alpha_operator)
    alpha_code = db.session.scalar(select(Code.id).where(Code.code_deck_id == decks.alpha.id))
    assert client.get(f"/code-decks/{decks.sub.id}/codes/{alpha_code}/edit").status_code == 404
    assert client.get(f"/code-decks/{decks.alpha.id}/codes/{alpha_code}/edit").status_code == 200


def test_create_edit_and_delete_are_audited(login, tree, decks, text_of):
    """Create, rename and delete a deck; each step leaves an audit entry."""
    client = login(tree.alpha_operator)
    assert (
        client.post("/code-decks/new", data={"name": "New deck", "company_id": tree.alpha.id}).status_code
        == 303
    )
    deck = db.session.scalar(select(CodeDeck).where(CodeDeck.name == "New deck"))
    response = client.post("/code-decks/new", data={"name": "New deck", "company_id": tree.alpha.id})
    assert response.status_code == 422 and "already has a code deck" in text_of(response)
    assert (
        client.post(
            f"/code-decks/{deck.id}/edit", data={"name": "Renamed", "company_id": tree.sub.id}
        ).status_code
        == 303
    )
    db.session.expire_all()
    assert (deck.name, deck.company_id) == ("Renamed", tree.sub.id)
    assert client.post(f"/code-decks/{deck.id}/delete").status_code == 303
    assert db.session.get(CodeDeck, deck.id) is None
    assert [e.action for e in audit_entries("codedeck")] == ["create", "update", "delete"]


def test_delete_refused_while_a_plan_uses_the_deck(login, tree, decks, text_of):
    """The deck stays and the message names the plan."""
    client = login(tree.alpha_operator)
    page = text_of(client.post(f"/code-decks/{decks.alpha.id}/delete", follow_redirects=True))
    assert "is not deleted" in page and "plan Alpha plan" in page
    assert db.session.get(CodeDeck, decks.alpha.id) is not None


def test_moving_a_used_deck_below_its_plan_is_refused(login, tree, decks, text_of):
    """Alpha's plan uses the deck, so it cannot move to Alpha Sub."""
    client = login(tree.alpha_operator)
    response = client.post(
        f"/code-decks/{decks.alpha.id}/edit", data={"name": "Alpha deck", "company_id": tree.sub.id}
    )
    assert response.status_code == 422 and "used by Alpha" in text_of(response)


def test_codes_grid_search(login, tree, decks, text_of):
    """Digits search code prefixes; words search names and countries."""
    client = login(tree.alpha_viewer)
    page = text_of(client.get(f"/code-decks/{decks.alpha.id}?q=442"))
    assert "UK London" in page and "France" not in page
    page = text_of(client.get(f"/code-decks/{decks.alpha.id}?q=FR", headers={"HX-Request": "true"}))
    assert "France" in page and "UK London" not in page and "<html" not in page
    assert "Add a code" not in text_of(client.get(f"/code-decks/{decks.alpha.id}"))


def test_inline_edit_add_and_delete_codes(login, tree, decks, text_of):
    """Edit saves (or answers 422 keeping the inputs); add and delete work; entries are the deck owner's."""
    client = login(tree.alpha_operator)
    code = db.session.scalar(select(Code).where(Code.code_deck_id == decks.alpha.id, Code.code == "4420"))
    url = f"/code-decks/{decks.alpha.id}/codes/{code.id}/edit"
    response = client.post(
        url, data={"code": "4420", "name": "London", "country": "GB"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "London" in text_of(response) and "<input" not in text_of(response)
    response = client.post(
        url, data={"code": "44", "name": "Dup", "country": ""}, headers={"HX-Request": "true"}
    )
    assert (
        response.status_code == 422
        and "already in this deck" in text_of(response)
        and "<input" in text_of(response)
    )
    response = client.post(
        f"/code-decks/{decks.alpha.id}/codes",
        data={"code": "49", "name": "Germany", "country": "DE"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "codes-changed" in response.headers["HX-Trigger"]
    new = db.session.scalar(select(Code).where(Code.code_deck_id == decks.alpha.id, Code.code == "49"))
    assert (
        client.post(
            f"/code-decks/{decks.alpha.id}/codes/{new.id}/delete", headers={"HX-Request": "true"}
        ).status_code
        == 200
    )
    assert ("4420", "London", "GB") in _codes(decks.alpha.id) and "49" not in [
        c for c, _, _ in _codes(decks.alpha.id)
    ]
    entries = audit_entries("code")
    assert [e.action for e in entries] == ["update", "create", "delete"]
    assert {e.company_id for e in entries} == {tree.alpha.id}


def test_import_only_new_codes_keeps_existing_ones(login, tree, decks):
    """Only new codes: 49 is added, 44 keeps its name."""
    client = login(tree.alpha_operator)
    assert (
        _import(
            client, decks.alpha.id, "code,name,country\n44,Changed,XX\n49,Germany,DE\n", "only_new"
        ).status_code
        == 303
    )
    job = last_job()
    assert job.status == "done" and "1 added, 1 already in the deck" in job.message
    codes = _codes(decks.alpha.id)
    assert ("44", "UK", "GB") in codes and ("49", "Germany", "DE") in codes


def test_import_add_and_update(login, tree, decks):
    """Add and update: 44 is renamed, 49 is added; one audit entry with the counts."""
    client = login(tree.alpha_operator)
    _import(client, decks.alpha.id, "name,code\nChanged,44\nGermany,49\n", "add_update")
    assert "1 added, 1 changed, 0 unchanged" in last_job().message
    codes = _codes(decks.alpha.id)
    assert ("44", "Changed", "") in codes and ("49", "Germany", "") in codes and len(codes) == 4
    assert len(audit_entries("codedeck", "import")) == 1


def test_import_purge_and_import(login, tree, decks):
    """Purge and import: the deck holds exactly the file's codes."""
    client = login(tree.alpha_operator)
    page = _import(client, decks.alpha.id, "code,name,country\n7,Russia,RU\n", "purge").get_data(as_text=True)
    assert "1 added" in page and "3 removed" in page and last_job() is None  # nothing written yet
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    client.post(f"/code-decks/{decks.alpha.id}/import", data={"token": token, "action": "confirm"})
    assert last_job().status == "done"
    assert _codes(decks.alpha.id) == [("7", "Russia", "RU")]
    assert "Purged the deck's 3 codes" in audit_entries("codedeck", "import")[-1].note


def test_import_errors_write_nothing(login, tree, decks):
    """Bad codes and repeated codes are listed by line; the deck is unchanged."""
    client = login(tree.alpha_operator)
    before = _codes(decks.alpha.id)
    _import(client, decks.alpha.id, "code,name\n49,Germany\n+49,Bad\n49,Again\n,Empty\n", "add_update")
    assert failed_job_errors() == [
        "line 3, code: '+49' is not a code: use digits only",
        "line 4, code: 49 is already on line 2",
        "line 5, code: the code is required",
    ]
    assert _codes(decks.alpha.id) == before


def test_export_round_trip(login, tree, decks, text_of):
    """The export reads back with purge into the same codes."""
    client = login(tree.alpha_operator)
    exported = text_of(client.get(f"/code-decks/{decks.alpha.id}/export"))
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["code", "name", "country"] and ["4420", "UK London", "GB"] in rows
    before = _codes(decks.alpha.id)
    _import(client, decks.alpha.id, exported, "purge")
    assert _codes(decks.alpha.id) == before
