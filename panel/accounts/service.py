"""Changing accounts: save (with networks and gateways), deactivate, and delete with the refund (SPEC §2).

Every function adds its audit entry in the same transaction as the change; the caller's session sees either
the whole change or, after an error, nothing (the delete commits or rolls back itself).
"""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, func, or_, select

from panel import audit, crypto, writes
from panel.extensions import db
from panel.models import Account, AccountNetwork, CallStat, Client, Did, Gateway, RoutingRule
from panel.templating import money

CENT = Decimal("0.000001")


def account_state(account: Account) -> dict:
    """The account's audit state: its columns plus its networks and gateways (relations audit.state skips)."""
    data = audit.state(account)
    data["networks"] = [n.network for n in account.networks]
    data["gateways"] = sorted(g.name for g in account.gateways)
    return data


def apply_form(account: Account, form, gateways: list[Gateway]) -> bool:
    """Copy a validated AccountForm into the account; True when the password changed."""
    account.client_id = form.client_id.data
    account.name = form.name.data
    account.ident_by = form.ident_by.data
    account.ident_value = form.ident_text
    account.tech_prefix = form.tech_prefix.data or ""
    account.notes = form.notes.data or ""
    account.orig_enabled = bool(form.orig_enabled.data)
    account.orig_rate_table_id = form.orig_rate_table_id.data
    account.orig_routing_plan_id = form.orig_routing_plan_id.data
    account.orig_tags = form.orig_tags.data or ""
    account.orig_capacity = form.orig_capacity.data
    account.term_enabled = bool(form.term_enabled.data)
    account.term_rate_table_id = form.term_rate_table_id.data
    account.term_tags = form.term_tags.data or ""
    account.term_capacity = form.term_capacity.data
    account.protocol = form.protocol.data
    account.proxy = form.proxy.data or ""
    account.port = form.port.data
    set_networks(account, [str(n) for n in form.networks])
    account.gateways = gateways
    return _apply_password(account, form)


def _apply_password(account: Account, form) -> bool:
    """Set, keep or remove the password; True when it changed. An empty field keeps the current one."""
    old = crypto.decrypt(account.password_encrypted)
    if form.clear_password.data:
        new = ""
    elif form.password.data:
        new = form.password.data
    else:
        return False
    if new == old:
        return False
    account.password_encrypted = crypto.encrypt(new)
    return True


def set_networks(account: Account, networks: list[str]) -> None:
    """Replace the account's network rows, keeping the order given (position 0 first)."""
    existing = {n.network: n for n in account.networks}
    rows = []
    for position, network in enumerate(networks):
        row = existing.pop(network, None) or AccountNetwork(network=network)
        row.position = position
        rows.append(row)
    account.networks = rows


@dataclass
class DeletePreview:
    """What deleting an account takes with it, shown in the confirm dialog."""

    stat_rows: int
    refund: Decimal
    dids: int
    rules: list[RoutingRule]
    rules_total: int


def delete_preview(account: Account) -> DeletePreview:
    """Count the statistics rows, the refund (originator charges), the DIDs and the rules that use it."""
    stat_rows = db.session.scalar(
        select(func.count())
        .select_from(CallStat)
        .where(or_(CallStat.orig_account_id == account.id, CallStat.term_account_id == account.id))
    )
    refund = db.session.scalar(
        select(func.coalesce(func.sum(CallStat.customer_charge), 0)).where(
            CallStat.orig_account_id == account.id
        )
    )
    dids = db.session.scalar(select(func.count()).select_from(Did).where(Did.account_id == account.id))
    rules_stmt = select(RoutingRule).where(RoutingRule.terminator_account_id == account.id)
    rules_total = db.session.scalar(select(func.count()).select_from(rules_stmt.subquery()))
    rules = list(db.session.scalars(rules_stmt.order_by(RoutingRule.id).limit(10))) if rules_total else []
    return DeletePreview(stat_rows or 0, _quantize(refund), dids or 0, rules, rules_total or 0)


def _quantize(value) -> Decimal:
    """Money to 6 decimals (SQLite returns sums as floats)."""
    return Decimal(str(value or 0)).quantize(CENT)


class AccountInUse(Exception):
    """The account cannot be deleted: routing rules name it."""


def delete_account(account: Account) -> tuple[int, Decimal]:
    """Delete the account and its statistics, credit its client with the originator charges, audit it.

    One transaction: commits at the end, rolls everything back on any error (and re-raises it). Returns the
    number of statistics rows removed and the refund.
    """
    try:
        if db.session.scalar(
            select(RoutingRule.id).where(RoutingRule.terminator_account_id == account.id).limit(1)
        ):
            raise AccountInUse("routing rules send calls to this account")
        before = account_state(account)
        client = db.session.scalar(
            select(Client)
            .where(Client.id == account.client_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        # Imported here: panel.stats's views import panel.accounts.views, which imports this module.
        from panel.stats import rollup

        # RETURNING gives exactly the rows deleted, so the refund matches them even while calls keep arriving.
        removed = db.session.execute(
            delete(CallStat)
            .where(or_(CallStat.orig_account_id == account.id, CallStat.term_account_id == account.id))
            .returning(CallStat.orig_account_id, CallStat.customer_charge, *rollup.RETURNED)
            .execution_options(synchronize_session=False)
        ).all()
        rollup.add((row._mapping for row in removed), sign=-1)  # out of the statistics' hourly figures
        refund = sum(
            (_quantize(row.customer_charge) for row in removed if row.orig_account_id == account.id),
            start=Decimal("0"),
        ).quantize(CENT)
        old_balance = client.balance or Decimal("0")
        currency = client.currency or ""
        if refund:
            refunded = f"Refund for deleted account “{account.name}”: {money(refund)} {currency}."
            with writes.change(client, note=refunded, commit_now=False):
                client.balance = old_balance + refund
        note = (
            f"Deleted with {len(removed):,} statistics rows; refunded {money(refund)} {currency} to client "
            f"“{client.name}” (balance {money(old_balance)} → {money(client.balance)})."
        )
        writes.delete(account, before=before, note=note)
    except BaseException:
        db.session.rollback()
        raise
    return len(removed), refund


def deactivate(account: Account) -> None:
    """Untick Originator and Terminator (the seed's advice instead of deleting): audited and committed."""
    with writes.change(account, state=account_state, note="deactivated"):
        account.orig_enabled = False
        account.term_enabled = False
