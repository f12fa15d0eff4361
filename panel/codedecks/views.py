"""Code decks: list, create, edit, delete (refused while a plan uses it); the codes grid; import, export."""

from flask import abort, flash, make_response, request, url_for
from sqlalchemy import or_, select

from panel import audit
from panel.access import reader_required, writer_required
from panel.codedecks import bp
from panel.codedecks.forms import CodeDeckForm, CodeForm, CodeImportForm
from panel.codedecks.importer import CODE_COLUMNS, MODES, REQUIRED_COLUMNS, export_rows, import_codes
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.forms import name_taken
from panel.htmx import is_htmx, redirect, render, trigger
from panel.imports import export as csv_export
from panel.imports.flow import start_csv_import
from panel.imports.jobs import recent_jobs
from panel.listing import paginate
from panel.models import Code, CodeDeck, Company, RoutingPlan
from panel.rates.shared import (
    count_by,
    default_owner,
    name_list,
    owned_list,
    owner_change_error,
    owner_choices,
    plural,
)
from panel.scope import get_or_404

DECK_SORTABLE = {"name": CodeDeck.name, "company": Company.name}
CODE_SORTABLE = {"code": Code.code, "name": Code.name, "country": Code.country}


def _plans_using(deck: CodeDeck) -> list[RoutingPlan]:
    """The routing plans whose deck this is."""
    return db.session.scalars(
        select(RoutingPlan).where(RoutingPlan.code_deck_id == deck.id).order_by(RoutingPlan.name)
    ).all()


@bp.route("/")
@reader_required
def index():
    """The code decks of the user's companies with their codes count and the plans that use them."""
    pagination, q, company_id = owned_list(CodeDeck, DECK_SORTABLE)
    ids = [d.id for d in pagination.items]
    return render(
        "codedecks/list.html",
        "codedecks/_table.html",
        pagination=pagination,
        code_counts=count_by(Code.code_deck_id, ids),
        plan_counts=count_by(RoutingPlan.code_deck_id, ids),
        companies=owner_choices(),
        q=q,
        company_id=company_id,
    )


def _deck_form(deck: CodeDeck | None = None) -> CodeDeckForm:
    """The deck form with the owner choices."""
    form = CodeDeckForm(obj=deck)
    choices = owner_choices()
    form.company_id.choices = as_choices(choices)
    if deck is None and request.method == "GET":
        form.company_id.data = default_owner(choices)
    return form


@bp.route("/new", methods=["GET", "POST"])
@writer_required(reads="reader")
def create():
    """Create a code deck."""
    form = _deck_form()
    if form.validate_on_submit() and not name_taken(form, CodeDeck, None, "code deck"):
        deck = CodeDeck()
        form.populate_obj(deck)
        db.session.add(deck)
        audit.record("create", deck)
        db.session.commit()
        flash(f"Code deck {deck.name} created. Add codes or import a CSV file.", "success")
        return redirect(url_for("codedecks.show", code_deck_id=deck.id))
    return render("codedecks/form.html", status=422 if form.is_submitted() else 200, form=form, deck=None)


@bp.route("/<int:code_deck_id>/edit", methods=["GET", "POST"])
@writer_required(reads="reader")
def update(code_deck_id: int):
    """Edit a deck's name, owner and notes."""
    deck = get_or_404(CodeDeck, code_deck_id)
    form = _deck_form(deck)
    if form.validate_on_submit() and not name_taken(form, CodeDeck, deck, "code deck"):
        if form.company_id.data != deck.company_id:
            companies = {plan.company_id for plan in _plans_using(deck)}
            error = owner_change_error(form.company_id.data, companies, "code deck")
            if error:
                form.company_id.errors.append(error)
                return render("codedecks/form.html", status=422, form=form, deck=deck)
        before = audit.state(deck)
        form.populate_obj(deck)
        audit.record("update", deck, before=before)
        db.session.commit()
        flash(f"Code deck {deck.name} saved.", "success")
        return redirect(url_for("codedecks.show", code_deck_id=deck.id))
    return render("codedecks/form.html", status=422 if form.is_submitted() else 200, form=form, deck=deck)


@bp.route("/<int:code_deck_id>/delete", methods=["POST"])
@writer_required
def delete(code_deck_id: int):
    """Delete a deck and its codes; refused while a routing plan uses it."""
    deck = get_or_404(CodeDeck, code_deck_id)
    plans = _plans_using(deck)
    if plans:
        names = name_list(f"plan {plan.name}" for plan in plans)
        flash(f"Code deck {deck.name} is not deleted: it is used by {names}.", "error")
        return redirect(url_for("codedecks.index"))
    count = count_by(Code.code_deck_id, [deck.id]).get(deck.id, 0)
    before = audit.state(deck)
    audit.record("delete", deck, before=before, note=f"Deleted with its {plural(count, 'code')}.")
    db.session.delete(deck)
    db.session.commit()
    flash(f"Code deck {deck.name} deleted with its {plural(count, 'code')}.", "success")
    return redirect(url_for("codedecks.index"))


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


def _load_code(code_deck_id: int, code_id: int) -> tuple[CodeDeck, Code]:
    """The deck and one of its codes, or 404."""
    deck = get_or_404(CodeDeck, code_deck_id)
    code = get_or_404(Code, code_id)
    if code.code_deck_id != deck.id:
        abort(404)
    return deck, code


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


