"""Reading an uploaded CSV file: the one routine behind every import (rules, rates, code decks, DIDs).

The upload is bounded in size; the text is decoded by its byte-order mark (UTF-8, UTF-16) or as UTF-8; line
ends may be CRLF, LF or CR. Columns are matched by header name (unknown columns are refused, required ones
must be present, all checked in linear time); a format that allows it may also be read without a header
row, by position in its documented column order. A cell that the export neutralised against spreadsheet
formulas (a leading `'` before `=`, `+`, `-`, `@`, tab or CR) gets exactly that `'` removed. Every row goes
to a parser that returns a clean dict or raises RowError; every rejected row is reported as
`line N, column: message`, and the caller writes all rows or none.
"""

import codecs
import csv
import io
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from flask import current_app

from panel.imports.jobs import ImportFailed

MAX_ERRORS = 1000
# A cell the export prefixed with `'` starts with one of these (see panel.imports.export.neutralise).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_STARTS = tuple("'" + start for start in FORMULA_STARTS)
_PROGRESS_EVERY = 5000


class RowError(ValueError):
    """A bad value in one column of a row."""

    def __init__(self, column: str, message: str):
        super().__init__(f"{column}: {message}")
        self.column = column
        self.message = message


class CsvError(ValueError):
    """The file as a whole cannot be read (encoding, header, size)."""


def size_label(size: int) -> str:
    """A byte count as the operator reads it: 64 MB, 512 KB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{size / 1024:g} KB"


def read_upload(storage, limit: int | None = None) -> bytes:
    """The bytes of an uploaded file, refused beyond `limit` bytes (default: the configured upload limit)."""
    limit = limit or current_app.config["MAX_CONTENT_LENGTH"]
    if storage is None or not getattr(storage, "filename", ""):
        raise CsvError("Choose a CSV file to import.")
    data = storage.stream.read(limit + 1)
    if len(data) > limit:
        raise CsvError(f"The file is larger than the limit of {size_label(limit)}.")
    if not data.strip():
        raise CsvError("The file is empty.")
    return data


def decode(data: bytes) -> str:
    """The file's text: by its byte-order mark (UTF-8 or UTF-16), else UTF-8; refused when not text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise CsvError("The file is not valid UTF-16 text. Save it as CSV UTF-8 and try again.") from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CsvError(
                f"The file is not UTF-8 (byte {exc.start}). Save it as CSV UTF-8 and try again."
            ) from None
    if "\x00" in text:
        raise CsvError("The file contains NUL characters: it is not a CSV text file. Save it as CSV UTF-8.")
    return text


def unquote_formula(value: str) -> str:
    """A cell as it was before the export neutralised it: `'=1` is `=1`; any other cell is unchanged."""
    return value[1:] if value.startswith(_QUOTED_STARTS) else value


def has_quoted_formulas(text: str) -> bool:
    """True when some cell may carry the export's formula guard (checked once per file, not per cell)."""
    return "'" in text and any(start in text for start in _QUOTED_STARTS)


