"""Users: the logins of the admin's company subtree, with their roles (admin, operator, viewer)."""

from flask import Blueprint

bp = Blueprint("users", __name__)

from panel.users import views  # noqa: E402,F401
