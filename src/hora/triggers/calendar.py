"""Business days: holiday calendars, weekends, and a policy for occurrences that miss them.

``BusinessCalendar`` answers "is this a business day, and if not, why?" from the
``holidays`` package (a country, optionally a subdivision such as ``GB``/``ENG``), custom
dates and a weekend definition. ``CalendarTrigger`` wraps any trigger and applies a
business-day policy to each occurrence, by its local date in the schedule's zone:

* ``skip``: the occurrence does not fire; the tick ledger says which holiday or weekend;
* ``next`` / ``previous``: it fires on the next / previous business day at the same local wall
  time (resolved through the DST policy again), with a note saying why it moved.

Fired occurrences stay strictly increasing: when an occurrence is moved onto (or before) the
instant of one that comes earlier in nominal order, the earlier one fires and the later one
is skipped with the reason. Whether an occurrence fires never depends on where a preview or
the scheduler starts reading (see ``hora.triggers.basic`` for the floors that ensure it).

"Last business day of the month" is ``FREQ=MONTHLY;BYMONTHDAY=-1`` with ``previous``;
"first Monday except public holidays" is ``FREQ=MONTHLY;BYDAY=1MO`` with ``skip``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import holidays

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence, Trigger
from hora.triggers.basic import (
    ONE_MICROSECOND,
    RANGE_START,
    at_floor,
    first_fire_after,
    nominal_floor,
    require_aware,
    skipped_until,
)
from hora.triggers.dst import DstFold, DstGap, resolve_local, zone

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: How far a search for a business day looks before it gives up (a calendar with no
#: business day in ten years is a configuration error).
SEARCH_DAYS = 3660
#: The most occurrences a day a base trigger may have under the ``next`` and ``previous``
#: policies: moving a day's occurrences means reading every one of them (a secondly base
#: over a weekend would be 172,800 reads for one answer).
MAX_MOVED_PER_DAY = 1440


class BusinessDayPolicy(StrEnum):
    SKIP = "skip"
    NEXT = "next"
    PREVIOUS = "previous"


def _country_and_subdivision(country: str, subdivision: str | None) -> tuple[str, str | None]:
    """Normalise ``GB-ENG`` / ``gb`` + ``eng`` to the codes ``holidays`` knows."""
    if not isinstance(country, str) or not country.strip():
        raise InvalidTrigger("must be a country code such as US or GB", field="calendar.holidays")
    code = country.strip()
    if subdivision is None and "-" in code:
        code, subdivision = code.split("-", 1)
    code = code.upper()
    supported = holidays.list_supported_countries()
    if code not in supported:
        raise InvalidTrigger(
            f"unknown country {country!r} (use an ISO 3166-1 alpha-2 code "
            "that the holidays package supports, such as US, GB, DE or FR)",
            field="calendar.holidays")
    if subdivision is None:
        return code, None
    if not isinstance(subdivision, str) or not subdivision.strip():
        raise InvalidTrigger("must be a subdivision code such as ENG", field="calendar.subdivision")
    known = supported[code]
    by_upper = {s.upper(): s for s in known}
    sub = by_upper.get(subdivision.strip().upper(), subdivision.strip())
    if known and sub not in known:
        shown = ", ".join(known[:15]) + (", ..." if len(known) > 15 else "")
        raise InvalidTrigger(
            f"unknown subdivision {subdivision!r} of {code} "
            f"(known: {shown})", field="calendar.subdivision")
    if not known:
        raise InvalidTrigger(f"{code} has no subdivisions, got "
                             f"{subdivision!r}", field="calendar.subdivision")
    return code, sub


class BusinessCalendar:
    """Business days: not a weekend day, not a public holiday, not an extra holiday.

    ``weekend`` holds weekday numbers (Monday 0 ... Sunday 6). ``extra_holidays`` is a set of
    dates, or a mapping from date to its name.
    """

    def __init__(self, country: str | None = None, subdivision: str | None = None,
                 extra_holidays: Iterable[date] | Mapping[date, str] = (),
                 weekend: Iterable[int] = (5, 6)) -> None:
        self.country: str | None = None
        self.subdivision: str | None = None
        self._holidays: holidays.HolidayBase | None = None
        if country is not None:
            self.country, self.subdivision = _country_and_subdivision(country, subdivision)
            try:
                self._holidays = holidays.country_holidays(self.country,
                                                           subdiv=self.subdivision)
            except NotImplementedError as e:  # pragma: no cover - validated above
                raise InvalidTrigger(str(e), field="calendar.holidays") from None
        elif subdivision is not None:
            raise InvalidTrigger("needs a country in calendar.holidays",
                                 field="calendar.subdivision")
        extra: dict[date, str] = {}
        items: Iterable[tuple[Any, Any]] = (
            extra_holidays.items() if isinstance(extra_holidays, Mapping)
            else ((d, "extra holiday") for d in extra_holidays))
        for day, name in items:
            if isinstance(day, datetime) or not isinstance(day, date):
                raise InvalidTrigger(
                    f"{day!r} is not a date such as 2027-12-24", field="calendar.extra_holidays")
            extra[day] = str(name)
        self.extra_holidays: dict[date, str] = extra
        days: set[int] = set()
        for wd in weekend:
            if isinstance(wd, bool) or not isinstance(wd, int) or not 0 <= wd <= 6:
                raise InvalidTrigger(
                    f"{wd!r} is not a weekday number (Monday 0 ... Sunday 6)",
                    field="calendar.weekend")
            days.add(wd)
        if len(days) == 7:
            raise InvalidTrigger("every day is a weekend day; there would be "
                                 "no business days", field="calendar.weekend")
        self.weekend: frozenset[int] = frozenset(days)

    def __repr__(self) -> str:
        return (f"BusinessCalendar(country={self.country!r}, subdivision={self.subdivision!r}, "
                f"weekend={sorted(self.weekend)!r}, extra_holidays={len(self.extra_holidays)})")

    @staticmethod
    def _day(value: date) -> date:
        return value.date() if isinstance(value, datetime) else value

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name (several joined by "; "), or None on a non-holiday."""
        day = self._day(day)
        names: list[str] = []
        if self._holidays is not None:
            found = self._holidays.get(day)
            if found:
                names.append(str(found))
        if day in self.extra_holidays:
            names.append(self.extra_holidays[day])
        return "; ".join(names) if names else None

    def why_not_business_day(self, day: date) -> str | None:
        """Why ``day`` is not a business day (for notes and the tick ledger), or None."""
        day = self._day(day)
        name = self.holiday_name(day)
        if name is not None:
            return f"{day.isoformat()} is a holiday ({name})"
        if day.weekday() in self.weekend:
            return f"{day.isoformat()} is a weekend day ({DAY_NAMES[day.weekday()]})"
        return None

    def is_business_day(self, day: date) -> bool:
        return self.why_not_business_day(day) is None

    def next_business_day(self, day: date) -> date:
        """The first business day on or after ``day``."""
        return self._search(self._day(day), timedelta(days=1))

    def previous_business_day(self, day: date) -> date:
        """The last business day on or before ``day``."""
        return self._search(self._day(day), timedelta(days=-1))

    def _search(self, day: date, step: timedelta) -> date:
        for _ in range(SEARCH_DAYS):
            if self.is_business_day(day):
                return day
            day += step
        raise InvalidTrigger(f"no business day within {SEARCH_DAYS} days of "
                             f"{day.isoformat()}", field="calendar")


