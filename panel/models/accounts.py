"""Clients, their accounts (originator and terminator settings), ident networks and gateways (SPEC §2, §7)."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from panel.extensions import db
from panel.models.types import Money, UTCDateTime, utcnow
from panel.models.versioned import Versioned
from panel.search import trigram_index

IDENT_BY = ("ip", "name", "ani")
IDENT_BY_LABELS = {"ip": "IP", "name": "Name", "ani": "ANI"}
PROTOCOLS = ("sip", "h323")

account_gateways = Table(
    "account_gateways",
    db.metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("gateway_id", ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Gateway(Versioned, db.Model):
    """A switch node that asks for routes and reports calls."""

    __tablename__ = "gateways"
    __owner__ = "company_id"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(255), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company = relationship("Company")

    def __str__(self) -> str:
        return self.name


class Drainable:
    """Drain fields (SPEC §5 step 7): an operator's temporary stop of a terminator, with reason and end."""

    drained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    drained_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    drained_reason: Mapped[str] = mapped_column(String(500), default="")
    drained_by: Mapped[str] = mapped_column(String(80), default="")

    @property
    def is_drained(self) -> bool:
        """True while drained (the manager restores it at `drained_until`)."""
        return self.drained_at is not None


class Client(Drainable, Versioned, db.Model):
    """A company we trade with: a customer, a vendor or both. Holds the balance and the defaults."""

    __tablename__ = "clients"
    __owner__ = "company_id"
    __table_args__ = (
        UniqueConstraint("company_id", "name"),
        Index("ix_clients_name", "name", "id"),  # the list's order (keyset pages)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    orig_rate_table_id: Mapped[int | None] = mapped_column(ForeignKey("rate_tables.id"), index=True)
    term_rate_table_id: Mapped[int | None] = mapped_column(ForeignKey("rate_tables.id"), index=True)
    routing_plan_id: Mapped[int | None] = mapped_column(ForeignKey("routing_plans.id"), index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company = relationship("Company")
    orig_rate_table = relationship("RateTable", foreign_keys=[orig_rate_table_id])
    term_rate_table = relationship("RateTable", foreign_keys=[term_rate_table_id])
    routing_plan = relationship("RoutingPlan", foreign_keys=[routing_plan_id])
    accounts: Mapped[list["Account"]] = relationship(back_populates="client", order_by="Account.name")

    def __str__(self) -> str:
        return self.name


class Account(Drainable, Versioned, db.Model):
    """One way a client is identified: by IP/networks, login name or ANI, with a tech prefix and gateways."""

    __tablename__ = "accounts"
    __owner__ = "client.company_id"
    __table_args__ = (
        UniqueConstraint("client_id", "name"),
        # The list's sort orders (column, id): keyset pages read them from the cursor on (panel.paging).
        Index("ix_accounts_ident_value", "ident_value", "id"),
        Index("ix_accounts_tech_prefix", "tech_prefix", "id"),
        Index("ix_accounts_name", "name", "id"),
        Index("ix_accounts_client_id", "client_id", "id"),
        # The quick search's contains-match on PostgreSQL (panel.search).
        trigram_index("ix_accounts_name_trgm", "name"),
        trigram_index("ix_accounts_ident_value_trgm", "ident_value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    name: Mapped[str] = mapped_column(String(120))
    ident_by: Mapped[str] = mapped_column(String(8), default="ip")
    # As entered, normalised: "10.0.0.0/24; 198.51.100.7" for ip, the login or the ANI otherwise.
    ident_value: Mapped[str] = mapped_column(String(2000), default="")
    tech_prefix: Mapped[str] = mapped_column(String(32), default="")
    # Encrypted with ACCOUNT_PASSWORD_KEY (the switch needs it in clear); see panel.crypto.
    password_encrypted: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")

    orig_enabled: Mapped[bool] = mapped_column(default=False)
    orig_rate_table_id: Mapped[int | None] = mapped_column(ForeignKey("rate_tables.id"), index=True)
    orig_routing_plan_id: Mapped[int | None] = mapped_column(ForeignKey("routing_plans.id"), index=True)
    orig_tags: Mapped[str] = mapped_column(String(500), default="")
    orig_capacity: Mapped[int | None] = mapped_column()

    term_enabled: Mapped[bool] = mapped_column(default=False)
    term_rate_table_id: Mapped[int | None] = mapped_column(ForeignKey("rate_tables.id"), index=True)
    term_tags: Mapped[str] = mapped_column(String(500), default="")
    term_capacity: Mapped[int | None] = mapped_column()
    protocol: Mapped[str] = mapped_column(String(8), default="sip")
    proxy: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int] = mapped_column(default=5060)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    client: Mapped[Client] = relationship(back_populates="accounts")
    orig_rate_table = relationship("RateTable", foreign_keys=[orig_rate_table_id])
    term_rate_table = relationship("RateTable", foreign_keys=[term_rate_table_id])
    orig_routing_plan = relationship("RoutingPlan", foreign_keys=[orig_routing_plan_id])
    networks: Mapped[list["AccountNetwork"]] = relationship(
        back_populates="account", cascade="all, delete-orphan", order_by="AccountNetwork.position"
    )
    gateways: Mapped[list[Gateway]] = relationship(secondary=account_gateways, order_by="Gateway.name")

    @property
    def orig_tag_list(self) -> list[str]:
        """Originator tags as a list."""
        return self.orig_tags.split()

    @property
    def term_tag_list(self) -> list[str]:
        """Terminator tags as a list."""
        return self.term_tags.split()

    def __str__(self) -> str:
        return self.name


class AccountNetwork(db.Model):
    """One address or CIDR network of an account identified by IP, canonical form (`10.0.0.0/24`)."""

    __tablename__ = "account_networks"
    __owner__ = "account.client.company_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    network: Mapped[str] = mapped_column(String(64), index=True)
    position: Mapped[int] = mapped_column(default=0)

    account: Mapped[Account] = relationship(back_populates="networks")
