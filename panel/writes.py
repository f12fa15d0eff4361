"""The one write path: before-state -> change -> audit entry -> commit, in one transaction (SPEC §8).

Every change a user makes goes through here, so each has exactly one audit entry, written with the change
or not at all, and a change made on a stale form never silently overwrites someone else's::

    from panel import writes

    # create
    client = Client(company_id=company.id, name=form.name.data)
    writes.create(client)

    # update: the before-state is taken on entering the block, the entry written and committed on leaving it
    with writes.change(rule, version=form.version.data, note=f"rule of plan {plan.name}"):
        form.apply(rule)

    # delete
    writes.delete(rule, note=f"rule of plan {plan.name}")

    # a named action on an existing object (an import, a copy, a balance adjustment)
    with writes.change(plan, action="import", after={"added": 12}, note="replace"):
        ...

Optimistic locking: models edited through forms are `Versioned` (panel/models/versioned.py). A form carries
the version it was drawn from; `change(obj, version=...)` answers `Conflict` before anything is written when
the object moved on since, and a concurrent commit that still slips in between (SQLAlchemy's StaleDataError)
becomes a `Conflict` too. The object may also be gone (deleted, or removed by a replace import):
`Conflict.deleted` is then true. The app's error handler answers a `Conflict` with the message and the
object's current values (a 422 fragment for htmx, a 409 page otherwise); a view may catch it to redraw its
own form instead (`conflict.current` holds the fresh object, `conflict.message` the sentence to show).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from werkzeug.exceptions import Conflict as _HttpConflict

from panel import audit
from panel.extensions import db


class Conflict(_HttpConflict):
    """Someone else changed (or deleted) the object since the form was drawn; nothing was written."""

    def __init__(self, obj, *, deleted: bool = False, current=None):
        self.model = type(obj)
        self.object_id = _identity(obj)
        self.object_type = audit.object_type(obj)
        self.label = audit.label(obj) if not deleted else _label_of_deleted(obj)
        self.deleted = deleted
        self.current = current
        if deleted:
            message = (
                f"This {_kind(self.object_type)} was deleted by someone else (or removed by an import) "
                "after you opened the form: your changes were not saved."
            )
        else:
            message = (
                f"Someone else saved this {_kind(self.object_type)} after you opened the form: your changes "
                "were not saved. Its current values are shown; make your change again on them."
            )
        self.message = message
        super().__init__(description=message)


def _identity(obj) -> int | None:
    """The object's primary key without loading anything (also for a deleted, expired object)."""
    identity = sa_inspect(obj).identity
    return identity[0] if identity else getattr(obj, "__dict__", {}).get("id")


def _label_of_deleted(obj) -> str:
    """A label for an object whose row is gone (its loaded attributes only, never a refresh)."""
    name = sa_inspect(obj).dict.get("name") or sa_inspect(obj).dict.get("code")
    return str(name) if name else f"{type(obj).__name__} {_identity(obj) or ''}".strip()


def _kind(object_type: str) -> str:
    """The object's type in words for the conflict message."""
    from panel.diffs import type_label

    return type_label(object_type).lower()


def parse_version(value) -> int | None:
    """A version posted by a form: an int, or None when absent or not a number (no check then)."""
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def check_version(obj, version) -> None:
    """Raise `Conflict` when the form's version is not the object's current one (someone saved first)."""
    expected = parse_version(version)
    if expected is None or not hasattr(obj, "version"):
        return
    if obj.version != expected:
        raise Conflict(obj, current=obj)


def _conflict_from_stale(obj) -> Conflict:
    """After a StaleDataError (rolled back): a conflict saying whether the object changed or is gone."""
    model, object_id = type(obj), _identity(obj)
    fresh = db.session.get(model, object_id, populate_existing=True) if object_id is not None else None
    if fresh is None:
        return Conflict(obj, deleted=True)
    return Conflict(fresh, current=fresh)


@contextmanager
def _stale_is_conflict(obj) -> Iterator[None]:
    """A stale flush or commit inside the block (version mismatch, row gone) rolls back: `Conflict`."""
    try:
        yield
    except StaleDataError:
        db.session.rollback()
        raise _conflict_from_stale(obj) from None


def commit(obj) -> None:
    """Commit the session; a stale write of `obj` rolls back and raises `Conflict`."""
    with _stale_is_conflict(obj):
        db.session.commit()


