"""Business calendars, the skip/next/previous policies, delivery windows, jitter, and the
``at`` and ``interval`` triggers."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence, Trigger
from hora.triggers.basic import AtTrigger, IntervalTrigger, first_fire_after
from hora.triggers.calendar import BusinessCalendar, CalendarTrigger
from hora.triggers.jitter import JitterTrigger
from hora.triggers.rrule import RRuleTrigger
from hora.triggers.window import DeliveryWindow, WindowTrigger

NY = "America/New_York"
LONDON = "Europe/London"
US = BusinessCalendar("US")
ENGLAND = BusinessCalendar("GB", "ENG")


def take(trigger: Trigger, after: datetime, n: int) -> list[Occurrence]:
    return list(islice(trigger.occurrences(after), n))


def fired(trigger: Trigger, after: datetime, n: int) -> list[Occurrence]:
    return list(islice((o for o in trigger.occurrences(after) if o.skipped is None), n))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- BusinessCalendar ----------------------------------------------------------------------

def test_us_holidays_and_weekends() -> None:
    assert not US.is_business_day(date(2027, 11, 25))
    assert US.holiday_name(date(2027, 11, 25)) == "Thanksgiving Day"
    assert US.why_not_business_day(date(2027, 11, 25)) == \
        "2027-11-25 is a holiday (Thanksgiving Day)"
    assert US.why_not_business_day(date(2027, 11, 27)) == \
        "2027-11-27 is a weekend day (Saturday)"
    assert US.is_business_day(date(2027, 11, 26))
    assert US.holiday_name(date(2027, 11, 26)) is None
    # observed holidays count: 4 July 2027 is a Sunday, observed on Monday 5 July
    assert US.holiday_name(date(2027, 7, 5)) == "Independence Day (observed)"
    assert US.next_business_day(date(2027, 11, 25)) == date(2027, 11, 26)
    assert US.previous_business_day(date(2027, 11, 28)) == date(2027, 11, 26)
    assert US.previous_business_day(date(2027, 11, 29)) == date(2027, 11, 29)  # on or before
    assert US.is_business_day(datetime(2027, 11, 26, 9))  # a datetime is read as its date


def test_england_is_not_scotland() -> None:
    assert ENGLAND.holiday_name(date(2027, 8, 30)) == "Late Summer Bank Holiday"
    assert ENGLAND.is_business_day(date(2027, 8, 2))
    scotland = BusinessCalendar("GB", "SCT")
    assert scotland.holiday_name(date(2027, 8, 2)) == "Summer Bank Holiday"
    assert scotland.is_business_day(date(2027, 8, 30))
    # "GB-ENG" and lower case name the same calendar
    assert BusinessCalendar("gb-eng").holiday_name(date(2027, 8, 30)) == \
        "Late Summer Bank Holiday"
    assert BusinessCalendar("gb", "eng").subdivision == "ENG"


def test_extra_holidays_and_custom_weekends() -> None:
    cal = BusinessCalendar("US", extra_holidays={date(2027, 12, 24): "office closed"},
                           weekend=(4, 5))  # Friday and Saturday
    assert cal.holiday_name(date(2027, 12, 24)) == "Christmas Day (observed); office closed"
    assert cal.why_not_business_day(date(2027, 12, 17)) == \
        "2027-12-17 is a weekend day (Friday)"
    assert cal.is_business_day(date(2027, 12, 19))  # Sunday
    plain = BusinessCalendar(extra_holidays=[date(2027, 3, 3)])
    assert plain.why_not_business_day(date(2027, 3, 3)) == \
        "2027-03-03 is a holiday (extra holiday)"
    assert plain.is_business_day(date(2027, 11, 25))  # no country: no public holidays


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"country": "XX"}, "calendar.holidays: unknown country 'XX'"),
    ({"country": "US", "subdivision": "ZZ"},
     "calendar.subdivision: unknown subdivision 'ZZ' of US (known: AK, AL"),
    ({"subdivision": "ENG"}, "calendar.subdivision: needs a country"),
    ({"weekend": range(7)}, "calendar.weekend: every day is a weekend day"),
    ({"weekend": (5, 7)}, "calendar.weekend: 7 is not a weekday number"),
    ({"extra_holidays": ["2027-12-24"]}, "calendar.extra_holidays: '2027-12-24' is not a date"),
])
def test_calendar_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTrigger) as exc:
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]
    assert message in str(exc.value)


# --- CalendarTrigger -----------------------------------------------------------------------

def daily(hour: int, zone: str = NY, start: date = date(2027, 1, 1)) -> RRuleTrigger:
    return RRuleTrigger("FREQ=DAILY", datetime.combine(start, time(hour)), zone)


def test_skip_reports_the_holiday() -> None:
    trigger = CalendarTrigger(daily(9), US, "skip", NY)
    occ = take(trigger, utc(2027, 11, 24), 5)
    assert [(o.nominal.astimezone(ZoneInfo(NY)).day, o.skipped) for o in occ] == [
        (24, None),
        (25, "calendar: 2027-11-25 is a holiday (Thanksgiving Day)"),
        (26, None),
        (27, "calendar: 2027-11-27 is a weekend day (Saturday)"),
        (28, "calendar: 2027-11-28 is a weekend day (Sunday)"),
    ]
    assert all(o.at == o.nominal for o in occ)


def test_next_moves_to_the_next_business_day_at_the_same_wall_time() -> None:
    weekly = RRuleTrigger("FREQ=WEEKLY;BYDAY=TH", datetime(2027, 11, 4, 9), NY)
    trigger = CalendarTrigger(weekly, US, "next", NY)
    occ = take(trigger, utc(2027, 11, 19), 2)
    assert occ[0].nominal == utc(2027, 11, 25, 14)
    assert occ[0].local.isoformat() == "2027-11-26T09:00:00-05:00"
    assert occ[0].notes == ("calendar: 2027-11-25 is a holiday (Thanksgiving Day); moved to "
                            "the next business day, 2027-11-26",)
    assert occ[1].local.isoformat() == "2027-12-02T09:00:00-05:00" and not occ[1].notes
    assert trigger.next_after(utc(2027, 11, 20)) == utc(2027, 11, 26, 14)


def test_previous_moves_back_and_keeps_the_wall_time_across_dst() -> None:
    # Monday 08 November 2027 is after the autumn change, the Friday before is not: the
    # wall time stays 07:00, the UTC instant changes.
    weekly = RRuleTrigger("FREQ=WEEKLY;BYDAY=MO", datetime(2027, 11, 1, 7), NY)
    cal = BusinessCalendar("US", extra_holidays=[date(2027, 11, 8)])
    occ = take(CalendarTrigger(weekly, cal, "previous", NY), utc(2027, 11, 2), 1)
    assert occ[0].local.isoformat() == "2027-11-05T07:00:00-04:00"


def test_moved_onto_an_existing_occurrence_keeps_the_first() -> None:
    trigger = CalendarTrigger(daily(9), US, "next", NY)
    occ = take(trigger, utc(2027, 11, 24), 7)
    summary = [(o.nominal.astimezone(ZoneInfo(NY)).day, o.local.day if not o.skipped else None)
               for o in occ]
    # Thanksgiving → Friday (Friday's own is then a duplicate), Saturday → Monday, Sunday and
    # Monday's own are duplicates.
    assert summary == [(24, 24), (25, 26), (26, None), (27, 29), (28, None), (29, None),
                       (30, 30)]
    assert occ[2].skipped == "calendar: an earlier occurrence already fires at " \
        "2027-11-26 09:00 -0500"
    ats = [o.at for o in occ if o.skipped is None]
    assert ats == sorted(set(ats))


def test_previous_never_fires_before_an_earlier_occurrence() -> None:
    # Hourly: Saturday's hours moved back to Friday would land before Friday's own later
    # hours; they are skipped instead, and what fires stays strictly increasing.
    hourly = RRuleTrigger("FREQ=HOURLY;INTERVAL=6", datetime(2027, 11, 26), NY)
    occ = take(CalendarTrigger(hourly, US, "previous", NY), utc(2027, 11, 26, 4), 12)
    ats = [o.at for o in occ if o.skipped is None]
    assert ats == sorted(set(ats))
    assert any(o.skipped and "would fire before an earlier occurrence" in o.skipped
               for o in occ)


def test_last_business_day_of_the_month() -> None:
    base = RRuleTrigger("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2027, 1, 31, 18), NY)
    trigger = CalendarTrigger(base, US, "previous", NY)
    got = [o.local.date() for o in fired(trigger, utc(2027, 1, 1), 12)]
    assert got == [date(2027, 1, 29), date(2027, 2, 26), date(2027, 3, 31), date(2027, 4, 30),
                   date(2027, 5, 28),  # 31 May is Memorial Day
                   date(2027, 6, 30), date(2027, 7, 30), date(2027, 8, 31), date(2027, 9, 30),
                   date(2027, 10, 29), date(2027, 11, 30),
                   date(2027, 12, 30)]  # 31 December 2027: New Year's Day (observed)


def test_first_monday_except_public_holidays() -> None:
    base = RRuleTrigger("FREQ=MONTHLY;BYDAY=1MO", datetime(2027, 1, 4, 9), NY)
    occ = take(CalendarTrigger(base, US, "skip", NY), utc(2027, 1, 1), 12)
    assert [o.local.date() for o in occ if o.skipped is None] == [
        date(2027, 1, 4), date(2027, 2, 1), date(2027, 3, 1), date(2027, 4, 5),
        date(2027, 5, 3), date(2027, 6, 7), date(2027, 8, 2), date(2027, 10, 4),
        date(2027, 11, 1), date(2027, 12, 6)]
    assert [o.skipped for o in occ if o.skipped] == [
        "calendar: 2027-07-05 is a holiday (Independence Day (observed))",
        "calendar: 2027-09-06 is a holiday (Labor Day)"]


def test_a_moved_occurrence_goes_through_the_dst_policy_again() -> None:
    # 02:30 on Saturday 13 March moves to Sunday 14 March (weekend = Saturday only), where
    # 02:30 does not exist in New York: the rrule's shift policy makes it 03:30.
    base = RRuleTrigger("FREQ=WEEKLY;BYDAY=SA", datetime(2027, 3, 6, 2, 30), NY)
    cal = BusinessCalendar(weekend=(5,))
    occ = take(CalendarTrigger(base, cal, "next", NY), utc(2027, 3, 10), 1)[0]
    assert occ.local.isoformat() == "2027-03-14T03:30:00-04:00"
    assert occ.notes[-1] == "dst_gap: 02:30 does not exist; shifted to 03:30"
    skip = take(CalendarTrigger(base, cal, "next", NY, dst_gap="skip"), utc(2027, 3, 10), 1)[0]
    assert skip.skipped is not None and "02:30 does not exist; skipped" in skip.skipped


def test_calendar_policy_is_validated() -> None:
    with pytest.raises(InvalidTrigger, match=r"calendar\.business_day: 'later' is not one of"):
        CalendarTrigger(daily(9), US, "later", NY)


# --- properties: history-free decisions, next_after, no holiday under skip -----------------

calendars = st.sampled_from([US, ENGLAND, BusinessCalendar("US", "CA"),
                             BusinessCalendar(weekend=(4, 5))])
bases = st.sampled_from([
    "FREQ=DAILY", "FREQ=HOURLY;INTERVAL=7", "FREQ=WEEKLY;BYDAY=MO,FR",
    "FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=MONTHLY;BYDAY=1MO", "FREQ=DAILY;BYHOUR=1,2,3",
])
instants = st.datetimes(datetime(2027, 1, 1), datetime(2028, 6, 1),
                        timezones=st.just(UTC))


def calendar_trigger(rule: str, cal: BusinessCalendar, policy: str, zone: str,
                     window: bool = False, jitter: float = 0) -> Trigger:
    trigger: Trigger = CalendarTrigger(RRuleTrigger(rule, datetime(2026, 12, 1, 9, 30), zone),
                                       cal, policy, zone)
    if window:
        trigger = WindowTrigger(trigger, DeliveryWindow(time(8), time(17), zone, cal))
    if jitter:
        trigger = JitterTrigger(trigger, jitter, "schedule-1")
    return trigger


def brute_next_after(trigger: Trigger, instant: datetime,
                     lookback: timedelta = timedelta(days=60)) -> datetime | None:
    """The first fired instant after ``instant``, reading from well before it."""
    for occ in trigger.occurrences(instant - lookback):
        if occ.skipped is None and occ.at > instant:
            return occ.at
    return None


@settings(max_examples=60, deadline=None)
@given(bases, calendars, st.sampled_from(["skip", "next", "previous"]),
       st.sampled_from([NY, LONDON, "Australia/Lord_Howe"]), st.booleans(),
       st.sampled_from([0, 30.0, 7200.0]), instants)
def test_decisions_do_not_depend_on_where_reading_starts(
        rule: str, cal: BusinessCalendar, policy: str, zone: str, window: bool,
        jitter: float, after: datetime) -> None:
    trigger = calendar_trigger(rule, cal, policy, zone, window, jitter)
    early = after - timedelta(days=45)
    from_early = [o for o in islice(trigger.occurrences(early), 400) if o.nominal > after]
    from_after = take(trigger, after, len(from_early))
    assert from_after == from_early[:len(from_after)]
    assert first_fire_after(trigger, after) == brute_next_after(trigger, after)
    ats = [o.at for o in from_early if o.skipped is None]
    assert all(a < b for a, b in pairwise(ats))
    nominals = [o.nominal for o in from_early]
    assert all(a < b for a, b in pairwise(nominals))


@settings(max_examples=50, deadline=None)
@given(bases, calendars, st.sampled_from([NY, LONDON, "Asia/Kolkata"]), instants)
def test_no_occurrence_fires_on_a_holiday_under_skip(rule: str, cal: BusinessCalendar,
                                                     zone: str, after: datetime) -> None:
    tz = ZoneInfo(zone)
    for policy in ("skip", "next", "previous"):
        trigger = calendar_trigger(rule, cal, policy, zone)
        for occ in take(trigger, after, 60):
            if occ.skipped is None:
                assert cal.is_business_day(occ.at.astimezone(tz).date())
            elif policy == "skip" and occ.skipped.startswith("calendar: 20"):
                assert not cal.is_business_day(occ.nominal.astimezone(tz).date())


# --- delivery windows ----------------------------------------------------------------------

def test_window_moves_occurrences_to_the_next_opening() -> None:
    window = DeliveryWindow(time(9), time(18), LONDON, ENGLAND)
    base = RRuleTrigger("FREQ=DAILY;BYHOUR=7,12,20", datetime(2027, 8, 26, 7), LONDON)
    occ = take(WindowTrigger(base, window), utc(2027, 8, 26, 5), 6)
    summary = [(o.nominal.astimezone(ZoneInfo(LONDON)).strftime("%a %H:%M"),
                o.local.strftime("%a %d %H:%M") if not o.skipped else None) for o in occ]
    assert summary == [
        ("Thu 07:00", "Thu 26 09:00"), ("Thu 12:00", "Thu 26 12:00"),
        ("Thu 20:00", "Fri 27 09:00"), ("Fri 07:00", None),  # both at Friday's opening
        ("Fri 12:00", "Fri 27 12:00"),
        ("Fri 20:00", "Tue 31 09:00"),  # weekend, then the Late Summer Bank Holiday
    ]
    assert occ[0].notes == ("window: 2027-08-26 07:00 is outside 09:00-18:00 on business "
                            "days; moved to the next opening, 2027-08-26 09:00",)
    assert occ[3].skipped == "window: an earlier occurrence already fires at the opening " \
        "2027-08-27 09:00"


def test_window_on_weekdays_and_overnight() -> None:
    night = DeliveryWindow(time(22), time(6), "UTC", days={0, 1, 2, 3, 4})  # Mon-Fri nights
    assert night.contains(utc(2027, 3, 2, 23))  # Tuesday 23:00
    assert night.contains(utc(2027, 3, 3, 5, 59))  # Wednesday morning, Tuesday's window
    assert not night.contains(utc(2027, 3, 3, 6))
    assert night.contains(utc(2027, 3, 6, 3))  # Saturday 03:00 is Friday night's window
    assert not night.contains(utc(2027, 3, 6, 23))  # Saturday night is not listed
    assert night.next_opening(utc(2027, 3, 6, 12)) == utc(2027, 3, 7, 22) + timedelta(days=1)
    at = AtTrigger(utc(2027, 3, 6, 12))
    occ = take(WindowTrigger(at, night), utc(2027, 3, 1), 1)[0]
    assert occ.at == utc(2027, 3, 8, 22) and occ.nominal == utc(2027, 3, 6, 12)


@pytest.mark.parametrize(("args", "message"), [
    ((time(9), time(9), "UTC"), "window: start and end are both 09:00"),
    ((time(9), time(18), "UTC", set()), "window.days: no day given"),
    ((time(9), time(18), "UTC", {8}), "window.days: 8 is not a weekday number"),
    ((time(9), time(18), "UTC", "weekdays"), "window.days: 'weekdays' is not 'business'"),
    (("09:00", time(18), "UTC"), "window.start: must be a time"),
])
def test_window_errors(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(InvalidTrigger) as exc:
        DeliveryWindow(*args)  # type: ignore[arg-type]
    assert message in str(exc.value)


# --- jitter --------------------------------------------------------------------------------

def test_jitter_is_deterministic_per_key_and_nominal() -> None:
    base = RRuleTrigger("FREQ=DAILY;BYHOUR=9", datetime(2027, 1, 1, 9), NY)
    one = [o.at for o in take(JitterTrigger(base, 600, "schedule-1"), utc(2027, 1, 1), 50)]
    again = [o.at for o in take(JitterTrigger(base, 600, "schedule-1"), utc(2027, 1, 1), 50)]
    other = [o.at for o in take(JitterTrigger(base, 600, "schedule-2"), utc(2027, 1, 1), 50)]
    assert one == again and one != other
    # read from later on: the same nominal gets the same offset
    later = take(JitterTrigger(base, 600, "schedule-1"), utc(2027, 1, 20), 5)
    assert [o.at for o in later] == one[19:24]


def test_jitter_offset_is_the_documented_hash() -> None:
    base = AtTrigger(utc(2027, 3, 1, 12))
    occ = take(JitterTrigger(base, 10, "k"), utc(2027, 1, 1), 1)[0]
    digest = hashlib.sha256(b"k2027-03-01T12:00:00+00:00").digest()
    expected_us = (int.from_bytes(digest[:8], "big") * 10_000_000) >> 64
    assert occ.at - occ.nominal == timedelta(microseconds=expected_us)
    assert occ.notes == (f"jitter: +{expected_us / 1e6:.3f}s",)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["FREQ=MINUTELY;INTERVAL=15", "FREQ=HOURLY", "FREQ=DAILY"]),
       st.floats(0.001, 7200), st.text(max_size=8), instants)
def test_jitter_bounds_and_order(rule: str, max_seconds: float, key: str,
                                 after: datetime) -> None:
    base = RRuleTrigger(rule, datetime(2027, 1, 1), LONDON)
    trigger = JitterTrigger(base, max_seconds, key)
    occ = take(trigger, after, 40)
    for o in occ:
        assert timedelta(0) <= o.at - o.nominal < timedelta(seconds=max_seconds)
    ats = [o.at for o in occ]
    assert all(a < b for a, b in pairwise(ats))
    assert trigger.next_after(after) == brute_next_after(trigger, after, timedelta(days=1))


def test_jitter_errors() -> None:
    with pytest.raises(InvalidTrigger, match="jitter: -1 must be a finite number"):
        JitterTrigger(AtTrigger(utc(2027, 1, 1)), -1, "k")
    with pytest.raises(InvalidTrigger, match="jitter: must be a number of seconds"):
        JitterTrigger(AtTrigger(utc(2027, 1, 1)), True, "k")


# --- at and interval -----------------------------------------------------------------------

def test_at_fires_once() -> None:
    at = AtTrigger(datetime(2027, 3, 14, 3, 30, tzinfo=ZoneInfo(NY)), timezone=NY)
    assert at.at == utc(2027, 3, 14, 7, 30)
    assert [o.local.isoformat() for o in take(at, utc(2027, 1, 1), 5)] == \
        ["2027-03-14T03:30:00-04:00"]
    assert at.next_after(utc(2027, 3, 14, 7, 29)) == utc(2027, 3, 14, 7, 30)
    assert at.next_after(utc(2027, 3, 14, 7, 30)) is None
    assert take(at, utc(2027, 3, 14, 7, 30), 1) == []
    with pytest.raises(InvalidTrigger, match="at: 2027-03-14T03:30:00 has no UTC offset"):
        AtTrigger(datetime(2027, 3, 14, 3, 30))


def test_interval_counts_real_time_across_dst() -> None:
    every_day = IntervalTrigger(timedelta(hours=24), utc(2027, 3, 12, 14), timezone=NY)
    occ = take(every_day, utc(2027, 3, 12), 4)
    assert [o.at for o in occ] == [utc(2027, 3, 12 + i, 14) for i in range(4)]
    assert [o.local.hour for o in occ] == [9, 9, 10, 10]  # 24 real hours, not 09:00 local
    assert every_day.next_after(utc(2027, 3, 13, 14)) == utc(2027, 3, 14, 14)
    assert every_day.next_after(utc(2027, 3, 1)) == utc(2027, 3, 12, 14)


def test_interval_end_is_inclusive() -> None:
    trigger = IntervalTrigger(timedelta(minutes=15), utc(2027, 1, 1),
                              end=utc(2027, 1, 1, 1))
    assert [o.at.minute for o in take(trigger, utc(2026, 12, 31), 10)] == [0, 15, 30, 45, 0]
    assert trigger.next_after(utc(2027, 1, 1, 1)) is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"every": timedelta(0)}, "every: 0:00:00 must be a positive duration"),
    ({"start": datetime(2027, 1, 1)}, "start: 2027-01-01T00:00:00 has no UTC offset"),
    ({"end": utc(2026, 1, 1)}, "is before start"),
])
def test_interval_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"every": timedelta(minutes=5), "start": utc(2027, 1, 1)}
    args.update(kwargs)
    with pytest.raises(InvalidTrigger) as exc:
        IntervalTrigger(**args)  # type: ignore[arg-type]
    assert message in str(exc.value)
