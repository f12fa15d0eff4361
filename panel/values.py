"""Value rules shared by the forms and the CSV imports of rates, code decks, DIDs and time profiles.

One rule, two callers: each parser takes the text as typed and returns the clean value or raises ValueError
with a message an operator can act on. The CSV imports wrap the message in
`panel.imports.reader.RowError(column, message)`; the forms show it under the field.
"""

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from wtforms.validators import StopValidation

CODE_MAX = 32
NAME_MAX = 120
# Numeric(12, 6): six digits before the point, six after.
RATE_LIMIT = Decimal("1000000")
RATE_PLACES = 6

_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?$")
MOMENT_HELP = "YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], UTC"


def is_digits(text: str) -> bool:
    """ASCII digits only, at least one (`"²".isdigit()` is true, yet `int("²")` refuses it)."""
    return text.isascii() and text.isdigit()


def parse_digits(text: str, what: str = "code", max_length: int = CODE_MAX) -> str:
    """Digits only (a dialled-number prefix or a DID number), 1 to `max_length` of them."""
    text = text.strip()
    if not text:
        raise ValueError(f"the {what} is required")
    if not is_digits(text):
        raise ValueError(f"{text!r} is not a {what}: use digits only")
    if len(text) > max_length:
        raise ValueError(f"the {what} is longer than {max_length} digits")
    return text


def parse_name(text: str, what: str = "name", max_length: int = NAME_MAX) -> str:
    """Free text up to `max_length` characters."""
    text = text.strip()
    if len(text) > max_length:
        raise ValueError(f"the {what} is longer than {max_length} characters")
    return text


def parse_money(
    text: str, what: str = "rate", *, required: bool = True, default: Decimal | None = None
) -> Decimal:
    """A non-negative decimal with at most 6 places, below 1,000,000 (a per-minute rate or a setup fee)."""
    text = text.strip()
    if not text:
        if required:
            raise ValueError(f"the {what} is required")
        return default if default is not None else Decimal(0)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number (write it like 0.0125)") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a number (write it like 0.0125)")
    if value < 0:
        raise ValueError(f"the {what} cannot be negative")
    if value >= RATE_LIMIT:
        raise ValueError(f"the {what} must be below 1,000,000")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -RATE_PLACES:
        normal = value.normalize()
        if normal.as_tuple().exponent < -RATE_PLACES:
            raise ValueError(f"the {what} {text} has more than {RATE_PLACES} decimals")
        value = normal
    return value


def parse_seconds(text: str, what: str, *, minimum: int, default: int) -> int:
    """A whole number of seconds (billing increments), at least `minimum`; `default` when empty."""
    text = text.strip()
    if not text:
        return default
    if not (text.isdigit() and text.isascii()):
        raise ValueError(f"{text!r} is not a whole number of seconds")
    value = int(text)
    if value < minimum:
        raise ValueError(f"the {what} must be at least {minimum}")
    if value > 86400:
        raise ValueError(f"the {what} must be at most 86400 seconds")
    return value


@lru_cache(maxsize=4096)
def _moment(text: str) -> datetime:
    """Cached: a vendor deck repeats the same few dates thousands of times."""
    if not _MOMENT.match(text):
        raise ValueError(f"{text!r} is not a date ({MOMENT_HELP})")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date ({MOMENT_HELP})") from None


def parse_moment(text: str, what: str = "date") -> datetime | None:
    """`YYYY-MM-DD` or `YYYY-MM-DD HH:MM[:SS]` (UTC) as an aware datetime; None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        return _moment(text)
    except ValueError as exc:
        raise ValueError(str(exc).replace("a date", f"a {what}", 1)) from None


def format_moment(value: datetime | None) -> str:
    """The CSV form of a moment: `YYYY-MM-DD HH:MM:SS` in UTC (empty for None)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_decimal(value: Decimal | None) -> str:
    """A decimal without trailing zeros and never in exponent form: 0.0125, 1, 0."""
    if value is None:
        return ""
    text = f"{Decimal(value):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


class Parsed:
    """A WTForms validator that runs one of this module's parsers and keeps the clean value.

    The clean value is stored on the field as `field.parsed`; the parser's message becomes the field's error.
    """

    def __init__(self, parse):
        self.parse = parse

    def __call__(self, form, field) -> None:
        try:
            field.parsed = self.parse(field.data or "")
        except ValueError as exc:
            message = str(exc)
            raise StopValidation(message[:1].upper() + message[1:] + ".") from None
