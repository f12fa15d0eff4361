"""Time profiles (SPEC §3): parse `HH:MM-HH:MM` ranges and say whether a moment is inside.

Plain Python, no Flask: the routing engine and the forms use it.
A moment is inside when, in the profile's zone, its weekday is listed and its time is in one of the ranges
(start included, end excluded; `24:00` may end a range; an end before the start wraps past midnight, and the
part after midnight counts on the moment's own weekday; a range whose start equals its end is refused).
"""

import re
from datetime import UTC, datetime
from functools import lru_cache
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


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """Every IANA zone name the system knows (read once: listing them walks the zoneinfo tree)."""
    return frozenset(available_timezones()) | {"UTC"}


def zone(name: str) -> ZoneInfo:
    """The IANA zone; raises TimeProfileError for an unknown name."""
    try:
        if name not in zone_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeProfileError(f"{name!r} is not an IANA time zone such as Europe/London.") from None


def format_ranges(ranges: list[tuple[int, int]]) -> str:
    """Ranges in minutes written back as text: [(480, 1080), (1320, 120)] -> `08:00-18:00; 22:00-02:00`."""
    return "; ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in ranges)


def weekdays_label(weekdays: str) -> str:
    """`12345` -> `Mon–Fri`, `67` -> `Sat, Sun`, `1234567` -> `every day`, for lists and pages."""
    days = sorted({int(ch) for ch in weekdays or "" if ch in "1234567"})
    if len(days) == 7:
        return "every day"
    if not days:
        return "no day"
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{WEEKDAY_NAMES[run[0]]}–{WEEKDAY_NAMES[run[-1]]}")
        else:
            parts.extend(WEEKDAY_NAMES[d] for d in run)
    return ", ".join(parts)


def in_ranges(minute: int, ranges) -> bool:
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
        """True when `moment` is inside the profile (a naive moment is UTC, as everywhere in the panel)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # The zone's wall clock at that moment: across a DST change the clock jumps, and the ranges follow it.
        local = moment.astimezone(self.tz)
        if local.isoweekday() not in self.weekdays:
            return False
        return in_ranges(local.hour * 60 + local.minute, self.ranges)


def is_inside(weekdays: str, ranges: str, timezone: str, moment: datetime) -> bool:
    """True when the aware `moment` is inside the profile given by its three fields."""
    return CompiledProfile(weekdays, ranges, timezone).contains(moment)
