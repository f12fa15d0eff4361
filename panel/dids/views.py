"""DIDs: list and search, create, edit, delete, CSV import and export; scoped by the account's company."""

from flask import request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from panel.access import reader_required, writer_required
from panel.dids import bp, importer
from panel.dids.forms import DidForm
from panel.dids.importer import DID_COLUMNS, export_rows
from panel.extensions import db
from panel.forms import choices as as_choices
from panel.imports import export as csv_export
from panel.imports import flow
from panel.listing import id_arg, paginate
from panel.models import Account, Client, Did
from panel.reference.owners import code_or_text
from panel.reference.views import ObjectSection
from panel.scope import scope_condition, scoped, user_company_ids

SORTABLE = {"number": Did.number, "client": Client.name, "account": Account.name, "created": Did.created_at}


def _listing():
    """The DIDs select with the filters: `q` (number prefix, or client/account name) and `client_id`."""
    q = request.args.get("q", "").strip()
    client_id = id_arg("client_id")
    stmt = (
        select(Did)
        .join(Account, Did.account_id == Account.id)
        .join(Client, Account.client_id == Client.id)
        .options(contains_eager(Did.account).contains_eager(Account.client))
        .where(scope_condition(Did, user_company_ids()))
    )
    if q:
        digits = q.lstrip("+").replace(" ", "")  # a number as the switch gets it
        term = digits if digits.isdigit() else q
        stmt = stmt.where(code_or_text(term, Did.number, Client.name, Account.name, Did.notes))
    if client_id:
        stmt = stmt.where(Client.id == client_id)
    return stmt, {"q": q, "client_id": client_id}


def _clients_with_dids() -> list[tuple[int, str]]:
    """The clients in scope that hold DIDs, for the filter."""
    stmt = (
        select(Client.id, Client.name)
        .join(Account, Account.client_id == Client.id)
        .join(Did, Did.account_id == Account.id)
        .where(scope_condition(Client, user_company_ids()))
        .group_by(Client.id, Client.name)
        .order_by(Client.name)
    )
    return [tuple(row) for row in db.session.execute(stmt).all()]


def _account_choices(current: Account | None = None) -> list[tuple[int, str]]:
    """Terminator-enabled accounts in scope as `Client / Account` (plus the DID's current account, if not)."""
    rows = db.session.execute(
        scoped(Account)
        .add_columns(Client.name)
        .join(Client, Account.client_id == Client.id)
        .where(Account.term_enabled.is_(True))
        .order_by(Client.name, Account.name)
    ).all()
    choices = [(account.id, f"{client_name} / {account.name}") for account, client_name in rows]
    if current is not None and current.id not in {cid for cid, _ in choices}:
        choices.insert(0, (current.id, f"{current.client.name} / {current.name} (terminator disabled)"))
    return choices


def _number_taken(form: DidForm, did: Did | None) -> bool:
    """True (and the error set) when the number is already assigned (numbers are unique for the switch)."""
    number = form.number.parsed
    other = db.session.scalar(select(Did).where(Did.number == number, Did.id != (did.id if did else -1)))
    if other is None:
        return False
    if db.session.scalar(scoped(Did).where(Did.id == other.id)) is not None:
        form.number.errors.append(
            f"{number} is already assigned to {other.account.client.name} / {other.account.name}."
        )
    else:
        form.number.errors.append(f"{number} is already assigned to an account of another company.")
    return True


class DidSection(ObjectSection):
    """DIDs belong to a terminator account: the account picker, a number assigned once, the client filter."""

    def form(self, obj=None):
        """The DID form with the account choices."""
        form = self.form_class(obj=obj)
        form.account_id.choices = as_choices(_account_choices(obj.account if obj else None))
        return form

    def check(self, form, obj) -> bool:
        """The number is not assigned already (numbers are unique for the switch)."""
        return not _number_taken(form, obj)

    def fill(self, form, obj) -> None:
        """Copy the form's clean values; the entry then belongs to the (new) account's company."""
        obj.number = form.number.parsed
        obj.account_id = form.account_id.data
        obj.notes = form.notes.data or ""
        if obj.id is not None:
            db.session.flush()
            db.session.expire(obj, ["account"])

    def label(self, obj) -> str:
        """A DID is named by its number."""
        return obj.number

    def listing(self) -> dict:
        """Number prefix or client/account search and the client filter."""
        stmt, filters = _listing()
        pagination = paginate(stmt, SORTABLE, "number", Did.id)
        return {"pagination": pagination, "filters": filters, "clients": _clients_with_dids()}


section = DidSection(
    bp,
    Did,
    DidForm,
    noun="DID",
    sortable=SORTABLE,
    after_save="index",
    list_template="dids/list.html",
    created_word="assigned",
)


@bp.route("/import", methods=["GET", "POST"])
@writer_required(reads="reader")
def import_():
    """Upload DIDs; checked and written in the background while a progress bar shows (panel.imports)."""
    return flow.handle(importer.IMPORT, importer.ImportTarget(current_user.company))


@bp.route("/export")
@reader_required
def export():
    """The DIDs as CSV (the list's search applies), in the import's column order."""
    stmt, _ = _listing()
    return csv_export.response("dids.csv", DID_COLUMNS, export_rows(stmt.order_by(Did.number)))
