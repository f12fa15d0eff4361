"""Page flows shared by sections that are not reference sections (those use panel.reference.views)."""

from flask import flash, request

from panel import writes
from panel.htmx import redirect, render


def confirm_delete(obj, template: str, blocked: bool, done_url: str, message: str, **context):
    """The delete page of `obj` (GET), or the delete itself (POST).

    The page shows what blocks the delete, or asks for confirmation; a POST while something blocks it answers
    409 with the same page. `template` is the section's `delete.html`, which extends
    `templates/_partials/delete.html` (that wants `noun`, `back` and `title` in `context`).
    """
    if request.method == "POST" and not blocked:
        writes.delete(obj)
        flash(message, "success")
        return redirect(done_url)
    status = 409 if request.method == "POST" else 200
    return render(template, None, status, blocked=blocked, **context)
