""": not built yet."""

from flask import render_template

from panel.companies import bp


@bp.route("/")
def index():
    """An honest page until the section is built."""
    return render_template("_partials/not_built.html", title="")
