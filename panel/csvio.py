"""The one CSV routine used by every import and export (rates, code decks, DIDs, routing rules).

An import reads the upload (bounded in size), decodes UTF-8, matches columns by header name (unknown columns
are refused, required ones must be present), and hands every row to a parser that returns a clean dict or
raises
RowError. Every rejected row is reported as `line N, column: message`; the caller writes all rows or none.
"""

import csv
import io
from collections.abc import Callable, Iterable, Iterator

from flask import Response, current_app, stream_with_context

MAX_ERRORS = 1000


class RowError(ValueError):
    """A bad value in one column of a row."""

    def __init__(self, column: str, message: str):
        super().__init__(f"{column}: {message}")
        self.column = column
        self.message = message


class CsvError(ValueError):
    """The file as a whole cannot be read (encoding, header, size)."""


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


def size_label(size: int) -> str:
    """A byte count as the operator reads it: 64 MB, 512 KB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{size / 1024:g} KB"


def parse(
    data: bytes,
    columns: Iterable[str],
    row_parser: Callable[[dict[str, str], int], dict],
    *,
    required: Iterable[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict], list[str]]:
    """Parse CSV bytes into clean rows; returns (rows, errors). Errors are `line N, column: message`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(
            f"The file is not UTF-8 (byte {exc.start}). Save it as CSV UTF-8 and try again."
        ) from None
    if "\x00" in text:
        raise CsvError("The file contains NUL characters: it is not a CSV text file. Save it as CSV UTF-8.")
    lines = text.splitlines()
    total = max(0, len(lines) - 1)
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CsvError("The file is empty.") from None
    except csv.Error as exc:
        raise CsvError(f"line 1: {exc}") from None
    known = list(columns)
    unknown = [h for h in header if h not in known]
    if unknown:
        raise CsvError(f"line 1: unknown column(s) {', '.join(unknown)}; the columns are {','.join(known)}.")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise CsvError(f"line 1: column(s) {', '.join(duplicates)} appear twice.")
    missing = [c for c in required if c not in header]
    if missing:
        raise CsvError(f"line 1: missing required column(s) {', '.join(missing)}.")

    rows, errors = [], []
    width = len(header)
    line_no = 1
    try:
        for line_no, values in enumerate(reader, start=2):
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            if len(values) != width:
                _add(errors, f"line {line_no}: expected {width} columns, found {len(values)}")
                continue
            raw = {name: value.strip() for name, value in zip(header, values, strict=True)}
            try:
                rows.append(row_parser(raw, line_no))
            except RowError as exc:
                _add(errors, f"line {line_no}, {exc.column}: {exc.message}")
            if progress and line_no % 5000 == 0:
                progress(line_no - 1, total)
    except csv.Error as exc:
        _add(errors, f"line {line_no + 1}: {exc}")
    if progress:
        progress(total, total)
    return rows, errors


def _add(errors: list[str], message: str) -> None:
    """Keep the first MAX_ERRORS errors and count the rest."""
    if len(errors) < MAX_ERRORS:
        errors.append(message)
    elif len(errors) == MAX_ERRORS:
        errors.append("… more errors not shown")


def response(filename: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """A streamed CSV download with the header line first."""

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for i, row in enumerate(rows, start=1):
            writer.writerow(["" if v is None else v for v in row])
            if i % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
