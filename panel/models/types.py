"""Column types shared by the models: money and rates as Decimal, times in UTC."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, DateTime, Numeric, TypeDecorator
from sqlalchemy.sql import operators

MICRO = Decimal("0.000001")


class MoneyType(TypeDecorator):
    """Money (balances, charges): an exact decimal with 6 places on both databases.

    PostgreSQL keeps NUMERIC(18, 6). SQLite has no decimal type (NUMERIC values become floating point, and a
    SUM of 100,000 charges of 0.000001 is then not 0.1), so there the value is stored as an integer number of
    millionths: comparisons, `balance - :total` and SUM stay exact integers, and reading divides by 10^6.
    Multiplying or dividing money by a number in SQL would scale the number too: do that in Python.
    """

    impl = Numeric(18, 6, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        """BIGINT millionths on SQLite, NUMERIC(18, 6) elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(self.impl)

    def coerce_compared_value(self, op, value):
        """Literals compared with, added to or subtracted from money are money; refuse * and / (see above)."""
        if op in (operators.mul, operators.truediv, operators.floordiv, operators.mod):
            raise TypeError("multiply or divide money in Python, not in SQL (SQLite stores millionths)")
        return self

    def process_bind_param(self, value, dialect):
        """Decimal (or int, str, float) to millionths on SQLite, rounded half up to 6 places."""
        if value is None or dialect.name != "sqlite":
            return value
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
        return int(exact.quantize(MICRO, rounding=ROUND_HALF_UP).scaleb(6))

    def process_result_value(self, value, dialect):
        """Millionths back to a Decimal with 6 places on SQLite."""
        if value is None or dialect.name != "sqlite":
            return value
        return Decimal(int(value)).scaleb(-6).quantize(MICRO)


# Money: balances, charges. 18 digits, 6 after the point, exact on both databases.
Money = MoneyType()
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
