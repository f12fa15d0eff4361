"""Fixtures for the routing tests: a small carrier built with tests/factories.py and a `routing` helper.

`world` is the base scenario most tests extend: Operator company with a customer (Cust, account `cust` at
198.51.100.10) priced by `Customer rates`, and three vendors (V1, V2, V3) each with one terminator account and
its own rate table. A test adds rules to `world.plan` and routes with `routing(number, ...)`.
"""

import random
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from panel.extensions import db
from panel.routing.build import build_snapshot
from panel.routing.engine import RouteQuery, route
from panel.routing.ratestore import RateStore
from tests import factories as f

MONDAY_NOON = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


class FixedLive:
    """Live-call counts given as dicts (the shape panel.livecalls provides)."""

    def __init__(self, orig=None, term=None, rule=None):
        self._orig, self._term, self._rule = orig or {}, term or {}, rule or {}

    def orig(self, account_id: int) -> int:
        return self._orig.get(account_id, 0)

    def term(self, account_id: int) -> int:
        return self._term.get(account_id, 0)

    def rule(self, rule_id: int) -> int:
        return self._rule.get(rule_id, 0)


# The routing tests route with rate tables mapped from files, as the panel does (panel.routing.ratestore).
STORE_DIR = Path(tempfile.mkdtemp(prefix="panel-routing-tests-"))


@pytest.fixture(scope="session", autouse=True)
def _store_dir():
    """Remove the tests' rate table files at the end of the run."""
    yield STORE_DIR
    shutil.rmtree(STORE_DIR, ignore_errors=True)


def snapshot():
    """A snapshot of what the session holds now (flushed, not necessarily committed)."""
    db.session.flush()
    return build_snapshot(db.session, store=RateStore.at(STORE_DIR))


def run(number: str, *, snap=None, rng=None, live=None, **query):
    """Route `number` with a fresh snapshot (or `snap`); defaults: the customer's address, Monday noon UTC."""
    query.setdefault("at", MONDAY_NOON)
    if "account_id" not in query and not any(k in query for k in ("src_ip", "login", "ani")):
        query["src_ip"] = "198.51.100.10"
    return route(
        snap or snapshot(), RouteQuery(number=number, **query), rng=rng or random.Random(7), live=live
    )


def vendor(company, name: str, rates, *, ip: str, **fields):
    """A vendor client with one terminator account (named after the client, lower case) and its rate table."""
    table = f.rate_table(company, f"{name} rates", rates)
    client = f.client(company, name)
    account = f.account(
        client, name.lower(), ident_value=ip, term_enabled=True, term_rate_table_id=table.id, **fields
    )
    return SimpleNamespace(client=client, account=account, table=table)


@pytest.fixture
def world(app):
    """Operator > customer Cust (plan Main, 44 at 0.10, 1 at 0.02) and vendors V1-V3 (44 at .05/.06/.07)."""
    root = f.company("Operator", "root")
    plan = f.plan(root, "Main")
    customer_rates = f.rate_table(root, "Customer rates", [("44", "0.10"), ("1", "0.02"), ("49", "0.08")])
    cust_client = f.client(root, "Cust", orig_rate_table_id=customer_rates.id, routing_plan_id=plan.id)
    cust = f.account(cust_client, "cust", ident_value="198.51.100.10", orig_enabled=True)
    v1 = vendor(root, "V1", [("44", "0.05"), ("1", "0.010")], ip="203.0.113.1")
    v2 = vendor(root, "V2", [("44", "0.06"), ("1", "0.011")], ip="203.0.113.2")
    v3 = vendor(root, "V3", [("44", "0.07"), ("1", "0.012")], ip="203.0.113.3")
    lcr = f.policy(root, "Simple LCR", rate_weight=1)
    db.session.flush()
    return SimpleNamespace(
        root=root,
        plan=plan,
        customer_rates=customer_rates,
        cust_client=cust_client,
        cust=cust,
        v1=v1,
        v2=v2,
        v3=v3,
        lcr=lcr,
    )