def create(obj, *, note: str = "", after: dict | None = None, user=None, commit_now: bool = True):
    """Add a new object, write its `create` entry and commit; returns the entry."""
    db.session.add(obj)
    with _stale_is_conflict(obj):
        entry = audit.record("create", obj, after=after, note=note, user=user)
        if commit_now:
            db.session.commit()
    return entry


def delete(
    obj, *, note: str = "", user=None, commit_now: bool = True, version=None, before: dict | None = None
):
    """Write the `delete` entry (with the before-state), delete the object and commit; returns the entry."""
    check_version(obj, version)
    try:
        before = audit.state(obj) if before is None else before
    except ObjectDeletedError:  # its row was deleted meanwhile and cannot be refreshed
        db.session.rollback()
        raise Conflict(obj, deleted=True) from None
    entry = audit.record("delete", obj, before=before, note=note, user=user)
    db.session.delete(obj)
    with _stale_is_conflict(obj):
        if commit_now:
            db.session.commit()
        else:
            db.session.flush()
    return entry


class Change:
    """What `change()` yields: set `after` or `note` inside the block; `entry` is the entry written."""

    def __init__(self, obj, before: dict | None):
        self.obj = obj
        self.before = before
        self.after: dict | None = None
        self.note = ""
        self.entry = None
        self.changed = False
        self.skip = False


@contextmanager
def change(
    obj,
    *,
    action: str = "update",
    version=None,
    note: str = "",
    before: dict | None = None,
    after: dict | None = None,
    state=audit.state,
    skip_unchanged: bool = False,
    user=None,
    commit_now: bool = True,
) -> Iterator[Change]:
    """Before-state, the block's change, the audit entry and the commit, as one unit.

    `version` is the version the form was drawn from (no check when None); `state` computes the audit state
    (e.g. a plan's state with its limits) before and after the block; with `skip_unchanged` nothing is
    written when it did not change (`Change.changed` tells). `action` names the entry (update, deactivate,
    ...). A named action whose result is not the object's fields (an import into a plan) passes `after`
    (what it did: counts, mode) and no before-state is diffed — the log shows the figures, never a
    "created" diff of an object that existed. An exception in the block rolls the whole change back.
    """
    check_version(obj, version)
    describes = after is None  # the entry holds the object's states, before and after
    if before is None and describes:
        before = state(obj)
    unit = Change(obj, before)
    unit.note = note
    unit.after = after
    try:
        yield unit
    except StaleDataError:  # a flush inside the block met a concurrent change
        db.session.rollback()
        raise _conflict_from_stale(obj) from None
    except BaseException:
        db.session.rollback()
        raise
    if unit.skip:
        return
    with _stale_is_conflict(obj):
        if describes and unit.after is None:
            unit.after = state(obj)
        unit.changed = unit.after != before
        if skip_unchanged and not unit.changed:
            return
        unit.entry = audit.record(action, obj, before=before, after=unit.after, note=unit.note, user=user)
        if commit_now:
            db.session.commit()


def conflict_response(conflict: Conflict):
    """The answer to a conflict: the message and the object's current values (htmx 422, page 409)."""
    from flask import render_template, request

    from panel import diffs
    from panel.htmx import is_htmx

    current = conflict.current
    rows = diffs.state_rows(audit.object_type(current), audit.state(current)) if current is not None else []
    context = {
        "conflict": conflict,
        "rows": rows,
        "type_label": diffs.type_label(conflict.object_type),
        "object_url": (
            None if conflict.deleted else diffs.object_url(conflict.object_type, conflict.object_id)
        ),
        "retry_url": request.full_path if request.method == "GET" else request.path,
    }
    if is_htmx():
        return render_template("writes/_conflict.html", **context), 422
    return render_template("writes/conflict.html", **context), 409


def install(app) -> None:
    """Answer every `Conflict` and every stray StaleDataError with the conflict message, never a 500."""

    @app.errorhandler(Conflict)
    def _conflict(error: Conflict):
        return conflict_response(error)

    @app.errorhandler(StaleDataError)
    def _stale(_error):
        # A stale write outside this module's helpers: the object cannot be named any more.
        db.session.rollback()
        from flask import render_template

        from panel.htmx import is_htmx

        message = (
            "Someone else changed or deleted this object at the same moment: nothing was saved. "
            "Reload the page to see its current state."
        )
        template = "writes/_conflict.html" if is_htmx() else "writes/conflict.html"
        context = {"conflict": {"message": message, "deleted": True}, "rows": [], "object_url": None}
        return render_template(template, retry_url=None, type_label="", **context), (
            422 if is_htmx() else 409
        )