class Table:
    """The decoded file: its header (the column of each position), whether line 1 was a header, its rows."""

    def __init__(self, text: str, header: list[str], has_header: bool, first_row: list[str] | None):
        self.text = text
        self.header = header
        self.has_header = has_header
        self._first_row = first_row
        self._reader: Iterator[list[str]] = iter(())
        self._rest_at = 0  # where the text after the rows read so far starts
        self.unquote = has_quoted_formulas(text)
        self.total = max(0, (text.count("\n") or text.count("\r")) - int(has_header))

    def columns(self) -> list[list[str]] | None:
        """The data rows' cells column by column (one list per header column), blank rows left out; None
        when a row has another number of cells than the header or a line cannot be read.

        For a caller that needs no line numbers while every line is good: a file that gets None is read
        again with `open_table` and `records`, which number the lines and say what is wrong. A file without
        quotes is cut by its commas and line ends in a few C calls (what the CSV reader would give it);
        any other through the CSV reader. It takes the rows of the reader `open_table` made: use either
        this or `records`, not both.
        """
        width = len(self.header)
        first = [] if self._first_row is None else [self._first_row]
        if any(len(values) != width for values in first):
            return None
        rest = self.text[self._rest_at :]
        if "\r" in rest:
            rest = rest.replace("\r\n", "\n")
        if width > 1 and '"' not in rest and "\r" not in rest:
            lines = rest.split("\n")
            if "" in lines:
                lines = [line for line in lines if line]
            if set(map(str.count, lines, itertools.repeat(","))) <= {width - 1}:
                cells = ",".join(lines).split(",") if lines else []
                columns = [cells[i::width] for i in range(width)]
                for i, column in enumerate(columns) if first else ():
                    column.insert(0, first[0][i])
                return columns
        try:
            rows = first + list(self._reader)
        except csv.Error:
            return None
        if min(map(len, rows), default=width) < 2:  # an empty row, or one cell that may be blank
            rows = [v for v in rows if v and not (len(v) == 1 and not v[0].strip())]
        if any(length != width for length in set(map(len, rows))):
            return None
        return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]

    def records(self, reader) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of every data row, blank rows left out; csv.Error ends with CsvError."""
        line_no = 1
        if self._first_row is not None:
            yield 1, self._first_row
        try:
            for line_no, values in enumerate(reader, start=2):
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue
                yield line_no, values
        except csv.Error as exc:
            raise CsvError(f"line {line_no + 1}: {exc}") from None


def open_table(
    data: bytes | str, columns: Iterable[str], *, required: Iterable[str] = (), positional: bool = False
) -> tuple[Table, Iterator[tuple[int, list[str]]]]:
    """Decode and check the header; returns the table and an iterator over (line number, cells).

    With `positional`, a first row that names none of the columns is data, read by position in the order of
    `columns` (a row may stop before the last columns, which are then empty); otherwise line 1 must be the
    header.
    """
    text = data if isinstance(data, str) else decode(data)
    # newline="": the csv module sees the line ends itself, so CR-only files read like LF and CRLF ones.
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream)
    known = list(columns)
    known_set = set(known)
    try:
        first = next(reader)
    except StopIteration:
        raise CsvError("The file is empty.") from None
    except csv.Error as exc:
        raise CsvError(f"line 1: {exc}") from None
    names = [unquote_formula(h).strip().lower() for h in first]
    if positional and not known_set.intersection(names):
        if len(first) > len(known):
            raise CsvError(
                f"line 1: {len(first)} columns, but a file without a header line has at most {len(known)}: "
                f"{','.join(known)}."
            )
        _check_required(known[: len(first)], required, headerless=True)
        table = Table(text, known, False, first)
        table._reader, table._rest_at = reader, stream.tell()
        return table, table.records(reader)
    unknown = [h for h in names if h not in known_set]
    if unknown:
        raise CsvError(f"line 1: unknown column(s) {', '.join(unknown)}; the columns are {','.join(known)}.")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise CsvError(f"line 1: column(s) {', '.join(duplicates)} appear twice.")
    _check_required(names, required)
    table = Table(text, names, True, None)
    table._reader, table._rest_at = reader, stream.tell()
    return table, table.records(reader)


def _check_required(header: list[str], required: Iterable[str], *, headerless: bool = False) -> None:
    """Refuse a header without a required column."""
    present = set(header)
    missing = [c for c in required if c not in present]
    if missing and headerless:
        raise CsvError(
            f"line 1: the file has no header line and too few columns to reach {', '.join(missing)}."
        )
    if missing:
        raise CsvError(f"line 1: missing required column(s) {', '.join(missing)}.")


def parse(
    data: bytes | str,
    columns: Iterable[str],
    row_parser: Callable[[dict[str, str], int], dict],
    *,
    required: Iterable[str] = (),
    progress: Callable[[int, int], None] | None = None,
    positional: bool = False,
) -> tuple[list[dict], list[str]]:
    """Parse CSV bytes into clean rows; returns (rows, errors). Errors are `line N, column: message`."""
    table, records = open_table(data, columns, required=required, positional=positional)
    header, width, total = table.header, len(table.header), table.total
    rows: list[dict] = []
    errors: list[str] = []
    try:
        for line_no, values in records:
            if len(values) != width:
                if table.has_header or len(values) > width:
                    expected = width if table.has_header else f"at most {width}"
                    add_error(errors, f"line {line_no}: expected {expected} columns, found {len(values)}")
                    continue
                values = values + [""] * (width - len(values))  # no header: a line may stop early
            if table.unquote:
                values = [unquote_formula(v) for v in values]
            raw = {name: value.strip() for name, value in zip(header, values, strict=True)}
            try:
                rows.append(row_parser(raw, line_no))
            except RowError as exc:
                add_error(errors, f"line {line_no}, {exc.column}: {exc.message}")
            if progress and line_no % _PROGRESS_EVERY == 0:
                progress(line_no - 1, total)
    except CsvError as exc:
        add_error(errors, str(exc))
    if progress:
        progress(total, total)
    return rows, errors


def cell(parse: Callable[[str], object], column: str, value: str):
    """One cell parsed; a bad value becomes RowError(column, message)."""
    try:
        return parse(value)
    except ValueError as exc:
        raise RowError(column, str(exc)) from None


def cells(raw: dict[str, str], parsers: dict[str, Callable[[str], object]]) -> dict:
    """The row's cells named in `parsers`, each parsed by its column's parser (an absent cell is empty)."""
    return {column: cell(parse, column, raw.get(column, "")) for column, parse in parsers.items()}


def add_error(errors: list[str], message: str) -> None:
    """Keep the first MAX_ERRORS errors and count the rest."""
    if len(errors) < MAX_ERRORS:
        errors.append(message)
    elif len(errors) == MAX_ERRORS:
        errors.append("… more errors not shown")


def failure_message(errors: list[str]) -> str:
    """`Nothing was imported: 3 line(s) are wrong.` (with `+` when more errors were left out)."""
    shown = len([e for e in errors if e.startswith("line")])
    return f"Nothing was imported: {shown:,}{'+' if len(errors) > shown else ''} line(s) are wrong."


def parse_all(
    data: bytes | str,
    columns: Iterable[str],
    row_parser: Callable[[dict[str, str], int], dict],
    *,
    what: str,
    required: Iterable[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Every line of the file as a clean row, or ImportFailed (a bad file, the wrong lines, or no `what`).

    All lines or none: nothing is written by an import whose file fails here.
    """
    try:
        rows, errors = parse(data, columns, row_parser, required=required, progress=progress)
    except CsvError as exc:
        raise ImportFailed(f"Nothing was imported: {exc}") from None
    if errors:
        raise ImportFailed(failure_message(errors), errors)
    if not rows:
        raise ImportFailed(f"Nothing was imported: the file has a header but no {what}.")
    return rows
