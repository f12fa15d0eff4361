"""Code decks: list, create, edit, delete (refused while a plan uses it); the codes grid; import, export."""

from flask import request
from sqlalchemy import select

from panel.codedecks import bp, importer
from panel.codedecks.forms import CodeDeckForm, CodeForm
from panel.codedecks.importer import CODE_COLUMNS, export_rows
from panel.extensions import db
from panel.models import Code, CodeDeck, RoutingPlan
from panel.reference.owners import code_or_text, count_by
from panel.reference.views import InlineGrid, OwnedSection


def _plans_using(deck: CodeDeck) -> list[RoutingPlan]:
    """The routing plans whose deck this is."""
    return db.session.scalars(
        select(RoutingPlan).where(RoutingPlan.code_deck_id == deck.id).order_by(RoutingPlan.name)
    ).all()


def _users(deck: CodeDeck) -> tuple[list[str], set[int]]:
    """The plans whose deck this is, and their companies."""
    plans = _plans_using(deck)
    return [f"plan {plan.name}" for plan in plans], {plan.company_id for plan in plans}


section = OwnedSection(
    bp,
    CodeDeck,
    CodeDeckForm,
    _users,
    rows=Code.code_deck_id,
    created_hint=" Add codes or import a CSV file.",
    list_context=lambda decks: {"plan_counts": count_by(RoutingPlan.code_deck_id, [d.id for d in decks])},
)


# ---------------------------------------------------------------------------------------------------------
# The codes grid


def _codes_filter(deck: CodeDeck):
    """The grid's select from the query string: `q` is a code prefix (digits) or part of a name or country."""
    q = request.args.get("q", "").strip()
    stmt = select(Code).where(Code.code_deck_id == deck.id)
    if q:
        stmt = stmt.where(code_or_text(q, Code.code, Code.name, Code.country))
    return stmt, {"q": q}


def _validate_code(form: CodeForm, deck: CodeDeck, code: Code | None) -> bool:
    """Field rules plus: a code appears once in a deck."""
    if not form.validate():
        return False
    if codes.taken(deck, code, Code.code == form.code.parsed):
        form.code.errors.append(f"Code {form.code.parsed} is already in this deck.")
        return False
    return True


codes = InlineGrid(
    section,
    Code,
    CodeForm,
    CODE_COLUMNS,
    _codes_filter,
    _validate_code,
    label=lambda code: f"Code {code.code}",
    importer=importer.IMPORT,
    export_rows=export_rows,
    order=(Code.code,),
    sortable={"code": Code.code, "name": Code.name, "country": Code.country},
    page_context=lambda deck: {"plans": _plans_using(deck)},
    note=lambda code, deck: f"In code deck {deck.name}.",
)
