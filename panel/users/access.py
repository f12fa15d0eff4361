"""Who may manage users and companies: admins, within their own company's subtree (SPEC §1).

Operators and viewers may read the user and company lists of their subtree; every change answers 403 for them
(the views declare `panel.access.admin_required`); these helpers say which objects an admin may change.
"""

from flask_login import current_user

from panel.access import descendant_ids, is_admin
from panel.models import Company, User


def may_manage_company(company: Company) -> bool:
    """True for companies strictly below the admin's own; the root company is renamed by its own admins."""
    if not is_admin():
        return False
    if company.id == current_user.company_id:
        return company.parent_id is None
    return company.id in descendant_ids(current_user.company_id)


def may_manage_user(user: User) -> bool:
    """True when an admin may change this user (any user of the admin's subtree)."""
    return is_admin() and user.company_id in descendant_ids(current_user.company_id)


def is_self(user: User) -> bool:
    """True when `user` is the logged-in user (who may not lock itself out)."""
    return getattr(current_user, "id", None) == user.id
