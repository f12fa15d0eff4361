"""Call records added up per hour and per day: what the statistics totals read instead of every call.

Kept by panel.stats.rollup.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from panel.extensions import db
from panel.models.types import Money, UTCDateTime


class _CallSums:
    """The calls of one period (by start, UTC) between one originator client and one terminator client,
    answered or not: how many, their answered seconds, the customers' charges and the vendors' costs.

    A client id of 0 stands for none (a call without a terminator), so the key has no NULL and one row per key
    is kept by an upsert. The ids are not foreign keys: a client is deleted only once its accounts are, and
    deleting an account takes its calls out of these figures too (panel.stats.rollup).
    """

    # How a row belongs to a company: either side's client, as for the calls themselves.
    __owner__ = ("orig_client.company_id", "term_client.company_id")

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    orig_client_id: Mapped[int] = mapped_column(default=0)
    term_client_id: Mapped[int] = mapped_column(default=0)
    answered: Mapped[bool] = mapped_column(default=False)
    calls: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[int] = mapped_column(default=0)  # the answered calls' durations
    revenue: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))  # customer charges
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))  # vendor costs

    @declared_attr
    def orig_client(cls):
        return relationship(
            "Client", primaryjoin=f"foreign({cls.__name__}.orig_client_id) == Client.id", viewonly=True
        )

    @declared_attr
    def term_client(cls):
        return relationship(
            "Client", primaryjoin=f"foreign({cls.__name__}.term_client_id) == Client.id", viewonly=True
        )


class CallHour(_CallSums, db.Model):
    """The calls of one hour (`hour`: its start, UTC); see _CallSums."""

    __tablename__ = "call_hours"
    __table_args__ = (
        Index("ux_call_hours_key", "hour", "orig_client_id", "term_client_id", "answered", unique=True),
        Index("ix_call_hours_orig_client_id_hour", "orig_client_id", "hour"),
        Index("ix_call_hours_term_client_id_hour", "term_client_id", "hour"),
    )

    hour: Mapped[datetime] = mapped_column(UTCDateTime)


class CallDay(_CallSums, db.Model):
    """The calls of one UTC day (`day`: its midnight, UTC): the hours of the day added up, so a week or the
    whole table reads a few rows per day; see _CallSums."""

    __tablename__ = "call_days"
    __table_args__ = (
        Index("ux_call_days_key", "day", "orig_client_id", "term_client_id", "answered", unique=True),
        Index("ix_call_days_orig_client_id_day", "orig_client_id", "day"),
        Index("ix_call_days_term_client_id_day", "term_client_id", "day"),
    )

    day: Mapped[datetime] = mapped_column(UTCDateTime)
