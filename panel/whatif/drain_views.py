"""Drain and restore pages: a terminator account or a whole vendor client, with a reason and an optional end.

Scoped like every page (an object outside the user's companies answers 404); viewers get 403 on the form
and on every POST. The change is one audit-logged transaction; routing sees it at the manager's next run.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from panel import writes
from panel.access import get_or_404, user_company_ids, writer_required
from panel.extensions import db
from panel.models import Account, Client
from panel.plans.fields import parse_expires
from panel.whatif import bp, drain

KINDS = {"account": Account, "client": Client}


class DrainForm(FlaskForm):
    """Why, and until when (optional)."""

    reason = StringField(
        "Reason", validators=[DataRequired("Say why it is drained."), Length(max=drain.REASON_MAX)]
    )
    until = StringField("Until (UTC, optional)")


def _object(kind: str, obj_id: int):
    """The account or client in the user's scope, or 404."""
    model = KINDS.get(kind)
    if model is None:
        abort(404)
    return get_or_404(model, obj_id)


def page_of(kind: str, obj) -> str:
    """The object's own page."""
    if kind == "account":
        return url_for("accounts.show", account_id=obj.id)
    return url_for("clients.show", client_id=obj.id)


def label_of(kind: str, obj) -> str:
    """`client / account` or the client's name."""
    return f"{obj.client.name} / {obj.name}" if kind == "account" else obj.name


@bp.route("/drain/account/<int:account_id>", methods=["GET", "POST"])
@writer_required
def edit_account_drain(account_id: int):
    """Drain an account: the form, then the drain."""
    return _drain("account", account_id)


@bp.route("/drain/client/<int:client_id>", methods=["GET", "POST"])
@writer_required
def edit_client_drain(client_id: int):
    """Drain a client (every account of it): the form, then the drain."""
    return _drain("client", client_id)


@bp.route("/restore/account/<int:account_id>", methods=["POST"])
@writer_required
def restore_account(account_id: int):
    """End an account's drain now."""
    return _restore("account", account_id)


@bp.route("/restore/client/<int:client_id>", methods=["POST"])
@writer_required
def restore_client(client_id: int):
    """End a client's drain now."""
    return _restore("client", client_id)


def _drain(kind: str, obj_id: int):
    """The drain form; a valid POST drains the account or client and goes back to its page."""
    obj = _object(kind, obj_id)
    form = DrainForm()
    status = 200
    if form.validate_on_submit():
        try:
            until = parse_expires(form.until.data)
            drain.drain(obj, form.reason.data, until, current_user)
        except ValueError as exc:  # a bad end time, or DrainError
            form.until.errors = [*form.until.errors, str(exc)]
            db.session.rollback()
            status = 422
        else:
            writes.commit(obj)
            flash(
                f"{kind.capitalize()} “{label_of(kind, obj)}” drained: routing skips it from the "
                "Traffic Rules manager's next run.",
                "success",
            )
            return redirect(page_of(kind, obj), 303)
    elif form.is_submitted():
        status = 422
    return (
        render_template(
            "whatif/drain.html",
            form=form,
            kind=kind,
            obj=obj,
            label=label_of(kind, obj),
            back=page_of(kind, obj),
            title=f"Drain {kind} {label_of(kind, obj)}",
        ),
        status,
    )


def _restore(kind: str, obj_id: int):
    """End the drain now (one click) and go back to the object's page."""
    obj = _object(kind, obj_id)
    if not FlaskForm().validate_on_submit():
        abort(400)  # the CSRF token is missing or expired
    if obj.is_drained:
        drain.restore(obj, current_user)
        writes.commit(obj)
        flash(f"{kind.capitalize()} “{label_of(kind, obj)}” restored: routing uses it again.", "success")
    return redirect(page_of(kind, obj), 303)


@bp.app_template_global("drained_for_user")
def drained_for_user() -> list[drain.Drained]:
    """Template helper for the home page: what is drained in the user's companies."""
    return drain.drained_objects(user_company_ids())
