"""The one CSV pipeline: every import and export of the panel goes through this package.

- `reader`: the upload (bounded), decoding (BOM sniffing: UTF-8, UTF-16; else UTF-8), CRLF/LF/CR, the header
  check (linear), files without a header read by position, the formula guard removed, row parsing with
  per-line errors `line N, column: message` (`parse`, `open_table`, `RowError`, `CsvError`).
- `export`: streamed CSV downloads with formula cells neutralised (`response`, `neutralise`, `csv_filename`).
- `bulk`: the bulk writer of the big imports (COPY on PostgreSQL, executemany on SQLite, all or nothing).
- `jobs`: the background job with its progress and heartbeat; dead jobs failed at the next look (`start`,
  `ImportFailed`, `mark_writing`, `reap`, `recent_jobs`).
- `preview`: what an import would do, as a structured diff (`diff`, `Diff`, `Change`, `fingerprint`).
- `uploads`: uploaded files kept server-side (token, company, size and age bounds) for confirm and retry.
- `flow`: the import page's logic behind one call (`ImportSpec`, `handle`, `extend` for other previews).
- `views`: the job status page/fragment (`imports.show`).
"""

from flask import Blueprint

bp = Blueprint("imports", __name__)

from panel.imports import views  # noqa: E402,F401
