"""The status of an import: a fragment that polls itself while the job runs."""

from panel.access import reader_required
from panel.htmx import render
from panel.imports import bp, jobs, uploads
from panel.models.system import ImportJob
from panel.scope import get_or_404


@bp.route("/<int:import_job_id>")
@reader_required
def show(import_job_id: int):
    """The job's progress bar, outcome and errors (whole page, or the fragment for htmx polling)."""
    job = get_or_404(ImportJob, import_job_id)
    jobs.reap([job])  # a job whose process died is failed now, not "writing" forever
    return render("imports/show.html", "imports/_status.html", job=job)


@bp.app_template_global()
def kept_upload(job):
    """The kept file of a failed import, for the status's "Retry with the same file" (None otherwise)."""
    if job is None or job.status != "failed":
        return None
    upload = uploads.for_job(job.id)
    return upload if upload is not None and (upload.options or {}).get("retry_url") else None
