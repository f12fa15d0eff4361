"""DID import and export (CSV `number,account,notes`, where account is `client/account`).

A number is digits (a leading `+` and spaces are dropped, as the switch API does); the account must be a
terminator-enabled account of the importing user's companies. Modes: `add_update` adds new numbers and moves
existing ones to the file's account and notes; `only_new` leaves existing numbers alone. A number held by
an account outside the user's companies is refused. All lines are checked first; one transaction, one audit
entry.
"""

from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import select

from panel import writes
from panel.dids.forms import MODES, DidImportForm, parse_number
from panel.extensions import db
from panel.imports import bulk, flow, reader
from panel.imports.jobs import mark_writing
from panel.models import Account, Client, Did
from panel.models.types import utcnow
from panel.scope import user_company_ids
from panel.values import parse_name

DID_COLUMNS = ["number", "account", "notes"]
REQUIRED_COLUMNS = ["number", "account"]
NOTES_MAX = 2000


class DidImport:
    """What the audit entry of a DID import is about: the DIDs of a company (there is no single DID)."""

    __audit_type__ = "did"

    def __init__(self, company_id: int, label: str):
        self.id = None
        self.company_id = company_id
        self.label = label

    def __str__(self) -> str:
        return self.label


def account_labels(company_ids: Iterable[int]) -> dict[str, list[tuple[int, bool]]]:
    """`client/account` -> [(account id, terminator enabled)] for the accounts of these companies."""
    labels: dict[str, list[tuple[int, bool]]] = {}
    rows = db.session.execute(
        select(Account.id, Account.name, Account.term_enabled, Client.name)
        .join(Client, Account.client_id == Client.id)
        .where(Client.company_id.in_(list(company_ids)))
    ).all()
    for account_id, account_name, term_enabled, client_name in rows:
        labels.setdefault(f"{client_name}/{account_name}", []).append((account_id, term_enabled))
    return labels


def _parse_notes(text: str) -> str:
    """A DID's notes: free text up to NOTES_MAX characters."""
    return parse_name(text, "notes", NOTES_MAX)


def did_row_parser(company_ids: Iterable[int]) -> Callable[[dict[str, str], int], dict]:
    """A row parser for DID lines, resolving `client/account` among the user's accounts."""
    labels = account_labels(company_ids)
    folded: dict[str, list[str]] = {}
    for label in labels:
        folded.setdefault(label.casefold(), []).append(label)
    in_scope = {account_id for matches in labels.values() for account_id, _ in matches}
    holders = dict(db.session.execute(select(Did.number, Did.account_id)).all())
    seen: dict[str, int] = {}
    now = utcnow()

    def parse_row(raw: dict[str, str], line: int) -> dict:
        number = reader.cell(parse_number, "number", raw["number"])
        first = seen.get(number)
        if first is not None:
            raise reader.RowError("number", f"{number} is already on line {first}")
        holder = holders.get(number)
        if holder is not None and holder not in in_scope:
            raise reader.RowError("number", f"{number} is assigned to an account of another company")
        label = raw["account"].strip()
        if not label:
            raise reader.RowError("account", "the account is required (client/account)")
        matches = labels.get(label)
        if matches is None and len(folded.get(label.casefold(), [])) == 1:
            matches = labels[folded[label.casefold()][0]]
        if not matches:
            raise reader.RowError("account", f"no account {label!r} (write it as client/account)")
        if len(matches) > 1:
            raise reader.RowError(
                "account", f"{label!r} names accounts of several companies; rename one client"
            )
        account_id, term_enabled = matches[0]
        if not term_enabled:
            raise reader.RowError(
                "account", f"{label} is not a terminator: enable Terminator on the account first"
            )
        notes = reader.cell(_parse_notes, "notes", raw.get("notes", ""))
        seen[number] = line
        return dict(number=number, account_id=account_id, notes=notes, created_at=now, _new=holder is None)

    return parse_row


def import_dids(company_id: int, data: bytes, mode: str, options, filename: str, job_id, progress) -> str:
    """The import job (panel.imports.flow): DIDs for the accounts of the importing user's companies (the job
    runs logged in as that user), in one transaction; returns the summary or raises ImportFailed."""
    company_ids = list(user_company_ids())
    parser = did_row_parser(company_ids)
    rows = reader.parse_all(
        data, DID_COLUMNS, parser, what="DIDs", required=REQUIRED_COLUMNS, progress=progress
    )
    mark_writing(job_id, len(rows))

    with bulk.one_transaction():
        new = [row for row in rows if row.pop("_new")]
        existing = len(rows) - len(new)
        columns = ["number", "account_id", "notes", "created_at"]
        source = filename or "a file"
        if mode == "only_new":
            bulk.write(Did.__table__, new, columns)
            note = (
                f"Imported {len(rows):,} DIDs from {source} (only new numbers): {len(new):,} added, "
                f"{existing:,} already assigned and left as they were."
            )
        else:
            written = bulk.write(
                Did.__table__,
                rows,
                columns,
                key=("number",),
                on_conflict="update",
                update=("account_id", "notes"),
            )
            changed = written - len(new)
            note = (
                f"Imported {len(rows):,} DIDs from {source} (add and update): "
                f"{len(new):,} added, {changed:,} changed, {existing - changed:,} unchanged."
            )
        counts = {"rows": len(rows), "added": len(new), "existing": existing, "mode": mode}
        with writes.change(DidImport(company_id, "DIDs"), action="import", after=counts, note=note):
            pass  # the rows are written above, in this transaction: the entry and the commit close it
    return note


def export_rows(stmt) -> Iterator[list]:
    """CSV rows (number, client/account, notes) for the DIDs of `stmt` (accounts and clients loaded)."""
    for did in db.session.scalars(stmt):
        yield [did.number, f"{did.account.client.name}/{did.account.name}", did.notes]


class ImportTarget:
    """What a DID import writes into, for the import pages and jobs: the user's company."""

    def __init__(self, company):
        self.id = company.id
        self.company_id = company.id
        self.name = f"DIDs of {company.name}"


IMPORT = flow.ImportSpec(
    "dids", "dids.import_", DidImportForm, MODES, import_dids, context=lambda target: {"columns": DID_COLUMNS}
)
