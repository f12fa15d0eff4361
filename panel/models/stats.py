"""Call statistics, live calls (capacity) and quality figures (SPEC §6-§8)."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from panel.extensions import db
from panel.models.types import Money, RateValue, UTCDateTime, utcnow


class CallStat(db.Model):
    """One call, rated with the customer's and the vendor's rate tables."""

    __tablename__ = "call_stats"
    __owner__ = ("orig_client.company_id", "term_client.company_id")
    __table_args__ = (
        Index("ix_call_stats_orig_account_id_start_at", "orig_account_id", "start_at"),
        Index("ix_call_stats_term_account_id_start_at", "term_account_id", "start_at"),
        Index("ix_call_stats_orig_client_id_start_at", "orig_client_id", "start_at"),
        Index("ix_call_stats_term_client_id_start_at", "term_client_id", "start_at"),
        # The calls list's order (keyset pages), covering the statistics totals' sums too: the minutes of a
        # partial hour at a window's edge are added up from the index alone (panel.stats.queries).
        Index(
            "ix_call_stats_start_at",
            "start_at",
            "id",
            "orig_client_id",
            "term_client_id",
            "answered",
            "duration",
            "customer_charge",
            "vendor_cost",
        ),
        # The calls filter's number prefix (an index range, panel.search.prefix): no scan of the window.
        Index("ix_call_stats_number", "number"),
        # A call id is unique per company (the company whose token reported it): one tenant cannot shadow
        # another's records by posting its call ids first.
        UniqueConstraint("company_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    call_id: Mapped[str] = mapped_column(String(255), index=True)
    orig_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    orig_client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    term_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    term_client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    # Indexed: deleting a rule sets this to NULL in every row naming it.
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_rules.id", ondelete="SET NULL"), index=True
    )
    number: Mapped[str] = mapped_column(String(64))
    orig_code: Mapped[str] = mapped_column(String(32), default="")
    term_code: Mapped[str] = mapped_column(String(32), default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration: Mapped[int] = mapped_column(default=0)
    orig_billed: Mapped[int] = mapped_column(default=0)
    term_billed: Mapped[int] = mapped_column(default=0)
    customer_rate: Mapped[Decimal | None] = mapped_column(RateValue)
    vendor_rate: Mapped[Decimal | None] = mapped_column(RateValue)
    customer_charge: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    vendor_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    answered: Mapped[bool] = mapped_column(default=False)
    sip_code: Mapped[int | None] = mapped_column()
    pdd_ms: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    orig_account = relationship("Account", foreign_keys=[orig_account_id])
    term_account = relationship("Account", foreign_keys=[term_account_id])
    orig_client = relationship("Client", foreign_keys=[orig_client_id])
    term_client = relationship("Client", foreign_keys=[term_client_id])


class LiveCall(db.Model):
    """A call in progress, from the switch's start event to its end event (or expiry)."""

    __tablename__ = "live_calls"
    __owner__ = ("orig_account_id.client.company_id", "term_account_id.client.company_id")
    # Call ids are the switch's, unique per company (the company whose token sent the start event).
    __table_args__ = (UniqueConstraint("company_id", "call_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(255))
    orig_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    term_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_rules.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Quality(db.Model):
    """ASR, ACD and PDD of a terminator account for a vendor code over the manager's window."""

    __tablename__ = "quality"
    __table_args__ = (Index("ix_quality_term_account_id_code", "term_account_id", "code", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    answered: Mapped[int] = mapped_column(default=0)
    asr: Mapped[Decimal | None] = mapped_column(RateValue)
    acd: Mapped[Decimal | None] = mapped_column(RateValue)
    pdd_ms: Mapped[int | None] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
