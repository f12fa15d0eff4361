"""Who may do what (SPEC §1): the role decorators every view declares, and the company scope.

Every view of a panel section declares its role with one decorator, right under its route::

    @bp.route("/<int:client_id>/edit", methods=["GET", "POST"])
    @writer_required
    def update(client_id): ...

- `reader_required`: any logged-in user (viewer, operator, admin) may use it;
- `writer_required`: operators and admins; viewers get 403 (also on the GET of a form);
- `admin_required`: admins of any company; operators and viewers get 403;
- `root_required`: admins of the operator's root company (the company without a parent).

A form that viewers may look at read-only declares `@writer_required(reads="reader")`. The decorator records
the roles on the view (`view_roles(view)`: the role for GETs, the role for writes), so tests and the
security matrix read what each view declares. The global rule in `panel/__init__.py` (login everywhere; no
write by a viewer) stays as a safety net under the decorators.

Which rows a user sees is the company scope: each model declares once how it belongs to a company
(`__owner__`, e.g. `"client.company_id"`), and `scope_condition`, `scoped`, `get_or_404` and the audit log's
owner are derived from it (panel/scope.py; re-exported here so a view imports access from one place).
"""

from collections.abc import Callable
from functools import wraps

from flask import abort, request
from flask_login import current_user

from panel.scope import (
    MAX_ID,
    ancestor_ids,
    descendant_ids,
    forget_tree,
    get_or_404,
    in_scope,
    owner_of,
    scope_condition,
    scoped,
    usable_plans,
    usable_plans_condition,
    usable_rate_tables,
    user_company_ids,
    visible_companies,
)

__all__ = [
    "MAX_ID",
    "ROLES",
    "admin_required",
    "ancestor_ids",
    "descendant_ids",
    "forget_tree",
    "get_or_404",
    "in_scope",
    "is_admin",
    "is_operator_user",
    "is_root_admin",
    "may",
    "owner_of",
    "reader_required",
    "root_required",
    "scope_condition",
    "scoped",
    "usable_plans",
    "usable_plans_condition",
    "usable_rate_tables",
    "user_company_ids",
    "view_roles",
    "visible_companies",
    "writer_required",
]

# The roles a view may require, weakest first.
ROLES = ("reader", "writer", "admin", "root")


def is_admin(user=None) -> bool:
    """True for an admin of any company."""
    user = user or current_user
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_admin", False))


def is_operator_user(user=None) -> bool:
    """True for any user of the operator's root company (the one company without a parent): the users who
    see figures of the whole system (the Traffic Rules manager's errors, its snapshot)."""
    user = user or current_user
    company = getattr(user, "company", None) if getattr(user, "is_authenticated", False) else None
    return company is not None and company.parent_id is None


def is_root_admin(user=None) -> bool:
    """True for an admin of the operator's root company."""
    return is_admin(user) and is_operator_user(user)


def may(role: str, user=None) -> bool:
    """True when the user holds `role` (reader, writer, admin or root)."""
    user = user or current_user
    if not getattr(user, "is_authenticated", False):
        return False
    if role == "reader":
        return True
    if role == "writer":
        return bool(user.can_write)
    if role == "admin":
        return is_admin(user)
    if role == "root":
        return is_root_admin(user)
    raise ValueError(f"unknown role {role!r}; one of {ROLES}")


READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _requires(role: str) -> Callable:
    """A decorator answering 403 unless the current user holds `role`; it records the roles on the view.

    Bare (`@writer_required`) it covers every method; with `reads=` (`@writer_required(reads="reader")`)
    GETs need only that role: a read-only form for viewers whose submit is for writers.
    """

    def decorate(view, reads: str | None = None):
        read_role = reads or role

        @wraps(view)
        def wrapped(*args, **kwargs):
            needed = read_role if request.method in READS else role
            if not may(needed):
                abort(403)
            return view(*args, **kwargs)

        wrapped.access_roles = (read_role, role)
        return wrapped

    def decorator(view=None, *, reads: str | None = None):
        if reads is not None and reads not in ROLES:
            raise ValueError(f"unknown role {reads!r}; one of {ROLES}")
        if view is None:
            return lambda v: decorate(v, reads)
        return decorate(view)

    decorator.__name__ = f"{role}_required"
    decorator.__doc__ = f"The view is for users with the {role} role; others get 403."
    return decorator


reader_required = _requires("reader")
writer_required = _requires("writer")
admin_required = _requires("admin")
root_required = _requires("root")


def view_roles(view) -> tuple[str, str] | None:
    """(role for GETs, role for writes) a view declares with one of the decorators; None without one."""
    return getattr(view, "access_roles", None)
