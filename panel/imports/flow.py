"""The import views' logic behind one small call: read the upload, keep it, preview a replace, start the job.

A section's import view hands its form and target to `start_csv_import`; the section keeps only its own
form, templates and import function.
"""

from collections.abc import Callable

from panel.imports import jobs, reader


def start_csv_import(kind: str, *, target, form, mode_label: str, run: Callable):
    """Read the form's upload and start the background import job; None when the upload is unusable.

    `run(data, filename, job_id, progress)` does the import (it returns the summary or raises ImportFailed).
    When the upload cannot be read, the reason is added to `form.file.errors`.
    """
    try:
        data = reader.read_upload(form.file.data)
    except reader.CsvError as exc:
        form.file.errors.append(str(exc))
        return None
    filename = form.file.data.filename

    def work(job_id: int, progress) -> str:
        return run(data, filename, job_id, progress)

    return jobs.start(
        kind,
        company_id=target.company_id,
        target_id=target.id,
        target_label=target.name,
        filename=filename,
        mode=mode_label,
        work=work,
    )
