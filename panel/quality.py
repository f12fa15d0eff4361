"""Call quality (SPEC §6): ASR and ACD defined once, for the Traffic Rules manager and the statistics pages.

- **ASR** = answered calls in % of attempts;
- **ACD** = answered seconds / 60 / answered calls (minutes); 0 when attempts were made and none answered.

The formula exists in two forms, side by side here and held equal by tests: in SQL (`asr_sql`, `acd_sql`),
for pages that sort and page by it, and in Python over summed figures (`asr`, `acd`), exact decimals, for
the manager's stored figures and the totals under a list of calls. The manager stores ASR and ACD rounded to
two places (half up) and leaves them empty with fewer than `QUALITY_MIN_CALLS` attempts, so routing ignores
thin figures.
"""

import hashlib
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Integer, Select, case, cast, delete, func, select, update

from panel.extensions import db
from panel.models import CallStat, Quality

# Per call record: 1 when answered; its seconds when answered.
ANSWERED = cast(CallStat.answered, Integer)
ANSWERED_SECONDS = case((CallStat.answered, CallStat.duration), else_=0)
TWO_PLACES = Decimal("0.01")


def asr_sql(answered, attempts):
    """ASR (%) of grouped rows in SQL: `answered` and `attempts` are the group's sums."""
    return cast(answered, Integer) * 100.0 / attempts


def acd_sql(answered, seconds):
    """ACD (minutes) of grouped rows in SQL; NULL when nothing was answered."""
    return case((answered > 0, seconds / 60.0 / answered), else_=None)


def asr(answered: int, attempts: int) -> Decimal | None:
    """ASR (%) of summed figures; None without attempts."""
    return Decimal(answered) * 100 / Decimal(attempts) if attempts else None


def acd(answered: int, seconds: int) -> Decimal | None:
    """ACD (minutes) of summed figures; None when nothing was answered."""
    return Decimal(seconds) / 60 / Decimal(answered) if answered else None


def figures(
    attempts: int, answered: int, answered_seconds: int, pdd: float | None, min_calls: int
) -> tuple[Decimal | None, Decimal | None, int | None]:
    """(ASR %, ACD minutes, PDD ms) as the manager stores them; None with fewer than `min_calls` attempts."""
    if attempts < max(min_calls, 1):
        return None, None, None
    rate = asr(answered, attempts).quantize(TWO_PLACES, ROUND_HALF_UP)
    length = acd(answered, answered_seconds)
    length = length.quantize(TWO_PLACES, ROUND_HALF_UP) if length is not None else Decimal("0.00")
    return rate, length, (round(pdd) if pdd is not None else None)


def statement(since: datetime, until: datetime) -> Select:
    """Attempts, answered calls, answered seconds and mean PDD per terminator account and vendor code."""
    return (
        select(
            CallStat.term_account_id,
            CallStat.term_code.label("code"),
            func.count().label("attempts"),
            func.sum(ANSWERED).label("answered"),
            func.sum(ANSWERED_SECONDS).label("answered_seconds"),
            func.avg(CallStat.pdd_ms).label("pdd_ms"),
        )
        .where(CallStat.start_at >= since, CallStat.start_at < until, CallStat.term_account_id.is_not(None))
        .group_by(CallStat.term_account_id, CallStat.term_code)
    )


def recompute(config, now: datetime) -> tuple[int, str]:
    """Rewrite the quality table from the window's call records (only rows that changed are written).

    `config` is the app's config (QUALITY_WINDOW_HOURS, QUALITY_MIN_CALLS). Returns the number of quality
    rows and a digest of the figures routing uses.
    """
    window = timedelta(hours=float(config.get("QUALITY_WINDOW_HOURS", 24)))
    min_calls = int(config.get("QUALITY_MIN_CALLS", 10))
    fresh: dict[tuple[int, str], tuple] = {}
    for row in db.session.execute(statement(now - window, now)):
        rate, length, pdd = figures(
            int(row.attempts), int(row.answered or 0), int(row.answered_seconds or 0), row.pdd_ms, min_calls
        )
        fresh[(row.term_account_id, row.code)] = (
            int(row.attempts),
            int(row.answered or 0),
            rate,
            length,
            pdd,
        )
    existing = {
        (q.term_account_id, q.code): (q.id, (q.attempts, q.answered, q.asr, q.acd, q.pdd_ms))
        for q in db.session.execute(
            select(
                Quality.id,
                Quality.term_account_id,
                Quality.code,
                Quality.attempts,
                Quality.answered,
                Quality.asr,
                Quality.acd,
                Quality.pdd_ms,
            )
        )
    }
    inserts, updates = [], []
    for key, values in fresh.items():
        row_figures = dict(zip(("attempts", "answered", "asr", "acd", "pdd_ms"), values, strict=True))
        if key not in existing:
            inserts.append({"term_account_id": key[0], "code": key[1], "computed_at": now, **row_figures})
        elif existing[key][1] != values:
            updates.append({"id": existing[key][0], "computed_at": now, **row_figures})
    gone = [qid for key, (qid, _v) in existing.items() if key not in fresh]
    if inserts:
        db.session.execute(Quality.__table__.insert(), inserts)
    if updates:
        db.session.execute(update(Quality), updates)
    for start in range(0, len(gone), 1000):
        db.session.execute(delete(Quality).where(Quality.id.in_(gone[start : start + 1000])))
    digest = hashlib.sha1(usedforsecurity=False)
    for key in sorted(fresh):
        _attempts, _answered, rate, length, pdd = fresh[key]
        if rate is not None:
            digest.update(f"{key[0]}|{key[1]}|{rate}|{length}|{pdd};".encode())
    return len(fresh), digest.hexdigest()[:12]
