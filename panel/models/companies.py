"""Companies (the reseller tree), users, API tokens and login attempts (SPEC §1, §7)."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from panel.extensions import db
from panel.models.types import UTCDateTime, utcnow
from panel.models.versioned import Versioned

COMPANY_KINDS = ("root", "reseller", "sub_reseller", "manager")
COMPANY_KIND_LABELS = {
    "root": "Operator",
    "reseller": "Reseller",
    "sub_reseller": "Sub-reseller",
    "manager": "Manager",
}
ROLES = ("admin", "operator", "viewer")


class Company(Versioned, db.Model):
    """A node of the company tree: the root operator, resellers, sub-resellers and managers."""

    __tablename__ = "companies"
    __owner__ = "id"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="reseller")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    notes: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped["Company | None"] = relationship(remote_side="Company.id", back_populates="children")
    children: Mapped[list["Company"]] = relationship(back_populates="parent")

    @property
    def kind_label(self) -> str:
        """The kind in the operator's words."""
        return COMPANY_KIND_LABELS.get(self.kind, self.kind)

    def __str__(self) -> str:
        return self.name


class User(UserMixin, db.Model):
    """A login; sees its company and the companies below it."""

    __tablename__ = "users"
    __owner__ = "company_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(20), default="viewer")
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped on password change and deactivation; part of the session id so old sessions stop working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    company: Mapped[Company] = relationship()

    def get_id(self) -> str:
        """Flask-Login id: the user id and its session version, so a password change logs others out."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        """Deactivated users (or users of a deactivated company) cannot log in."""
        return self.active and (self.company is None or self.company.active)

    @property
    def can_write(self) -> bool:
        """Operators and admins edit data; viewers only read."""
        return self.role in ("admin", "operator")

    @property
    def is_admin(self) -> bool:
        """Admins manage the users and companies of their subtree."""
        return self.role == "admin"

    def __str__(self) -> str:
        return self.username


class ApiToken(db.Model):
    """A switch's credential for /api/v1: stored as a SHA-256 hash, scoped to a company."""

    __tablename__ = "api_tokens"
    __owner__ = "company_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown in lists so an operator can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(12))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return self.name


class LoginAttempt(db.Model):
    """A failed login, kept for the rate limit (shared by every panel process through the database)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


__all__ = ["ApiToken", "Company", "LoginAttempt", "User"]
