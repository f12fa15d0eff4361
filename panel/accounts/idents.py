"""Account identity (SPEC §2): parsing ident values and tech prefixes, and the identity-conflict rules.

An account is identified by IP (one or more addresses or CIDR networks separated by `;`), by login name or by
ANI. Identification must stay unambiguous, so:

- two originator-enabled accounts may not share an identity: an equal ident value (the same login, ANI,
  address or network; a network nested in another is allowed), the same tech prefix and overlapping gateway
  sets (an empty set overlaps every set);
- two terminator-enabled accounts may share an IP only with a different protocol, port or gateways.

The checks query candidates by ident value and by network rows (both indexed), never by loading every account.
"""

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import joinedload, selectinload

from panel.extensions import db
from panel.models import Account, AccountNetwork, Client
from panel.values import is_digits

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

TECH_PREFIX_RE = re.compile(r"^[0-9]+#?$")
LOGIN_RE = re.compile(r"^[A-Za-z0-9_.@+\-]+$")
ANI_RE = re.compile(r"^[0-9]+$")
HOST_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*$"
)
TAG_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,40}$")


class IdentError(ValueError):
    """An ident value, tech prefix, proxy or tag list the form must refuse; the message says why."""


def parse_networks(text: str) -> list[Network]:
    """Parse an `ip` ident value into networks, in the order given.

    Refuses a bad address, a CIDR with host bits set, and the same or nested networks listed twice.
    """
    parts = [part.strip() for part in (text or "").replace(",", ";").split(";")]
    parts = [part for part in parts if part]
    if not parts:
        raise IdentError("Enter at least one IP address or CIDR network.")
    networks: list[Network] = []
    for part in parts:
        network = _parse_one(part)
        for earlier in networks:
            if earlier == network:
                raise IdentError(f"{display(network)} is listed twice.")
            if earlier.version == network.version:
                if network.subnet_of(earlier):
                    raise IdentError(
                        f"{display(network)} is inside {display(earlier)}, which is listed already."
                    )
                if earlier.subnet_of(network):
                    raise IdentError(
                        f"{display(earlier)} is inside {display(network)}; list only one of them."
                    )
        networks.append(network)
    return networks


def _parse_one(part: str) -> Network:
    """One address (`198.51.100.7`) or network (`10.0.0.0/24`)."""
    if "/" in part:
        try:
            return ipaddress.ip_network(part, strict=True)
        except ValueError as error:
            try:
                loose = ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise IdentError(
                    f"{part} is not an IPv4 or IPv6 network (write it as 10.0.0.0/24)."
                ) from error
            raise IdentError(f"{part} has host bits set; the network is {loose}.") from error
    try:
        address = ipaddress.ip_address(part)
    except ValueError as error:
        raise IdentError(f"{part} is not an IPv4 or IPv6 address.") from error
    return ipaddress.ip_network(address)


def display(network: Network) -> str:
    """A network as the operator writes it: a single address without its /32 or /128."""
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def canonical(network: Network) -> str:
    """The stored form of a network in AccountNetwork (always with the prefix length)."""
    return str(network)


def ip_ident_text(networks: Sequence[Network]) -> str:
    """The normalised `ip` ident value stored in Account.ident_value."""
    return "; ".join(display(network) for network in networks)


def normalise_ident(ident_by: str, value: str) -> tuple[str, list[Network]]:
    """Check and normalise an ident value: (text to store, networks for `ip`)."""
    value = (value or "").strip()
    if ident_by == "ip":
        networks = parse_networks(value)
        text = ip_ident_text(networks)
        if len(text) > 2000:
            raise IdentError("Too many addresses for one account (2,000 characters at most).")
        return text, networks
    if not value:
        raise IdentError("Enter the login name." if ident_by == "name" else "Enter the ANI (digits).")
    if ident_by == "name":
        if len(value) > 120:
            raise IdentError("A login name has 120 characters at most.")
        if not LOGIN_RE.match(value):
            raise IdentError("A login name may hold letters, digits and . _ - @ + (no spaces).")
        return value, []
    if ident_by == "ani":
        digits = value[1:] if value.startswith("+") else value
        if not ANI_RE.match(digits) or len(digits) > 32:
            raise IdentError("An ANI is digits only (a leading + is dropped), 32 at most.")
        return digits, []
    raise IdentError("Choose IP, Name or ANI.")


def normalise_tech_prefix(value: str) -> str:
    """A tech prefix: empty, or digits optionally ending in `#`."""
    value = (value or "").strip()
    if value and (not TECH_PREFIX_RE.match(value) or len(value) > 32):
        raise IdentError("A tech prefix is digits, optionally ending in #, 32 characters at most.")
    return value


def normalise_tags(value: str) -> str:
    """Tags as space-separated words (commas accepted), each listed once, in the order given."""
    words: list[str] = []
    for word in re.split(r"[\s,]+", (value or "").strip()):
        if not word:
            continue
        if not TAG_RE.match(word):
            raise IdentError(f"“{word[:40]}” is not a tag: use letters, digits and . _ - : (40 at most).")
        if word not in words:
            words.append(word)
    text = " ".join(words)
    if len(text) > 500:
        raise IdentError("Too many tags (500 characters at most).")
    return text


