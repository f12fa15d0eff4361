"""Why no originator was identified: the accounts that have the address, login or ANI but did not match.

The route test answers `unknown_originator` when no originator-enabled account matches every part of the
identity (SPEC §5 step 1). An operator who typed an address that one of its accounts has wants to know which
account that is and what stopped it: originator off, a gateway list that does not include the request's
gateway, a tech prefix that does not start the number. Only accounts of the user's companies are named
(the same scope as every page); the switch API never explains this.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from panel import scope
from panel.extensions import db
from panel.models import Account, AccountNetwork

# At most this many accounts are explained; networks are read only for accounts identified by IP.
LIMIT = 5
MAX_NETWORKS = 50_000


@dataclass
class Miss:
    """An account that has the identity, and why routing did not take it."""

    account: Account
    matched_by: str
    reasons: list[str]


def _by_ip(address: str) -> list[int]:
    """Ids of visible accounts identified by IP with a network that holds `address` (most specific first)."""
    ip = ipaddress.ip_address(address)
    stmt = (
        select(AccountNetwork.account_id, AccountNetwork.network)
        .join(Account, Account.id == AccountNetwork.account_id)
        .where(scope.scope_condition(Account, scope.user_company_ids()), Account.ident_by == "ip")
        .limit(MAX_NETWORKS)
    )
    found = []
    for account_id, text in db.session.execute(stmt):
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if network.version == ip.version and ip in network:
            found.append((network.prefixlen, account_id))
    return [account_id for _length, account_id in sorted(found, reverse=True)]


def _by_value(ident_by: str, value: str) -> list[int]:
    """Ids of visible accounts identified by login (`name`) or ANI with this value (ANI without a `+`)."""
    column = Account.ident_value
    if ident_by == "ani":
        column, value = func.ltrim(Account.ident_value, "+"), value.lstrip("+")
    stmt = (
        scope.scoped(Account)
        .with_only_columns(Account.id)
        .where(Account.ident_by == ident_by, column == value)
        .limit(LIMIT)
    )
    return list(db.session.scalars(stmt))


def _reasons(account: Account, number: str, gateway: str | None) -> list[str]:
    """What keeps an account that has the identity from being identified for this request."""
    reasons = []
    if not account.orig_enabled:
        reasons.append("Originator is off for this account (tick Originator to identify it).")
    names = sorted(g.name for g in account.gateways)
    if names and not gateway:
        reasons.append(f"It accepts calls only from the gateway{'s' if len(names) > 1 else ''} "
                       f"{', '.join(names)}; this test named no gateway.")  # fmt: skip
    elif names and gateway not in names:
        reasons.append(f"It accepts calls only from {', '.join(names)}, not from gateway {gateway}.")
    prefix = account.tech_prefix or ""
    if prefix and not number.startswith(prefix):
        reasons.append(f"Its tech prefix {prefix} does not start the number.")
    elif prefix and number == prefix:
        reasons.append(f"The number is only its tech prefix {prefix}.")
    if not reasons:
        reasons.append(
            "It matches now: the routing data was read before its last change (Refresh now, or wait for the "
            "manager's next run), or a more specific account of another company took the address."
        )
    return reasons


def explain(number: str, src_ip: str | None, login: str | None, ani: str | None, gateway: str | None):
    """The visible accounts that have the request's login, ANI or address, each with why it did not match."""
    candidates: list[tuple[int, str]] = []
    if login:
        candidates += [(aid, f"login {login}") for aid in _by_value("name", login)]
    if ani:
        candidates += [(aid, f"ANI {ani}") for aid in _by_value("ani", ani)]
    if src_ip:
        candidates += [(aid, f"address {src_ip}") for aid in _by_ip(src_ip)]
    seen: dict[int, str] = {}
    for account_id, how in candidates:
        seen.setdefault(account_id, how)
        if len(seen) >= LIMIT:
            break
    if not seen:
        return []
    accounts = db.session.scalars(
        select(Account)
        .where(Account.id.in_(list(seen)))
        .options(selectinload(Account.gateways), selectinload(Account.client))
    ).all()
    by_id = {account.id: account for account in accounts}
    found = [(by_id[aid], how) for aid, how in seen.items() if aid in by_id]
    return [Miss(account, how, _reasons(account, number, gateway)) for account, how in found]
