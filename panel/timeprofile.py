"""Time profiles (SPEC §3): parse `HH:MM-HH:MM` ranges and say whether a moment is inside.

Plain Python, no Flask: the routing engine and the forms use it.
A moment is inside when, in the profile's zone, its weekday is listed and its time is in one of the ranges
(start included, end excluded; `24:00` may end a range; an end before the start wraps past midnight, and the
part after midnight counts on the moment's own weekday; a range whose start equals its end is refused).
"""

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
WEEKDAY_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}


class TimeProfileError(ValueError):
    """A range, weekday list or zone that cannot be used."""


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """`08:00-18:00; 22:00-02:00` as [(480, 1080), (1320, 120)] in minutes; raises TimeProfileError."""
    ranges = []
    parts = [p.strip() for p in re.split(r"[;,]", text or "") if p.strip()]
    if not parts:
        raise TimeProfileError("Give at least one range such as 08:00-18:00.")
    for part in parts:
        match = _RANGE.match(part)
        if not match:
            raise TimeProfileError(f"{part!r} is not a range like 08:00-18:00.")
        h1, m1, h2, m2 = (int(x) for x in match.groups())
        if h1 > 23 or m1 > 59:
            raise TimeProfileError(f"{part!r}: the start must be between 00:00 and 23:59.")
        if h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise TimeProfileError(f"{part!r}: the end must be between 00:00 and 24:00.")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise TimeProfileError(f"{part!r}: the start equals the end.")
        ranges.append((start, end))
    return ranges


def parse_weekdays(text: str) -> set[int]:
    """`12345` (ISO weekday numbers, Monday = 1) as a set; raises TimeProfileError."""
    days = set()
    for ch in (text or "").replace(",", "").replace(" ", ""):
        if ch not in "1234567":
            raise TimeProfileError(f"{ch!r} is not a weekday number (1 = Monday … 7 = Sunday).")
        days.add(int(ch))
    if not days:
        raise TimeProfileError("Choose at least one weekday.")
    return days


def zone(name: str) -> ZoneInfo:
    """The IANA zone; raises TimeProfileError for an unknown name."""
    try:
        if name not in available_timezones() and name != "UTC":
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeProfileError(f"{name!r} is not an IANA time zone such as Europe/London.") from None


def in_ranges(minute: int, ranges: list[tuple[int, int]]) -> bool:
    """True when a minute of the day (0..1439) is in one of the ranges (wrapping ones included)."""
    for start, end in ranges:
        if start < end:
            if start <= minute < end:
                return True
        elif minute >= start or minute < end:
            return True
    return False


class CompiledProfile:
    """A profile parsed once (the routing snapshot holds these): `contains(moment)` is cheap."""

    __slots__ = ("weekdays", "ranges", "tz")

    def __init__(self, weekdays: str, ranges: str, timezone: str):
        self.weekdays = frozenset(parse_weekdays(weekdays))
        self.ranges = tuple(parse_ranges(ranges))
        self.tz = zone(timezone)

    def contains(self, moment: datetime) -> bool:
        """True when the aware `moment` is inside the profile."""
        local = moment.astimezone(self.tz)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        if local.isoweekday() not in self.weekdays:
            return False
        return in_ranges(seconds // 60, list(self.ranges))


def is_inside(weekdays: str, ranges: str, timezone: str, moment: datetime) -> bool:
    """True when the aware `moment` is inside the profile given by its three fields."""
    return CompiledProfile(weekdays, ranges, timezone).contains(moment)
