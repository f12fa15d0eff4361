"""Writing CSV downloads: the one export routine (rules, rates, code decks, DIDs, audit log, statistics).

Every cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a CR) is
written with a leading `'`, which spreadsheets show as text; the import removes exactly that `'` again
(panel.imports.reader.unquote_formula), so an exported file still imports back unchanged.
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator

from flask import Response, stream_with_context

from panel.imports.reader import FORMULA_STARTS

_FLUSH_EVERY = 1000


def neutralise(value) -> str:
    """The cell as written: text, with `'` in front when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV text in chunks of about a thousand rows, the header line first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([neutralise(h) for h in header])
    for i, row in enumerate(rows, start=1):
        writer.writerow([neutralise(v) for v in row])
        if i % _FLUSH_EVERY == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def response(filename: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """A streamed CSV download with the header line first."""
    return Response(
        stream_with_context(lines(header, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def csv_filename(name: str, suffix: str) -> str:
    """A safe download name such as `Vendor_A-rates.csv`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or suffix
    return f"{slug}-{suffix}.csv"
