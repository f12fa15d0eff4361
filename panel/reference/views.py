"""The generic views of the reference sections, in the spirit of NetBox's object views.

A section declares what differs (its model, form, templates, columns, who uses an object) and these classes
write the views that are the same everywhere:

- `ObjectSection`: list, create, edit and delete of one kind of object in the user's scope; a section
  refines its form, checks, how the form fills the object and its list (DIDs, owned through an account).
- `OwnedSection`: an `ObjectSection` owned by a company: name search, owner filter, owner picker, and the
  owner-change guard (an object may not move to a company under which its users could no longer use it).
  Rate tables, code decks, time profiles and policies use it.
- `InlineGrid`: the rows of a parent shown as a grid with inline edit (Cancel shows the row again), an
  "add" form above the grid and a delete button per row. The rates of a rate table and the codes of a code
  deck use it.

Every write goes through `panel.writes` (audit entry and commit in one transaction, version check on edits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, abort, flash, make_response, request, url_for

from panel import writes
from panel.access import get_or_404, reader_required, writer_required
from panel.forms import choices as as_choices
from panel.forms import name_taken
from panel.htmx import is_htmx, redirect, render, trigger
from panel.models.types import utcnow
from panel.reference.owners import default_owner, name_list, owned_list, owner_change_error, owner_choices


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
    noun: str  # "rate table", as the operator reads it
    plural: str  # the list's title: "Rate tables"
    var: str  # how the templates name one object: "table"
    sortable: dict
    container: str = ""  # the id of the element that sorting and paging swap: "rate-tables" from the plural
    id_arg: str = ""  # the URL variable: "rate_table_id" from the noun
    template_dir: str = ""  # where _table.html and form.html are: the blueprint's name
    users_of: Callable = lambda obj: ([], set())
    after_save: str = "show"  # the endpoint (of this blueprint) shown after create and edit
    list_template: str = "_reference/list.html"
    list_context: Callable[[list], dict] = lambda items: {}
    form_context: Callable = lambda obj: {}
    created_word: str = "created"  # "DID 4420 assigned."
    created_hint: str = ""  # appended to "X created."
    deleted_with: Callable | None = None  # obj -> "with its 3 rates": what a delete takes along
    refused_to: str = "index"  # where a refused delete goes back to ("index" or "show")
    intro: str = ""  # a sentence under the list's title

    def __post_init__(self) -> None:
        ep = self.bp.name
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

    def listing(self) -> dict:
        """The list's page of objects and its filters, as template variables."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------------

    @property
    def title(self) -> str:
        """The noun with a capital, for messages."""
        return self.noun[:1].upper() + self.noun[1:]

    def url(self, endpoint: str, obj=None) -> str:
        """The URL of one of this section's views, for `obj` when the view takes one."""
        if endpoint in ("index", "create") or obj is None:
            return url_for(self.endpoints[endpoint])
        return url_for(self.endpoints[endpoint], **{self.id_arg: obj.id})

    def page(self, form, obj, status: int):
        """The form page (create or edit)."""
        context = {self.var: obj, **self.form_context(obj)}
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
            **self.list_context(context["pagination"].items),
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
        taken = f" {self.deleted_with(obj)}" if self.deleted_with else ""
        writes.delete(obj, note=f"Deleted{taken}." if taken else "")
        flash(f"{self.title} {label} deleted{taken}.", "success")
        return redirect(self.url("index"))