def normalise_proxy(value: str) -> str:
    """A proxy as host[:port]: a host name, an IPv4 address or a bracketed IPv6 address."""
    value = (value or "").strip()
    if not value:
        return ""
    host, port = value, None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise IdentError("Write an IPv6 proxy as [2001:db8::1]:5060.")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise IdentError("Write an IPv6 proxy as [2001:db8::1]:5060.")
            port = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as error:
            raise IdentError(f"{host} is not an IPv6 address.") from error
    else:
        if value.count(":") > 1:
            raise IdentError("Write an IPv6 proxy in brackets: [2001:db8::1]:5060.")
        if ":" in value:
            host, port = value.split(":", 1)
        if not HOST_RE.match(host):
            raise IdentError(f"{host or value} is not a host name or IPv4 address.")
    if port is not None and (not is_digits(port) or not 1 <= int(port) <= 65535):
        raise IdentError("The proxy's port must be a number from 1 to 65535.")
    return value


def terminator_address(networks: Sequence[Network], proxy: str) -> str:
    """Where calls to a terminator go: its proxy, else its first ident IP (an address, not a network)."""
    if proxy:
        return proxy
    for network in networks:
        if network.num_addresses == 1:
            return str(network.network_address)
    return ""


@dataclass
class Candidate:
    """The identity of an account being saved, as the conflict checks need it."""

    account_id: int | None
    ident_by: str
    ident_value: str
    networks: list[str]  # canonical
    tech_prefix: str
    gateway_ids: frozenset[int]
    orig_enabled: bool
    term_enabled: bool
    protocol: str
    port: int


@dataclass
class Conflict:
    """Another account that makes the identity ambiguous; `field` is the form field the message belongs to."""

    field: str
    message: str
    account: Account


def gateways_overlap(first: Iterable[int], second: Iterable[int]) -> bool:
    """Gateway sets overlap when they share a gateway, or when either is empty (it matches every gateway)."""
    first, second = set(first), set(second)
    return not first or not second or bool(first & second)


def _others_sharing(candidate: Candidate, extra) -> list[Account]:
    """Accounts (other than the candidate) with an equal ident value and the condition `extra`."""
    if candidate.ident_by == "ip":
        if not candidate.networks:
            return []
        shared = select(AccountNetwork.account_id).where(AccountNetwork.network.in_(candidate.networks))
        condition = and_(Account.ident_by == "ip", Account.id.in_(shared))
    else:
        condition = and_(Account.ident_by == candidate.ident_by, Account.ident_value == candidate.ident_value)
    stmt = (
        select(Account)
        .where(condition, extra)
        .options(selectinload(Account.gateways), selectinload(Account.networks), joinedload(Account.client))
        .order_by(Account.id)
    )
    if candidate.account_id is not None:
        stmt = stmt.where(Account.id != candidate.account_id)
    return list(db.session.scalars(stmt))


def find_conflicts(candidate: Candidate) -> list[Conflict]:
    """Every rule of SPEC §2 the candidate breaks, each naming the other account."""
    conflicts: list[Conflict] = []
    if candidate.orig_enabled:
        for other in _others_sharing(
            candidate, and_(Account.orig_enabled, Account.tech_prefix == candidate.tech_prefix)
        ):
            if gateways_overlap(candidate.gateway_ids, (g.id for g in other.gateways)):
                conflicts.append(Conflict("ident_value", _orig_message(candidate, other), other))
                break
    if candidate.term_enabled and candidate.ident_by == "ip":
        term = and_(
            Account.term_enabled, Account.protocol == candidate.protocol, Account.port == candidate.port
        )
        for other in _others_sharing(candidate, term):
            if gateways_overlap(candidate.gateway_ids, (g.id for g in other.gateways)):
                conflicts.append(Conflict("ident_value", _term_message(candidate, other), other))
                break
    return conflicts


def _shared_text(candidate: Candidate, other: Account) -> str:
    """What the two identities share, as the operator reads it."""
    if candidate.ident_by != "ip":
        kind = "login" if candidate.ident_by == "name" else "ANI"
        return f"the {kind} {candidate.ident_value}"
    mine = set(candidate.networks)
    shared = [display(ipaddress.ip_network(n.network)) for n in other.networks if n.network in mine]
    return (
        ("the address " if "/" not in shared[0] else "the network ") + shared[0] if shared else "an address"
    )


def _orig_message(candidate: Candidate, other: Account) -> str:
    """The error for an ambiguous originator identity."""
    prefix = f"tech prefix {candidate.tech_prefix}" if candidate.tech_prefix else "no tech prefix"
    return (
        f"{_label(other)} (originator) already uses {_shared_text(candidate, other)} with {prefix} "
        "on overlapping gateways: calls could not be told apart. Change the ident value, the tech prefix "
        "or the gateways, or deactivate the originator of one of them."
    )


def _term_message(candidate: Candidate, other: Account) -> str:
    """The error for a terminator that shares an IP with the same protocol, port and gateways."""
    return (
        f"{_label(other)} (terminator) already uses {_shared_text(candidate, other)} with protocol "
        f"{candidate.protocol.upper()} and port {candidate.port} on overlapping gateways. Use a different "
        "protocol, port or gateways."
    )


def _label(other: Account) -> str:
    """Name the conflicting account when the user may see it; otherwise say only that one exists."""
    from panel.scope import user_company_ids

    client: Client | None = other.client
    if client is not None and client.company_id in user_company_ids():
        return f"Account #{other.id} “{other.name}” of client “{client.name}”"
    return "An account of another company"
