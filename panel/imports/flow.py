"""The import views' logic behind one small call: read the upload, keep it, preview a replace, start the job.

A section declares an `ImportSpec` (its form, templates, modes, import and preview functions) and its view
calls `handle(spec, target)`. The flow:

- an upload is read (bounded) and kept server-side (panel.imports.uploads) under a token;
- in a mode that replaces the object's rows (`spec.preview_modes`), nothing is written yet: the page shows
  the preview (rows added, removed, changed, with the first rows of each) and a confirm button carrying the
  token; the confirmation applies the kept file only when the object's rows are still those the preview saw
  (their fingerprint), else it shows the new preview;
- otherwise (or on confirmation) the background job starts; a job that fails keeps the file, and its status
  offers "Retry with the same file" (after fixing what the errors name, e.g. creating a missing client).

`extend(kind)` registers a function that adds to the preview page (e.g. the routing effect of a rules
import): it gets (target, diff, upload) and returns template context; the preview template renders the
`imports/_preview_extra.html` block with it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import request, url_for

from panel.htmx import is_htmx, redirect, render
from panel.imports import jobs, reader, uploads
from panel.imports.preview import Diff

_EXTENSIONS: dict[str, list[Callable]] = {}


@dataclass
class ImportSpec:
    """What a section's import page is made of.

    The page and the fragment default from the view's blueprint: `<blueprint>/import.html` (which extends
    `_reference/import.html`) and the shared upload form `_reference/_import_form.html`.
    """

    kind: str  # the job kind: rates, codes, dids, routing_rules
    endpoint: str  # the import view, for the forms' action: rates.import_
    form: Callable  # the upload form class (fields `file` and `mode`)
    modes: dict[str, str]  # mode -> label
    # run(target_id, data, mode, options, filename, job_id, progress) -> summary, raises ImportFailed
    run: Callable
    id_arg: str = ""  # the view's id argument: rate_table_id ("": it takes none)
    page: str = ""  # the whole page template
    fragment: str = ""  # the fragment htmx swaps (the upload form, the preview, the job's status)
    preview: Callable | None = None  # preview(target, data, mode, options) -> Diff, raises ImportFailed
    fingerprint: Callable | None = None  # fingerprint(target) -> the digest a preview saw
    preview_modes: frozenset = frozenset()
    options: Callable = lambda form: {}  # the form's other choices as JSON-safe values
    context: Callable = lambda target: {}  # the page's own template context
    label: Callable = lambda target: target.name  # the job's target label
    limit: Callable | None = None  # the largest file accepted (default: the upload limit)
    synchronous: Callable = lambda data: None  # True to run small files in the request
    redirect_after_start: bool = True  # a plain (not htmx) POST that started a job answers 303 to the page
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        section = self.endpoint.split(".", 1)[0]
        self.page = self.page or f"{section}/import.html"
        self.fragment = self.fragment or "_reference/_import_form.html"


def extend(kind: str) -> Callable:
    """Decorator: `fn(target, diff, upload) -> dict` adds context to the preview page of `kind` imports."""

    def register(fn: Callable) -> Callable:
        _EXTENSIONS.setdefault(kind, []).append(fn)
        return fn

    return register


def _url(spec: ImportSpec, target) -> str:
    return url_for(spec.endpoint, **({spec.id_arg: target.id} if spec.id_arg else {}))


def handle(spec: ImportSpec, target):
    """The import page: GET shows the form; POST uploads, previews, confirms or retries."""
    form = spec.form()
    context = {**spec.context(target), "form": form, "modes": spec.modes, "import_url": _url(spec, target)}
    status, job, diff, upload, message = 200, None, None, None, ""
    token = request.form.get("token", "") if request.method == "POST" else ""
    if token:
        upload = uploads.find(token, spec.kind, target.id)
        if upload is None:
            status, message = 422, "The kept file has expired or is not yours: choose the file again."
        elif request.form.get("action") == "confirm" and upload.mode in spec.preview_modes:
            seen = (upload.options or {}).get("fingerprint")
            if spec.fingerprint is not None and seen != spec.fingerprint(target):
                message = "The data changed since this preview (someone edited it meanwhile): check it again."
                status, diff, upload = _preview(spec, target, upload)
            else:
                job = _start(spec, target, upload)
        elif upload.mode in spec.preview_modes:
            status, diff, upload = _preview(spec, target, upload)
        else:
            job = _start(spec, target, upload)
    elif request.method == "POST":
        mode = request.form.get("mode", "")
        if form.validate_on_submit() and mode in spec.modes:
            try:
                data = reader.read_upload(form.file.data, limit=spec.limit() if spec.limit else None)
            except reader.CsvError as exc:
                form.file.errors = [*form.file.errors, str(exc)]
            else:
                upload = uploads.keep(
                    spec.kind,
                    target.id,
                    target.company_id,
                    form.file.data.filename or "import.csv",
                    mode,
                    data,
                    spec.options(form),
                )
                if mode in spec.preview_modes and spec.preview is not None:
                    status, diff, upload = _preview(spec, target, upload)
                else:
                    job = _start(spec, target, upload)
        elif mode not in spec.modes and hasattr(form, "mode"):
            form.mode.errors = [f"Choose {' or '.join(spec.modes.values())}."]
        if job is None and diff is None and (form.errors or message):
            status = 422
    if job is not None:
        if spec.redirect_after_start and not is_htmx():
            return redirect(context["import_url"])
        if job.status == "failed":
            status = 422
        form = spec.form(formdata=None)
        context["form"] = form
    extras = {}
    if diff is not None and upload is not None:
        for fn in _EXTENSIONS.get(spec.kind, []):
            extras.update(fn(target, diff, upload) or {})
    return render(
        spec.page,
        spec.fragment,
        status=status,
        job=job,
        diff=diff,
        upload=upload,
        message=message,
        retry=_retry_for(job),
        jobs=jobs.recent_jobs(spec.kind, target.id),
        extras=extras,
        import_form=spec.fragment,
        **context,
    )


def _preview(spec: ImportSpec, target, upload) -> tuple[int, Diff | None, object]:
    """Parse the kept file and compare: (status, diff, upload); a failed parse lists the errors."""
    try:
        diff = spec.preview(target, upload.data, upload.mode, upload.options or {})
    except jobs.ImportFailed as exc:
        upload.preview_error = exc
        return 422, None, upload
    upload.options = {**(upload.options or {}), "fingerprint": diff.fingerprint}
    from panel.extensions import db

    db.session.commit()
    return 200, diff, upload


def _start(spec: ImportSpec, target, upload):
    """Start the job on the kept file; the file is forgotten when the job succeeds, kept when it fails."""
    data, mode, options, filename = upload.data, upload.mode, dict(upload.options or {}), upload.filename
    upload_id, target_id = upload.id, target.id

    def work(job_id: int, progress) -> str:
        return spec.run(target_id, data, mode, options, filename, job_id, progress)

    def on_end(job_id: int, status: str) -> None:
        if status == "done":
            uploads.drop(upload_id)

    job = jobs.start(
        spec.kind,
        company_id=target.company_id,
        target_id=target.id,
        target_label=spec.label(target),
        filename=filename,
        mode=spec.modes.get(mode, mode),
        work=work,
        synchronous=spec.synchronous(data),
        on_end=on_end,
        before_run=lambda job_id: uploads.remember_job(upload_id, job_id, _url(spec, target)),
    )
    return job


def _retry_for(job):
    """The kept file of a failed job, for its retry button (None otherwise)."""
    if job is None or job.status != "failed":
        return None
    return uploads.for_job(job.id)
