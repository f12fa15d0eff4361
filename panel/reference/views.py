"""The generic views of the reference sections, in the spirit of NetBox's object views.

A section declares what differs (its model, form, templates, columns, who uses an object) and these classes
write the views that are the same everywhere:

- `ObjectSection`: list, create, edit and delete of one kind of object in the user's scope; a section
  refines its form, checks, how the form fills the object and its list (DIDs, owned through an account).
- `OwnedSection`: an `ObjectSection` owned by a company: name search, owner filter, owner picker, and the
  owner-change guard (an object may not move to a company under which its users could no longer use it).
  Rate tables, code decks, time profiles and policies use it.
- `InlineGrid`: the rows of a parent (a section's object) on the parent's page: a grid with search, sorting
  and paging, inline edit (Cancel shows the row again), an "add" form above the grid, a delete button per
  row, and the rows' CSV import (panel.imports.flow) and export. The rates of a rate table and the codes of a
  code deck use it.

What a section does not declare is derived: the noun from the model's name (`CodeDeck`: "code deck"), the
list's title, the templates' name for an object (the noun's last word: "deck"), the URL variables and
template folder from the noun and blueprint, the owned list's sorting by name and company.

Every write goes through `panel.writes` (audit entry and commit in one transaction, version check on edits).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, abort, flash, make_response, request, url_for
from sqlalchemy import select

from panel import writes
from panel.access import get_or_404, reader_required, writer_required
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.forms import name_taken
from panel.htmx import is_htmx, redirect, render, trigger
from panel.imports import export as csv_export
from panel.imports import flow
from panel.listing import paginate
from panel.models import Company
from panel.models.types import utcnow
from panel.reference.owners import (
    count_by,
    default_owner,
    name_list,
    owned_list,
    owner_change_error,
    owner_choices,
    plural,
)


@dataclass
class ObjectSection:
    """An object with list, create, edit and delete views on `bp`; subclasses say how it is owned.

    `users_of(obj)` answers (names of what uses the object, the companies of those users): the names refuse
    a delete, the companies guard an owner change. `list_context(items)` adds the list's per-row figures;
    `form_context(obj)` adds what the form page shows besides the form.
    """

    bp: Blueprint
    model: type
    form_class: type
    users_of: Callable = lambda obj: ([], set())
    noun: str = ""  # as the operator reads it: "rate table" from RateTable
    plural: str = ""  # the list's title: "Rate tables" from the noun
    var: str = ""  # how the templates name one object: "table", the noun's last word
    sortable: dict = field(default_factory=dict)  # the list's sort columns
    rows: object = None  # the foreign key of the rows the object holds (Rate.rate_table_id): counted, named
    container: str = ""  # the id of the element that sorting and paging swap: "rate-tables" from the plural
    id_arg: str = ""  # the URL variable: "rate_table_id" from the noun
    template_dir: str = ""  # where _table.html and form.html are: the blueprint's name
    after_save: str = "show"  # the endpoint (of this blueprint) shown after create and edit
    list_template: str = "_reference/list.html"
    list_context: Callable[[list], dict] = lambda items: {}
    form_context: Callable = lambda obj: {}
    created_word: str = "created"  # "DID 4420 assigned."
    created_hint: str = ""  # appended to "X created."
    refused_to: str = "index"  # where a refused delete goes back to ("index" or "show")
    intro: str = ""  # a sentence under the list's title

    def __post_init__(self) -> None:
        ep = self.bp.name
        self.noun = self.noun or words(self.model.__name__)
        self.plural = self.plural or f"{self.title}s"
        self.var = self.var or self.noun.split()[-1].lower()
        self.container = self.container or self.plural.lower().replace(" ", "-")
        self.id_arg = self.id_arg or f"{self.noun.lower().replace(' ', '_')}_id"
        self.template_dir = self.template_dir or ep
        self.endpoints = {name: f"{ep}.{name}" for name in ("index", "show", "create", "update", "delete")}
        rule = f"/<int:{self.id_arg}>"
        both = ["GET", "POST"]
        self.bp.add_url_rule("/", "index", reader_required(self.index))
        self.bp.add_url_rule("/new", "create", writer_required(reads="reader")(self.create), methods=both)
        self.bp.add_url_rule(
            f"{rule}/edit", "update", writer_required(reads="reader")(self.update), methods=both
        )
        self.bp.add_url_rule(f"{rule}/delete", "delete", writer_required(self.delete), methods=["POST"])

    # -- what a section may refine -------------------------------------------------------------------

    def form(self, obj=None):
        """The section's form for a new object (None) or an existing one."""
        return self.form_class(obj=obj)

    def check(self, form, obj) -> bool:
        """Rules beyond the form's fields (a unique name, an owner change): False with the errors set."""
        return True

    def fill(self, form, obj) -> None:
        """Copy the form's values onto the object."""
        form.populate_obj(obj)

    def label(self, obj) -> str:
        """The object in messages."""
        return obj.name

    def list_figures(self, items: list) -> dict:
        """The list's per-row figures: how many rows each object holds (`row_counts`), the section's own."""
        counts = {"row_counts": self.row_counts([obj.id for obj in items])} if self.rows is not None else {}
        return {**counts, **self.list_context(items)}

    def listing(self) -> dict:
        """The list's page of objects and its filters, as template variables."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------------

    @property
    def title(self) -> str:
        """The noun with a capital, for messages."""
        return self.noun[:1].upper() + self.noun[1:]

    @property
    def row_noun(self) -> str:
        """What the object holds, in messages: "rate" (from the model of `rows`)."""
        return words(self.rows.class_.__name__)

    def row_counts(self, ids: list[int]) -> dict[int, int]:
        """How many rows each object holds: {id: count}."""
        return count_by(self.rows, ids)

    def url(self, endpoint: str, obj=None) -> str:
        """The URL of one of this section's views, for `obj` when the view takes one."""
        if endpoint in ("index", "create") or obj is None:
            return url_for(self.endpoints[endpoint])
        return url_for(self.endpoints[endpoint], **{self.id_arg: obj.id})

    def page(self, form, obj, status: int):
        """The form page (create or edit)."""
        context = {self.var: obj, "obj": obj, "ref": self, **self.form_context(obj)}
        return render(f"{self.template_dir}/form.html", status=status, form=form, **context)

    # -- views ---------------------------------------------------------------------------------------

    def index(self):
        """The objects in the user's scope, with the section's filters, sorting and paging."""
        context = self.listing()
        return render(
            self.list_template,
            f"{self.template_dir}/_table.html",
            ref=self,
            **context,
            **self.list_figures(context["pagination"].items),
        )

    def create(self):
        """Create an object."""
        form = self.form()
        if form.validate_on_submit() and self.check(form, None):
            obj = self.model()
            self.fill(form, obj)
            writes.create(obj)
            flash(f"{self.title} {self.label(obj)} {self.created_word}.{self.created_hint}", "success")
            return redirect(self.url(self.after_save, obj))
        return self.page(form, None, 422 if form.is_submitted() else 200)

    def update(self, **kwargs):
        """Edit an object (a stale form is a conflict, see panel.writes)."""
        obj = get_or_404(self.model, kwargs[self.id_arg])
        form = self.form(obj)
        if form.validate_on_submit():
            if not self.check(form, obj):
                return self.page(form, obj, 422)
            with writes.change(obj, version=request.form.get("version")):
                self.fill(form, obj)
            flash(f"{self.title} {self.label(obj)} saved.", "success")
            return redirect(self.url(self.after_save, obj))
        return self.page(form, obj, 422 if form.is_submitted() else 200)

    def delete(self, **kwargs):
        """Delete an object; refused while something uses it."""
        obj = get_or_404(self.model, kwargs[self.id_arg])
        names, _ = self.users_of(obj)
        label = self.label(obj)
        if names:
            flash(f"{self.title} {label} is not deleted: it is used by {name_list(names)}.", "error")
            return redirect(self.url(self.refused_to, obj))
        taken = ""
        if self.rows is not None:
            taken = f" with its {plural(self.row_counts([obj.id]).get(obj.id, 0), self.row_noun)}"
        writes.delete(obj, note=f"Deleted{taken}." if taken else "")
        flash(f"{self.title} {label} deleted{taken}.", "success")
        return redirect(self.url("index"))


