"""A small world for the security tests: the company tree and one object of every kind in Alpha and in Beta.

URL variables are filled by name (`account_id` -> an Account, ...; the names are fixed in HELPERS.md), so
every new route is requested without editing the tests. Names of Alpha's objects carry the marker `zqalpha`
and Beta's `zqbeta`, so a page that shows another company's data is easy to catch.
"""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import func, select, text

from panel import audit
from panel.api.auth import hash_token
from panel.extensions import db
from panel.models import ApiToken, CallStat, Code, Company, Rate, User
from panel.models.system import ImportJob
from tests import factories
from tests.conftest import _empty_tables

ALPHA_MARK = "zqalpha"
BETA_MARK = "zqbeta"

# URL variable -> attribute of a company's object set (see _objects). One entry per model, named after it.
URL_VARIABLES = {
    "account_id": "account",
    "client_id": "client",
    "gateway_id": "gateway",
    "rate_table_id": "rate_table",
    "rate_id": "rate",
    "code_deck_id": "code_deck",
    "code_id": "code",
    "time_profile_id": "time_profile",
    "policy_id": "policy",
    "did_id": "did",
    "plan_id": "plan",
    "rule_id": "rule",
    "company_id": "company",
    "user_id": "user",
    "token_id": "token",
    "import_job_id": "import_job",
    "entry_id": "entry",
    "stat_id": "stat",
}
# Tables whose rows change without anyone changing data (login attempts, the manager's bookkeeping).
VOLATILE_TABLES = {"login_attempts", "manager_runs", "manager_lease"}


def _objects(tree, company, mark: str, number: str, author) -> SimpleNamespace:
    """One object of every kind owned by `company` (a sub-company holds the company and user targets)."""
    ns = SimpleNamespace()
    ns.gateway = factories.gateway(company, f"gw-{mark}", "192.0.2.1" if mark == ALPHA_MARK else "192.0.2.2")
    ns.rate_table = factories.rate_table(company, f"rates-{mark}", rates=[("44", "0.0100")])
    ns.rate = db.session.scalar(select(Rate).where(Rate.rate_table_id == ns.rate_table.id))
    ns.code_deck = factories.code_deck(company, f"deck-{mark}", codes=[("44", f"UK {mark}", "GB")])
    ns.code = db.session.scalars(select(Code).where(Code.code_deck_id == ns.code_deck.id)).one()
    ns.time_profile = factories.time_profile(company, f"hours-{mark}")
    ns.policy = factories.policy(company, f"policy-{mark}", rate_weight=1)
    ns.client = factories.client(company, f"client-{mark}", orig_rate_table_id=ns.rate_table.id)
    ns.account = factories.account(
        ns.client,
        f"acc-{mark}",
        ident_by="name",
        ident_value=f"login-{mark}",
        orig_enabled=True,
        term_enabled=True,
        orig_rate_table_id=ns.rate_table.id,
        term_rate_table_id=ns.rate_table.id,
    )
    ns.did = factories.did(ns.account, number)
    ns.plan = factories.plan(company, f"plan-{mark}", code_deck_id=ns.code_deck.id)
    ns.rule = factories.rule(ns.plan, "44", terminator_client_id=ns.client.id, balancing=50)
    ns.company = factories.company(f"sub-{mark}", "sub_reseller", company)
    ns.user = factories.user(ns.company, "operator", f"user-{mark}")
    ns.token_secret = f"rp_{mark}"
    ns.token = ApiToken(
        company_id=company.id, name=f"token-{mark}", token_hash=hash_token(ns.token_secret), prefix=mark[:6]
    )
    db.session.add(ns.token)
    ns.import_job = ImportJob(
        company_id=company.id, kind="rates", target_id=ns.rate_table.id, target_label=ns.rate_table.name,
        filename=f"{mark}.csv", mode="append", status="done", message="1 rate imported",
    )  # fmt: skip
    db.session.add(ns.import_job)
    ns.stat = CallStat(
        call_id=f"call-{mark}", orig_account_id=ns.account.id, orig_client_id=ns.client.id,
        term_account_id=ns.account.id, term_client_id=ns.client.id, number="441234567",
        orig_code="44", term_code="44", start_at=datetime(2024, 1, 1, tzinfo=UTC), duration=60,
        orig_billed=60, term_billed=60, customer_rate=Decimal("0.01"), vendor_rate=Decimal("0.01"),
        customer_charge=Decimal("0.01"), vendor_cost=Decimal("0.01"), answered=True, sip_code=200,
    )  # fmt: skip
    db.session.add(ns.stat)
    db.session.flush()
    ns.entry = audit.record("create", ns.client, user=author)
    db.session.flush()
    # Ids are kept apart from the objects: a write of the matrix may delete an object.
    ns.ids = {attr: (type(getattr(ns, attr)), getattr(ns, attr).id) for attr in URL_VARIABLES.values()}
    return ns


