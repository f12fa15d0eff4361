"""Code deck import and export (CSV `code,name,country`), with the bulk writer of the rate decks.

Modes: `only_new` adds the codes the deck does not have and leaves the others alone; `add_update` adds new
codes and overwrites the name and country of existing ones; `purge` deletes every code of the deck first.
All lines are checked before anything is written; the write is one transaction with one audit entry.
"""

from collections.abc import Callable, Iterator

from sqlalchemy import delete, func, select

from panel import writes
from panel.codedecks.forms import MODES, CodeImportForm
from panel.extensions import db
from panel.imports import bulk, flow, preview, reader
from panel.imports.jobs import ImportFailed, mark_writing
from panel.models import Code, CodeDeck
from panel.values import parse_digits, parse_name

CODE_COLUMNS = ["code", "name", "country"]
REQUIRED_COLUMNS = ["code"]
_WRITE_COLUMNS = ["code_deck_id", *CODE_COLUMNS]


# Each column's value rules (the code form's).
_CELLS = {
    "code": parse_digits,
    "name": parse_name,
    "country": lambda text: parse_name(text, "country"),
}


def code_row_parser(code_deck_id: int) -> Callable[[dict[str, str], int], dict]:
    """A row parser for code lines; a code given twice in one file is refused."""
    seen: dict[str, int] = {}

    def parse_row(raw: dict[str, str], line: int) -> dict:
        row = reader.cells(raw, _CELLS)
        code = row["code"]
        first = seen.get(code)
        if first is not None:
            raise reader.RowError("code", f"{code} is already on line {first}")
        seen[code] = line
        return {"code_deck_id": code_deck_id, **row}

    return parse_row


def _count(code_deck_id: int) -> int:
    """How many codes the deck holds."""
    return db.session.scalar(select(func.count()).select_from(Code).where(Code.code_deck_id == code_deck_id))


def parse_codes(deck_id: int, data: bytes, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Every line of the file as a code row; ImportFailed lists the wrong lines (nothing is written)."""
    parse_row = code_row_parser(deck_id)
    return reader.parse_all(
        data, CODE_COLUMNS, parse_row, what="codes", required=REQUIRED_COLUMNS, progress=progress
    )


def _current(deck_id: int):
    """(code, (name, country)) of the deck's codes, for a preview."""
    stmt = select(Code.code, Code.name, Code.country).where(Code.code_deck_id == deck_id)
    for code, name, country in db.session.execute(stmt.execution_options(yield_per=5000)):
        yield code, (name, country)


def _display(code: str, values: tuple) -> dict:
    """A code of a preview as the export writes it."""
    return {"code": code, "name": values[0], "country": values[1]}


def fingerprint(deck: CodeDeck) -> str:
    """A digest of the deck's codes now (a confirmation compares it with the preview's)."""
    return preview.fingerprint(_current(deck.id))


def preview_codes(deck: CodeDeck, data: bytes, mode: str) -> preview.Diff:
    """What importing the file would do to the deck: codes added, removed (purge), changed."""
    rows = parse_codes(deck.id, data)
    incoming = ((r["code"], (r["name"], r["country"])) for r in rows)
    return preview.diff(_current(deck.id), incoming, CODE_COLUMNS, display=_display, replace=mode == "purge")


def import_codes(deck_id: int, data: bytes, mode: str, options, filename: str, job_id, progress) -> str:
    """The import job (panel.imports.flow): the codes into the deck, in one transaction; or ImportFailed."""
    deck = db.session.get(CodeDeck, deck_id)
    if deck is None:
        raise ImportFailed("The code deck no longer exists.")
    rows = parse_codes(deck.id, data, progress)
    mark_writing(job_id, len(rows))

    with bulk.one_transaction():
        before = _count(deck.id)
        source = filename or "a file"
        key = ("code_deck_id", "code")
        if mode == "purge":
            db.session.execute(delete(Code).where(Code.code_deck_id == deck.id))
            bulk.write(Code.__table__, rows, _WRITE_COLUMNS, key=key)
            note = f"Purged the deck's {before:,} codes and imported {len(rows):,} codes from {source}."
        elif mode == "only_new":
            bulk.write(
                Code.__table__, rows, _WRITE_COLUMNS, key=key, on_conflict="nothing" if before else "error"
            )
            added = _count(deck.id) - before
            note = (
                f"Imported {len(rows):,} codes from {source} (only new codes): "
                f"{added:,} added, {len(rows) - added:,} already in the deck and left as they were."
            )
        else:
            written = bulk.write(
                Code.__table__, rows, _WRITE_COLUMNS, key=key, on_conflict="update" if before else "error"
            )
            added = _count(deck.id) - before
            changed = written - added
            note = (
                f"Imported {len(rows):,} codes from {source} (add and update): "
                f"{added:,} added, {changed:,} changed, {len(rows) - added - changed:,} unchanged."
            )
        counts = {"mode": MODES[mode], "codes in the file": len(rows), "codes before": before}
        with writes.change(deck, action="import", after=counts, note=note):
            pass  # the rows are written above, in this transaction: the entry and the commit go with them
    return note


def export_rows(stmt) -> Iterator[list]:
    """CSV rows (code, name, country) for the codes selected by `stmt` (a select of Code), read in batches."""
    columns = stmt.with_only_columns(Code.code, Code.name, Code.country)
    for code, name, country in db.session.execute(columns.execution_options(yield_per=5000)):
        yield [code, name, country]


IMPORT = flow.ImportSpec(
    "codes",
    "codedecks.import_",
    CodeImportForm,
    MODES,
    import_codes,
    id_arg="code_deck_id",
    preview=lambda deck, data, mode, options: preview_codes(deck, data, mode),
    fingerprint=fingerprint,
    preview_modes=frozenset({"purge"}),
    context=lambda deck: {"deck": deck, "columns": CODE_COLUMNS, "required": REQUIRED_COLUMNS},
)
