"""The demo data and the first-admin command: what `make run` and a real install rely on."""

from decimal import Decimal

from sqlalchemy import func, select

from panel import demo
from panel.extensions import db
from panel.models import Account, Client, Company, Policy, Rate, RoutingRule, User


def test_demo_data_is_a_believable_carrier(app, client):
    """The demo has the company tree, users of each role, a dozen clients, every ident kind and rule type."""
    assert demo.load(if_empty=True) is True
    kinds = set(db.session.scalars(select(Company.kind)))
    assert {"root", "reseller", "sub_reseller", "manager"} <= kinds
    assert set(db.session.scalars(select(User.role))) == {"admin", "operator", "viewer"}
    assert db.session.scalar(select(func.count()).select_from(Client)) >= 12
    assert set(db.session.scalars(select(Account.ident_by))) == {"ip", "name", "ani"}
    assert any(
        "/" in v for v in db.session.scalars(select(Account.ident_value).where(Account.ident_by == "ip"))
    )
    assert set(db.session.scalars(select(RoutingRule.type))) == {
        "static_client",
        "static_account",
        "dynamic",
        "did",
    }
    per_table = db.session.execute(
        select(Rate.rate_table_id, func.count()).group_by(Rate.rate_table_id)
    ).all()
    assert min(count for _, count in per_table) > 2000
    # Balances were charged for the demo calls (Decimal end to end).
    balance = db.session.scalar(select(Client.balance).where(Client.name == "Acme Calls"))
    assert isinstance(balance, Decimal) and balance < Decimal(5000)
    # A second load with --if-empty does nothing.
    assert demo.load(if_empty=True) is False
    # The README's demo password works.
    username, password = demo.DEMO_USERS[0][:2]
    response = client.post("/auth/login", data={"username": username, "password": password})
    assert response.status_code == 302


def test_create_admin_makes_the_first_login(app, client):
    """`flask create-admin` on an empty database creates the root company and an admin who can log in."""
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-admin", "--username", "boss"], input="S3cret-pass-1\nS3cret-pass-1\n"
    )
    assert result.exit_code == 0, result.output
    assert "Admin boss created" in result.output
    user = db.session.scalar(select(User).where(User.username == "boss"))
    assert user.role == "admin" and user.company.kind == "root"
    # The shipped routing policies exist from the start.
    names = set(db.session.scalars(select(Policy.name).where(Policy.company_id == user.company_id)))
    assert names == {"Simple LCR", "Simple Quality", "Proportional", "Random"}
    assert (
        client.post("/auth/login", data={"username": "boss", "password": "S3cret-pass-1"}).status_code == 302
    )
    # A weak password is refused with a reason.
    result = runner.invoke(args=["create-admin", "--username", "weak"], input="short\nshort\n")
    assert result.exit_code != 0 and "at least 10 characters" in result.output