@dataclass
class OwnedSection(ObjectSection):
    """A named object owned by a company: name search and owner filter, owner picker, owner-change guard."""

    exclude_owner_kinds: tuple = ()
    new_form_defaults: Callable | None = None  # fills a new object's form on GET

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
    """The rows of a parent object as a grid with inline edit, an add form and per-row delete.

    Templates in `template_dir`: `_row.html`, `_row_edit.html`, `_add.html` and `<row>_edit.html` (the
    edit row as a whole page). `validate(form, parent, row)` checks the form (field rules and the section's
    own, e.g. uniqueness), `apply(form, row)` copies its values, `form_data(row)` gives the inputs' text.
    `show(parent, form, status)` renders the parent's page with the grid (a refused add without htmx).
    """

    bp: Blueprint
    parent_model: type
    model: type
    form_class: type
    parent_arg: str  # the URL variable of the parent, also the rows' foreign key to it: "rate_table_id"
    prefix: str  # what a row is called in endpoints, URLs and templates: "rate" -> rate_create, /rates/<id>
    parent_var: str  # how the templates name the parent: "table"
    validate: Callable
    apply: Callable
    form_data: Callable
    show: Callable
    label: Callable  # a row in messages: "Rate for 4420"
    note: Callable = lambda row, parent: ""  # the audit note of a row's change
    template_dir: str = ""  # where _row.html, _row_edit.html, _add.html are: the blueprint's name

    def __post_init__(self) -> None:
        self.template_dir = self.template_dir or self.bp.name
        self.row_arg = f"{self.prefix}_id"
        self.row_var = self.prefix
        self.changed_event = f"{self.prefix}s-changed"  # the htmx event that reloads the grid
        rows = f"/<int:{self.parent_arg}>/{self.prefix}s"
        one = f"{rows}/<int:{self.row_arg}>"
        p = self.prefix
        self.bp.add_url_rule(rows, f"{p}_create", writer_required(self.create), methods=["POST"])
        self.bp.add_url_rule(one, f"{p}_row", reader_required(self.row))
        self.bp.add_url_rule(
            f"{one}/edit",
            f"{p}_update",
            writer_required(reads="reader")(self.update),
            methods=["GET", "POST"],
        )
        self.bp.add_url_rule(f"{one}/delete", f"{p}_delete", writer_required(self.delete), methods=["POST"])

    def load(self, parent_id: int, row_id: int):
        """The parent and one of its rows, or 404 (a row of another parent is not found either)."""
        parent = get_or_404(self.parent_model, parent_id)
        row = get_or_404(self.model, row_id)
        if getattr(row, self.parent_arg) != parent.id:
            abort(404)
        return parent, row

    def parent_url(self, parent) -> str:
        """The parent's page."""
        return url_for(f"{self.bp.name}.show", **{self.parent_arg: parent.id})

    def render_row(self, parent, row, template: str = "_row.html", status: int = 200, **context):
        """One row fragment (or the edit page for a non-htmx request)."""
        names = {self.parent_var: parent, self.row_var: row, "now": utcnow(), **context}
        page = f"{self.template_dir}/{self.prefix}_edit.html" if template == "_row_edit.html" else None
        fragment = f"{self.template_dir}/{template}"
        return render(page or fragment, fragment, status=status, **names)

    def create(self, **kwargs):
        """Add one row from the form above the grid."""
        parent = get_or_404(self.parent_model, kwargs[self.parent_arg])
        form = self.form_class()
        add = f"{self.template_dir}/_add.html"
        if self.validate(form, parent, None):
            row = self.model(**{self.parent_arg: parent.id})
            self.apply(form, row)
            writes.create(row, note=self.note(row, parent))
            if is_htmx():
                response = render(
                    add, add, form=self.form_class(formdata=None), keep_open=True, **{self.parent_var: parent}
                )
                return trigger(response, self.changed_event)
            flash(f"{self.label(row)} added.", "success")
            return redirect(self.parent_url(parent))
        if is_htmx():
            return render(add, add, status=422, form=form, **{self.parent_var: parent})
        return self.show(parent, form, 422)

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
                return redirect(self.parent_url(parent))
            return self.render_row(parent, row, "_row_edit.html", 422, form=form)
        form = self.form_class(formdata=None, data=self.form_data(row))
        return self.render_row(parent, row, "_row_edit.html", form=form)

    def delete(self, **kwargs):
        """Delete one row (the row disappears from the grid)."""
        parent, row = self.load(kwargs[self.parent_arg], kwargs[self.row_arg])
        label = self.label(row)
        writes.delete(row, note=self.note(row, parent))
        if is_htmx():
            return make_response("", 200)  # htmx swaps the row out
        flash(f"{label} deleted.", "success")
        return redirect(self.parent_url(parent))