def _reset() -> None:
    """Delete every row; on PostgreSQL DELETE of a few rows is much quicker than TRUNCATE."""
    if db.engine.dialect.name != "postgresql":
        _empty_tables()
        return
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


def build() -> SimpleNamespace:
    """Empty the database and create the tree with Alpha's and Beta's objects; returns the namespace."""
    db.session.rollback()
    db.session.expunge_all()
    _reset()
    tree = factories.company_tree()
    world = SimpleNamespace(tree=tree)
    world.alpha = _objects(tree, tree.alpha, ALPHA_MARK, "4420000001", tree.alpha_admin)
    world.beta = _objects(tree, tree.beta, BETA_MARK, "4420000002", tree.beta_admin)
    db.session.commit()
    world.signature = signature(world)
    return world


def signature(world: SimpleNamespace) -> tuple:
    """What the matrix relies on: every object of the world exists, and the logins and tokens are unchanged.

    A write that leaves the signature alone (a copy, a balance change) does not cost a rebuild of the world.
    """
    db.session.rollback()
    present = []
    for objects in (world.alpha, world.beta):
        for model, object_id in objects.ids.values():
            present.append(
                db.session.scalar(select(func.count()).select_from(model).where(model.id == object_id))
            )
    companies = db.session.execute(select(Company.id, Company.active).order_by(Company.id)).all()
    users = db.session.execute(
        select(User.id, User.active, User.role, User.company_id, User.session_version).order_by(User.id)
    ).all()
    tokens = db.session.execute(select(ApiToken.id, ApiToken.revoked_at).order_by(ApiToken.id)).all()
    return tuple(present), tuple(companies), tuple(users), tuple(tokens)


def fill(rule, objects: SimpleNamespace) -> dict[str, int]:
    """URL values for a rule's variables from one company's objects; KeyError names an unknown variable."""
    return {name: objects.ids[URL_VARIABLES[name]][1] for name in rule.arguments}


def _tables() -> list:
    """The tables that hold data, in a fixed order."""
    return [t for t in db.metadata.sorted_tables if t.name not in VOLATILE_TABLES]


def fingerprint() -> tuple:
    """Row counts of the tables holding data and the newest audit entry: they move when data is written."""
    db.session.rollback()
    # One plain statement (compiled once) keeps the thousands of checks of the matrix cheap.
    # Table names come from the model's metadata, not from input.
    counts = ", ".join(f'(SELECT count(*) FROM "{t.name}")' for t in _tables())  # noqa: S608
    return tuple(db.session.execute(text(f"SELECT {counts}, (SELECT max(id) FROM audit_entries)")).one())  # noqa: S608


def describe_change(before: tuple, after: tuple) -> str:
    """Which tables changed between two fingerprints."""
    tables = [t.name for t in _tables()] + ["newest audit entry"]
    return ", ".join(f"{name} {b}->{a}" for name, b, a in zip(tables, before, after, strict=True) if b != a)
