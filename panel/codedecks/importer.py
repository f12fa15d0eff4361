"""Code deck import and export (CSV `code,name,country`), with the bulk writer of the rate decks.

Modes: `only_new` adds the codes the deck does not have and leaves the others alone; `add_update` adds new
codes and overwrites the name and country of existing ones; `purge` deletes every code of the deck first.
All lines are checked before anything is written; the write is one transaction with one audit entry.
"""

from collections.abc import Callable, Iterator

from sqlalchemy import delete, func, select

from panel import writes
from panel.codedecks.forms import MODES  # the upload form's choices
from panel.extensions import db
from panel.imports import bulk, flow, preview, reader
from panel.imports.jobs import ImportFailed, mark_writing
from panel.models import Code, CodeDeck
from panel.values import parse_digits, parse_name

CODE_COLUMNS = ["code", "name", "country"]
REQUIRED_COLUMNS = ["code"]
_WRITE_COLUMNS = ["code_deck_id", *CODE_COLUMNS]


def code_row_parser(code_deck_id: int) -> Callable[[dict[str, str], int], dict]:
    """A row parser for code lines; a code given twice in one file is refused."""
    seen: dict[str, int] = {}

    def parse_row(raw: dict[str, str], line: int) -> dict:
        column = "code"
        try:
            code = parse_digits(raw["code"])
            column = "name"
            name = parse_name(raw.get("name", ""))
            column = "country"
            country = parse_name(raw.get("country", ""), "country")
        except ValueError as exc:
            raise reader.RowError(column, str(exc)) from None
        first = seen.get(code)
        if first is not None:
            raise reader.RowError("code", f"{code} is already on line {first}")
        seen[code] = line
        return {"code_deck_id": code_deck_id, "code": code, "name": name, "country": country}

    return parse_row


def _count(code_deck_id: int) -> int:
    """How many codes the deck holds."""
    return db.session.scalar(select(func.count()).select_from(Code).where(Code.code_deck_id == code_deck_id))


def parse_codes(deck_id: int, data: bytes, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Every line of the file as a code row; ImportFailed lists the wrong lines (nothing is written)."""
    try:
        rows, errors = reader.parse(
            data, CODE_COLUMNS, code_row_parser(deck_id), required=REQUIRED_COLUMNS, progress=progress
        )
    except reader.CsvError as exc:
        raise ImportFailed(f"Nothing was imported: {exc}") from None
    if errors:
        raise ImportFailed(reader.failure_message(errors), errors)
    if not rows:
        raise ImportFailed("Nothing was imported: the file has a header but no codes.")
    return rows


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


def import_codes(
    code_deck: CodeDeck | int,
    data: bytes,
    mode: str = "add_update",
    *,
    filename: str = "",
    progress: Callable[[int, int], None] | None = None,
    job_id: int | None = None,
) -> str:
    """Import codes into the deck in one transaction; returns the summary, raises ImportFailed."""
    if mode not in MODES:
        raise ImportFailed(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}.")
    deck = code_deck if isinstance(code_deck, CodeDeck) else db.session.get(CodeDeck, code_deck)
    if deck is None:
        raise ImportFailed("The code deck no longer exists.")
    rows = parse_codes(deck.id, data, progress)
    if job_id is not None:
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


def _form(**kwargs):
    """The upload form (imported late: the forms import this module's modes)."""
    from panel.codedecks.forms import CodeImportForm

    return CodeImportForm(**kwargs)


IMPORT = flow.ImportSpec(
    kind="codes",
    endpoint="codedecks.import_",
    id_arg="code_deck_id",
    page="codedecks/import.html",
    fragment="codedecks/_import_form.html",
    form=_form,
    modes=MODES,
    run=lambda deck_id, data, mode, options, filename, job_id, progress: import_codes(
        deck_id, data, mode, filename=filename, progress=progress, job_id=job_id
    ),
    preview=lambda deck, data, mode, options: preview_codes(deck, data, mode),
    fingerprint=fingerprint,
    preview_modes=frozenset({"purge"}),
    context=lambda deck: {"deck": deck, "columns": CODE_COLUMNS, "required": REQUIRED_COLUMNS},
)