def _audit(action: str, code: Code, deck: CodeDeck, before: dict | None = None) -> None:
    """Record a change of one code; the entry belongs to the deck's company, so the deck's users see it."""
    entry = audit.record(action, code, before=before, note=f"In code deck {deck.name}.")
    entry.company_id = deck.company_id


def _apply(form: CodeForm, code: Code) -> None:
    """Copy the form's clean values onto the code."""
    for name in CODE_COLUMNS:
        setattr(code, name, getattr(form, name).parsed)


@bp.route("/<int:code_deck_id>/codes", methods=["POST"])
@writer_required
def code_create(code_deck_id: int):
    """Add one code from the form above the grid."""
    deck = get_or_404(CodeDeck, code_deck_id)
    form = CodeForm()
    if _validate_code(form, deck, None):
        code = Code(code_deck_id=deck.id)
        _apply(form, code)
        code.code_deck = deck
        db.session.add(code)
        _audit("create", code, deck)
        db.session.commit()
        if is_htmx():
            response = render(
                "codedecks/_add.html",
                "codedecks/_add.html",
                deck=deck,
                form=CodeForm(formdata=None),
                keep_open=True,
            )
            return trigger(response, "codes-changed")
        flash(f"Code {code.code} added.", "success")
        return redirect(url_for("codedecks.show", code_deck_id=deck.id))
    if is_htmx():
        return render("codedecks/_add.html", "codedecks/_add.html", status=422, deck=deck, form=form)
    return _grid(deck, form, 422)


@bp.route("/<int:code_deck_id>/codes/<int:code_id>")
@reader_required
def code_row(code_deck_id: int, code_id: int):
    """One grid row (what Cancel shows again)."""
    deck, code = _load_code(code_deck_id, code_id)
    return render("codedecks/_row.html", "codedecks/_row.html", deck=deck, code=code)


@bp.route("/<int:code_deck_id>/codes/<int:code_id>/edit", methods=["GET", "POST"])
@writer_required(reads="reader")
def code_update(code_deck_id: int, code_id: int):
    """Inline edit of one code: GET the row as inputs, POST to save (422 keeps the row in edit mode)."""
    deck, code = _load_code(code_deck_id, code_id)
    if request.method == "POST":
        form = CodeForm()
        if _validate_code(form, deck, code):
            before = audit.state(code)
            _apply(form, code)
            _audit("update", code, deck, before)
            db.session.commit()
            if is_htmx():
                return render("codedecks/_row.html", "codedecks/_row.html", deck=deck, code=code)
            return redirect(url_for("codedecks.show", code_deck_id=deck.id))
        return render(
            "codedecks/code_edit.html",
            "codedecks/_row_edit.html",
            status=422,
            deck=deck,
            code=code,
            form=form,
        )
    form = CodeForm(formdata=None, obj=code)
    return render("codedecks/code_edit.html", "codedecks/_row_edit.html", deck=deck, code=code, form=form)


@bp.route("/<int:code_deck_id>/codes/<int:code_id>/delete", methods=["POST"])
@writer_required
def code_delete(code_deck_id: int, code_id: int):
    """Delete one code (the row disappears from the grid)."""
    deck, code = _load_code(code_deck_id, code_id)
    before = audit.state(code)
    _audit("delete", code, deck, before)
    db.session.delete(code)
    db.session.commit()
    if is_htmx():
        return make_response("", 200)
    flash(f"Code {code.code} deleted.", "success")
    return redirect(url_for("codedecks.show", code_deck_id=deck.id))


# ---------------------------------------------------------------------------------------------------------
# Import and export


@bp.route("/<int:code_deck_id>/import", methods=["GET", "POST"])
@writer_required(reads="reader")
def import_(code_deck_id: int):
    """Upload codes; they are checked and written in the background while a progress bar shows."""
    deck = get_or_404(CodeDeck, code_deck_id)
    form = CodeImportForm()
    context = {
        "deck": deck,
        "form": form,
        "modes": MODES,
        "columns": CODE_COLUMNS,
        "required": REQUIRED_COLUMNS,
    }
    if form.validate_on_submit():
        deck_id, mode = deck.id, form.mode.data

        def run(data: bytes, filename: str, job_id: int, progress) -> str:
            return import_codes(deck_id, data, mode, filename=filename, progress=progress, job_id=job_id)

        job = start_csv_import("codes", target=deck, form=form, mode_label=MODES[mode], run=run)
        if job is not None:
            if is_htmx():
                context["form"] = CodeImportForm(formdata=None)
                return render(
                    "codedecks/_import_form.html", "codedecks/_import_form.html", job=job, **context
                )
            return redirect(url_for("codedecks.import_", code_deck_id=deck.id))
    status = 422 if form.is_submitted() else 200
    return render(
        "codedecks/import.html",
        "codedecks/_import_form.html",
        status=status,
        jobs=recent_jobs("codes", deck.id),
        **context,
    )


@bp.route("/<int:code_deck_id>/export")
@reader_required
def export(code_deck_id: int):
    """The deck's codes as CSV (the grid's search applies), in the import's column order."""
    deck = get_or_404(CodeDeck, code_deck_id)
    stmt, _ = _codes_filter(deck)
    stmt = stmt.order_by(Code.code)
    return csv_export.response(
        csv_export.csv_filename(deck.name, "codes"), CODE_COLUMNS, export_rows(stmt)
    )
