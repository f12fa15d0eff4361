"""Column types shared by the models: money and rates as Decimal, times in UTC."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import DateTime, Numeric, TypeDecorator

# Money: balances, charges. 18 digits, 6 after the point.
Money = Numeric(18, 6, asdecimal=True)
# Per-minute rates and fees: up to 6 decimals (SPEC §3).
RateValue = Numeric(12, 6, asdecimal=True)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (UTC), on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Store naive values as UTC; convert aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite keeps no zone; store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def to_decimal(value) -> Decimal | None:
    """A Decimal from a number or string, None for None or empty."""
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))
