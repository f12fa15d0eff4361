"""What the rule pickers offer and how names in a rules file become ids (SPEC §4).

Terminator clients and accounts are those visible to the user; policies and time profiles those of the user's
companies and of the companies above it. Code names come from the plan's code deck: the longest deck code that
prefixes the rule code.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask_login import current_user
from sqlalchemy import exists, select

from panel.extensions import db
from panel.models import Account, Client, Code, CodeDeck, Company, Policy, TimeProfile
from panel.scope import ancestor_ids, descendant_ids, scope_condition, user_company_ids


def shared_company_ids(user=None) -> list[int]:
    """Companies whose policies and time profiles the user may pick: its subtree and its ancestors."""
    user = user or current_user
    return sorted(set(user_company_ids(user)) | set(ancestor_ids(user.company_id)))


def terminator_clients(user=None) -> list[tuple[int, str]]:
    """(id, name) of the visible clients with at least one terminator-enabled account, by name."""
    enabled = exists().where(Account.client_id == Client.id, Account.term_enabled.is_(True))
    stmt = (
        select(Client.id, Client.name)
        .where(scope_condition(Client, user_company_ids(user)), enabled)
        .order_by(Client.name, Client.id)
    )
    return [(row.id, row.name) for row in db.session.execute(stmt)]


def terminator_accounts(user=None) -> list[tuple[int, str]]:
    """(id, `client / account`) of the visible terminator-enabled accounts, by client and account name."""
    stmt = (
        select(Account.id, Client.name.label("client"), Account.name)
        .join(Client, Account.client_id == Client.id)
        .where(scope_condition(Account, user_company_ids(user)), Account.term_enabled.is_(True))
        .order_by(Client.name, Account.name, Account.id)
    )
    return [(row.id, f"{row.client} / {row.name}") for row in db.session.execute(stmt)]


def shared_names(model, user=None) -> list[tuple[int, str]]:
    """(id, name) of the objects of `model` the user may pick (policies, time profiles, code decks): those of
    the companies that share theirs with the user's company, by name."""
    stmt = (
        select(model.id, model.name)
        .where(model.company_id.in_(shared_company_ids(user)))
        .order_by(model.name, model.id)
    )
    return [(row.id, row.name) for row in db.session.execute(stmt)]


def policies(user=None) -> list[tuple[int, str]]:
    """(id, name) of the policies the user may pick."""
    return shared_names(Policy, user)


def time_profiles(user=None) -> list[tuple[int, str]]:
    """(id, name) of the time profiles the user may pick."""
    return shared_names(TimeProfile, user)


def code_decks(user=None) -> list[tuple[int, str]]:
    """(id, name) of the code decks the user may pick."""
    return shared_names(CodeDeck, user)


def code_prefix(code: str) -> str:
    """The digits of a rule code before its first `*`: what the deck is searched with."""
    return (code or "").split("*", 1)[0]


def code_names(code_deck_id: int | None, codes: Iterable[str]) -> dict[str, str]:
    """Name of each rule code from the deck: the longest deck code that prefixes it ('' when none)."""
    codes = {c for c in codes if c}
    if not code_deck_id or not codes:
        return {}
    prefixes = {p[:i] for p in map(code_prefix, codes) for i in range(1, len(p) + 1)}
    if not prefixes:
        return {}
    names: dict[str, str] = {}
    wanted = sorted(prefixes)
    for start in range(0, len(wanted), 5000):
        stmt = select(Code.code, Code.name).where(
            Code.code_deck_id == code_deck_id, Code.code.in_(wanted[start : start + 5000])
        )
        names.update({row.code: row.name for row in db.session.execute(stmt)})
    result = {}
    for code in codes:
        prefix = code_prefix(code)
        for i in range(len(prefix), 0, -1):
            if prefix[:i] in names:
                result[code] = names[prefix[:i]]
                break
    return result


def code_name(code_deck_id: int | None, code: str) -> str:
    """The name of one rule code from the deck ('' when the deck has no prefix of it)."""
    return code_names(code_deck_id, [code]).get(code, "")


class Ambiguous(LookupError):
    """More than one object has the name, and none is nearer to the plan's owner than the others."""


@dataclass
class _Named:
    """Objects by name, with each one's distance from the plan's owner (0 = the owner's own)."""

    by_name: dict = field(default_factory=dict)

    def add(self, key, object_id: int, rank: int, where: str) -> None:
        """Remember one object under its name."""
        self.by_name.setdefault(key, []).append((rank, object_id, where))

    def find(self, key) -> int | None:
        """The id of the nearest object with this name; None when there is none; Ambiguous on a tie."""
        found = self.by_name.get(key)
        if not found:
            return None
        best = min(rank for rank, _, _ in found)
        nearest = [(object_id, where) for rank, object_id, where in found if rank == best]
        if len(nearest) > 1:
            raise Ambiguous(", ".join(sorted(where for _, where in nearest)))
        return nearest[0][0]


class NameResolver:
    """Resolve the names of a rules file to ids with dictionaries built once.

    Terminator clients and accounts, policies and time profiles. When two objects share a name, the one owned
    by the plan's company wins, then the nearest company above it; a tie among others is ambiguous.
    """

    def __init__(self, owner_company_id: int, user=None):
        visible = user_company_ids(user)
        chain = ancestor_ids(owner_company_id)
        below = descendant_ids(owner_company_id)
        company_names = dict(db.session.execute(select(Company.id, Company.name)).all())

        def rank(company_id: int) -> int:
            if company_id in chain:
                return chain.index(company_id)
            return 1000 if company_id in below else 2000

        self.clients, self.accounts = _Named(), _Named()
        self.policies, self.time_profiles = _Named(), _Named()
        client_rows = db.session.execute(
            select(Client.id, Client.name, Client.company_id).where(scope_condition(Client, visible))
        )
        client_info = {}
        for row in client_rows:
            where = f"client of {company_names.get(row.company_id, '?')}"
            self.clients.add(row.name, row.id, rank(row.company_id), where)
            client_info[row.id] = (row.name, row.company_id)
        account_rows = db.session.execute(
            select(Account.id, Account.name, Account.client_id).where(scope_condition(Account, visible))
        )
        for row in account_rows:
            client_name, company_id = client_info[row.client_id]
            where = f"account of {company_names.get(company_id, '?')}"
            self.accounts.add((client_name, row.name), row.id, rank(company_id), where)
        shared = shared_company_ids(user)
        for model, named in ((Policy, self.policies), (TimeProfile, self.time_profiles)):
            rows = db.session.execute(
                select(model.id, model.name, model.company_id).where(model.company_id.in_(shared))
            )
            for row in rows:
                named.add(row.name, row.id, rank(row.company_id), company_names.get(row.company_id, "?"))

    def client(self, name: str) -> int | None:
        """The id of the terminator client with this name."""
        return self.clients.find(name.strip())

    def account(self, text: str) -> int | None:
        """The id of the account named `client/account` (either name may itself contain `/`)."""
        matches = set()
        for i, char in enumerate(text):
            if char == "/":
                key = (text[:i].strip(), text[i + 1 :].strip())
                found = self.accounts.find(key)
                if found is not None:
                    matches.add(found)
        if len(matches) > 1:
            raise Ambiguous("several client/account splits")
        return matches.pop() if matches else None

    def policy(self, name: str) -> int | None:
        """The id of the routing policy with this name."""
        return self.policies.find(name.strip())

    def time_profile(self, name: str) -> int | None:
        """The id of the time profile with this name."""
        return self.time_profiles.find(name.strip())