@dataclass
class OwnedSection(ObjectSection):
    """A named object owned by a company: name search and owner filter, owner picker, owner-change guard."""

    exclude_owner_kinds: tuple = ()
    new_form_defaults: Callable | None = None  # fills a new object's form on GET

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sortable = {"name": self.model.name, "company": Company.name, **self.sortable}

    def form(self, obj=None):
        """The form with the owner choices (a new object's owner defaults to the user's company)."""
        form = self.form_class(obj=obj)
        choices = owner_choices(exclude_kinds=self.exclude_owner_kinds)
        form.company_id.choices = as_choices(choices)
        if obj is None and request.method == "GET":
            form.company_id.data = default_owner(choices)
            if self.new_form_defaults:
                self.new_form_defaults(form)
        return form

    def check(self, form, obj) -> bool:
        """A unique name in its company, and an owner under which the object's users may still use it."""
        if name_taken(form, self.model, obj, self.noun):
            return False
        if obj is None or form.company_id.data == obj.company_id:
            return True
        _, companies = self.users_of(obj)
        error = owner_change_error(form.company_id.data, companies, self.noun)
        if error:
            form.company_id.errors.append(error)
            return False
        return True

    def listing(self) -> dict:
        """Name search, owner filter, sorting and paging in the user's scope."""
        pagination, q, company_id = owned_list(self.model, self.sortable)
        return {"pagination": pagination, "companies": owner_choices(), "q": q, "company_id": company_id}


