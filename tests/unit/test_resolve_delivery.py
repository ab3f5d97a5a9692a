"""``resolve_delivery``: a requested delivery time made one instant in the recipient's zone,
DST-correct, then moved out of quiet hours and off weekends and holidays. Pure: no store,
no clock -- every case gives ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hora.errors import InvalidNotification
from hora.notify.model import LocalTime, QuietHours, Recipient
from hora.notify.recipients import resolve_delivery

PARIS = ZoneInfo("Europe/Paris")
NY = ZoneInfo("America/New_York")


def who(tz: str = "Europe/Paris", quiet: str | None = None, *, holidays: str | None = None,
        business: bool = False) -> Recipient:
    return Recipient(id="u1", timezone=tz, quiet_hours=QuietHours.parse(quiet),
                     holidays=holidays, business_days_only=business)


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- the requested instant --------------------------------------------------------------------


def test_now_and_none_are_now_and_an_aware_instant_is_taken_as_is() -> None:
    now = utc(2027, 1, 5, 10)
    assert resolve_delivery(who(), None, now) == (now, None)
    assert resolve_delivery(who(), "now", now) == (now, None)
    later = local(NY, 2027, 1, 5, 12)
    assert resolve_delivery(who(), later, now) == (later, None)


def test_a_naive_instant_or_a_bad_at_names_the_field() -> None:
    now = utc(2027, 1, 5, 10)
    for bad in (datetime(2027, 1, 5, 9), "tomorrow", 42):
        with pytest.raises(InvalidNotification) as e:
            resolve_delivery(who(), bad, now)  # type: ignore[arg-type]
        assert e.value.field == "at"


def test_a_local_time_later_today_is_today_an_earlier_one_tomorrow() -> None:
    now = local(PARIS, 2027, 1, 5, 10)
    assert resolve_delivery(who(), LocalTime(11, 15), now) == (
        local(PARIS, 2027, 1, 5, 11, 15), None)
    assert resolve_delivery(who(), LocalTime(9), now) == (local(PARIS, 2027, 1, 6, 9), None)
    assert resolve_delivery(who(), "local:09:00", now) == (local(PARIS, 2027, 1, 6, 9), None)
    # exactly now counts as the next occurrence ("at or after now")
    assert resolve_delivery(who(), LocalTime(10), now) == (now, None)
    # another zone's recipient: 09:00 in New York, which is 15:00 in Paris
    assert resolve_delivery(who("America/New_York"), LocalTime(9), now) == (
        utc(2027, 1, 5, 14), None)


def test_new_york_spring_forward() -> None:
    # 2027-03-14: clocks jump 02:00 EST -> 03:00 EDT
    now = local(NY, 2027, 3, 14, 0, 10)
    ny = who("America/New_York")
    assert resolve_delivery(ny, LocalTime(2, 30), now) == (utc(2027, 3, 14, 7), None)  # 03:00 EDT
    assert resolve_delivery(ny, LocalTime(9), now) == (utc(2027, 3, 14, 13), None)
    assert resolve_delivery(ny, LocalTime(9), local(NY, 2027, 3, 13, 0)) == (
        utc(2027, 3, 13, 14), None)  # the day before: still EST


def test_new_york_fall_back() -> None:
    # 2027-11-07: 02:00 EDT -> 01:00 EST, 01:30 happens twice: the first is taken
    now = local(NY, 2027, 11, 7, 0, 5)
    ny = who("America/New_York")
    assert resolve_delivery(ny, LocalTime(1, 30), now) == (utc(2027, 11, 7, 5, 30), None)
    assert resolve_delivery(ny, LocalTime(9), now) == (utc(2027, 11, 7, 14), None)
    # after the second 01:30 has passed, the next 01:30 is tomorrow's
    after_both = utc(2027, 11, 7, 6, 45)
    assert resolve_delivery(ny, LocalTime(1, 30), after_both) == (utc(2027, 11, 8, 6, 30), None)


def test_paris_dst_days_with_quiet_hours() -> None:
    # 2027-03-28: 02:00 CET -> 03:00 CEST. Quiet hours ending 02:30, a time that day skips:
    # the delivery opens at the first valid time after the jump.
    r = who(quiet="01:00-02:30")
    at, note = resolve_delivery(r, None, local(PARIS, 2027, 3, 28, 1, 30))
    assert at == utc(2027, 3, 28, 1)  # 03:00 CEST
    assert note is not None and note.startswith("quiet hours 01:00-02:30 (Europe/Paris)")
    # 2027-10-31: 03:00 CEST -> 02:00 CET. 08:00 that morning is 07:00Z, not 06:00Z.
    at, note = resolve_delivery(who(quiet="21:00-08:00"), None, local(PARIS, 2027, 10, 30, 22))
    assert at == utc(2027, 10, 31, 7)
    assert note == "quiet hours 21:00-08:00 (Europe/Paris): moved to 2027-10-31 08:00 local"


# -- quiet hours and business days ------------------------------------------------------------


def test_quiet_hours_overnight() -> None:
    r = who(quiet="21:00-08:00")
    # evening: to tomorrow 08:00
    at, note = resolve_delivery(r, None, local(PARIS, 2027, 1, 5, 22, 30))
    assert at == local(PARIS, 2027, 1, 6, 8)
    assert note == "quiet hours 21:00-08:00 (Europe/Paris): moved to 2027-01-06 08:00 local"
    # early morning: to the same day's 08:00
    assert resolve_delivery(r, None, local(PARIS, 2027, 1, 6, 3))[0] == local(PARIS, 2027, 1, 6, 8)
    # the edges: 08:00 is open, 21:00 is quiet, 20:59 is open
    for open_at in (local(PARIS, 2027, 1, 6, 8), local(PARIS, 2027, 1, 6, 20, 59)):
        assert resolve_delivery(r, None, open_at) == (open_at, None)
    assert resolve_delivery(r, None, local(PARIS, 2027, 1, 6, 21))[0] == local(
        PARIS, 2027, 1, 7, 8)
    # a local time asked inside the quiet hours moves too
    assert resolve_delivery(r, LocalTime(6), local(PARIS, 2027, 1, 6, 10))[0] == local(
        PARIS, 2027, 1, 7, 8)


def test_quiet_hours_within_a_day() -> None:
    r = who("America/New_York", quiet="12:00-14:00")
    at, note = resolve_delivery(r, LocalTime(12, 30), local(NY, 2027, 1, 6, 9))
    assert at == local(NY, 2027, 1, 6, 14)
    assert note is not None and "12:00-14:00 (America/New_York)" in note


def test_holiday_skip_to_the_next_business_day_at_the_end_of_quiet_hours() -> None:
    # 2027-01-01 (a Friday) is a French holiday; 2 and 3 are a weekend: Monday 08:00
    r = who(quiet="21:00-08:00", holidays="FR", business=True)
    at, note = resolve_delivery(r, None, local(PARIS, 2027, 1, 1, 10))
    assert at == local(PARIS, 2027, 1, 4, 8)
    assert note is not None and "2027-01-01 is a holiday" in note
    assert note.endswith(": moved to 2027-01-04 08:00 local")
    # the same instant for a recipient who does not ask for business days is on time
    assert resolve_delivery(who(quiet="21:00-08:00", holidays="FR"), None,
                            local(PARIS, 2027, 1, 1, 10)) == (local(PARIS, 2027, 1, 1, 10), None)


def test_business_days_only_over_a_weekend() -> None:
    saturday = local(NY, 2027, 1, 9, 15)
    # with quiet hours: Monday at their end
    r = who("America/New_York", quiet="22:00-07:00", business=True)
    at, note = resolve_delivery(r, None, saturday)
    assert at == local(NY, 2027, 1, 11, 7)
    assert note == "2027-01-09 is a weekend day (Saturday): moved to 2027-01-11 07:00 local"
    # without quiet hours: the first moment of Monday
    at, note = resolve_delivery(who("America/New_York", business=True), None, saturday)
    assert at == local(NY, 2027, 1, 11, 0)
    assert note is not None and "weekend" in note
    # Friday evening inside the quiet hours: past the weekend too, both reasons said
    at, note = resolve_delivery(r, None, local(NY, 2027, 1, 8, 23))
    assert at == local(NY, 2027, 1, 11, 7)
    assert note is not None and note.startswith("quiet hours 22:00-07:00")
    # a weekday is untouched
    tuesday = local(NY, 2027, 1, 12, 10)
    assert resolve_delivery(r, None, tuesday) == (tuesday, None)


def test_every_resolved_instant_is_open_and_at_or_after_the_ask() -> None:
    """A sweep over two weeks around the Paris spring change, every 47 minutes: the answer
    is never inside quiet hours or on a non-business day, never earlier than asked, and an
    instant already open is kept as it is."""
    r = who(quiet="20:30-07:15", holidays="FR", business=True)
    t = local(PARIS, 2027, 3, 20, 0)
    while t < local(PARIS, 2027, 4, 3, 0):
        at, note = resolve_delivery(r, None, t)
        wall = at.astimezone(PARIS)
        assert at >= t
        assert wall.weekday() < 5 and (wall.month, wall.day) != (3, 29)  # Easter Monday
        assert (7, 15) <= (wall.hour, wall.minute) < (20, 30)
        assert (note is None) == (at == t)
        assert at - t < timedelta(days=5)
        t += timedelta(minutes=47)


# -- what a recipient may hold ----------------------------------------------------------------


def test_recipient_checks_name_the_field() -> None:
    from hora.notify.recipients import MAX_DATA_BYTES, check_recipient

    ok = check_recipient(Recipient(id="u1", holidays="us-ca", quiet_hours="21:00-08:00",  # type: ignore[arg-type]
                                   addresses={"email": "Ada@Example.COM"}))
    assert ok.holidays == "US-CA" and ok.quiet_hours == QuietHours.parse("21:00-08:00")
    assert ok.addresses == {"email": "Ada@example.com"}  # the domain normalised
    bad: list[tuple[dict[str, object], str]] = [
        ({"timezone": "Nowhere/Else"}, "timezone"),
        ({"quiet_hours": "25:00-08:00"}, "quiet_hours.start"),
        ({"addresses": {"email": "no-at-sign"}}, "addresses.email"),
        ({"addresses": {"webhook": "javascript:alert(1)"}}, "addresses.webhook"),
        ({"addresses": {"sms": "+33 1 23"}}, "addresses.sms"),
        ({"holidays": "XX"}, "holidays"),
        ({"data": {"x": float("nan")}}, "data"),
        ({"data": {"x": "y" * MAX_DATA_BYTES}}, "data"),
        ({"data": {f"k{i}": i for i in range(65)}}, "data"),
        ({"business_days_only": "yes"}, "business_days_only"),
        ({"id": "has space"}, "id"),
    ]
    for over, field in bad:
        with pytest.raises(InvalidNotification) as e:
            check_recipient(Recipient(**{"id": "u1", **over}))  # type: ignore[arg-type]
        assert e.value.field == field, over
    with pytest.raises(InvalidNotification) as e:
        check_recipient(Recipient(id="u1", timezone="Nowhere"), prefix="recipients[7].")
    assert e.value.field == "recipients[7].timezone"
