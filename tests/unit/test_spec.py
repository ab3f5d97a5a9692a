"""Trigger specs (the JSON shape of issue 4), previews and their JSON, and the errors a bad
spec gets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence
from hora.triggers.basic import AtTrigger, IntervalTrigger
from hora.triggers.calendar import CalendarTrigger
from hora.triggers.jitter import JitterTrigger
from hora.triggers.rrule import RRuleTrigger
from hora.triggers.spec import (
    occurrence_to_json,
    parse_duration,
    preview,
    preview_to_json,
    trigger_from_spec,
    trigger_timezone,
)
from hora.triggers.window import WindowTrigger

try:
    import hora.triggers.cron  # noqa: F401

    CRON_PROBLEM = None
except Exception as e:  # the cron module is written separately; it may not import yet
    CRON_PROBLEM = f"hora.triggers.cron does not import yet: {e!r}"

needs_cron = pytest.mark.skipif(CRON_PROBLEM is not None, reason=CRON_PROBLEM or "")

NY_TEXT = ("DTSTART;TZID=America/New_York:20270101T090000\n"
           "RRULE:FREQ=MONTHLY;BYDAY=1MO\n"
           "EXDATE;TZID=America/New_York:20270201T090000")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def locals_of(occ: list[Occurrence]) -> list[str]:
    return [o.local.isoformat() for o in occ]


# --- every shape ---------------------------------------------------------------------------

@needs_cron
def test_cron_spec() -> None:
    trigger = trigger_from_spec({"cron": "30 2 * * *", "timezone": "America/New_York"})
    assert trigger_timezone(trigger) == "America/New_York"
    occ = preview(trigger, utc(2027, 3, 13), 3)
    # cron's default gap policy is first_valid: 02:30 on the spring-forward day → 03:00
    assert locals_of(occ) == ["2027-03-13T02:30:00-05:00", "2027-03-14T03:00:00-04:00",
                              "2027-03-15T02:30:00-04:00"]
    shifted = trigger_from_spec({"cron": "30 2 * * *", "timezone": "America/New_York",
                                 "dst_gap": "shift"})
    assert locals_of(preview(shifted, utc(2027, 3, 13), 3))[1] == "2027-03-14T03:30:00-04:00"


@needs_cron
def test_cron_errors_are_prefixed_with_the_field() -> None:
    with pytest.raises(InvalidTrigger) as exc:
        trigger_from_spec({"cron": "61 * * * *"})
    assert str(exc.value).startswith("trigger.cron")
    with pytest.raises(InvalidTrigger, match=r"trigger\.timezone: unknown time zone"):
        trigger_from_spec({"cron": "0 9 * * *", "timezone": "Mars/Base"})


@needs_cron
def test_cron_with_calendar_and_window() -> None:
    trigger = trigger_from_spec({
        "cron": "0 7 * * *", "timezone": "Europe/London",
        "calendar": {"holidays": "GB", "subdivision": "ENG", "business_day": "skip"},
        "window": {"start": "09:00", "end": "18:00", "days": "business"}})
    occ = preview(trigger, utc(2027, 8, 27), 4, include_skipped=False)
    assert locals_of(occ) == ["2027-08-27T09:00:00+01:00", "2027-08-31T09:00:00+01:00",
                              "2027-09-01T09:00:00+01:00", "2027-09-02T09:00:00+01:00"]


def test_rrule_text_spec() -> None:
    trigger = trigger_from_spec({"rrule": NY_TEXT})
    assert isinstance(trigger, RRuleTrigger)
    assert trigger_timezone(trigger) == "America/New_York"
    assert locals_of(preview(trigger, utc(2027, 1, 1), 3)) == [
        "2027-01-04T09:00:00-05:00", "2027-03-01T09:00:00-05:00", "2027-04-05T09:00:00-04:00"]


def test_rrule_structured_spec_equals_the_text() -> None:
    structured = trigger_from_spec({
        "rrule": "FREQ=MONTHLY;BYDAY=1MO", "dtstart": "2027-01-01T09:00:00",
        "timezone": "America/New_York", "exdates": ["2027-02-01T09:00:00"],
        "rdates": ["2027-02-02T10:00:00"]})
    occ = preview(structured, utc(2027, 1, 1), 4)
    assert locals_of(occ) == ["2027-01-04T09:00:00-05:00", "2027-02-02T10:00:00-05:00",
                              "2027-03-01T09:00:00-05:00", "2027-04-05T09:00:00-04:00"]
    text = trigger_from_spec({"rrule": NY_TEXT})
    assert [o for o in occ if o.local.day != 2] == preview(text, utc(2027, 1, 1), 3)


def test_rrule_text_with_floating_dtstart_uses_the_timezone_field() -> None:
    trigger = trigger_from_spec({"rrule": "DTSTART:20270101T090000\nRRULE:FREQ=DAILY",
                                 "timezone": "Asia/Kolkata", "dst_gap": "skip"})
    assert locals_of(preview(trigger, utc(2027, 1, 1), 1)) == ["2027-01-01T09:00:00+05:30"]
    assert isinstance(trigger, RRuleTrigger) and trigger.dst_gap == "skip"


def test_at_spec() -> None:
    trigger = trigger_from_spec({"at": "2027-03-14T07:30:00Z"})
    assert isinstance(trigger, AtTrigger) and trigger.at == utc(2027, 3, 14, 7, 30)
    local = trigger_from_spec({"at": "2027-03-14T03:30:00", "timezone": "America/New_York"})
    assert preview(local, utc(2027, 1, 1), 5)[0].at == utc(2027, 3, 14, 7, 30)
    assert preview(local, utc(2027, 1, 1), 5)[0].local.isoformat() == \
        "2027-03-14T03:30:00-04:00"


@pytest.mark.parametrize(("every", "expected"), [
    ("PT15M", timedelta(minutes=15)), ("P1D", timedelta(days=1)),
    ("PT1H30M", timedelta(hours=1, minutes=30)), ("P1W", timedelta(weeks=1)),
    ("PT0.5S", timedelta(seconds=0.5)), ("P1DT12H", timedelta(days=1, hours=12)),
])
def test_every_spec(every: str, expected: timedelta) -> None:
    trigger = trigger_from_spec({"every": every, "start": "2027-01-01T00:00:00Z"})
    assert isinstance(trigger, IntervalTrigger) and trigger.every == expected
    assert [o.at for o in preview(trigger, utc(2027, 1, 1), 2)] == \
        [utc(2027, 1, 1) + expected, utc(2027, 1, 1) + 2 * expected]


def test_every_with_end_and_a_local_start() -> None:
    trigger = trigger_from_spec({"every": "PT1H", "start": "2027-01-01T09:00:00",
                                 "end": "2027-01-01T11:00:00+00:00",
                                 "timezone": "Europe/London"})
    assert [o.at.hour for o in preview(trigger, utc(2026, 1, 1), 10)] == [9, 10, 11]


def test_calendar_spec_with_extra_holidays_and_weekend() -> None:
    trigger = trigger_from_spec({
        "rrule": "FREQ=DAILY", "dtstart": "2027-12-20T09:00:00", "timezone": "America/New_York",
        "calendar": {"holidays": "US", "subdivision": None, "business_day": "next",
                     "extra_holidays": ["2027-12-27"], "weekend": [5, 6]}})
    assert isinstance(trigger, CalendarTrigger)
    occ = preview(trigger, utc(2027, 12, 22, 15), 3, include_skipped=False)
    # 23 Dec fires; 24 (Christmas observed) → 28 since 25/26 are weekend and 27 is extra
    assert [o.local.day for o in occ] == [23, 28, 29]
    assert occ[1].notes[0].startswith("calendar: 2027-12-24 is a holiday (Christmas Day "
                                      "(observed)); moved to the next business day, 2027-12-28")


def test_previous_policy_preview_shows_what_fires_after_the_instant() -> None:
    # Memorial Day (Monday 31 May) moves back to Friday 28 May: a preview after Saturday
    # does not list it (it fired already) although its nominal instant is later.
    spec = {"rrule": "FREQ=WEEKLY;BYDAY=MO", "dtstart": "2027-05-03T09:00:00",
            "timezone": "America/New_York", "calendar": {"holidays": "US",
                                                         "business_day": "previous"}}
    trigger = trigger_from_spec(spec)
    assert [o.local.day for o in preview(trigger, utc(2027, 5, 29), 1)] == [7]
    assert [o.local.day for o in preview(trigger, utc(2027, 5, 27), 2)] == [28, 7]


def test_next_policy_preview_lists_a_moved_occurrence_with_an_earlier_nominal() -> None:
    spec = {"rrule": "FREQ=WEEKLY;BYDAY=SA", "dtstart": "2027-05-01T09:00:00",
            "timezone": "America/New_York", "calendar": {"business_day": "next"}}
    occ = preview(trigger_from_spec(spec), utc(2027, 5, 8, 20), 1)
    assert occ[0].nominal == utc(2027, 5, 8, 13) and occ[0].at == utc(2027, 5, 10, 13)


def test_window_and_jitter_spec() -> None:
    spec = {"rrule": "FREQ=HOURLY;INTERVAL=4", "dtstart": "2027-01-04T00:00:00",
            "timezone": "Europe/London", "window": {"start": "09:00", "end": "18:00",
                                                    "days": [0, 1, 2, 3, 4]},
            "jitter": 60}
    trigger = trigger_from_spec(spec)
    assert isinstance(trigger, JitterTrigger) and isinstance(trigger.base, WindowTrigger)
    assert trigger_timezone(trigger) == "Europe/London"
    occ = preview(trigger, utc(2027, 1, 4), 6, include_skipped=False)
    assert all(o.local.weekday() < 5 and 9 <= o.local.hour < 18 for o in occ)
    again = preview(trigger_from_spec(spec), utc(2027, 1, 4), 6, include_skipped=False)
    assert occ == again  # same spec, same offsets
    other = preview(trigger_from_spec(spec, jitter_key="schedule-7"), utc(2027, 1, 4), 6,
                    include_skipped=False)
    assert [o.at for o in other] != [o.at for o in occ]
    assert [o.nominal for o in other] == [o.nominal for o in occ]


# --- preview JSON --------------------------------------------------------------------------

def test_occurrence_json_shape() -> None:
    trigger = trigger_from_spec({
        "rrule": "DTSTART;TZID=America/New_York:20270313T023000\nRRULE:FREQ=DAILY;COUNT=3",
        "dst_gap": "skip"})
    body = preview_to_json(trigger, utc(2027, 3, 1), 5)
    assert body == {"occurrences": [
        {"at": "2027-03-13T07:30:00Z", "local": "2027-03-13T02:30:00-05:00",
         "nominal": "2027-03-13T07:30:00Z", "skipped": None, "notes": []},
        {"at": "2027-03-14T07:30:00Z", "local": "2027-03-14T03:30:00-04:00",
         "nominal": "2027-03-14T07:30:00Z",
         "skipped": "dst_gap: 02:30 does not exist; skipped",
         "notes": ["dst_gap: 02:30 does not exist; skipped"]},
        {"at": "2027-03-15T06:30:00Z", "local": "2027-03-15T02:30:00-04:00",
         "nominal": "2027-03-15T06:30:00Z", "skipped": None, "notes": []},
    ]}
    json.dumps(body)  # plain JSON
    fired_only = preview_to_json(trigger, utc(2027, 3, 1), 5, include_skipped=False)
    assert [o["at"] for o in fired_only["occurrences"]] == ["2027-03-13T07:30:00Z",
                                                             "2027-03-15T06:30:00Z"]


def test_occurrence_json_in_another_zone() -> None:
    occ = preview(trigger_from_spec({"at": "2027-06-01T12:00:00+00:00"}), utc(2027, 1, 1), 1)
    assert occurrence_to_json(occ[0], "Asia/Kolkata")["local"] == "2027-06-01T17:30:00+05:30"


def test_preview_is_strictly_after_and_counts() -> None:
    trigger = trigger_from_spec({"every": "PT15M", "start": "2027-01-01T00:00:00Z"})
    assert [o.at for o in preview(trigger, utc(2027, 1, 1, 0, 15), 2)] == \
        [utc(2027, 1, 1, 0, 30), utc(2027, 1, 1, 0, 45)]
    assert preview(trigger, utc(2027, 1, 1), 0) == []
    with pytest.raises(InvalidTrigger, match="count: -1 must be an integer >= 0"):
        preview(trigger, utc(2027, 1, 1), -1)
    with pytest.raises(InvalidTrigger, match="after: 2027-01-01T00:00:00 has no UTC offset"):
        preview(trigger, datetime(2027, 1, 1), 1)


def test_preview_of_a_trigger_that_never_fires_again_ends() -> None:
    spec = {"rrule": "FREQ=WEEKLY;BYDAY=SA", "dtstart": "2027-01-02T09:00:00",
            "calendar": {"business_day": "skip"}}
    trigger = trigger_from_spec(spec)
    assert preview(trigger, utc(2027, 1, 1), 3, include_skipped=False) == []
    assert len(preview(trigger, utc(2027, 1, 1), 3)) == 3
    assert trigger.next_after(utc(2027, 1, 1)) is None


SPECS: list[dict[str, Any]] = [
    {"rrule": NY_TEXT},
    {"rrule": NY_TEXT, "calendar": {"holidays": "US", "business_day": "next"}},
    {"rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "dtstart": "2027-01-01T02:30:00",
     "timezone": "Europe/London", "dst_gap": "skip", "dst_fold": "both",
     "calendar": {"holidays": "GB", "subdivision": "ENG", "business_day": "previous"}},
    {"every": "PT7H", "start": "2027-01-01T00:00:00Z", "timezone": "America/New_York",
     "window": {"start": "09:00", "end": "17:00", "days": "business"},
     "calendar": {"holidays": "US", "business_day": "skip"}, "jitter": 900},
    {"rrule": "FREQ=MINUTELY;INTERVAL=45", "dtstart": "2027-01-01T00:00:00",
     "timezone": "Australia/Lord_Howe", "dst_fold": "both", "jitter": 3000},
    {"at": "2027-07-04T12:00:00Z", "timezone": "America/New_York",
     "calendar": {"holidays": "US", "business_day": "next"}},
]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SPECS), st.datetimes(datetime(2026, 12, 1), datetime(2028, 12, 1),
                                            timezones=st.just(UTC)),
       st.integers(1, 30), st.booleans())
def test_preview_is_stable_across_calls(spec: dict[str, Any], after: datetime, count: int,
                                        include_skipped: bool) -> None:
    trigger = trigger_from_spec(spec)
    first = preview(trigger, after, count, include_skipped=include_skipped)
    assert preview(trigger, after, count, include_skipped=include_skipped) == first
    assert preview(trigger_from_spec(json.loads(json.dumps(spec))), after, count,
                   include_skipped=include_skipped) == first
    fired = [o.at for o in first if o.skipped is None]
    assert all(a > after for a in fired)
    assert all(a < b for a, b in pairwise(fired))
    assert all(o.nominal > after for o in first if o.skipped is not None)
    if fired:
        assert trigger.next_after(after) == fired[0]


# --- durations -----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "message"), [
    ("PT0S", "trigger.every: 'PT0S' must be a positive duration"),
    ("P0D", "trigger.every: 'P0D' must be a positive duration"),
    ("P1M", "trigger.every: 'P1M' uses years or months, which have no fixed length"),
    ("P1Y", "uses years or months"),
    ("15m", "trigger.every: '15m' is not an ISO-8601 duration such as PT15M"),
    ("PT", "is not an ISO-8601 duration"),
    ("P1DT", "is not an ISO-8601 duration"),
    ("P", "is not an ISO-8601 duration"),
    (900, "trigger.every: must be an ISO-8601 duration string such as PT15M, not int"),
])
def test_bad_durations(value: Any, message: str) -> None:
    with pytest.raises(InvalidTrigger) as exc:
        parse_duration(value)
    assert message in str(exc.value)


# --- bad specs -----------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "message"), [
    ([], "trigger: must be an object"),
    ({}, "trigger: needs one of cron, rrule, at, every"),
    ({"at": "2027-01-01T00:00:00Z", "every": "PT1M"},
     "trigger: give only one of cron, rrule, at, every (got at and every)"),
    ({"at": "2027-01-01T00:00:00Z", "colour": "red"}, "trigger: unknown field 'colour'"),
    ({"at": "2027-01-01T00:00:00Z", "start": "2027-01-01T00:00:00Z"},
     "trigger.start: only goes with every, not at"),
    ({"every": "PT0S", "start": "2027-01-01T00:00:00Z"},
     "trigger.every: 'PT0S' must be a positive duration"),
    ({"every": "PT1M"}, "trigger.start: is required with every"),
    ({"every": "PT1M", "start": "2027-01-01T00:00:00"},
     "trigger.start: '2027-01-01T00:00:00' has no UTC offset"),
    ({"every": "PT1M", "start": "tomorrow"}, "trigger.start: 'tomorrow' is not an ISO-8601"),
    ({"at": "2027-01-01"}, "trigger.at: '2027-01-01' is a date"),
    ({"at": 1700000000}, "trigger.at: must be an ISO-8601 date or date-time string, not int"),
    ({"at": "2027-03-14T02:30:00", "timezone": "America/New_York", "dst_gap": "skip"},
     "trigger.at: '2027-03-14T02:30:00' does not exist in America/New_York"),
    ({"at": "2027-01-01T00:00:00Z", "timezone": 5}, "trigger.timezone: must be a non-empty"),
    ({"rrule": "DTSTART:20270101T000000Z\nRRULE:FREQ=DAILY", "timezone": "Mars/Base"},
     "trigger.rrule: DTSTART is in UTC (ends in Z) but timezone 'Mars/Base' was given"),
    ({"rrule": "FREQ=DAILY", "timezone": "America/New_York"},
     "trigger.rrule: has no DTSTART"),
    ({"rrule": "FREQ=DAILY", "exdates": ["2027-01-01"]},
     "trigger.exdates: only goes with a structured rrule"),
    ({"rrule": "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z", "dtstart": "2026-01-01T09:00:00"},
     "trigger.rrule: COUNT and UNTIL cannot both be given (RFC 5545 §3.3.10)"),
    ({"rrule": "FREQ=DAILY", "dtstart": "2026-01-01T09:00:00", "timezone": "Mars/Base"},
     "trigger.timezone: unknown time zone 'Mars/Base'"),
    ({"rrule": "FREQ=DAILY", "dtstart": "someday"}, "trigger.dtstart: 'someday' is not"),
    ({"rrule": "FREQ=DAILY", "dtstart": "2026-01-01T09:00:00", "exdates": "2026-01-02"},
     "trigger.exdates: must be a list, not str"),
    ({"rrule": "FREQ=DAILY", "dtstart": "2026-01-01T09:00:00", "rdates": ["x"]},
     "trigger.rdates: 'x' is not an ISO-8601 date"),
    ({"rrule": 7}, "trigger.rrule: must be a non-empty string, not int"),
    ({"rrule": NY_TEXT, "dst_gap": "later"},
     "trigger.dst_gap: 'later' is not one of first_valid, shift, skip"),
    ({"rrule": NY_TEXT, "dst_fold": "middle"},
     "trigger.dst_fold: 'middle' is not one of first, last, both"),
    ({"rrule": NY_TEXT, "calendar": "US"}, "trigger.calendar: must be an object"),
    ({"rrule": NY_TEXT, "calendar": {"country": "US"}},
     "trigger.calendar: unknown field 'country'"),
    ({"rrule": NY_TEXT, "calendar": {"holidays": "XX"}},
     "trigger.calendar.holidays: unknown country 'XX'"),
    ({"rrule": NY_TEXT, "calendar": {"holidays": "US", "subdivision": "ZZ"}},
     "trigger.calendar.subdivision: unknown subdivision 'ZZ' of US"),
    ({"rrule": NY_TEXT, "calendar": {"holidays": "US", "business_day": "later"}},
     "trigger.calendar.business_day: 'later' is not one of skip, next, previous"),
    ({"rrule": NY_TEXT, "calendar": {"extra_holidays": ["24/12/2027"]}},
     "trigger.calendar.extra_holidays: '24/12/2027' is not a date"),
    ({"rrule": NY_TEXT, "calendar": {"weekend": [7]}},
     "trigger.calendar.weekend: 7 is not a weekday number"),
    ({"rrule": NY_TEXT, "window": {"start": "09:00"}}, "trigger.window.end: is required"),
    ({"rrule": NY_TEXT, "window": {"start": "9am", "end": "18:00"}},
     "trigger.window.start: '9am' is not a local time"),
    ({"rrule": NY_TEXT, "window": {"start": "09:00", "end": "18:00", "days": "weekdays"}},
     "trigger.window.days: 'weekdays' is not \"business\""),
    ({"rrule": NY_TEXT, "window": {"start": "09:00", "end": "18:00", "hours": 3}},
     "trigger.window: unknown field 'hours'"),
    ({"rrule": NY_TEXT, "window": {"start": "09:00", "end": "09:00"}},
     "trigger.window: start and end are both 09:00"),
    ({"rrule": NY_TEXT, "jitter": -5}, "trigger.jitter: -5 must be a number of seconds >= 0"),
    ({"rrule": NY_TEXT, "jitter": True}, "trigger.jitter: True must be a number"),
    ({"rrule": NY_TEXT, "jitter": "60"}, "trigger.jitter: '60' must be a number"),
])
def test_bad_specs_name_the_field(spec: Any, message: str) -> None:
    with pytest.raises(InvalidTrigger) as exc:
        trigger_from_spec(spec)
    assert str(exc.value).startswith(message), str(exc.value)
