"""Test data factories: small functions that create one object with sensible defaults and flush it."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from panel.auth.passwords import hash_password
from panel.extensions import db
from panel.models.accounts import Account, AccountNetwork, Client, Gateway
from panel.models.companies import Company, User
from panel.models.rates import Code, CodeDeck, Did, Policy, Rate, RateTable, TimeProfile
from panel.models.routing import RoutingPlan, RoutingRule

PASSWORD = "correct-horse-9"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _add(obj):
    db.session.add(obj)
    db.session.flush()
    return obj


def company(name: str, kind: str = "reseller", parent: Company | None = None) -> Company:
    """A company under `parent`."""
    return _add(Company(name=name, kind=kind, parent_id=parent.id if parent else None))


def user(company_: Company, role: str = "operator", username: str | None = None) -> User:
    """A user with the password factories.PASSWORD."""
    username = username or f"{company_.name.lower().replace(' ', '_')}_{role}"
    return _add(
        User(company_id=company_.id, username=username, role=role, password_hash=hash_password(PASSWORD))
    )


def company_tree() -> SimpleNamespace:
    """Operator > Alpha > Alpha Sub, Operator > Beta, with users of each role (see conftest.tree)."""
    root = company("Operator", "root")
    alpha = company("Alpha", "reseller", root)
    sub = company("Alpha Sub", "sub_reseller", alpha)
    beta = company("Beta", "reseller", root)
    ns = SimpleNamespace(root=root, alpha=alpha, sub=sub, beta=beta)
    ns.root_admin = user(root, "admin", "root_admin")
    ns.alpha_admin = user(alpha, "admin", "alpha_admin")
    ns.alpha_operator = user(alpha, "operator", "alpha_operator")
    ns.alpha_viewer = user(alpha, "viewer", "alpha_viewer")
    ns.sub_operator = user(sub, "operator", "sub_operator")
    ns.beta_admin = user(beta, "admin", "beta_admin")
    db.session.commit()
    return ns


def gateway(company_: Company, name: str = "gw1", address: str = "192.0.2.1") -> Gateway:
    """A switch node."""
    return _add(Gateway(company_id=company_.id, name=name, address=address))


def client(company_: Company, name: str = "Client", **fields) -> Client:
    """A client of the company."""
    return _add(Client(company_id=company_.id, name=name, **fields))


def account(
    client_: Client, name: str = "acc", *, ident_by: str = "ip", ident_value: str = "", gateways=(), **fields
) -> Account:
    """An account; for ident_by ip the networks are parsed from ident_value (`;`-separated)."""
    acc = Account(client_id=client_.id, name=name, ident_by=ident_by, ident_value=ident_value, **fields)
    if ident_by == "ip" and ident_value:
        for pos, net in enumerate(part.strip() for part in ident_value.split(";") if part.strip()):
            acc.networks.append(
                AccountNetwork(
                    network=net if "/" in net else net + ("/128" if ":" in net else "/32"), position=pos
                )
            )
    acc.gateways = list(gateways)
    return _add(acc)


def rate_table(company_: Company, name: str = "Rates", rates=(), currency: str = "USD") -> RateTable:
    """A rate table with rates given as (code, rate[, name]) or dicts of Rate fields."""
    table = _add(RateTable(company_id=company_.id, name=name, currency=currency))
    for item in rates:
        fields = (
            dict(item) if isinstance(item, dict) else dict(zip(("code", "rate", "name"), item, strict=False))
        )
        fields.setdefault("effective_from", EPOCH)
        fields["rate"] = Decimal(str(fields["rate"]))
        db.session.add(Rate(rate_table_id=table.id, **fields))
    db.session.flush()
    return table


def code_deck(company_: Company, name: str = "Deck", codes=()) -> CodeDeck:
    """A code deck with codes given as (code, name[, country])."""
    deck = _add(CodeDeck(company_id=company_.id, name=name))
    for item in codes:
        db.session.add(
            Code(code_deck_id=deck.id, code=item[0], name=item[1], country=item[2] if len(item) > 2 else "")
        )
    db.session.flush()
    return deck


def time_profile(
    company_: Company,
    name: str = "Office hours",
    weekdays: str = "12345",
    ranges: str = "08:00-18:00",
    timezone: str = "UTC",
) -> TimeProfile:
    """A time profile."""
    return _add(
        TimeProfile(company_id=company_.id, name=name, weekdays=weekdays, ranges=ranges, timezone=timezone)
    )


def policy(company_: Company, name: str = "Simple LCR", **weights) -> Policy:
    """A dynamic routing policy; weights as rate_weight=1, asr_weight=..."""
    return _add(Policy(company_id=company_.id, name=name, **weights))


def plan(company_: Company, name: str = "Plan", **fields) -> RoutingPlan:
    """A routing plan with the seed's defaults."""
    return _add(RoutingPlan(company_id=company_.id, name=name, **fields))


def rule(plan_: RoutingPlan, code: str = "", type: str = "static_client", **fields) -> RoutingRule:
    """A routing rule."""
    return _add(RoutingRule(plan_id=plan_.id, code=code, type=type, **fields))


def did(account_: Account, number: str) -> Did:
    """A DID assigned to a terminator account."""
    return _add(Did(account_id=account_.id, number=number))