def _check_density(base: Trigger, policy: str) -> None:
    """Refuse a base firing more than ``MAX_MOVED_PER_DAY`` times in the day after its
    first occurrence (at most that many plus one are read)."""
    first = first_fire_after(base, RANGE_START - timedelta(days=1))
    if first is None:
        return
    for seen, occ in enumerate(base.occurrences(first - ONE_MICROSECOND), 1):
        if occ.nominal >= first + timedelta(days=1):
            return
        if seen > MAX_MOVED_PER_DAY:
            raise InvalidTrigger(
                f"{policy} moves every occurrence of a day that is "
                f"not a business day, so it needs a trigger firing at most "
                f"{MAX_MOVED_PER_DAY} times a day (once a minute); this one fires more "
                "often: use skip", field="calendar.business_day")


def _policy(value: BusinessDayPolicy | str) -> BusinessDayPolicy:
    try:
        return BusinessDayPolicy(value)
    except ValueError:
        raise InvalidTrigger(f"{value!r} is not one of skip, next, "
                             "previous", field="calendar.business_day") from None


class CalendarTrigger:
    """``base`` kept on business days of ``calendar``, by local date in ``timezone``."""

    def __init__(self, base: Trigger, calendar: BusinessCalendar,
                 policy: BusinessDayPolicy | str, timezone: str, *,
                 dst_gap: DstGap | str | None = None,
                 dst_fold: DstFold | str | None = None) -> None:
        self.base = base
        self.calendar = calendar
        self.policy = _policy(policy)
        self._tz = zone(timezone)
        self.timezone = timezone
        # A moved occurrence's wall time goes through the base trigger's DST policy again.
        self.dst_gap = DstGap(dst_gap if dst_gap is not None
                              else getattr(base, "dst_gap", DstGap.FIRST_VALID))
        self.dst_fold = DstFold(dst_fold if dst_fold is not None
                                else getattr(base, "dst_fold", DstFold.FIRST))
        if self.policy is not BusinessDayPolicy.SKIP:
            _check_density(base, self.policy.value)

    def __repr__(self) -> str:
        return (f"CalendarTrigger({self.base!r}, {self.calendar!r}, "
                f"policy={self.policy.value!r}, timezone={self.timezone!r})")

    # -- floors (see hora.triggers.basic) --

    def _last_business_start_before(self, instant: datetime) -> datetime:
        """A day before the start of the last business day before ``instant``'s local date."""
        day = instant.astimezone(self._tz).date()
        previous = self.calendar.previous_business_day(day - timedelta(days=1))
        local = datetime.combine(previous - timedelta(days=1), time())
        instants, _ = resolve_local(local, self._tz, DstGap.FIRST_VALID, DstFold.FIRST)
        return instants[0]

    def nominal_floor(self, instant: datetime) -> datetime:
        if self.policy is BusinessDayPolicy.NEXT:
            # An occurrence fires after ``instant`` only if its base instant lies after the
            # last business day before it: earlier ones move to that day at the latest.
            return nominal_floor(self.base,
                                 self._last_business_start_before(instant) - ONE_MICROSECOND)
        return nominal_floor(self.base, instant)

    def at_floor(self, after: datetime) -> datetime:
        floor = at_floor(self.base, after)
        if self.policy is BusinessDayPolicy.PREVIOUS:
            return self._last_business_start_before(floor)
        return floor

    # -- the Trigger protocol --

    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        after = require_aware(after, "after")
        if self.policy is BusinessDayPolicy.SKIP:
            start = after
        else:
            # Whether an occurrence fires depends on every earlier one that may land at or
            # after it: start reading from the first of those.
            start = min(after, self.nominal_floor(self.at_floor(after) - ONE_MICROSECOND))
        latest: datetime | None = None
        for occ in self.base.occurrences(start):
            if occ.skipped is None:
                occ = self._apply(occ, latest)
                if occ.skipped is None:
                    latest = occ.at
            if occ.nominal > after:
                yield occ

    def _skip(self, occ: Occurrence, reason: str, notes: tuple[str, ...] = ()) -> Occurrence:
        return replace(occ, at=occ.nominal, local=occ.nominal.astimezone(self._tz),
                       notes=occ.notes + notes, skipped=reason)

    def _apply(self, occ: Occurrence, latest: datetime | None) -> Occurrence:
        tz = self._tz
        local = occ.at.astimezone(tz)
        reason = self.calendar.why_not_business_day(local.date())
        if reason is None:
            moved = replace(occ, local=local)
            notes: tuple[str, ...] = ()
        elif self.policy is BusinessDayPolicy.SKIP:
            return self._skip(occ, f"calendar: {reason}")
        else:
            if self.policy is BusinessDayPolicy.NEXT:
                day, which = self.calendar.next_business_day(local.date()), "next"
            else:
                day, which = self.calendar.previous_business_day(local.date()), "previous"
            wall = datetime.combine(day, local.time())
            instants, dst_note = resolve_local(wall, tz, self.dst_gap, self.dst_fold)
            note = f"calendar: {reason}; moved to the {which} business day, {day.isoformat()}"
            if not instants:
                return self._skip(occ, f"{note}, but {dst_note}", (note,))
            at = instants[0]
            notes = (note,) + ((dst_note,) if dst_note else ())
            moved = replace(occ, at=at, local=at.astimezone(tz), notes=occ.notes + notes)
        if latest is not None and moved.at <= latest:
            when = moved.at.astimezone(tz)
            if moved.at == latest:
                why = (f"calendar: an earlier occurrence already fires at "
                       f"{when:%Y-%m-%d %H:%M %z}")
            else:
                why = (f"calendar: moving to {when:%Y-%m-%d %H:%M %z} would fire before an "
                       f"earlier occurrence (at {latest.astimezone(tz):%Y-%m-%d %H:%M %z})")
            return self._skip(occ, why, notes)
        return moved

    def skipped_until(self, occ: Occurrence) -> datetime | None:
        """With the skip policy, every occurrence on a day that is not a business day is
        skipped: the run lasts to the end of that local day."""
        if self.policy is not BusinessDayPolicy.SKIP or not (
                occ.skipped or "").startswith("calendar: "):
            return skipped_until(self.base, occ)
        day = occ.nominal.astimezone(self._tz).date()
        if self.calendar.is_business_day(day):
            return None
        instants, _ = resolve_local(datetime.combine(day + timedelta(days=1), time()),
                                    self._tz, DstGap.FIRST_VALID, DstFold.FIRST)
        return instants[0] - ONE_MICROSECOND

    def next_after(self, instant: datetime) -> datetime | None:
        return first_fire_after(self, instant)