@dataclass
class InlineGrid:
    """The rows of a section's object on the object's page: a grid with inline edit, add, delete, CSV.

    The page is `<section>/show.html` (extending `_reference/grid_page.html`) with the grid fragment
    `<section>/_grid.html` and the row `<section>/_row.html`; the add form, the edit row and the edit row as
    a whole page are shared (`_reference/`), their inputs from the form's `hints` and `widths`.
    `rows_of(parent)` gives the select of the parent's rows filtered by the query string, and the filters
    as template variables; `validate(form, parent, row)` checks the form (field rules and the section's
    own, e.g. uniqueness); the form's fields named in `columns` carry the parsed values copied onto a row.
    """

    section: ObjectSection  # the parent's section: its blueprint, model, URL variable and template names
    model: type
    form_class: type
    columns: list[str]  # the row's columns, in the CSV's order
    rows_of: Callable  # parent -> (select of its rows by the page's filters, the filters)
    validate: Callable
    label: Callable  # a row in messages: "Rate for 4420"
    importer: flow.ImportSpec
    export_rows: Callable  # select -> CSV rows in `columns` order
    order: tuple  # the rows' order in an export (the grid's first sort column first)
    sortable: dict = field(default_factory=dict)
    tiebreak: Callable | None = None  # () -> the paging's tiebreak column (default: the row's id)
    page_context: Callable = lambda parent: {}  # what the page shows besides the grid
    form_data: Callable | None = None  # row -> the inputs' text (default: the columns' values)
    note: Callable = lambda row, parent: ""  # the audit note of a row's change

    def __post_init__(self) -> None:
        section, bp = self.section, self.section.bp
        self.parent_model, self.parent_arg, self.parent_var = section.model, section.id_arg, section.var
        self.template_dir = section.template_dir
        self.prefix = self.model.__name__.lower()  # "rate": rate_create, /rates/<rate_id>, "rates-changed"
        self.row_arg = f"{self.prefix}_id"
        self.row_var = self.prefix
        self.changed_event = f"{self.prefix}s-changed"  # the htmx event that reloads the grid
        parent = f"/<int:{self.parent_arg}>"
        rows = f"{parent}/{self.prefix}s"
        one = f"{rows}/<int:{self.row_arg}>"
        p = self.prefix
        both = ["GET", "POST"]
        bp.add_url_rule(parent, "show", reader_required(self.show))
        bp.add_url_rule(
            f"{parent}/import", "import_", writer_required(reads="reader")(self.import_), methods=both
        )
        bp.add_url_rule(f"{parent}/export", "export", reader_required(self.export))
        bp.add_url_rule(rows, f"{p}_create", writer_required(self.create), methods=["POST"])
        bp.add_url_rule(one, f"{p}_row", reader_required(self.row))
        bp.add_url_rule(
            f"{one}/edit", f"{p}_update", writer_required(reads="reader")(self.update), methods=both
        )
        bp.add_url_rule(f"{one}/delete", f"{p}_delete", writer_required(self.delete), methods=["POST"])

    def url(self, name: str, parent, row=None, **args) -> str:
        """The URL of one of the grid's views (`create`, `row`, `update`, `delete` of a row; `show`...)."""
        if row is not None:
            args[self.row_arg] = row.id
        endpoint = f"{self.prefix}_{name}" if name in ("create", "row", "update", "delete") else name
        return url_for(f"{self.section.bp.name}.{endpoint}", **{self.parent_arg: parent.id}, **args)

    def load(self, parent_id: int, row_id: int):
        """The parent and one of its rows, or 404 (a row of another parent is not found either)."""
        parent = get_or_404(self.parent_model, parent_id)
        row = get_or_404(self.model, row_id)
        if getattr(row, self.parent_arg) != parent.id:
            abort(404)
        return parent, row

    def names(self, parent, **context) -> dict:
        """The template variables of the grid's pages and fragments."""
        return {"grid": self, "ref": self.section, self.parent_var: parent, "parent": parent, **context}

    def page(self, parent, form=None, status: int = 200):
        """The parent's page with the grid (search, sorting, paging), or the grid fragment for htmx."""
        stmt, filters = self.rows_of(parent)
        first = next(iter(self.sortable))
        pagination = paginate(stmt, self.sortable, first, self.tiebreak() if self.tiebreak else self.model.id)
        return render(
            f"{self.template_dir}/show.html",
            f"{self.template_dir}/_grid.html",
            status=status,
            **self.names(parent, pagination=pagination, filters=filters, now=utcnow()),
            form=form or self.form_class(formdata=None),
            row_count=self.section.row_counts([parent.id]).get(parent.id, 0),
            **self.page_context(parent),
        )

    def render_row(self, parent, row, editing: bool = False, status: int = 200, **context):
        """One row fragment, or its edit row (a whole page for a non-htmx request)."""
        names = self.names(parent, **{self.row_var: row, "row": row, "now": utcnow(), **context})
        if editing:
            return render("_reference/row_edit.html", "_reference/_row_edit.html", status=status, **names)
        fragment = f"{self.template_dir}/_row.html"
        return render(fragment, fragment, status=status, **names)

    def taken(self, parent, row, *conditions) -> bool:
        """Whether another row of `parent` (not `row`) matches `conditions`: what a row is unique by."""
        stmt = select(self.model.id).where(getattr(self.model, self.parent_arg) == parent.id, *conditions)
        if row is not None:
            stmt = stmt.where(self.model.id != row.id)
        return db.session.scalar(stmt) is not None

    def apply(self, form, row) -> None:
        """Copy the form's clean values onto the row."""
        for name in self.columns:
            setattr(row, name, getattr(form, name).parsed)

    def inputs(self, row) -> dict:
        """The row as the text the inline inputs show."""
        if self.form_data is not None:
            return self.form_data(row)
        return {name: getattr(row, name) for name in self.columns}

    # -- views ---------------------------------------------------------------------------------------

    def show(self, **kwargs):
        """The parent's page: its rows with search, sorting, paging and inline edit."""
        return self.page(get_or_404(self.parent_model, kwargs[self.parent_arg]))

    def import_(self, **kwargs):
        """Upload rows: a replace is previewed first; the import runs in the background (panel.imports)."""
        return flow.handle(self.importer, get_or_404(self.parent_model, kwargs[self.parent_arg]))

    def export(self, **kwargs):
        """The parent's rows as CSV (the grid's search and filters apply), in the import's column order."""
        parent = get_or_404(self.parent_model, kwargs[self.parent_arg])
        stmt, _ = self.rows_of(parent)
        filename = csv_export.csv_filename(parent.name, f"{self.prefix}s")
        return csv_export.response(filename, self.columns, self.export_rows(stmt.order_by(*self.order)))

    def create(self, **kwargs):
        """Add one row from the form above the grid."""
        parent = get_or_404(self.parent_model, kwargs[self.parent_arg])
        form = self.form_class()
        add = "_reference/_add.html"
        if self.validate(form, parent, None):
            row = self.model(**{self.parent_arg: parent.id})
            self.apply(form, row)
            writes.create(row, note=self.note(row, parent))
            if is_htmx():
                response = render(
                    add, add, **self.names(parent, form=self.form_class(formdata=None), keep_open=True)
                )
                return trigger(response, self.changed_event)
            flash(f"{self.label(row)} added.", "success")
            return redirect(self.url("show", parent))
        if is_htmx():
            return render(add, add, status=422, **self.names(parent, form=form))
        return self.page(parent, form, 422)

    def row(self, **kwargs):
        """One grid row (what Cancel shows again)."""
        parent, row = self.load(kwargs[self.parent_arg], kwargs[self.row_arg])
        return self.render_row(parent, row)

    def update(self, **kwargs):
        """Inline edit of one row: GET the row as inputs, POST to save (422 keeps the row in edit mode)."""
        parent, row = self.load(kwargs[self.parent_arg], kwargs[self.row_arg])
        if request.method == "POST":
            form = self.form_class()
            if self.validate(form, parent, row):
                with writes.change(row, version=request.form.get("version"), note=self.note(row, parent)):
                    self.apply(form, row)
                if is_htmx():
                    return self.render_row(parent, row)
                return redirect(self.url("show", parent))
            return self.render_row(parent, row, True, 422, form=form)
        form = self.form_class(formdata=None, data=self.inputs(row))
        return self.render_row(parent, row, True, form=form)

    def delete(self, **kwargs):
        """Delete one row (the row disappears from the grid)."""
        parent, row = self.load(kwargs[self.parent_arg], kwargs[self.row_arg])
        label = self.label(row)
        writes.delete(row, note=self.note(row, parent))
        if is_htmx():
            return make_response("", 200)  # htmx swaps the row out
        flash(f"{label} deleted.", "success")
        return redirect(self.url("show", parent))


def words(name: str) -> str:
    """A class name as the operator reads it: `RateTable` -> "rate table"."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
