"""Rate tables and rates, code decks, time profiles, dynamic routing policies and DIDs (SPEC §3)."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from panel.extensions import db
from panel.models.types import RateValue, UTCDateTime, utcnow
from panel.models.versioned import Versioned

POLICY_FACTORS = ("rate", "asr", "acd", "pdd")


class RateTable(Versioned, db.Model):
    """Prices destinations by dialled-number prefix."""

    __tablename__ = "rate_tables"
    __owner__ = "company_id"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company = relationship("Company")

    def __str__(self) -> str:
        return self.name


class Rate(db.Model):
    """The price of a code from a moment (UTC) until an optional end, with billing increments."""

    __tablename__ = "rates"
    __owner__ = "rate_table.company_id"
    __table_args__ = (
        UniqueConstraint("rate_table_id", "code", "effective_from"),
        Index("ix_rates_rate_table_id_name", "rate_table_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rate_table_id: Mapped[int] = mapped_column(ForeignKey("rate_tables.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120), default="")
    rate: Mapped[Decimal] = mapped_column(RateValue)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    setup_fee: Mapped[Decimal] = mapped_column(RateValue, default=Decimal("0"))
    min_time: Mapped[int] = mapped_column(default=1)
    interval: Mapped[int] = mapped_column(default=1)

    rate_table: Mapped[RateTable] = relationship()


class CodeDeck(Versioned, db.Model):
    """Names destination codes; a routing plan's deck names its rule codes."""

    __tablename__ = "code_decks"
    __owner__ = "company_id"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company = relationship("Company")

    def __str__(self) -> str:
        return self.name


class Code(db.Model):
    """One code of a deck: digits, a name and a country."""

    __tablename__ = "codes"
    __owner__ = "code_deck.company_id"
    __table_args__ = (
        UniqueConstraint("code_deck_id", "code"),
        Index("ix_codes_code_deck_id_name", "code_deck_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code_deck_id: Mapped[int] = mapped_column(ForeignKey("code_decks.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120), default="")
    country: Mapped[str] = mapped_column(String(120), default="")

    code_deck: Mapped[CodeDeck] = relationship()


class TimeProfile(Versioned, db.Model):
    """Weekdays and HH:MM-HH:MM ranges in an IANA time zone (see panel.timeprofiles for the check)."""

    __tablename__ = "time_profiles"
    __owner__ = "company_id"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    # ISO weekday numbers, Monday = 1: "12345" is Monday to Friday.
    weekdays: Mapped[str] = mapped_column(String(7), default="1234567")
    # "08:00-18:00; 22:00-02:00"
    ranges: Mapped[str] = mapped_column(String(500), default="00:00-24:00")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company = relationship("Company")

    def __str__(self) -> str:
        return self.name


class Policy(Versioned, db.Model):
    """A dynamic routing policy: weights of the appeal factors (0 = not used)."""

    __tablename__ = "policies"
    __owner__ = "company_id"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    rate_weight: Mapped[int] = mapped_column(default=0)
    asr_weight: Mapped[int] = mapped_column(default=0)
    acd_weight: Mapped[int] = mapped_column(default=0)
    pdd_weight: Mapped[int] = mapped_column(default=0)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company = relationship("Company")

    @property
    def factors(self) -> dict[str, int]:
        """The factors in use with their weights."""
        weights = {f: getattr(self, f"{f}_weight") for f in POLICY_FACTORS}
        return {f: w for f, w in weights.items() if w}

    def __str__(self) -> str:
        return self.name


class Did(Versioned, db.Model):
    """A number assigned to a terminator account; DID rules route these numbers."""

    __tablename__ = "dids"
    __owner__ = "account.client.company_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account = relationship("Account")
