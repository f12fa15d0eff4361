"""Call records added up per hour: what the statistics totals read instead of every call.

Kept by panel.stats.rollup.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from panel.extensions import db
from panel.models.types import Money, UTCDateTime


class CallHour(db.Model):
    """The calls of one hour (by start) between one originator client and one terminator client, answered or
    not: how many, their answered seconds, the customers' charges and the vendors' costs.

    A client id of 0 stands for none (a call without a terminator), so the key has no NULL and one row per key
    is kept by an upsert. The ids are not foreign keys: a client is deleted only once its accounts are, and
    deleting an account takes its calls out of these figures too (panel.stats.rollup).
    """

    __tablename__ = "call_hours"
    # How a row belongs to a company: either side's client, as for the calls themselves.
    __owner__ = ("orig_client.company_id", "term_client.company_id")
    __table_args__ = (
        Index("ux_call_hours_key", "hour", "orig_client_id", "term_client_id", "answered", unique=True),
        Index("ix_call_hours_orig_client_id_hour", "orig_client_id", "hour"),
        Index("ix_call_hours_term_client_id_hour", "term_client_id", "hour"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    orig_client_id: Mapped[int] = mapped_column(default=0)
    term_client_id: Mapped[int] = mapped_column(default=0)
    answered: Mapped[bool] = mapped_column(default=False)
    calls: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[int] = mapped_column(default=0)  # the answered calls' durations
    revenue: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))  # customer charges
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))  # vendor costs

    orig_client = relationship(
        "Client", primaryjoin="foreign(CallHour.orig_client_id) == Client.id", viewonly=True
    )
    term_client = relationship(
        "Client", primaryjoin="foreign(CallHour.term_client_id) == Client.id", viewonly=True
    )
