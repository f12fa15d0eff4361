"""Time profiles (SPEC §3): is a moment inside? Around midnight, wrapping ranges, 24:00 and DST changes."""

from datetime import UTC, datetime, timedelta

import pytest

from panel.timeprofile import (
    CompiledProfile,
    TimeProfileError,
    format_ranges,
    is_inside,
    parse_ranges,
    parse_weekdays,
    weekdays_label,
    zone,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# 2024-01-01 is a Monday.
MON, TUE, SUN = 1, 2, 7


def moments(text: str) -> list[datetime]:
    """UTC moments written as days, each with its times: "2024-01-01 08:00 17:59:59; 2024-01-02 00:00"."""
    found = []
    for day_and_times in filter(str.strip, text.split(";")):
        day, *times = day_and_times.split()
        found += [datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=UTC) for time in times]
    return found


@pytest.mark.parametrize(
    ("weekdays", "ranges", "zone_name", "inside", "outside"),
    [
        # 08:00-18:00: 08:00 is inside, 17:59 inside, 18:00 outside, 07:59 outside.
        ("1234567", "08:00-18:00", "UTC", "2024-01-01 08:00 17:59:59", "2024-01-01 18:00 07:59:59"),
        # `20:00-24:00` includes 23:59:59 and excludes the next midnight (a Tuesday, and not in it anyway).
        ("1", "20:00-24:00", "UTC", "2024-01-01 23:59:59", "2024-01-02 00:00; 2024-01-01 19:59"),
        # `00:00-24:00` is every moment of the listed days.
        ("1", "00:00-24:00", "UTC", "2024-01-01 00:00 23:59:59", "2024-01-02 00:00; 2023-12-31 23:59:59"),
        # 22:00-02:00 holds 22:00 to midnight and midnight to 02:00, each on the moment's own weekday.
        ("1234567", "22:00-02:00", "UTC", "2024-01-01 22:00 23:59", "2024-01-02 02:00"),
        ("1234567", "22:00-02:00", "UTC", "2024-01-02 00:00 01:59:59", "2024-01-02 21:59"),
        # Monday only, 22:00-02:00: Monday 01:00 is inside, Tuesday 01:00 is not (its weekday must be listed).
        ("1", "22:00-02:00", "UTC", "2024-01-01 01:00 23:00", "2024-01-02 01:00"),
        # Any of the ranges counts (2024-01-06 is a Saturday).
        ("12345", "08:00-12:00; 13:00-17:00", "UTC", "2024-01-01 09:00 16:59", "2024-01-01 12:30"),
        ("12345", "08:00-12:00; 13:00-17:00", "UTC", "", "2024-01-06 09:00"),
        # 09:00-17:00 in London is 09:00-17:00 GMT before the spring change and 08:00-16:00 UTC after it.
        ("1234567", "09:00-17:00", "Europe/London", "2024-03-30 09:00", "2024-03-30 08:30"),
        ("1234567", "09:00-17:00", "Europe/London", "2024-04-01 08:00", "2024-04-01 16:00"),
        # On 2024-10-27 London lives 01:00-02:00 twice (BST then GMT): both are inside a 01:00-02:00 profile.
        # Inside: 01:00 BST, 01:59 BST, 01:00 GMT (the second time), 01:59 GMT; outside: 00:59 BST, 02:00 GMT.
        ("7", "01:00-02:00", "Europe/London", "2024-10-27 00:00 00:59 01:00 01:59", "2024-10-26 23:59"),
        ("7", "01:00-02:00", "Europe/London", "", "2024-10-27 02:00"),
        # Santiago moves its clocks at midnight: a profile ending at 24:00 still ends at the local midnight.
        # 2024-09-07 (Saturday) 23:30 local, -04:00, is 03:30 UTC on the 8th; clocks then jump to 01:00
        # (-03:00): 04:00 UTC is 01:00 local, Sunday.
        ("6", "23:00-24:00", "America/Santiago", "2024-09-08 03:30", "2024-09-08 04:00"),
    ],
)
def test_moments_inside_and_outside(weekdays, ranges, zone_name, inside, outside):
    """A profile contains each moment of `inside` and none of `outside`."""
    profile = CompiledProfile(weekdays, ranges, zone_name)
    assert [moment for moment in moments(inside) if not profile.contains(moment)] == []
    assert [moment for moment in moments(outside) if profile.contains(moment)] == []


