"""Code decks: list, create, edit, delete (refused while a plan uses it); the codes grid; import, export."""

from flask import request
from sqlalchemy import or_, select

from panel.access import get_or_404, reader_required, writer_required
from panel.codedecks import bp, importer
from panel.codedecks.forms import CodeDeckForm, CodeForm
from panel.codedecks.importer import CODE_COLUMNS, export_rows
from panel.extensions import db
from panel.htmx import render
from panel.imports import export as csv_export
from panel.imports import flow
from panel.listing import paginate
from panel.models import Code, CodeDeck, Company, RoutingPlan
from panel.reference.owners import count_by, plural
from panel.reference.views import InlineGrid, OwnedSection

DECK_SORTABLE = {"name": CodeDeck.name, "company": Company.name}
CODE_SORTABLE = {"code": Code.code, "name": Code.name, "country": Code.country}


def _plans_using(deck: CodeDeck) -> list[RoutingPlan]:
    """The routing plans whose deck this is."""
    return db.session.scalars(
        select(RoutingPlan).where(RoutingPlan.code_deck_id == deck.id).order_by(RoutingPlan.name)
    ).all()


def _users(deck: CodeDeck) -> tuple[list[str], set[int]]:
    """The plans whose deck this is, and their companies."""
    plans = _plans_using(deck)
    return [f"plan {plan.name}" for plan in plans], {plan.company_id for plan in plans}


def _code_count(deck: CodeDeck) -> int:
    """How many codes the deck holds."""
    return count_by(Code.code_deck_id, [deck.id]).get(deck.id, 0)


section = OwnedSection(
    bp=bp,
    model=CodeDeck,
    form_class=CodeDeckForm,
    noun="code deck",
    plural="Code decks",
    sortable=DECK_SORTABLE,
    var="deck",
    users_of=_users,
    created_hint=" Add codes or import a CSV file.",
    deleted_with=lambda deck: f"with its {plural(_code_count(deck), 'code')}",
    list_context=lambda items: {
        "code_counts": count_by(Code.code_deck_id, [d.id for d in items]),
        "plan_counts": count_by(RoutingPlan.code_deck_id, [d.id for d in items]),
    },
)


# ---------------------------------------------------------------------------------------------------------
# The codes grid


def _codes_filter(deck: CodeDeck):
    """The grid's select from the query string: `q` is a code prefix (digits) or part of a name or country."""
    q = request.args.get("q", "").strip()
    stmt = select(Code).where(Code.code_deck_id == deck.id)
    if q:
        if q.isdigit():
            stmt = stmt.where(Code.code.startswith(q, autoescape=True))
        else:
            stmt = stmt.where(
                or_(Code.name.icontains(q, autoescape=True), Code.country.icontains(q, autoescape=True))
            )
    return stmt, {"q": q}


def _grid(deck: CodeDeck, form: CodeForm | None = None, status: int = 200):
    """The deck page, or the grid fragment for htmx."""
    stmt, filters = _codes_filter(deck)
    pagination = paginate(stmt, CODE_SORTABLE, "code", Code.id)
    return render(
        "codedecks/show.html",
        "codedecks/_grid.html",
        status=status,
        deck=deck,
        pagination=pagination,
        filters=filters,
        form=form or CodeForm(formdata=None),
        plans=_plans_using(deck),
        code_count=count_by(Code.code_deck_id, [deck.id]).get(deck.id, 0),
    )


@bp.route("/<int:code_deck_id>")
@reader_required
def show(code_deck_id: int):
    """The codes of one deck: search, paging, inline edit."""
    return _grid(get_or_404(CodeDeck, code_deck_id))


def _validate_code(form: CodeForm, deck: CodeDeck, code: Code | None) -> bool:
    """Field rules plus: a code appears once in a deck."""
    if not form.validate():
        return False
    stmt = select(Code.id).where(Code.code_deck_id == deck.id, Code.code == form.code.parsed)
    if code is not None:
        stmt = stmt.where(Code.id != code.id)
    if db.session.scalar(stmt) is not None:
        form.code.errors.append(f"Code {form.code.parsed} is already in this deck.")
        return False
    return True


def _apply(form: CodeForm, code: Code) -> None:
    """Copy the form's clean values onto the code."""
    for name in CODE_COLUMNS:
        setattr(code, name, getattr(form, name).parsed)


codes = InlineGrid(
    bp=bp,
    parent_model=CodeDeck,
    model=Code,
    form_class=CodeForm,
    parent_arg="code_deck_id",
    prefix="code",
    parent_var="deck",
    validate=_validate_code,
    apply=_apply,
    form_data=lambda code: {"code": code.code, "name": code.name, "country": code.country},
    show=_grid,
    label=lambda code: f"Code {code.code}",
    note=lambda code, deck: f"In code deck {deck.name}.",
)


# ---------------------------------------------------------------------------------------------------------
# Import and export


@bp.route("/<int:code_deck_id>/import", methods=["GET", "POST"])
@writer_required(reads="reader")
def import_(code_deck_id: int):
    """Upload codes: a purge is previewed first; the import runs in the background (panel.imports)."""
    return flow.handle(importer.IMPORT, get_or_404(CodeDeck, code_deck_id))


@bp.route("/<int:code_deck_id>/export")
@reader_required
def export(code_deck_id: int):
    """The deck's codes as CSV (the grid's search applies), in the import's column order."""
    deck = get_or_404(CodeDeck, code_deck_id)
    stmt, _ = _codes_filter(deck)
    stmt = stmt.order_by(Code.code)
    return csv_export.response(csv_export.csv_filename(deck.name, "codes"), CODE_COLUMNS, export_rows(stmt))
