"""One quality formula (panel/quality.py): the SQL form the pages sort by and the Python form the manager
stores give the same ASR and ACD for the same calls."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from panel import quality
from panel.extensions import db
from panel.models import CallStat
from tests import factories


def _calls(term, durations: list[int]) -> None:
    """Calls to `term`'s account for code 44, one per duration (0 = not answered)."""
    now = datetime.now(UTC)
    for n, seconds in enumerate(durations):
        db.session.add(
            CallStat(
                call_id=f"q-{term.id}-{n}",
                term_account_id=term.id,
                term_client_id=term.client_id,
                term_code="44",
                number="4420794600123",
                start_at=now - timedelta(minutes=5),
                duration=seconds,
                answered=seconds > 0,
                customer_charge=Decimal("0"),
                vendor_cost=Decimal("0"),
            )
        )
    db.session.commit()


def test_sql_and_python_forms_agree(tree):
    """3 answered calls of 60, 90 and 100 s out of 7: ASR 42.857…%, ACD 1.388… min in both forms."""
    vendor = factories.client(tree.root, "Vendor")
    term = factories.account(vendor, "v1", term_enabled=True)
    _calls(term, [60, 90, 100, 0, 0, 0, 0])
    answered = func.sum(quality.ANSWERED)
    seconds = func.sum(quality.ANSWERED_SECONDS)
    row = db.session.execute(
        select(
            func.count(),
            answered,
            seconds,
            quality.asr_sql(answered, func.count()),
            quality.acd_sql(answered, seconds),
        )
    ).one()
    attempts, answered_n, seconds_n, sql_asr, sql_acd = row
    assert (attempts, answered_n, seconds_n) == (7, 3, 250)
    assert abs(Decimal(str(sql_asr)) - quality.asr(answered_n, attempts)) < Decimal("1e-9")
    assert abs(Decimal(str(sql_acd)) - quality.acd(answered_n, seconds_n)) < Decimal("1e-9")
    assert quality.figures(attempts, answered_n, seconds_n, None, min_calls=5)[:2] == (
        Decimal("42.86"),
        Decimal("1.39"),
    )


def test_no_answer_and_thin_figures():
    """No answered call: ACD none (the manager stores 0 with enough attempts); too few attempts: nothing."""
    assert quality.acd(0, 0) is None and quality.asr(0, 0) is None
    assert quality.figures(10, 0, 0, 120.4, min_calls=10) == (Decimal("0.00"), Decimal("0.00"), 120)
    assert quality.figures(9, 9, 900, None, min_calls=10) == (None, None, None)
