"""Value rules of routing plans and rules (SPEC §4), shared by the forms and the CSV import.

Each parser takes the text an operator typed (or a CSV cell), returns the clean value, and raises
ValueError with a message in the operator's words. Empty text always means "not set".
"""

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from panel.models.routing import RULE_TYPES, TAG_MODES

CODE_MAX = 64
TAGS_MAX = 500
INT32 = 2_147_483_647
# Numeric(12, 6): six decimals, six digits before the point.
DECIMAL_MAX = Decimal("999999.999999")

_CODE = re.compile(r"^[0-9*]+$")
_TAG = re.compile(r"^[A-Za-z0-9_.:+-]+$")
_MARGIN = re.compile(r"^(\d+(?:\.\d+)?)(%?)$")
_EXPIRES_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")
EXPIRES_FORMAT = "%Y-%m-%d %H:%M"

TYPE_LABELS = {
    "static_client": "Static client",
    "static_account": "Static account",
    "dynamic": "Dynamic",
    "did": "DID",
}


def parse_code(text: str) -> str:
    """A rule code: digits, `*` for any run of digits (`44`, `44*`, `*`)."""
    code = (text or "").strip()
    if not code:
        return ""
    if not _CODE.match(code):
        raise ValueError(f"{code!r} is not a code: use digits, and * for any run of digits.")
    if len(code) > CODE_MAX:
        raise ValueError(f"The code is longer than {CODE_MAX} characters.")
    # `**` means the same as `*`; keep one so equal codes look equal.
    return re.sub(r"\*{2,}", "*", code)


def parse_profit_margin(text: str) -> tuple[Decimal | None, bool]:
    """`16%` (percent of the customer rate) or `5` (absolute per minute) as (value, is_percent)."""
    value = (text or "").strip().replace(" ", "")
    if not value:
        return None, False
    match = _MARGIN.match(value)
    if not match:
        raise ValueError(
            f"{text.strip()!r} is not a profit margin: write a percent such as 16% or an amount such as 5."
        )
    number, percent = Decimal(match.group(1)), bool(match.group(2))
    if number.as_tuple().exponent < -6:
        raise ValueError("Use at most 6 decimals.")
    if percent and number > 100:
        raise ValueError("A percent margin cannot exceed 100%.")
    if number > DECIMAL_MAX:
        raise ValueError(f"The margin must be below {DECIMAL_MAX:f}.")
    return number, percent


def format_profit_margin(value: Decimal | None, percent: bool) -> str:
    """The margin as the operator writes it (the inverse of parse_profit_margin)."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return f"{text}%" if percent else text


def parse_tags(text: str) -> str:
    """Space-separated words (commas are accepted too), each once, as stored: `gold premium`."""
    words: list[str] = []
    for word in re.split(r"[\s,]+", (text or "").strip()):
        if not word:
            continue
        if not _TAG.match(word):
            raise ValueError(
                f"{word!r} is not a tag: use letters, digits and . _ : + - (no spaces inside a tag)."
            )
        if word not in words:
            words.append(word)
    joined = " ".join(words)
    if len(joined) > TAGS_MAX:
        raise ValueError(f"The tags are longer than {TAGS_MAX} characters.")
    return joined


def parse_int(
    text: str, *, minimum: int = 0, maximum: int = INT32, what: str = "a whole number"
) -> int | None:
    """A whole number within bounds, or None when empty."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not {what}.") from None
    if number < minimum or number > maximum:
        raise ValueError(f"Must be between {minimum:,} and {maximum:,}.")
    return number


def parse_decimal(text: str, *, minimum: Decimal, maximum: Decimal, what: str = "a number") -> Decimal | None:
    """A decimal number within bounds (at most 6 decimals), or None when empty."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not {what}.") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not {what}.")
    if number.as_tuple().exponent < -6:
        raise ValueError("Use at most 6 decimals.")
    if number < minimum or number > maximum:
        raise ValueError(f"Must be between {minimum:f} and {maximum:f}.")
    return number


def parse_expires(text: str) -> datetime | None:
    """`YYYY-MM-DD HH:MM` in UTC (the browser's `YYYY-MM-DDTHH:MM` too), or None when empty."""
    value = (text or "").strip()
    if not value:
        return None
    for fmt in _EXPIRES_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"{value!r} is not a date and time: write YYYY-MM-DD HH:MM (UTC).")


def format_expires(value: datetime | None) -> str:
    """The expiration as written in forms and CSV files."""
    return value.astimezone(UTC).strftime(EXPIRES_FORMAT) if value else ""


def parse_type(text: str) -> str:
    """One of the rule types."""
    value = (text or "").strip().lower()
    if value not in RULE_TYPES:
        raise ValueError(f"{text.strip()!r} is not a rule type: use {', '.join(RULE_TYPES)}.")
    return value


def parse_tag_mode(text: str) -> str:
    """`all` or `any` (empty: `all`)."""
    value = (text or "").strip().lower()
    if not value:
        return "all"
    if value not in TAG_MODES:
        raise ValueError(f"{text.strip()!r} is not a tag mode: use all or any.")
    return value


def parse_flag(text: str) -> bool:
    """`1` or `0` (empty: 0)."""
    value = (text or "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ValueError(f"{value!r} is not 1 or 0.")


def parse_priority(text: str) -> int:
    """The rule priority: a whole number, lower runs first (empty: 0)."""
    number = parse_int(text, minimum=-INT32, maximum=INT32, what="a whole number")
    return 0 if number is None else number


def rule_problems(values: dict) -> list[tuple[str, str]]:
    """Checks across the fields of one clean rule: [(field, message)] (empty when the rule is sound).

    `values` holds the parsed fields: type, code, has_terminator, term_tags, min_length, max_length.
    """
    problems = []
    rule_type = values["type"]
    if rule_type == "did":
        if values.get("code"):
            problems.append(("code", "A DID rule has no code: it matches the numbers of the DID list."))
        if values.get("has_terminator"):
            problems.append(("terminator", "A DID rule has no terminator: each DID names its account."))
    else:
        if not values.get("code"):
            problems.append(("code", "Give a code (digits, * for any run of digits)."))
        if not values.get("has_terminator"):
            problems.append(("terminator", f"A {rule_type} rule needs {TERMINATOR_WHAT[rule_type]}."))
    if rule_type != "dynamic" and values.get("term_tags"):
        problems.append(("term_tags", "Only dynamic rules have terminator tags."))
    low, high = values.get("min_length"), values.get("max_length")
    if low is not None and high is not None and low > high:
        problems.append(("max_length", "The maximum length is below the minimum length."))
    return problems


TERMINATOR_WHAT = {
    "static_client": "a terminator client",
    "static_account": "a terminator account",
    "dynamic": "a routing policy",
    "did": "nothing",
}
