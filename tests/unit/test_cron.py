"""Cron: the grammar and its errors, every extension, Vixie's day rule, hand-written DST
tables for the zones that bite, and properties of the occurrence stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence, Trigger
from hora.triggers.cron import CronTrigger
from hora.triggers.dst import DstFold, DstGap


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def take(trigger: CronTrigger, after: datetime, n: int) -> list[Occurrence]:
    return list(islice(trigger.occurrences(after), n))


def walls(expr: str, after: datetime, n: int, tz: str = "UTC") -> list[str]:
    """The wall times of the first ``n`` occurrences, as 'YYYY-MM-DD HH:MM:SS'."""
    return [f"{o.local:%Y-%m-%d %H:%M:%S}" for o in take(CronTrigger(expr, tz), after, n)]


def days(expr: str, year: int, month: int, tz: str = "UTC") -> list[int]:
    """The days of ``month`` on which ``expr`` fires (for expressions firing at 00:00)."""
    start = datetime(year, month, 1, tzinfo=ZoneInfo(tz)) - timedelta(seconds=1)
    out = []
    for o in CronTrigger(expr, tz).occurrences(start):
        if (o.local.year, o.local.month) != (year, month):
            break
        out.append(o.local.day)
    return out


def table(trigger: CronTrigger, after: datetime, n: int) -> list[str]:
    """Each occurrence as 'UTC = local', '(skipped)' appended when it does not fire."""
    rows = []
    for o in take(trigger, after, n):
        assert o.at == o.nominal and o.at.tzinfo is UTC
        # (== across zones is False for a wall time in a fold, PEP 495: compare in UTC)
        assert o.local.astimezone(UTC) == o.at and o.local.tzinfo is ZoneInfo(trigger.timezone)
        skipped = " (skipped)" if o.skipped else ""
        rows.append(f"{o.at:%m-%dT%H:%MZ} = {o.local:%m-%dT%H:%M%z}{skipped}")
    return rows


# -- grammar ------------------------------------------------------------------------


def test_five_and_six_fields() -> None:
    five = CronTrigger("*/20 * * * *")
    six = CronTrigger("*/20 * * * * *")
    assert not five.has_seconds and six.has_seconds
    after = utc(2025, 1, 1)
    assert walls("*/20 * * * *", after, 2) == ["2025-01-01 00:20:00", "2025-01-01 00:40:00"]
    assert walls("*/20 * * * * *", after, 3) == [
        "2025-01-01 00:00:20", "2025-01-01 00:00:40", "2025-01-01 00:01:00"]
    assert walls("15 30 9 * * *", after, 1) == ["2025-01-01 09:30:15"]


def test_attributes_and_protocol() -> None:
    t = CronTrigger("  0 9 * * 1 ", "Europe/London", dst_gap="shift", dst_fold="both")
    assert t.expression == "0 9 * * 1"
    assert t.timezone == "Europe/London"
    assert t.dst_gap is DstGap.SHIFT and t.dst_fold is DstFold.BOTH
    assert isinstance(t, Trigger)
    assert "Europe/London" in repr(t)


@pytest.mark.parametrize(("macro", "same_as"), [
    ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"), ("@DAILY", "0 0 * * *"),
])
def test_macros(macro: str, same_as: str) -> None:
    after = utc(2025, 2, 3, 4, 5)
    tz = "America/New_York"
    assert (take(CronTrigger(macro, tz), after, 5)
            == take(CronTrigger(same_as, tz), after, 5))


def test_names_any_case_in_lists_and_ranges() -> None:
    assert walls("0 0 * jan,Mar mon-fri", utc(2025, 1, 30), 4) == [
        "2025-01-31 00:00:00", "2025-03-03 00:00:00", "2025-03-04 00:00:00",
        "2025-03-05 00:00:00"]
    assert days("0 0 * * FRI-SUN", 2025, 6) == [1, 6, 7, 8, 13, 14, 15, 20, 21, 22, 27, 28, 29]
    assert days("0 0 * * 5-7", 2025, 6) == days("0 0 * * FRI-SUN", 2025, 6)


def test_sunday_is_0_and_7() -> None:
    assert days("0 0 * * 0", 2025, 6) == days("0 0 * * 7", 2025, 6) == [1, 8, 15, 22, 29]
    assert days("0 0 * * SUN", 2025, 6) == [1, 8, 15, 22, 29]


def test_question_mark_is_star_in_day_fields() -> None:
    assert days("0 0 ? * MON", 2025, 6) == [2, 9, 16, 23, 30]
    assert days("0 0 1 * ?", 2025, 6) == [1]


@pytest.mark.parametrize(("minute", "expected"), [
    ("*/15", [0, 15, 30, 45]),
    ("10-50/10", [10, 20, 30, 40, 50]),
    ("5/15", [5, 20, 35, 50]),
    ("1,2,40-42", [1, 2, 40, 41, 42]),
    ("59", [59]),
])
def test_steps_ranges_lists(minute: str, expected: list[int]) -> None:
    got = [o.local.minute for o in take(CronTrigger(f"{minute} 3 * * *"),
                                        utc(2025, 1, 1), len(expected))]
    assert got == expected


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "message"), [
    ("", "cron: empty expression"),
    ("* * * *", "cron: expected 5 or 6 fields, got 4"),
    ("* * * * * * *", "cron: expected 5 or 6 fields, got 7: hora has no year field "
                      "(croniter's and Quartz's 7th); drop it, and use an rrule with UNTIL or "
                      "an at trigger to bound the years"),
    ("60 * * * *", "cron: minute 60 is out of range 0-59"),
    ("0 24 * * *", "cron: hour 24 is out of range 0-23"),
    ("0 0 32 * *", "cron: day-of-month 32 is out of range 1-31"),
    ("0 0 0 * *", "cron: day-of-month 0 is out of range 1-31"),
    ("0 0 * 13 *", "cron: month 13 is out of range 1-12"),
    ("0 0 * * 8", "cron: day-of-week 8 is out of range 0-7"),
    ("60 0 0 * * *", "cron: second 60 is out of range 0-59"),
    ("0 0 * * FOO", "cron: unknown name 'FOO' in day-of-week"),
    ("0 0 * foo *", "cron: unknown name 'FOO' in month"),
    ("MON * * * *", "cron: 'MON' in minute is not a number"),
    ("*/0 * * * *", "cron: step 0 in minute"),
    ("0 */x * * *", "cron: invalid step 'X' in hour"),
    ("5-1/2 * * * *", "cron: wrapping range 5-1/2 in minute: implementations step across "
                      "the wrap differently; write the two parts, e.g. 5-59/2,0-1/2"),
    ("-1 * * * *", "cron: invalid range '-1' in minute"),
    ("1.5 * * * *", "cron: invalid value '1.5' in minute"),
    ("1,,2 * * * *", "cron: empty list item in minute"),
    ("? * * * *", "cron: '?' is only allowed in day-of-month and day-of-week, not in minute"),
    ("0 0 L-31 * *", "cron: L-31 in day-of-month: the offset after L- must be 0-30"),
    ("0 0 1-5W * *", "cron: 1-5W in day-of-month: W needs one day before it, as in 15W"),
    ("0 0 32W * *", "cron: day-of-month 32 is out of range 1-31"),
    ("0 0 L/2 * *", "cron: invalid day-of-month 'L/2' (L, L-3, 15W and LW are allowed)"),
    ("0 0 * * MON#6", "cron: MON#6 in day-of-week: the number after # must be 1-5"),
    ("0 0 * * 1#0", "cron: 1#0 in day-of-week: the number after # must be 1-5"),
    ("0 0 * * L", "cron: L alone in day-of-week is ambiguous; write 5L or FRIL for the "
                  "last Friday of the month"),
    ("0 0 * * 8L", "cron: day-of-week 8 is out of range 0-7"),
    ("0 0 * * FOOL", "cron: unknown name 'FOO' in day-of-week"),
    ("0 0 30 2 *", "cron: expression never fires"),
    ("0 0 31 4,6,9,11 *", "cron: expression never fires"),
    ("0 0 30 FEB ?", "cron: expression never fires"),
    ("@reboot", "cron: @reboot is not supported: it names no time (run the task when your "
                "process starts instead)"),
    ("@fortnightly", "cron: unknown macro '@fortnightly' (use one of @yearly, @annually, "
                     "@monthly, @weekly, @daily, @midnight, @hourly)"),
])
def test_invalid_expressions(expr: str, message: str) -> None:
    with pytest.raises(InvalidTrigger) as info:
        CronTrigger(expr)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_invalid_zone_and_policies() -> None:
    with pytest.raises(InvalidTrigger, match="unknown time zone 'Mars/Olympus'"):
        CronTrigger("0 0 * * *", "Mars/Olympus")
    with pytest.raises(InvalidTrigger) as info:
        CronTrigger("0 0 * * *", dst_gap="later")
    assert str(info.value) == "cron: dst_gap must be one of first_valid, shift, skip, got 'later'"
    with pytest.raises(InvalidTrigger) as info:
        CronTrigger("0 0 * * *", dst_fold="twice")
    assert str(info.value) == "cron: dst_fold must be one of first, last, both, got 'twice'"


def test_naive_datetimes_are_refused() -> None:
    t = CronTrigger("0 0 * * *")
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        t.occurrences(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="instant must be a timezone-aware datetime"):
        t.next_after(datetime(2025, 1, 1))


def test_rare_but_possible_expressions_fire() -> None:
    # The 29th of February when it is a Sunday: 2032, then 2060 (28 years apart).
    t = CronTrigger("0 0 29 2 */7")
    assert t.next_after(utc(2025, 1, 1)) == utc(2032, 2, 29)
    assert t.next_after(utc(2032, 2, 29)) == utc(2060, 2, 29)
    assert CronTrigger("0 0 29 2 *").next_after(utc(2097, 1, 1)) == utc(2104, 2, 29)


def test_the_end_of_time() -> None:
    assert CronTrigger("0 0 1 1 *").next_after(utc(9999, 6, 1)) is None
    assert list(CronTrigger("0 0 1 1 *").occurrences(utc(9998, 6, 1)))[-1].at == utc(9999, 1, 1)


# -- extensions ---------------------------------------------------------------------


def test_last_day_of_month() -> None:
    got = [(o.local.month, o.local.day) for o in take(CronTrigger("0 0 L * *"),
                                                      utc(2024, 1, 1), 4)]
    assert got == [(1, 31), (2, 29), (3, 31), (4, 30)]
    assert days("0 0 L * *", 2025, 2) == [28]


def test_days_before_the_last() -> None:
    assert days("0 0 L-3 * *", 2025, 1) == [28]
    assert days("0 0 L-3 * *", 2025, 2) == [25]
    assert days("0 0 L-0 * *", 2025, 4) == [30]
    assert days("0 0 L-30 * *", 2025, 1) == [1]
    assert days("0 0 L-30 * *", 2025, 4) == []


def test_nearest_weekday() -> None:
    assert days("0 0 15W * *", 2025, 1) == [15]  # a Wednesday
    assert days("0 0 15W * *", 2025, 2) == [14]  # Saturday -> Friday
    assert days("0 0 15W * *", 2025, 6) == [16]  # Sunday -> Monday
    assert days("0 0 1W * *", 2025, 3) == [3]  # Saturday the 1st -> Monday, not February
    assert days("0 0 1W * *", 2025, 6) == [2]  # Sunday the 1st -> Monday
    assert days("0 0 31W * *", 2025, 8) == [29]  # Sunday the 31st -> Friday, not September
    assert days("0 0 31W * *", 2025, 5) == [30]  # Saturday -> Friday
    assert days("0 0 31W * *", 2025, 4) == []  # April has no 31st


def test_last_weekday() -> None:
    assert days("0 0 LW * *", 2025, 1) == [31]  # Friday
    assert days("0 0 LW * *", 2025, 5) == [30]  # the 31st is a Saturday
    assert days("0 0 LW * *", 2025, 8) == [29]  # the 31st is a Sunday


def test_last_weekday_of_the_month_in_day_of_week() -> None:
    assert days("0 0 * * 5L", 2025, 1) == [31]
    assert days("0 0 * * FRIL", 2025, 2) == [28]
    assert days("0 0 * * friL", 2025, 3) == [28]
    assert days("0 0 * * 7L", 2025, 6) == days("0 0 * * 0L", 2025, 6) == [29]


def test_nth_weekday() -> None:
    assert days("0 0 * * 1#1", 2025, 1) == [6]
    assert days("0 0 * * MON#1", 2025, 2) == [3]
    assert days("0 0 * * mon#2", 2025, 3) == [10]
    assert days("0 0 * * SUN#1", 2025, 6) == days("0 0 * * 7#1", 2025, 6) == [1]
    assert days("0 0 * * FRI#5", 2025, 1) == [31]
    assert days("0 0 * * FRI#5", 2025, 2) == []


def test_extensions_mix_with_plain_values() -> None:
    assert days("0 0 1,L * *", 2025, 2) == [1, 28]
    assert days("0 0 1,15W,L-1 * *", 2025, 2) == [1, 14, 27]
    assert days("0 0 * * MON#1,FRIL", 2025, 2) == [3, 28]
    assert days("0 0 * * MON#1,6", 2025, 2) == [1, 3, 8, 15, 22]


# -- Vixie's day rule ---------------------------------------------------------------


def test_both_day_fields_restricted_means_either() -> None:
    # The 13th, or any Friday (13 June 2025 is both).
    assert days("0 0 13 * FRI", 2025, 6) == [6, 13, 20, 27]
    assert days("0 0 13 * FRI", 2025, 7) == [4, 11, 13, 18, 25]
    assert days("0 0 L * MON", 2025, 6) == [2, 9, 16, 23, 30]
    assert days("0 0 1 * MON#1", 2025, 6) == [1, 2]


def test_a_day_field_starting_with_star_means_both() -> None:
    # */2 in day-of-month starts with '*': odd days that are also Mondays.
    assert days("0 0 */2 * MON", 2025, 6) == [9, 23]
    assert days("0 0 */2 * MON", 2025, 7) == [7, 21]
    # ... and the same the other way round.
    assert days("0 0 1-10 * */3", 2025, 6) == [1, 4, 7, 8]  # Sun, Wed, Sat within 1-10
    # The full range written out does not start with '*': either matches.
    assert days("0 0 1-31 * MON", 2025, 6) == list(range(1, 31))
    assert days("0 0 * * MON", 2025, 6) == [2, 9, 16, 23, 30]


# -- DST ----------------------------------------------------------------------------
# Each row: the UTC instant = the wall time there. Transitions in 2025:
#   America/New_York     2025-03-09 02:00 EST -> 03:00 EDT; 2025-11-02 02:00 EDT -> 01:00 EST
#   Europe/London        2025-03-30 01:00 GMT -> 02:00 BST; 2025-10-26 02:00 BST -> 01:00 GMT
#   Australia/Lord_Howe  2025-04-06 02:00 +11 -> 01:30 +1030; 2025-10-05 02:00 +1030 -> 02:30 +11
#   Australia/Sydney     2025-04-06 03:00 AEDT -> 02:00 AEST; 2025-10-05 02:00 AEST -> 03:00 AEDT
#   Asia/Kolkata         +0530 all year

GAP_TABLES = [
    ("America/New_York", "30 2 * * *", utc(2025, 3, 8), {
        "first_valid": ["03-08T07:30Z = 03-08T02:30-0500", "03-09T07:00Z = 03-09T03:00-0400",
                        "03-10T06:30Z = 03-10T02:30-0400"],
        "shift": ["03-08T07:30Z = 03-08T02:30-0500", "03-09T07:30Z = 03-09T03:30-0400",
                  "03-10T06:30Z = 03-10T02:30-0400"],
        "skip": ["03-08T07:30Z = 03-08T02:30-0500",
                 "03-09T07:30Z = 03-09T03:30-0400 (skipped)",
                 "03-10T06:30Z = 03-10T02:30-0400"],
    }),
    ("Europe/London", "30 1 * * *", utc(2025, 3, 29), {
        "first_valid": ["03-29T01:30Z = 03-29T01:30+0000", "03-30T01:00Z = 03-30T02:00+0100",
                        "03-31T00:30Z = 03-31T01:30+0100"],
        "shift": ["03-29T01:30Z = 03-29T01:30+0000", "03-30T01:30Z = 03-30T02:30+0100",
                  "03-31T00:30Z = 03-31T01:30+0100"],
        "skip": ["03-29T01:30Z = 03-29T01:30+0000",
                 "03-30T01:30Z = 03-30T02:30+0100 (skipped)",
                 "03-31T00:30Z = 03-31T01:30+0100"],
    }),
    ("Australia/Lord_Howe", "15 2 * * *", utc(2025, 10, 3), {
        "first_valid": ["10-03T15:45Z = 10-04T02:15+1030", "10-04T15:30Z = 10-05T02:30+1100",
                        "10-05T15:15Z = 10-06T02:15+1100"],
        "shift": ["10-03T15:45Z = 10-04T02:15+1030", "10-04T15:45Z = 10-05T02:45+1100",
                  "10-05T15:15Z = 10-06T02:15+1100"],
        "skip": ["10-03T15:45Z = 10-04T02:15+1030",
                 "10-04T15:45Z = 10-05T02:45+1100 (skipped)",
                 "10-05T15:15Z = 10-06T02:15+1100"],
    }),
    ("Australia/Sydney", "30 2 * * *", utc(2025, 10, 3), {
        "first_valid": ["10-03T16:30Z = 10-04T02:30+1000", "10-04T16:00Z = 10-05T03:00+1100",
                        "10-05T15:30Z = 10-06T02:30+1100"],
        "shift": ["10-03T16:30Z = 10-04T02:30+1000", "10-04T16:30Z = 10-05T03:30+1100",
                  "10-05T15:30Z = 10-06T02:30+1100"],
        "skip": ["10-03T16:30Z = 10-04T02:30+1000",
                 "10-04T16:30Z = 10-05T03:30+1100 (skipped)",
                 "10-05T15:30Z = 10-06T02:30+1100"],
    }),
    ("Asia/Kolkata", "30 2 * * *", utc(2025, 3, 8), {
        policy: ["03-08T21:00Z = 03-09T02:30+0530", "03-09T21:00Z = 03-10T02:30+0530",
                 "03-10T21:00Z = 03-11T02:30+0530"]
        for policy in ("first_valid", "shift", "skip")
    }),
]

FOLD_TABLES = [
    ("America/New_York", "30 1 * * *", utc(2025, 11, 1), {
        "first": ["11-01T05:30Z = 11-01T01:30-0400", "11-02T05:30Z = 11-02T01:30-0400",
                  "11-03T06:30Z = 11-03T01:30-0500"],
        "last": ["11-01T05:30Z = 11-01T01:30-0400", "11-02T06:30Z = 11-02T01:30-0500",
                 "11-03T06:30Z = 11-03T01:30-0500"],
        "both": ["11-01T05:30Z = 11-01T01:30-0400", "11-02T05:30Z = 11-02T01:30-0400",
                 "11-02T06:30Z = 11-02T01:30-0500", "11-03T06:30Z = 11-03T01:30-0500"],
    }),
    ("Europe/London", "30 1 * * *", utc(2025, 10, 25), {
        "first": ["10-25T00:30Z = 10-25T01:30+0100", "10-26T00:30Z = 10-26T01:30+0100",
                  "10-27T01:30Z = 10-27T01:30+0000"],
        "last": ["10-25T00:30Z = 10-25T01:30+0100", "10-26T01:30Z = 10-26T01:30+0000",
                 "10-27T01:30Z = 10-27T01:30+0000"],
        "both": ["10-25T00:30Z = 10-25T01:30+0100", "10-26T00:30Z = 10-26T01:30+0100",
                 "10-26T01:30Z = 10-26T01:30+0000", "10-27T01:30Z = 10-27T01:30+0000"],
    }),
    ("Australia/Lord_Howe", "45 1 * * *", utc(2025, 4, 4), {
        "first": ["04-04T14:45Z = 04-05T01:45+1100", "04-05T14:45Z = 04-06T01:45+1100",
                  "04-06T15:15Z = 04-07T01:45+1030"],
        "last": ["04-04T14:45Z = 04-05T01:45+1100", "04-05T15:15Z = 04-06T01:45+1030",
                 "04-06T15:15Z = 04-07T01:45+1030"],
        "both": ["04-04T14:45Z = 04-05T01:45+1100", "04-05T14:45Z = 04-06T01:45+1100",
                 "04-05T15:15Z = 04-06T01:45+1030", "04-06T15:15Z = 04-07T01:45+1030"],
    }),
    ("Australia/Sydney", "30 2 * * *", utc(2025, 4, 4), {
        "first": ["04-04T15:30Z = 04-05T02:30+1100", "04-05T15:30Z = 04-06T02:30+1100",
                  "04-06T16:30Z = 04-07T02:30+1000"],
        "last": ["04-04T15:30Z = 04-05T02:30+1100", "04-05T16:30Z = 04-06T02:30+1000",
                 "04-06T16:30Z = 04-07T02:30+1000"],
        "both": ["04-04T15:30Z = 04-05T02:30+1100", "04-05T15:30Z = 04-06T02:30+1100",
                 "04-05T16:30Z = 04-06T02:30+1000", "04-06T16:30Z = 04-07T02:30+1000"],
    }),
    ("Asia/Kolkata", "30 1 * * *", utc(2025, 11, 1), {
        policy: ["11-01T20:00Z = 11-02T01:30+0530", "11-02T20:00Z = 11-03T01:30+0530",
                 "11-03T20:00Z = 11-04T01:30+0530", "11-04T20:00Z = 11-05T01:30+0530"][:n]
        for policy, n in (("first", 3), ("last", 3), ("both", 4))
    }),
]


@pytest.mark.parametrize(("tz", "expr", "after", "by_policy"), GAP_TABLES,
                         ids=[row[0] for row in GAP_TABLES])
@pytest.mark.parametrize("gap", ["first_valid", "shift", "skip"])
@pytest.mark.parametrize("fold", ["first", "last", "both"])
def test_spring_gap_tables(tz: str, expr: str, after: datetime,
                           by_policy: dict[str, list[str]], gap: str, fold: str) -> None:
    expected = by_policy[gap]
    trigger = CronTrigger(expr, tz, dst_gap=gap, dst_fold=fold)  # the fold plays no part
    assert table(trigger, after, len(expected)) == expected


@pytest.mark.parametrize(("tz", "expr", "after", "by_policy"), FOLD_TABLES,
                         ids=[row[0] for row in FOLD_TABLES])
@pytest.mark.parametrize("fold", ["first", "last", "both"])
@pytest.mark.parametrize("gap", ["first_valid", "shift", "skip"])
def test_autumn_fold_tables(tz: str, expr: str, after: datetime,
                            by_policy: dict[str, list[str]], fold: str, gap: str) -> None:
    expected = by_policy[fold]
    trigger = CronTrigger(expr, tz, dst_gap=gap, dst_fold=fold)  # the gap plays no part
    assert table(trigger, after, len(expected)) == expected


REAL_TIME_TABLES = [
    # Hourly: every real hour, the skipped wall hour is simply not there, the repeated one
    # fires twice.
    ("America/New_York", "0 * * * *", utc(2025, 3, 9, 5, 30),
     ["03-09T06:00Z = 03-09T01:00-0500", "03-09T07:00Z = 03-09T03:00-0400",
      "03-09T08:00Z = 03-09T04:00-0400"]),
    ("America/New_York", "0 * * * *", utc(2025, 11, 2, 4, 30),
     ["11-02T05:00Z = 11-02T01:00-0400", "11-02T06:00Z = 11-02T01:00-0500",
      "11-02T07:00Z = 11-02T02:00-0500"]),
    ("America/New_York", "* * * * *", utc(2025, 3, 9, 6, 58),
     ["03-09T06:59Z = 03-09T01:59-0500", "03-09T07:00Z = 03-09T03:00-0400",
      "03-09T07:01Z = 03-09T03:01-0400"]),
    ("America/New_York", "* * * * *", utc(2025, 11, 2, 5, 58),
     ["11-02T05:59Z = 11-02T01:59-0400", "11-02T06:00Z = 11-02T01:00-0500",
      "11-02T06:01Z = 11-02T01:01-0500"]),
    # Only during hour 2 (or 1): the wall times that do not exist are reported skipped.
    ("America/New_York", "*/30 2 * * *", utc(2025, 3, 8, 12),
     ["03-09T07:00Z = 03-09T03:00-0400 (skipped)", "03-09T07:30Z = 03-09T03:30-0400 (skipped)",
      "03-10T06:00Z = 03-10T02:00-0400"]),
    ("America/New_York", "*/30 1 * * *", utc(2025, 11, 2),
     ["11-02T05:00Z = 11-02T01:00-0400", "11-02T05:30Z = 11-02T01:30-0400",
      "11-02T06:00Z = 11-02T01:00-0500", "11-02T06:30Z = 11-02T01:30-0500",
      "11-03T06:00Z = 11-03T01:00-0500"]),
    ("Europe/London", "*/30 * * * *", utc(2025, 3, 30, 0, 15),
     ["03-30T00:30Z = 03-30T00:30+0000", "03-30T01:00Z = 03-30T02:00+0100",
      "03-30T01:30Z = 03-30T02:30+0100"]),
    ("Europe/London", "*/30 * * * *", utc(2025, 10, 26, 0, 15),
     ["10-26T00:30Z = 10-26T01:30+0100", "10-26T01:00Z = 10-26T01:00+0000",
      "10-26T01:30Z = 10-26T01:30+0000", "10-26T02:00Z = 10-26T02:00+0000"]),
    ("Australia/Lord_Howe", "*/30 * * * *", utc(2025, 10, 4, 14, 15),
     ["10-04T14:30Z = 10-05T01:00+1030", "10-04T15:00Z = 10-05T01:30+1030",
      "10-04T15:30Z = 10-05T02:30+1100", "10-04T16:00Z = 10-05T03:00+1100"]),
    # Hourly across a 30-minute jump: 02:00 never shows on the wall clock.
    ("Australia/Lord_Howe", "0 * * * *", utc(2025, 10, 4, 14, 15),
     ["10-04T14:30Z = 10-05T01:00+1030", "10-04T15:30Z = 10-05T02:30+1100 (skipped)",
      "10-04T16:00Z = 10-05T03:00+1100"]),
    ("Australia/Lord_Howe", "*/30 * * * *", utc(2025, 4, 5, 13, 45),
     ["04-05T14:00Z = 04-06T01:00+1100", "04-05T14:30Z = 04-06T01:30+1100",
      "04-05T15:00Z = 04-06T01:30+1030", "04-05T15:30Z = 04-06T02:00+1030"]),
    ("Australia/Sydney", "0 * * * *", utc(2025, 4, 5, 14, 30),
     ["04-05T15:00Z = 04-06T02:00+1100", "04-05T16:00Z = 04-06T02:00+1000",
      "04-05T17:00Z = 04-06T03:00+1000"]),
    ("Australia/Sydney", "0 * * * *", utc(2025, 10, 4, 14, 30),
     ["10-04T15:00Z = 10-05T01:00+1000", "10-04T16:00Z = 10-05T03:00+1100",
      "10-04T17:00Z = 10-05T04:00+1100"]),
    ("Asia/Kolkata", "0 */6 * * *", utc(2025, 3, 9),
     ["03-09T00:30Z = 03-09T06:00+0530", "03-09T06:30Z = 03-09T12:00+0530",
      "03-09T12:30Z = 03-09T18:00+0530"]),
]


@pytest.mark.parametrize(("tz", "expr", "after", "expected"), REAL_TIME_TABLES,
                         ids=[f"{r[0]} {r[1]} {r[2]:%m-%d}" for r in REAL_TIME_TABLES])
@pytest.mark.parametrize(("gap", "fold"), [("first_valid", "first"), ("shift", "last"),
                                           ("skip", "both")])
def test_real_time_tables(tz: str, expr: str, after: datetime, expected: list[str],
                          gap: str, fold: str) -> None:
    trigger = CronTrigger(expr, tz, dst_gap=gap, dst_fold=fold)  # policies do not apply
    assert trigger.real_time
    assert table(trigger, after, len(expected)) == expected


def test_fixed_time_is_decided_by_minute_and_hour_fields() -> None:
    assert not CronTrigger("30 2 * * *").real_time
    assert not CronTrigger("0,30 1-3 * * *").real_time
    assert not CronTrigger("5/15 2 * * *").real_time  # does not start with '*'
    assert not CronTrigger("*/10 30 2 * * *").real_time  # seconds do not count
    assert CronTrigger("*/15 2 * * *").real_time
    assert CronTrigger("0 * * * *").real_time
    assert CronTrigger("@hourly").real_time
    assert not CronTrigger("@daily").real_time


def test_dst_notes() -> None:
    def notes(expr: str, tz: str, after: datetime, n: int, **kw: str) -> list[tuple[str, ...]]:
        return [o.notes for o in take(CronTrigger(expr, tz, **kw), after, n)]

    ny, spring, autumn = "America/New_York", utc(2025, 3, 9), utc(2025, 11, 2)
    assert notes("30 2 * * *", ny, spring, 1) == [
        ("dst_gap: 02:30 does not exist; moved to 03:00, the first valid time",)]
    assert notes("30 2 * * *", ny, spring, 1, dst_gap="shift") == [
        ("dst_gap: 02:30 does not exist; shifted to 03:30",)]
    [skipped] = take(CronTrigger("30 2 * * *", ny, dst_gap="skip"), spring, 1)
    assert skipped.skipped == "dst_gap: 02:30 does not exist; skipped"
    assert skipped.notes == (skipped.skipped,)
    assert CronTrigger("30 2 * * *", ny, dst_gap="skip").next_after(spring) == utc(2025, 3, 10,
                                                                                   6, 30)
    assert notes("30 1 * * *", ny, autumn, 1) == [
        ("dst_fold: 01:30 happens twice; first taken",)]
    assert notes("30 1 * * *", ny, autumn, 2, dst_fold="both") == [
        ("dst_fold: 01:30 happens twice; both taken",)] * 2
    assert notes("30 1 * * *", ny, utc(2025, 11, 3), 1) == [()]
    assert notes("0 * * * *", ny, utc(2025, 11, 2, 5, 30), 1) == [
        ("dst_fold: 01:00 happens twice; both taken (this schedule follows real elapsed "
         "time)",)]


def test_two_wall_times_in_one_gap_fire_once() -> None:
    ny = "America/New_York"
    rows = table(CronTrigger("0,30 2 * * *", ny), utc(2025, 3, 9), 3)
    assert rows == ["03-09T07:00Z = 03-09T03:00-0400",
                    "03-09T07:30Z = 03-09T03:30-0400 (skipped)",
                    "03-10T06:00Z = 03-10T02:00-0400"]
    second = take(CronTrigger("0,30 2 * * *", ny), utc(2025, 3, 9), 2)[1]
    assert second.skipped == ("dst_gap: 02:30 does not exist; its first valid time, 03:00, "
                              "already fires")
    # 02:00 moves onto 03:00, which fires by itself: once, as a plain 03:00.
    occ = take(CronTrigger("0 2,3 * * *", ny), utc(2025, 3, 9), 2)
    assert [(o.at, o.notes, o.skipped) for o in occ] == [
        (utc(2025, 3, 9, 7), (), None), (utc(2025, 3, 10, 6), (), None)]
    # With shift, 02:30 lands on 03:30 which fires anyway: once.
    assert table(CronTrigger("30 2,3 * * *", ny, dst_gap="shift"), utc(2025, 3, 9), 2) == [
        "03-09T07:30Z = 03-09T03:30-0400", "03-10T06:30Z = 03-10T02:30-0400"]


def test_six_fields_and_macros_get_the_same_dst_handling() -> None:
    ny, spring = "America/New_York", utc(2025, 3, 9)
    assert take(CronTrigger("0 30 2 * * *", ny), spring, 3) == take(
        CronTrigger("30 2 * * *", ny), spring, 3)
    # Santiago moves its clocks at midnight: @daily fires at 01:00 that day.
    santiago = table(CronTrigger("@daily", "America/Santiago"), utc(2025, 9, 6, 5), 2)
    assert santiago == ["09-07T04:00Z = 09-07T01:00-0300", "09-08T03:00Z = 09-08T00:00-0300"]


def test_every_second_through_the_gap_fires_once_per_real_second() -> None:
    t = CronTrigger("* * * * * *", "America/New_York")
    got = [o.at for o in take(t, utc(2025, 3, 9, 6, 59, 58), 4)]
    assert got == [utc(2025, 3, 9, 6, 59, 59), utc(2025, 3, 9, 7), utc(2025, 3, 9, 7, 0, 1),
                   utc(2025, 3, 9, 7, 0, 2)]


def test_next_after_from_inside_a_fold_and_a_gap() -> None:
    ny = "America/New_York"
    # 01:45 EDT: the 01:30 of "last" (EST) is still to come.
    assert CronTrigger("30 1 * * *", ny, dst_fold="last").next_after(
        utc(2025, 11, 2, 5, 45)) == utc(2025, 11, 2, 6, 30)
    assert CronTrigger("30 1 * * *", ny, dst_fold="both").next_after(
        utc(2025, 11, 2, 5, 45)) == utc(2025, 11, 2, 6, 30)
    assert CronTrigger("30 1 * * *", ny).next_after(
        utc(2025, 11, 2, 5, 45)) == utc(2025, 11, 3, 6, 30)
    # 03:10 EDT: 02:30 shifted to 03:30 is still to come.
    assert CronTrigger("30 2 * * *", ny, dst_gap="shift").next_after(
        utc(2025, 3, 9, 7, 10)) == utc(2025, 3, 9, 7, 30)
    assert CronTrigger("30 2 * * *", ny).next_after(
        utc(2025, 3, 9, 7, 0)) == utc(2025, 3, 10, 6, 30)


# -- properties ---------------------------------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata",
         "Australia/Sydney", "America/Santiago"]
# Instants near 2025's transitions, where the interesting things happen.
NEAR = [utc(2025, 3, 9, 7), utc(2025, 11, 2, 6), utc(2025, 3, 30, 1), utc(2025, 10, 26, 1),
        utc(2025, 4, 5, 15), utc(2025, 10, 4, 15, 30), utc(2025, 4, 5, 16), utc(2025, 10, 4, 16),
        utc(2025, 9, 7, 4), utc(2025, 4, 6, 3)]

Field = tuple[str, frozenset[int], bool]  # text, the values it means, starts with '*'


def stars(lo: int, hi: int) -> st.SearchStrategy[Field]:
    """``*`` or ``*/n``."""
    return st.one_of(
        st.just(("*", frozenset(range(lo, hi + 1)), True)),
        st.integers(1, hi - lo + 1).map(
            lambda n: (f"*/{n}", frozenset(range(lo, hi + 1, n)), True)))


def field(lo: int, hi: int, *, star_hi: int | None = None,
          names: dict[int, str] | None = None) -> st.SearchStrategy[Field]:
    top = hi if star_hi is None else star_hi

    def norm(values: set[int]) -> frozenset[int]:
        return frozenset(v % 7 for v in values) if star_hi is not None else frozenset(values)

    def show(v: int) -> str:
        return names[v] if names and v in names else str(v)

    listed = st.sets(st.integers(lo, hi), min_size=1, max_size=4).map(
        lambda s: (",".join(show(v) for v in sorted(s)), norm(s), False))
    ranged = st.tuples(st.integers(lo, hi), st.integers(lo, hi), st.integers(1, 4)).map(
        lambda t: (f"{show(min(t[:2]))}-{show(max(t[:2]))}/{t[2]}",
                   norm(set(range(min(t[:2]), max(t[:2]) + 1, t[2]))), False))
    return st.one_of(stars(lo, top), listed, ranged)


MONTH_NAMES = {1: "JAN", 4: "apr", 12: "Dec"}
DOW_NAMES = {1: "MON", 5: "fri", 0: "SUN"}


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[Field]]:
    seconds = draw(st.one_of(st.just(None), field(0, 59)))
    fields = [draw(field(0, 59)), draw(field(0, 23)), draw(field(1, 31)),
              draw(field(1, 12, names=MONTH_NAMES)),
              draw(field(0, 7, star_hi=6, names=DOW_NAMES))]
    if seconds is None:
        fields.insert(0, ("0", frozenset({0}), False))
        text = " ".join(f[0] for f in fields[1:])
    else:
        fields.insert(0, seconds)
        text = " ".join(f[0] for f in fields)
    return text, fields


@st.composite
def real_time_expressions(draw: st.DrawFn) -> tuple[str, list[Field]]:
    """5 fields, the minute or the hour starting with '*'."""
    starred = draw(st.sampled_from(["minute", "hour", "both"]))
    minute = draw(stars(0, 59) if starred != "hour" else field(0, 59))
    hour = draw(stars(0, 23) if starred != "minute" else field(0, 23))
    fields = [("0", frozenset({0}), False), minute, hour, draw(field(1, 31)),
              draw(field(1, 12, names=MONTH_NAMES)),
              draw(field(0, 7, star_hi=6, names=DOW_NAMES))]
    return " ".join(f[0] for f in fields[1:]), fields


def matches(fields: list[Field], wall: datetime) -> bool:
    sec, minute, hour, dom, month, dow = fields
    day_ok_dom = wall.day in dom[1]
    day_ok_dow = (wall.weekday() + 1) % 7 in dow[1]
    day_ok = (day_ok_dom and day_ok_dow) if (dom[2] or dow[2]) else (day_ok_dom or day_ok_dow)
    return (wall.second in sec[1] and wall.minute in minute[1] and wall.hour in hour[1]
            and wall.month in month[1] and day_ok)


def build(text: str, tz: str, gap: str, fold: str) -> CronTrigger:
    try:
        return CronTrigger(text, tz, dst_gap=gap, dst_fold=fold)
    except InvalidTrigger as e:
        assert str(e) == "cron: expression never fires"  # e.g. 31 in April only
        assume(False)
        raise


afters = st.one_of(
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    st.tuples(st.sampled_from(NEAR), st.integers(-26 * 3600, 26 * 3600)).map(
        lambda t: t[0] + timedelta(seconds=t[1])),
)
policies = st.tuples(st.sampled_from([g.value for g in DstGap]),
                     st.sampled_from([f.value for f in DstFold]))


@settings(max_examples=70, deadline=None)
@given(expressions(), st.sampled_from(ZONES), afters, policies)
def test_occurrences_increase_and_match(expr: tuple[str, list[Field]], tz: str,
                                        after: datetime, policy: tuple[str, str]) -> None:
    text, fields = expr
    trigger = build(text, tz, *policy)
    occurrences = take(trigger, after, 20)
    assert occurrences
    previous = after
    for o in occurrences:
        assert o.nominal > previous
        previous = o.nominal
        assert o.at == o.nominal and o.at.tzinfo is UTC
        assert o.local.astimezone(UTC) == o.at
        moved = any(n.startswith("dst_gap") for n in o.notes)
        if not moved:  # DST did not move it: the wall clock shows what the expression says
            assert matches(fields, o.local.replace(tzinfo=None)), (text, o)
        if o.skipped:
            assert o.notes == (o.skipped,)


@settings(max_examples=60, deadline=None)
@given(expressions(), st.sampled_from(ZONES), afters, policies, st.integers(0, 15))
def test_next_after_is_stable_and_streams_are_consistent(
        expr: tuple[str, list[Field]], tz: str, after: datetime, policy: tuple[str, str],
        k: int) -> None:
    text, _ = expr
    trigger = build(text, tz, *policy)
    first = trigger.next_after(after)
    assert first is not None and first > after
    assert first == trigger.next_after(after)
    assert first == next(o.at for o in trigger.occurrences(after) if o.skipped is None)
    # Resuming from any occurrence gives the rest of the same stream.
    stream = take(trigger, after, 16)
    assert stream == take(trigger, after, 16)
    k = min(k, len(stream) - 1)
    assert take(trigger, stream[k].nominal, len(stream) - k - 1) == stream[k + 1:]
    # ... and so does resuming from just before it, even mid-second.
    resumed = take(trigger, stream[k].nominal - timedelta(microseconds=1), len(stream) - k)
    assert resumed == stream[k:]


@settings(max_examples=50, deadline=None)
@given(real_time_expressions(), st.sampled_from(ZONES),
       st.tuples(st.sampled_from(NEAR), st.integers(-4 * 60, 60)), policies)
def test_real_time_schedules_fire_at_each_matching_real_minute(
        expr: tuple[str, list[Field]], tz: str, near: tuple[datetime, int],
        policy: tuple[str, str]) -> None:
    """Checked against brute force: exactly the UTC minutes whose wall time matches fire."""
    text, fields = expr
    trigger = build(text, tz, *policy)
    assert trigger.real_time
    start = near[0] + timedelta(minutes=near[1])
    end = start + timedelta(hours=5)
    zone = ZoneInfo(tz)
    expected = []
    t = start + timedelta(minutes=1)
    while t <= end:
        if matches(fields, t.astimezone(zone).replace(tzinfo=None)):
            expected.append(t)
        t += timedelta(minutes=1)
    got = []
    for o in trigger.occurrences(start):
        if o.nominal > end:
            break
        if o.skipped is None:
            got.append(o.at)
    assert got == expected


@settings(max_examples=40, deadline=None)
@given(expressions(), st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1),
                                   timezones=st.just(UTC)))
def test_next_after_is_the_first_match_in_utc(expr: tuple[str, list[Field]],
                                              after: datetime) -> None:
    """Checked against brute force over the next 12 hours (30 minutes, second by second,
    for 6-field expressions)."""
    text, fields = expr
    trigger = build(text, "UTC", "first_valid", "first")
    got = trigger.next_after(after)
    assert got is not None
    step = timedelta(seconds=1) if trigger.has_seconds else timedelta(minutes=1)
    t = after.replace(second=0, microsecond=0) if step.seconds == 60 else after.replace(
        microsecond=0)
    t += step
    horizon = after + (timedelta(hours=12) if step.seconds == 60 else timedelta(minutes=30))
    while t <= horizon and t < got:
        assert not matches(fields, t.replace(tzinfo=None)), t
        t += step
    assert got > horizon or matches(fields, got.replace(tzinfo=None))