def test_weekday_and_time_are_those_of_the_zone():
    """Monday 02:00 UTC is Sunday 21:00 in New York: a Sunday-evening profile there contains it."""
    moment = utc(2024, 1, 1, 2, 0)
    assert is_inside("7", "20:00-23:00", "America/New_York", moment)
    assert not is_inside("1", "00:00-24:00", "America/New_York", moment)
    assert is_inside("1", "00:00-24:00", "UTC", moment)
    # Tokyo is 9 hours ahead: 16:00 UTC Monday is 01:00 Tuesday.
    assert is_inside("2", "00:00-02:00", "Asia/Tokyo", utc(2024, 1, 1, 16, 0))


def test_spring_forward_gap_in_london():
    """On 2024-03-31 London's clocks jump from 01:00 to 02:00: 01:00-02:00 is never inside that day."""
    profile = CompiledProfile("7", "01:00-02:00", "Europe/London")
    moment = utc(2024, 3, 30, 23, 0)
    inside = []
    while moment < utc(2024, 3, 31, 4, 0):
        inside.append(profile.contains(moment))
        moment += timedelta(minutes=1)
    assert not any(inside)
    # The week before, without a change, the same profile holds for one hour (01:00-02:00 GMT).
    assert profile.contains(utc(2024, 3, 24, 1, 30))


def test_naive_moments_are_utc():
    """A moment without a zone is UTC (as the database stores it), never the server's local time."""
    profile = CompiledProfile("7", "20:00-23:00", "America/New_York")
    assert profile.contains(datetime(2024, 1, 1, 2, 0))
    assert not profile.contains(datetime(2024, 1, 1, 5, 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one range"),
        ("08:00-08:00", "start equals the end"),
        ("24:00-02:00", "start must be between"),
        ("08:00-24:30", "end must be between"),
        ("08:00-25:00", "end must be between"),
        ("8-18", "is not a range"),
        ("08:60-09:00", "start must be between"),
    ],
)
def test_bad_ranges_are_refused(text, message):
    """Refused ranges say why."""
    with pytest.raises(TimeProfileError, match=message):
        parse_ranges(text)


def test_ranges_are_written_back_in_a_standard_form():
    """`8:00-18:00;22:00-2:00` reads as two ranges and writes as `08:00-18:00; 22:00-02:00`."""
    assert format_ranges(parse_ranges("8:00-18:00;22:00-2:00")) == "08:00-18:00; 22:00-02:00"
    assert parse_ranges("00:00-24:00") == [(0, 1440)]


def test_weekdays_and_zones_are_checked():
    """Weekday numbers 1-7 and IANA zone names only."""
    assert parse_weekdays("1, 2,7") == {MON, TUE, SUN}
    with pytest.raises(TimeProfileError):
        parse_weekdays("8")
    with pytest.raises(TimeProfileError):
        parse_weekdays("")
    assert str(zone("Europe/London")) == "Europe/London"
    for bad in ("Mars/Olympus", "../etc/passwd", "", "europe/london"):
        with pytest.raises(TimeProfileError):
            zone(bad)


def test_weekdays_label():
    """Short labels for lists."""
    assert weekdays_label("12345") == "Mon–Fri"
    assert weekdays_label("67") == "Sat, Sun"
    assert weekdays_label("1234567") == "every day"
    assert weekdays_label("1235") == "Mon–Wed, Fri"
