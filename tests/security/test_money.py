"""Money is exact on both databases (issue 13.14): balances and totals are decimals, never floating point.

On SQLite a NUMERIC column holds a float: 100,000 charges of 0.000001 taken from a balance in the billions
drift by a sizeable fraction of a cent. `panel.models.types.Money` stores millionths as integers there.
"""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import bindparam, func, insert, select, update

from panel.extensions import db
from panel.models import CallStat, Client
from panel.stats.queries import totals
from tests import factories

CHARGES = 100_000
MICRO = Decimal("0.000001")
# A balance near the top of NUMERIC(18, 6): a float holds it to about 2 millionths only.
BIG = Decimal("9999999999.000000")


def test_100000_charges_of_a_millionth_sum_exactly(app, tree):
    """SUM over 100,000 stored charges of 0.000001 (and one large one) is exact, also through the totals
    the statistics pages show."""
    client = factories.client(tree.alpha, "Acme")
    db.session.commit()
    start = datetime(2026, 5, 1, tzinfo=UTC)
    base = {"number": "441234567", "start_at": start, "orig_client_id": client.id, "vendor_cost": 0}
    rows = [{**base, "call_id": f"c{i}", "customer_charge": MICRO} for i in range(CHARGES)]
    rows.append({**base, "call_id": "big", "customer_charge": BIG})
    db.session.execute(insert(CallStat), rows)
    db.session.commit()
    assert db.session.scalar(select(func.sum(CallStat.customer_charge))) == BIG + Decimal("0.1")
    small = db.session.scalar(select(func.sum(CallStat.customer_charge)).where(CallStat.call_id != "big"))
    assert small == Decimal("0.1")
    everything = CallStat.orig_client_id == client.id
    assert totals([everything], everything, everything).revenue == BIG + Decimal("0.1")


def test_100000_debits_of_a_millionth_leave_an_exact_balance(app, tree):
    """`balance = balance - :total` (how CDRs charge a client) 100,000 times from a balance in the billions
    leaves exactly 0.1 less (on SQLite a float balance drifted by 0.09)."""
    client = factories.client(tree.alpha, "Acme", balance=BIG)
    db.session.commit()
    table = Client.__table__
    debit = (
        update(table)
        .where(table.c.id == bindparam("client"))
        .values(balance=table.c.balance - bindparam("total"))
    )
    # PostgreSQL's NUMERIC is exact by itself and its executemany is one round trip per row: fewer there.
    count = 1_000 if db.engine.dialect.name == "postgresql" else CHARGES
    db.session.connection().execute(debit, [{"client": client.id, "total": MICRO}] * count)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Client, client.id).balance == BIG - MICRO * count
