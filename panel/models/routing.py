"""Routing plans and their rules (SPEC §4)."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from panel.extensions import db
from panel.models.types import RateValue, UTCDateTime, utcnow
from panel.models.versioned import Versioned

RULES_HUNTING = ("longest_only", "all_matching")
DR_ORDERS = ("code_appeal", "appeal_code")
MATCH_INCREMENTS = ("disabled", "dynamic", "dynamic_static")
RULE_TYPES = ("static_client", "static_account", "dynamic", "did")
TAG_MODES = ("all", "any")

plan_origination_limits = Table(
    "plan_origination_limits",
    db.metadata,
    Column("plan_id", ForeignKey("routing_plans.id", ondelete="CASCADE"), primary_key=True),
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True, index=True),
)

plan_termination_limits = Table(
    "plan_termination_limits",
    db.metadata,
    Column("plan_id", ForeignKey("routing_plans.id", ondelete="CASCADE"), primary_key=True),
    Column("company_id", ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class ProfitMarginMixin:
    """A profit margin: `16%` (percent of the customer rate) or `5` (absolute per minute); None = not set."""

    pm_value: Mapped[Decimal | None] = mapped_column(RateValue)
    pm_percent: Mapped[bool] = mapped_column(default=False)

    @property
    def profit_margin(self) -> str:
        """The margin as the operator writes it: `16%`, `5` or empty."""
        if self.pm_value is None:
            return ""
        text = format(self.pm_value.normalize(), "f")
        return f"{text}%" if self.pm_percent else text


class RoutingPlan(ProfitMarginMixin, Versioned, db.Model):
    """Holds the rules that decide which terminators a call may go to, and in which order."""

    __tablename__ = "routing_plans"
    __owner__ = "company_id"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    additional_plan_id: Mapped[int | None] = mapped_column(ForeignKey("routing_plans.id"), index=True)
    code_deck_id: Mapped[int | None] = mapped_column(ForeignKey("code_decks.id"), index=True)
    loop_protection: Mapped[bool] = mapped_column(default=True)
    rules_hunting: Mapped[str] = mapped_column(String(20), default="longest_only")
    dr_order: Mapped[str] = mapped_column(String(20), default="code_appeal")
    match_increments: Mapped[str] = mapped_column(String(20), default="disabled")
    vendor_limit: Mapped[int | None] = mapped_column()
    tags: Mapped[str] = mapped_column(String(500), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company = relationship("Company")
    additional_plan: Mapped["RoutingPlan | None"] = relationship(remote_side="RoutingPlan.id")
    code_deck = relationship("CodeDeck")
    origination_limits = relationship("Company", secondary=plan_origination_limits, order_by="Company.name")
    termination_limits = relationship("Company", secondary=plan_termination_limits, order_by="Company.name")

    def __str__(self) -> str:
        return self.name


class RoutingRule(ProfitMarginMixin, Versioned, db.Model):
    """One rule of a plan: a code (or DID), a terminator or policy, and the conditions it applies under."""

    __tablename__ = "routing_rules"
    __owner__ = "plan.company_id"
    __table_args__ = (
        # The rules tab's orders, whole (keyset pages of a million-rule plan read them from the cursor on).
        Index("ix_routing_rules_plan_id_code", "plan_id", "code", "priority", "id"),
        Index("ix_routing_rules_plan_id_priority", "plan_id", "priority", "code", "id"),
        # Highest priority first with ties in ascending code (`-priority`), and that order reversed (its last
        # page, Previous): mixed directions no index above can serve (a priority holds 10,000 rules to sort).
        Index(
            "ix_routing_rules_priority_desc",
            Column("plan_id"),
            Column("priority"),
            Column("code").desc(),
            Column("id").desc(),
        ),
        # The rules tab's filters count and find their rules through these (a rare filter never walks the
        # plan); each leads with its foreign key, so it also serves deletes and "who uses this" checks.
        Index("ix_routing_rules_terminator_client_id", "terminator_client_id", "plan_id"),
        Index("ix_routing_rules_terminator_account_id", "terminator_account_id", "plan_id"),
        Index("ix_routing_rules_policy_id", "policy_id", "plan_id"),
        # Expiring and expired rules: the tab's filters and the manager's removal of expired rules.
        # On PostgreSQL it carries the tab's sort columns: the expired rules' page is read from it alone.
        Index(
            "ix_routing_rules_expires_at",
            "expires_at",
            "plan_id",
            postgresql_include=["code", "priority", "id"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("routing_plans.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(default=0)
    # Digits with `*` for any run of digits; empty for DID rules.
    code: Mapped[str] = mapped_column(String(64), default="")
    type: Mapped[str] = mapped_column(String(20), default="static_client")
    terminator_client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    terminator_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id"))
    orig_tags: Mapped[str] = mapped_column(String(500), default="")
    orig_tags_mode: Mapped[str] = mapped_column(String(3), default="all")
    term_tags: Mapped[str] = mapped_column(String(500), default="")
    time_profile_id: Mapped[int | None] = mapped_column(ForeignKey("time_profiles.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    balancing: Mapped[int | None] = mapped_column()
    min_length: Mapped[int | None] = mapped_column()
    max_length: Mapped[int | None] = mapped_column()
    min_asr: Mapped[Decimal | None] = mapped_column(RateValue)
    min_acd: Mapped[Decimal | None] = mapped_column(RateValue)
    capacity: Mapped[int | None] = mapped_column()
    stop_hunt: Mapped[bool] = mapped_column(default=False)

    plan: Mapped[RoutingPlan] = relationship()
    terminator_client = relationship("Client")
    terminator_account = relationship("Account")
    policy = relationship("Policy")
    time_profile = relationship("TimeProfile")

    @property
    def length(self) -> int:
        """The count of digits in the code (SPEC §4)."""
        return sum(ch.isdigit() for ch in self.code or "")

    def __str__(self) -> str:
        return f"rule {self.code or 'DID'} (priority {self.priority})"
