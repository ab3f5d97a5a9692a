"""RRULE triggers: RFC 5545 §3.8.5.3's examples, DST tables, EXDATE/RDATE, error messages,
and properties (strictly increasing, never on an EXDATE, fast-forward = full expansion)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence, Trigger
from hora.triggers.dst import DstFold, DstGap
from hora.triggers.rrule import RRuleTrigger

NY = ZoneInfo("America/New_York")
EARLY = datetime(1990, 1, 1, tzinfo=UTC)


def fired(trigger: Trigger, after: datetime = EARLY, n: int | None = None) -> list[Occurrence]:
    return list(islice((o for o in trigger.occurrences(after) if o.skipped is None), n))


def local_times(text: str, n: int | None = None) -> list[datetime]:
    """Fired occurrences as naive local wall times (the RFC lists them that way)."""
    return [o.local.replace(tzinfo=None) for o in fired(RRuleTrigger.from_ical(text), n=n)]


def at9(year: int, month: int, *days: int, hour: int = 9, minute: int = 0) -> list[datetime]:
    return [datetime(year, month, d, hour, minute) for d in days]


def ny(start: str, rule: str) -> str:
    return f"DTSTART;TZID=America/New_York:{start}\nRRULE:{rule}"


# --- RFC 5545 §3.8.5.3, typed from the RFC's text -------------------------------------------

RFC_EXAMPLES: list[tuple[str, str, int | None, list[datetime]]] = [
    # (id, iCalendar text, how many to take (None: all, the rule is finite), expected)
    ("daily for 10 occurrences",
     ny("19970902T090000", "FREQ=DAILY;COUNT=10"), None,
     at9(1997, 9, *range(2, 12))),
    ("every other day - forever",
     ny("19970902T090000", "FREQ=DAILY;INTERVAL=2"), 6,
     at9(1997, 9, 2, 4, 6, 8, 10, 12)),
    ("every 10 days, 5 occurrences",
     ny("19970902T090000", "FREQ=DAILY;INTERVAL=10;COUNT=5"), None,
     at9(1997, 9, 2, 12, 22) + at9(1997, 10, 2, 12)),
    ("weekly for 10 occurrences",
     ny("19970902T090000", "FREQ=WEEKLY;COUNT=10"), None,
     at9(1997, 9, 2, 9, 16, 23, 30) + at9(1997, 10, 7, 14, 21, 28) + at9(1997, 11, 4)),
    ("weekly on Tuesday and Thursday for five weeks (UNTIL)",
     ny("19970902T090000", "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH"), None,
     at9(1997, 9, 2, 4, 9, 11, 16, 18, 23, 25, 30) + at9(1997, 10, 2)),
    ("weekly on Tuesday and Thursday for five weeks (COUNT)",
     ny("19970902T090000", "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH"), None,
     at9(1997, 9, 2, 4, 9, 11, 16, 18, 23, 25, 30) + at9(1997, 10, 2)),
    ("every other week on Monday, Wednesday and Friday until December 24, 1997",
     ny("19970901T090000",
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR"), None,
     at9(1997, 9, 1, 3, 5, 15, 17, 19, 29) + at9(1997, 10, 1, 3, 13, 15, 17, 27, 29, 31)
     + at9(1997, 11, 10, 12, 14, 24, 26, 28) + at9(1997, 12, 8, 10, 12, 22)),
    ("every other week on Tuesday and Thursday, for 8 occurrences",
     ny("19970902T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH"), None,
     at9(1997, 9, 2, 4, 16, 18, 30) + at9(1997, 10, 2, 14, 16)),
    ("monthly on the first Friday for 10 occurrences",
     ny("19970905T090000", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR"), None,
     at9(1997, 9, 5) + at9(1997, 10, 3) + at9(1997, 11, 7) + at9(1997, 12, 5)
     + at9(1998, 1, 2) + at9(1998, 2, 6) + at9(1998, 3, 6) + at9(1998, 4, 3)
     + at9(1998, 5, 1) + at9(1998, 6, 5)),
    ("monthly on the first Friday until December 24, 1997",
     ny("19970905T090000", "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR"), None,
     at9(1997, 9, 5) + at9(1997, 10, 3) + at9(1997, 11, 7) + at9(1997, 12, 5)),
    ("every other month on the first and last Sunday, for 10 occurrences",
     ny("19970907T090000", "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU"), None,
     at9(1997, 9, 7, 28) + at9(1997, 11, 2, 30) + at9(1998, 1, 4, 25) + at9(1998, 3, 1, 29)
     + at9(1998, 5, 3, 31)),
    ("monthly on the second-to-last Monday for 6 months",
     ny("19970922T090000", "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO"), None,
     at9(1997, 9, 22) + at9(1997, 10, 20) + at9(1997, 11, 17) + at9(1997, 12, 22)
     + at9(1998, 1, 19) + at9(1998, 2, 16)),
    ("monthly on the third-to-the-last day of the month, forever",
     ny("19970928T090000", "FREQ=MONTHLY;BYMONTHDAY=-3"), 6,
     at9(1997, 9, 28) + at9(1997, 10, 29) + at9(1997, 11, 28) + at9(1997, 12, 29)
     + at9(1998, 1, 29) + at9(1998, 2, 26)),
    ("monthly on the 2nd and 15th for 10 occurrences",
     ny("19970902T090000", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15"), None,
     at9(1997, 9, 2, 15) + at9(1997, 10, 2, 15) + at9(1997, 11, 2, 15)
     + at9(1997, 12, 2, 15) + at9(1998, 1, 2, 15)),
    ("monthly on the first and last day of the month for 10 occurrences",
     ny("19970930T090000", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1"), None,
     at9(1997, 9, 30) + at9(1997, 10, 1, 31) + at9(1997, 11, 1, 30) + at9(1997, 12, 1, 31)
     + at9(1998, 1, 1, 31) + at9(1998, 2, 1)),
    ("every 18 months on the 10th thru 15th for 10 occurrences",
     ny("19970910T090000", "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15"),
     None, at9(1997, 9, *range(10, 16)) + at9(1999, 3, 10, 11, 12, 13)),
    ("every Tuesday, every other month",
     ny("19970902T090000", "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU"), 13,
     at9(1997, 9, 2, 9, 16, 23, 30) + at9(1997, 11, 4, 11, 18, 25)
     + at9(1998, 1, 6, 13, 20, 27)),
    ("yearly in June and July for 10 occurrences",
     ny("19970610T090000", "FREQ=YEARLY;COUNT=10;BYMONTH=6,7"), None,
     [d for y in range(1997, 2002) for d in at9(y, 6, 10) + at9(y, 7, 10)]),
    ("every other year on January, February and March for 10 occurrences",
     ny("19970310T090000", "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3"), None,
     at9(1997, 3, 10) + [d for y in (1999, 2001, 2003) for m in (1, 2, 3)
                         for d in at9(y, m, 10)]),
    ("every third year on the 1st, 100th and 200th day for 10 occurrences",
     ny("19970101T090000", "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200"), None,
     at9(1997, 1, 1) + at9(1997, 4, 10) + at9(1997, 7, 19)
     + at9(2000, 1, 1) + at9(2000, 4, 9) + at9(2000, 7, 18)
     + at9(2003, 1, 1) + at9(2003, 4, 10) + at9(2003, 7, 19) + at9(2006, 1, 1)),
    ("every 20th Monday of the year, forever",
     ny("19970519T090000", "FREQ=YEARLY;BYDAY=20MO"), 3,
     at9(1997, 5, 19) + at9(1998, 5, 18) + at9(1999, 5, 17)),
    ("Monday of week number 20, forever",
     ny("19970512T090000", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO"), 3,
     at9(1997, 5, 12) + at9(1998, 5, 11) + at9(1999, 5, 17)),
    ("every Thursday in March, forever",
     ny("19970313T090000", "FREQ=YEARLY;BYMONTH=3;BYDAY=TH"), 11,
     at9(1997, 3, 13, 20, 27) + at9(1998, 3, 5, 12, 19, 26) + at9(1999, 3, 4, 11, 18, 25)),
    ("every Thursday, but only during June, July and August, forever",
     ny("19970605T090000", "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8"), 14,
     at9(1997, 6, 5, 12, 19, 26) + at9(1997, 7, 3, 10, 17, 24, 31)
     + at9(1997, 8, 7, 14, 21, 28) + at9(1998, 6, 4)),
    ("every Friday the 13th, forever (DTSTART excluded by EXDATE)",
     "DTSTART;TZID=America/New_York:19970902T090000\n"
     "EXDATE;TZID=America/New_York:19970902T090000\n"
     "RRULE:FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", 5,
     at9(1998, 2, 13) + at9(1998, 3, 13) + at9(1998, 11, 13) + at9(1999, 8, 13)
     + at9(2000, 10, 13)),
    ("the first Saturday that follows the first Sunday of the month, forever",
     ny("19970913T090000", "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13"), 10,
     at9(1997, 9, 13) + at9(1997, 10, 11) + at9(1997, 11, 8) + at9(1997, 12, 13)
     + at9(1998, 1, 10) + at9(1998, 2, 7) + at9(1998, 3, 7) + at9(1998, 4, 11)
     + at9(1998, 5, 9) + at9(1998, 6, 13)),
    ("every 4 years, the first Tuesday after a Monday in November (U.S. election day)",
     ny("19961105T090000",
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8"), 3,
     at9(1996, 11, 5) + at9(2000, 11, 7) + at9(2004, 11, 2)),
    ("the third instance of Tuesday, Wednesday or Thursday, for the next 3 months",
     ny("19970904T090000", "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3"), None,
     at9(1997, 9, 4) + at9(1997, 10, 7) + at9(1997, 11, 6)),
    ("the second-to-last weekday of the month",
     ny("19970929T090000", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2"), 7,
     at9(1997, 9, 29) + at9(1997, 10, 30) + at9(1997, 11, 27) + at9(1997, 12, 30)
     + at9(1998, 1, 29) + at9(1998, 2, 26) + at9(1998, 3, 30)),
    ("the last weekday of the month (BYSETPOS=-1)",
     ny("19970930T090000", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"), 7,
     at9(1997, 9, 30) + at9(1997, 10, 31) + at9(1997, 11, 28) + at9(1997, 12, 31)
     + at9(1998, 1, 30) + at9(1998, 2, 27) + at9(1998, 3, 31)),
    ("every 15 minutes for 6 occurrences",
     ny("19970902T090000", "FREQ=MINUTELY;INTERVAL=15;COUNT=6"), None,
     [datetime(1997, 9, 2, 9) + timedelta(minutes=15 * i) for i in range(6)]),
    ("every hour and a half for 4 occurrences",
     ny("19970902T090000", "FREQ=MINUTELY;INTERVAL=90;COUNT=4"), None,
     [datetime(1997, 9, 2, 9) + timedelta(minutes=90 * i) for i in range(4)]),
    ("every 20 minutes from 9:00 to 16:40 every day (DAILY form)",
     ny("19970902T090000", "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40"), 26,
     [datetime(1997, 9, 2, h, m) for h in range(9, 17) for m in (0, 20, 40)]
     + [datetime(1997, 9, 3, 9, 0), datetime(1997, 9, 3, 9, 20)]),
    ("every 20 minutes from 9:00 to 16:40 every day (MINUTELY form)",
     ny("19970902T090000", "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16"), 26,
     [datetime(1997, 9, 2, h, m) for h in range(9, 17) for m in (0, 20, 40)]
     + [datetime(1997, 9, 3, 9, 0), datetime(1997, 9, 3, 9, 20)]),
    ("WKST=MO: every other week on Tuesday and Sunday",
     ny("19970805T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO"), None,
     at9(1997, 8, 5, 10, 19, 24)),
    ("WKST=SU: the same rule, weeks starting on Sunday",
     ny("19970805T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU"), None,
     at9(1997, 8, 5, 17, 19, 31)),
    ("an invalid date (February 30) is ignored",
     ny("20070115T090000", "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5"), None,
     at9(2007, 1, 15, 30) + at9(2007, 2, 15) + at9(2007, 3, 15, 30)),
]


@pytest.mark.parametrize(("text", "n", "expected"), [c[1:] for c in RFC_EXAMPLES],
                         ids=[c[0] for c in RFC_EXAMPLES])
def test_rfc5545_examples(text: str, n: int | None, expected: list[datetime]) -> None:
    assert local_times(text, n) == expected


def test_daily_until_crosses_the_autumn_change_at_nine_local() -> None:
    # "Daily until December 24, 1997": 09:00 EDT until 26 October, then 09:00 EST.
    occ = fired(RRuleTrigger.from_ical(ny("19970902T090000",
                                          "FREQ=DAILY;UNTIL=19971224T000000Z")))
    assert len(occ) == 113
    assert {o.local.hour for o in occ} == {9}
    assert occ[0].at == datetime(1997, 9, 2, 13, tzinfo=UTC)  # 09:00 EDT
    assert occ[-1].at == datetime(1997, 12, 23, 14, tzinfo=UTC)  # 09:00 EST
    offsets = {o.local.date(): o.local.utcoffset() for o in occ}
    assert offsets[date(1997, 10, 25)] == timedelta(hours=-4)
    assert offsets[date(1997, 10, 26)] == timedelta(hours=-5)


@pytest.mark.parametrize("rule", [
    "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
    "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1",
])
def test_every_day_in_january_for_three_years(rule: str) -> None:
    got = local_times(ny("19980101T090000", rule))
    assert got == [datetime(y, 1, d, 9) for y in (1998, 1999, 2000) for d in range(1, 32)]


def test_every_three_hours_until_is_an_instant_in_utc() -> None:
    # The RFC prints 09:00, 12:00, 15:00 here, but UNTIL=17:00Z is 13:00 EDT: 15:00 EDT is
    # after it. UNTIL bounds instants (§3.3.10), so 15:00 must not fire.
    got = local_times(ny("19970902T090000", "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z"))
    assert got == [datetime(1997, 9, 2, 9), datetime(1997, 9, 2, 12)]


def test_structured_fields_equal_the_ical_text() -> None:
    text = ny("19970905T090000", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR")
    structured = RRuleTrigger("FREQ=MONTHLY;COUNT=10;BYDAY=1FR", datetime(1997, 9, 5, 9),
                              "America/New_York")
    assert fired(structured) == fired(RRuleTrigger.from_ical(text))
    assert structured.timezone == "America/New_York"


# --- DST: each policy, in the zones that bite -----------------------------------------------

GAPS = [
    # zone, day of the spring change, a wall time in its gap, {policy: expected local ISO}
    ("America/New_York", date(2027, 3, 14), (2, 30),
     {"shift": "2027-03-14T03:30:00-04:00", "first_valid": "2027-03-14T03:00:00-04:00"}),
    ("Europe/London", date(2027, 3, 28), (1, 30),
     {"shift": "2027-03-28T02:30:00+01:00", "first_valid": "2027-03-28T02:00:00+01:00"}),
    ("Australia/Lord_Howe", date(2027, 10, 3), (2, 15),
     {"shift": "2027-10-03T02:45:00+11:00", "first_valid": "2027-10-03T02:30:00+11:00"}),
    ("Australia/Sydney", date(2027, 10, 3), (2, 30),
     {"shift": "2027-10-03T03:30:00+11:00", "first_valid": "2027-10-03T03:00:00+11:00"}),
    ("America/Santiago", date(2027, 9, 5), (0, 30),
     {"shift": "2027-09-05T01:30:00-03:00", "first_valid": "2027-09-05T01:00:00-03:00"}),
]

FOLDS = [
    # zone, day of the autumn change, a wall time in its fold, (first, last)
    ("America/New_York", date(2027, 11, 7), (1, 30),
     ("2027-11-07T01:30:00-04:00", "2027-11-07T01:30:00-05:00")),
    ("Europe/London", date(2027, 10, 31), (1, 30),
     ("2027-10-31T01:30:00+01:00", "2027-10-31T01:30:00+00:00")),
    ("Australia/Lord_Howe", date(2027, 4, 4), (1, 45),
     ("2027-04-04T01:45:00+11:00", "2027-04-04T01:45:00+10:30")),
    ("Australia/Sydney", date(2027, 4, 4), (2, 30),
     ("2027-04-04T02:30:00+11:00", "2027-04-04T02:30:00+10:00")),
    ("America/Santiago", date(2027, 4, 3), (23, 30),
     ("2027-04-03T23:30:00-03:00", "2027-04-03T23:30:00-04:00")),
]


def daily_at(zone_name: str, hm: tuple[int, int], **policy: str) -> RRuleTrigger:
    return RRuleTrigger("FREQ=DAILY", datetime(2027, 1, 1, *hm), zone_name, **policy)  # type: ignore[arg-type]


def on_day(trigger: RRuleTrigger, day: date) -> list[Occurrence]:
    """The occurrences (fired or skipped) whose nominal instant falls on ``day``, locally."""
    tz = ZoneInfo(trigger.timezone)
    out = []
    for o in trigger.occurrences(datetime.combine(day - timedelta(days=2), time(), UTC)):
        local_day = o.nominal.astimezone(tz).date()
        if local_day > day:
            break
        if local_day == day:
            out.append(o)
    return out


@pytest.mark.parametrize(("zone_name", "day", "hm", "expected"), GAPS,
                         ids=[g[0] for g in GAPS])
def test_gap_policies(zone_name: str, day: date, hm: tuple[int, int],
                      expected: dict[str, str]) -> None:
    tz = ZoneInfo(zone_name)
    for policy in ("shift", "first_valid"):
        occ = on_day(daily_at(zone_name, hm, dst_gap=policy), day)
        assert [o.local.isoformat() for o in occ] == [expected[policy]], policy
        assert occ[0].nominal == occ[0].at and occ[0].skipped is None
        assert occ[0].notes and occ[0].notes[0].startswith("dst_gap:")
    # The default is RFC 5545's: shift.
    assert [o.local.isoformat() for o in on_day(daily_at(zone_name, hm), day)] \
        == [expected["shift"]]
    skipped = on_day(daily_at(zone_name, hm, dst_gap="skip"), day)
    assert len(skipped) == 1 and skipped[0].skipped is not None
    assert "does not exist; skipped" in skipped[0].skipped
    # nominal: the wall time read with the offset from before the gap (= the shift instant)
    assert skipped[0].nominal.astimezone(tz).isoformat() == expected["shift"]


@pytest.mark.parametrize(("zone_name", "day", "hm", "expected"), FOLDS,
                         ids=[f[0] for f in FOLDS])
def test_fold_policies(zone_name: str, day: date, hm: tuple[int, int],
                       expected: tuple[str, str]) -> None:
    first, last = expected
    assert [o.local.isoformat() for o in on_day(daily_at(zone_name, hm), day)] == [first]
    assert [o.local.isoformat()
            for o in on_day(daily_at(zone_name, hm, dst_fold="last"), day)] == [last]
    both = on_day(daily_at(zone_name, hm, dst_fold="both"), day)
    assert [o.local.isoformat() for o in both] == [first, last]
    assert all("happens twice" in o.notes[0] for o in both)


def test_kolkata_has_no_transitions() -> None:
    trigger = daily_at("Asia/Kolkata", (2, 30), dst_gap="skip", dst_fold="both")
    occ = fired(trigger, datetime(2027, 1, 1, tzinfo=UTC), 365)
    assert all(o.local.strftime("%H:%M%z") == "02:30+0530" and not o.notes for o in occ)


def test_byhour_means_wall_clock_all_year() -> None:
    trigger = RRuleTrigger("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", datetime(2027, 1, 4, 9),
                           "Europe/London")
    occ = fired(trigger, datetime(2027, 1, 1, tzinfo=UTC), 52)
    assert {o.local.hour for o in occ} == {9}
    assert {o.at.hour for o in occ} == {8, 9}  # BST and GMT


def test_hourly_over_the_gap_with_shift_never_fires_an_instant_twice() -> None:
    trigger = RRuleTrigger("FREQ=MINUTELY;INTERVAL=30", datetime(2027, 3, 13),
                           "America/New_York")  # shift: 02:00 → 03:00, 02:30 → 03:30
    occ = fired(trigger, datetime(2027, 3, 14, 5, tzinfo=UTC), 8)
    assert [o.local.strftime("%H:%M") for o in occ] == \
        ["00:30", "01:00", "01:30", "03:00", "03:30", "04:00", "04:30", "05:00"]
    # where the rule fires at 03:00 by itself, that one is kept (no DST note)
    assert occ[3].notes == ()


def test_fold_both_comes_out_in_instant_order() -> None:
    trigger = RRuleTrigger("FREQ=MINUTELY;INTERVAL=30", datetime(2027, 11, 6),
                           "America/New_York", dst_fold="both")
    occ = fired(trigger, datetime(2027, 11, 7, 4, 15, tzinfo=UTC), 6)
    assert [o.local.strftime("%H:%M%z") for o in occ] == \
        ["00:30-0400", "01:00-0400", "01:30-0400", "01:00-0500", "01:30-0500", "02:00-0500"]


def test_first_valid_reports_collapsed_gap_times_as_skipped() -> None:
    # Every 25 minutes from 01:05: ... 01:55, 02:20 (gap), 02:45 (gap), 03:10, 03:35 ... With
    # first_valid both gap times become 03:00: 02:20 fires there and 02:45 is reported as
    # skipped at its pre-gap instant (02:45 at -05:00 = 07:45Z), in nominal order.
    trigger = RRuleTrigger("FREQ=MINUTELY;INTERVAL=25", datetime(2027, 3, 14, 1, 5),
                           "America/New_York", dst_gap="first_valid")
    occ = list(islice(trigger.occurrences(datetime(2027, 3, 14, 6, 10, tzinfo=UTC)), 6))
    assert [(o.local.strftime("%H:%M"), o.skipped is None) for o in occ] == [
        ("01:30", True), ("01:55", True), ("03:00", True), ("03:10", True), ("03:35", True),
        ("03:45", False)]
    assert occ[2].notes == ("dst_gap: 02:20 does not exist; moved to 03:00, the first valid "
                            "time",)
    assert occ[5].skipped == ("dst_gap: 02:45 does not exist; its first valid time 03:00 "
                              "already fires")
    assert occ[5].nominal == datetime(2027, 3, 14, 7, 45, tzinfo=UTC)


# --- EXDATE, RDATE and the text forms ------------------------------------------------------

def test_exdate_forms_remove_matching_occurrences() -> None:
    text = ("DTSTART;TZID=America/New_York:20270301T090000\n"
            "RRULE:FREQ=DAILY;COUNT=10\n"
            "EXDATE;TZID=America/New_York:20270302T090000,20270303T090000\n"
            "EXDATE:20270304T140000Z\n"  # 09:00 EST in UTC
            "EXDATE;VALUE=DATE:20270305")
    got = [o.local.day for o in fired(RRuleTrigger.from_ical(text))]
    assert got == [1, 6, 7, 8, 9, 10]  # COUNT counts the excluded ones too (RFC 5545)


def test_exdate_on_a_gap_time_removes_the_shifted_occurrence() -> None:
    trigger = RRuleTrigger("FREQ=DAILY", datetime(2027, 3, 10, 2, 30), "America/New_York",
                           exdates=[datetime(2027, 3, 14, 2, 30)])
    days = [o.local.day for o in fired(trigger, datetime(2027, 3, 12, tzinfo=UTC), 3)]
    assert days == [12, 13, 15]


def test_rdate_forms_add_occurrences() -> None:
    text = ("DTSTART;TZID=Europe/London:20270104T090000\n"
            "RRULE:FREQ=WEEKLY;COUNT=2\n"
            "RDATE;TZID=Europe/London:20270106T120000\n"
            "RDATE:20270107T170000Z\n"
            "RDATE;VALUE=DATE:20270108\n"
            "RDATE;TZID=America/New_York:20270109T090000")
    got = [o.local.strftime("%d %H:%M") for o in fired(RRuleTrigger.from_ical(text))]
    assert got == ["04 09:00", "06 12:00", "07 17:00", "08 09:00", "09 14:00", "11 09:00"]


def test_several_rrules_union_and_no_rrule_means_dtstart_plus_rdates() -> None:
    text = ny("20270101T090000", "FREQ=MONTHLY;BYMONTHDAY=1;COUNT=3") + \
        "\nRRULE:FREQ=MONTHLY;BYMONTHDAY=1,15;COUNT=2"
    assert [o.local.strftime("%m-%d") for o in fired(RRuleTrigger.from_ical(text))] == \
        ["01-01", "01-15", "02-01", "03-01"]
    only = RRuleTrigger.from_ical("DTSTART:20270101T090000Z\nRDATE:20270201T090000Z")
    assert [o.at.isoformat() for o in fired(only)] == \
        ["2027-01-01T09:00:00+00:00", "2027-02-01T09:00:00+00:00"]


def test_folded_lines_crlf_quoted_tzid_and_lower_case() -> None:
    text = ('DTSTART;TZID="America/New_York":19970902T090000\r\n'
            "RRULE:FREQ=DAILY;\r\n COUNT=3\r\n")
    assert local_times(text) == at9(1997, 9, 2, 3, 4)
    assert local_times("dtstart;tzid=America/New_York:19970902T090000\n"
                       "rrule:freq=daily;count=2") == at9(1997, 9, 2, 3)


def test_floating_utc_and_date_dtstart() -> None:
    floating = RRuleTrigger.from_ical("DTSTART:20270101T090000\nRRULE:FREQ=DAILY;COUNT=1",
                                      timezone="Asia/Kolkata")
    assert fired(floating)[0].local.isoformat() == "2027-01-01T09:00:00+05:30"
    utc = RRuleTrigger.from_ical("DTSTART:20270101T090000Z\nRRULE:FREQ=DAILY;COUNT=1")
    assert utc.timezone == "UTC" and fired(utc)[0].at == datetime(2027, 1, 1, 9, tzinfo=UTC)
    floating_utc = RRuleTrigger.from_ical("DTSTART:20270101T090000\nRRULE:FREQ=DAILY;COUNT=1")
    assert fired(floating_utc)[0].at == datetime(2027, 1, 1, 9, tzinfo=UTC)
    all_day = RRuleTrigger.from_ical("DTSTART;VALUE=DATE:20270101\nRRULE:FREQ=YEARLY;COUNT=2",
                                     timezone="Europe/London")
    assert [o.local.isoformat() for o in fired(all_day)] == \
        ["2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"]


def test_next_after_is_the_first_fired_instant_strictly_after() -> None:
    trigger = RRuleTrigger.from_ical(ny("19970902T090000", "FREQ=DAILY;COUNT=3"))
    first = datetime(1997, 9, 2, 13, tzinfo=UTC)
    assert trigger.next_after(first - timedelta(seconds=1)) == first
    assert trigger.next_after(first) == first + timedelta(days=1)
    assert trigger.next_after(first + timedelta(days=2)) is None


def test_a_minutely_rule_from_1997_is_fast_and_keeps_its_phase() -> None:
    trigger = RRuleTrigger.from_ical(ny("19970902T090000", "FREQ=MINUTELY;INTERVAL=7"))
    after = datetime(2027, 3, 14, 6, tzinfo=UTC)
    got = [o for o in islice(trigger.occurrences(after), 5)]
    assert got[0].at > after and got[0].at - after <= timedelta(minutes=7)
    for o in got:  # wall-clock minutes since DTSTART stay multiples of 7
        elapsed = o.local.replace(tzinfo=None) - datetime(1997, 9, 2, 9)
        assert elapsed % timedelta(minutes=7) == timedelta(0)


# --- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    (ny("19970902T090000", "FREQ=DAILY;COUNT=10;UNTIL=19971224T000000Z"),
     "rrule: COUNT and UNTIL cannot both be given (RFC 5545 §3.3.10)"),
    (ny("19970902T090000", "FREQ=DAILY;BYDAYS=MO"), "unknown rule part 'BYDAYS'"),
    (ny("19970902T090000", "FREQ=FORTNIGHTLY"), "FREQ=FORTNIGHTLY is not one of"),
    (ny("19970902T090000", "COUNT=3"), "FREQ is required"),
    (ny("19970902T090000", "FREQ=MONTHLY;BYMONTHDAY=32"),
     "BYMONTHDAY=32 is out of range (1 to 31 or -31 to -1)"),
    (ny("19970902T090000", "FREQ=DAILY;BYHOUR=24"), "BYHOUR=24 is out of range (0 to 23)"),
    (ny("19970902T090000", "FREQ=WEEKLY;BYDAY=1MO"),
     "BYDAY=1MO: an ordinal weekday is only allowed with FREQ=MONTHLY or FREQ=YEARLY"),
    (ny("19970902T090000", "FREQ=MONTHLY;BYDAY=6MO"), "BYDAY=6MO: the ordinal must be"),
    (ny("19970902T090000", "FREQ=DAILY;BYDAY=XX"), "BYDAY=XX is not a weekday"),
    (ny("19970902T090000", "FREQ=MONTHLY;BYWEEKNO=20"), "BYWEEKNO is only allowed with"),
    (ny("19970902T090000", "FREQ=DAILY;INTERVAL=0"), "INTERVAL=0 must be a positive"),
    (ny("19970902T090000", "FREQ=DAILY;COUNT=x"), "COUNT=X is not an integer"),
    (ny("19970902T090000", "FREQ=DAILY;FREQ=WEEKLY"), "FREQ is given twice"),
    (ny("19970902T090000", "FREQ=DAILY;BYSETPOS=1"), "BYSETPOS needs another BYxxx"),
    (ny("19970902T090000", "FREQ=DAILY;UNTIL=1997-12-24"), "UNTIL: '1997-12-24' is not a DATE"),
    ("DTSTART;TZID=Mars/Olympus_Mons:19970902T090000\nRRULE:FREQ=DAILY",
     "rrule: DTSTART: unknown TZID 'Mars/Olympus_Mons'"),
    ("RRULE:FREQ=DAILY;COUNT=3", "rrule: missing DTSTART"),
    ("FREQ=DAILY", "write RRULE:FREQ=DAILY"),
    ("DTSTART:19970230T090000\nRRULE:FREQ=DAILY", "is not a valid date-time"),
    ("DTSTART:19970902T090000\nSUMMARY:standup\nRRULE:FREQ=DAILY",
     "unsupported property 'SUMMARY'"),
    ("DTSTART;TZID=America/New_York:19970902T090000Z\nRRULE:FREQ=DAILY",
     "is UTC (ends in Z) and cannot have a TZID"),
    ("DTSTART:19970902T090000\nDTSTART:19970903T090000\nRRULE:FREQ=DAILY",
     "DTSTART is given twice"),
    ("DTSTART:19970902T090000\nRDATE;VALUE=PERIOD:19970902T090000Z/PT1H",
     "VALUE=PERIOD is not supported"),
    (ny("19970902T090000", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
     "FREQ=YEARLY;BYMONTHDAY=30;BYMONTH=2 never fires"),
    (ny("19970930T090000", "FREQ=YEARLY;BYMONTH=2"), "never fires"),
    (ny("19970902T000000", "FREQ=HOURLY;INTERVAL=6;BYHOUR=3"), "never fires"),
    (ny("19970902T090000", "FREQ=DAILY;BYDAY=TU;BYSETPOS=2"),
     "never fires: BYSETPOS=2 asks for positions beyond the at most 1 candidate(s)"),
    (ny("19970902T090000", "FREQ=WEEKLY;BYDAY=MO,TH;BYSETPOS=-3"), "at most 2 candidate(s)"),
    (ny("19970902T090000", "FREQ=DAILY;INTERVAL=14;BYDAY=MO"),
     "never fires: with INTERVAL=14 from DTSTART, a Tuesday, it only reaches Tuesdays"),
    (ny("19970902T090000", "FREQ=MONTHLY;INTERVAL=6;BYMONTH=1,2"),
     "never fires: with INTERVAL=6 from DTSTART in month 9, it never reaches BYMONTH=1,2"),
    (ny("19970902T090000", "FREQ=DAILY;UNTIL=19970101T000000Z"),
     "rrule: the recurrence never fires"),
    (ny("19970902T090000", "FREQ=DAILY;COUNT=1") + "\nEXDATE;TZID=America/New_York:"
     "19970902T090000", "rrule: the recurrence never fires"),
])
def test_errors_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(InvalidTrigger) as exc:
        RRuleTrigger.from_ical(text)
    assert message in str(exc.value)


def test_timezone_conflicts_and_bad_policies_are_rejected() -> None:
    with pytest.raises(InvalidTrigger, match="has TZID=America/New_York but timezone"):
        RRuleTrigger.from_ical(ny("19970902T090000", "FREQ=DAILY"), timezone="Europe/Paris")
    with pytest.raises(InvalidTrigger, match=r"is in UTC \(ends in Z\) but timezone"):
        RRuleTrigger.from_ical("DTSTART:19970902T090000Z\nRRULE:FREQ=DAILY",
                               timezone="Europe/Paris")
    with pytest.raises(InvalidTrigger, match="timezone: unknown time zone 'Nowhere/City'"):
        RRuleTrigger("FREQ=DAILY", datetime(2027, 1, 1), "Nowhere/City")
    with pytest.raises(InvalidTrigger, match="dst_gap: 'later' is not one of"):
        RRuleTrigger("FREQ=DAILY", datetime(2027, 1, 1), "UTC", dst_gap="later")


def test_count_and_until_message_is_exact() -> None:
    with pytest.raises(InvalidTrigger) as exc:
        RRuleTrigger("FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z", datetime(2026, 1, 1), "UTC")
    assert str(exc.value) == "rrule: COUNT and UNTIL cannot both be given (RFC 5545 §3.3.10)"


# --- properties ----------------------------------------------------------------------------

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata",
         "Australia/Sydney", "America/Santiago", "UTC"]


@st.composite
def rules(draw: st.DrawFn, *, coarse_only: bool = False) -> str:
    freqs = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
    if not coarse_only:
        freqs += ["HOURLY", "MINUTELY"]
    freq = draw(st.sampled_from(freqs))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 4))
    if freq == "MINUTELY":
        interval = draw(st.sampled_from([15, 20, 25, 30, 45]))
    parts.append(f"INTERVAL={interval}")
    if freq in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY") and draw(st.booleans()):
        hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True))
        parts.append("BYHOUR=" + ",".join(map(str, sorted(hours))))
        minutes = draw(st.lists(st.sampled_from([0, 15, 30, 45]), min_size=1, max_size=2,
                                unique=True))
        parts.append("BYMINUTE=" + ",".join(map(str, sorted(minutes))))
    if freq != "YEARLY" and draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
                             min_size=1, max_size=4, unique=True))
        parts.append("BYDAY=" + ",".join(days))
    if freq == "MONTHLY" and draw(st.booleans()):
        parts.append("BYMONTHDAY=" + ",".join(map(str, draw(st.lists(
            st.sampled_from([1, 2, 15, 28, 29, 30, 31, -1, -2]), min_size=1, max_size=3,
            unique=True)))))
    if freq == "YEARLY":
        extra = draw(st.sampled_from(["", "BYYEARDAY=1,100,-1", "BYWEEKNO=1,20,-1;BYDAY=MO,TH",
                                      "BYMONTH=2,6;BYDAY=-1FR,2SU"]))
        if extra:
            parts.append(extra)
    if any(p.startswith(("BYDAY", "BYYEARDAY", "BYMONTHDAY")) for p in parts) \
            and draw(st.booleans()):
        parts.append("BYSETPOS=" + draw(st.sampled_from(["1", "-1", "2,-2"])))
    if draw(st.booleans()):
        parts.append("WKST=" + draw(st.sampled_from(["MO", "SU", "WE"])))
    return ";".join(parts)


def build(rule: str, start: datetime, zone_name: str, gap: str, fold: str,
          exdates: list[datetime] | None = None) -> RRuleTrigger:
    try:
        return RRuleTrigger(rule, start, zone_name, exdates=exdates or (), dst_gap=gap,
                            dst_fold=fold)
    except InvalidTrigger:
        assume(False)
        raise


starts = st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0))
gaps = st.sampled_from([g.value for g in DstGap])
folds = st.sampled_from([f.value for f in DstFold])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules(), starts, st.sampled_from(ZONES), gaps, folds,
       st.integers(0, 24 * 400))
def test_occurrences_are_strictly_increasing(rule: str, start: datetime, zone_name: str,
                                             gap: str, fold: str, hours_later: int) -> None:
    trigger = build(rule, start, zone_name, gap, fold)
    after = start.replace(tzinfo=UTC) + timedelta(hours=hours_later)
    occ = list(islice(trigger.occurrences(after), 150))
    nominals = [o.nominal for o in occ]
    assert all(n > after for n in nominals)
    assert all(a < b for a, b in pairwise(nominals))
    ats = [o.at for o in occ if o.skipped is None]
    assert all(a < b for a, b in pairwise(ats))
    for o in occ:
        if o.skipped is None and not o.notes:
            # an undisturbed occurrence is exactly a wall time the rule names
            if "BYDAY=" in rule:
                days = [d[-2:] for d in rule.split("BYDAY=")[1].split(";")[0].split(",")]
                assert ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][o.local.weekday()] in days
            if "BYHOUR=" in rule:
                hours = rule.split("BYHOUR=")[1].split(";")[0].split(",")
                assert str(o.local.hour) in hours


@settings(max_examples=60, deadline=None)
@given(rules(coarse_only=True), starts, st.sampled_from(ZONES), gaps, folds,
       st.lists(st.integers(0, 60), max_size=6))
def test_no_occurrence_on_an_exdate(rule: str, start: datetime, zone_name: str, gap: str,
                                    fold: str, picks: list[int]) -> None:
    plain = build(rule, start, zone_name, gap, fold)
    tz = ZoneInfo(zone_name)
    first = [o for o in islice(plain.occurrences(EARLY), 61) if o.skipped is None]
    excluded = [first[i].local.astimezone(tz).replace(tzinfo=None)
                for i in picks if i < len(first) and not first[i].notes]
    trigger = build(rule, start, zone_name, gap, fold, excluded)
    for o in islice(trigger.occurrences(EARLY), 200):
        assert o.local.replace(tzinfo=None) not in excluded


@settings(max_examples=60, deadline=None)
@given(rules(coarse_only=True), st.sampled_from(ZONES), gaps, folds,
       st.datetimes(datetime(2000, 1, 1), datetime(2020, 1, 1)), st.integers(0, 3000))
def test_fast_forward_equals_full_expansion(rule: str, zone_name: str, gap: str, fold: str,
                                            start: datetime, days_later: int) -> None:
    start = start.replace(microsecond=0)
    trigger = build(rule, start, zone_name, gap, fold)
    after = start.replace(tzinfo=UTC) + timedelta(days=days_later, hours=7)
    fast = list(islice(trigger.occurrences(after), 20))
    full = list(islice((o for o in trigger.occurrences(EARLY) if o.nominal > after), 20))
    assert fast == full


def test_an_impossible_rule_past_the_static_checks_is_refused_within_its_horizon() -> None:
    # Week 1 never falls in July: no static check knows that, the bounded search does (400
    # yearly periods), in the caller's thread: no thread is started to scan on.
    import threading

    threads = threading.active_count()
    with pytest.raises(InvalidTrigger, match="too sparse: no occurrence within 400 years"):
        RRuleTrigger("FREQ=YEARLY;BYWEEKNO=1;BYMONTH=7", datetime(2026, 1, 1, 9), "UTC")
    assert threading.active_count() == threads
    # A rare but possible rule (29 February on a Monday) still passes.
    t = RRuleTrigger("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
                     datetime(2026, 1, 1, 9), "UTC")
    assert next(t.occurrences(datetime(2026, 1, 1, tzinfo=UTC))).at.year == 2044
