"""Delivery windows: only fire between two local times, on chosen days.

``DeliveryWindow(time(9), time(18), "Europe/London", days=calendar)`` is open 09:00-18:00
local time on the calendar's business days; ``days`` may also be a set of weekday numbers
(Monday 0) or None (every day). A window whose end is not after its start runs overnight
(22:00-06:00 opens on the listed day and closes the next morning).

``WindowTrigger`` moves an occurrence outside the window to the window's next opening, with a
note. Several occurrences moved onto the same opening fire once: the first in nominal order
fires and the others are skipped with the reason, so fired instants stay strictly increasing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence, Trigger
from hora.triggers.basic import (
    ONE_MICROSECOND,
    at_floor,
    first_fire_after,
    nominal_floor,
    require_aware,
    skipped_until,
)
from hora.triggers.calendar import SEARCH_DAYS, BusinessCalendar
from hora.triggers.dst import DstFold, DstGap, resolve_local, zone

DAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_BOUNDS_CACHE = 1024  # days of opening/closing instants kept per window


class DeliveryWindow:
    """Local opening hours: ``[start, end)`` in ``timezone`` on the days ``days`` allows."""

    def __init__(self, start: time, end: time, timezone: str,
                 days: BusinessCalendar | Iterable[int] | str | None = None) -> None:
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, time):
                raise InvalidTrigger(f"must be a time such as 09:00, not "
                                     f"{type(value).__name__}", field=f"window.{name}")
            if value.tzinfo is not None:
                raise InvalidTrigger("must be a local time without a zone "
                                     "(the window's timezone applies)", field=f"window.{name}")
        if start == end:
            raise InvalidTrigger(f"start and end are both {start:%H:%M}; the window "
                                 "would never be open", field="window")
        self.start = start
        self.end = end
        self._bounds: dict[date, tuple[datetime, datetime]] = {}
        self._tz = zone(timezone)
        self.timezone = timezone
        self.calendar: BusinessCalendar | None = None
        self.weekdays: frozenset[int] | None = None
        if days == "business":
            self.calendar = BusinessCalendar()
        elif isinstance(days, BusinessCalendar):
            self.calendar = days
        elif isinstance(days, str):
            raise InvalidTrigger(f"{days!r} is not 'business' or a list of "
                                 "weekday numbers (Monday 0 ... Sunday 6)", field="window.days")
        elif days is not None:
            chosen: set[int] = set()
            for wd in days:
                if isinstance(wd, bool) or not isinstance(wd, int) or not 0 <= wd <= 6:
                    raise InvalidTrigger(f"{wd!r} is not a weekday number "
                                         "(Monday 0 ... Sunday 6)", field="window.days")
                chosen.add(wd)
            if not chosen:
                raise InvalidTrigger("no day given; the window would never be "
                                     "open", field="window.days")
            self.weekdays = frozenset(chosen)

    def describe(self) -> str:
        hours = f"{self.start:%H:%M}-{self.end:%H:%M}"
        if self.calendar is not None:
            return f"{hours} on business days"
        if self.weekdays is not None and len(self.weekdays) < 7:
            return f"{hours} on {','.join(DAY_ABBREVIATIONS[d] for d in sorted(self.weekdays))}"
        return hours

    def __repr__(self) -> str:
        return f"DeliveryWindow({self.describe()!r}, timezone={self.timezone!r})"

    def opens_on(self, day: date) -> bool:
        if self.calendar is not None:
            return self.calendar.is_business_day(day)
        return self.weekdays is None or day.weekday() in self.weekdays

    def _instant(self, local: datetime) -> datetime:
        instants, _ = resolve_local(local, self._tz, DstGap.FIRST_VALID, DstFold.FIRST)
        return instants[0]

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """The opening and closing instants of the window that opens on ``day``."""
        cached = self._bounds.get(day)
        if cached is None:
            closes_on = day + timedelta(days=1) if self.end <= self.start else day
            cached = (self._instant(datetime.combine(day, self.start)),
                      self._instant(datetime.combine(closes_on, self.end)))
            if len(self._bounds) >= _BOUNDS_CACHE:
                self._bounds.clear()
            self._bounds[day] = cached
        return cached

    def contains(self, instant: datetime) -> bool:
        day = instant.astimezone(self._tz).date()
        for d in (day - timedelta(days=1), day):
            if self.opens_on(d):
                opening, closing = self.bounds(d)
                if opening <= instant < closing:
                    return True
        return False

    def next_opening(self, instant: datetime) -> datetime:
        """The first opening strictly after ``instant``."""
        day = instant.astimezone(self._tz).date() - timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            if self.opens_on(day):
                opening, _ = self.bounds(day)
                if opening > instant:
                    return opening
            day += timedelta(days=1)
        raise InvalidTrigger(f"never opens within {SEARCH_DAYS} days of "
                             f"{instant.isoformat()}", field="window")

    def last_close(self, instant: datetime) -> datetime:
        """The latest closing at or before ``instant``."""
        day = instant.astimezone(self._tz).date()
        for _ in range(SEARCH_DAYS):
            if self.opens_on(day):
                _, closing = self.bounds(day)
                if closing <= instant:
                    return closing
            day -= timedelta(days=1)
        raise InvalidTrigger(f"never open within {SEARCH_DAYS} days before "
                             f"{instant.isoformat()}", field="window")

    def place(self, instant: datetime) -> tuple[datetime, str | None]:
        """Where an occurrence at ``instant`` fires, and a note when it moved."""
        if self.contains(instant):
            return instant, None
        opening = self.next_opening(instant)
        local = instant.astimezone(self._tz)
        return opening, (f"window: {local:%Y-%m-%d %H:%M} is outside {self.describe()}; "
                         f"moved to the next opening, "
                         f"{opening.astimezone(self._tz):%Y-%m-%d %H:%M}")


class WindowTrigger:
    """``base`` with every occurrence moved into ``window``."""

    def __init__(self, base: Trigger, window: DeliveryWindow) -> None:
        self.base = base
        self.window = window
        self.timezone = window.timezone
        self._tz = zone(window.timezone)

    def __repr__(self) -> str:
        return f"WindowTrigger({self.base!r}, {self.window!r})"

    def nominal_floor(self, instant: datetime) -> datetime:
        # Anything the base fires before the last closing lands there or earlier.
        return nominal_floor(self.base, self.window.last_close(instant) - ONE_MICROSECOND)

    def at_floor(self, after: datetime) -> datetime:
        return at_floor(self.base, after)

    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        after = require_aware(after, "after")
        start = min(after, self.nominal_floor(self.at_floor(after) - ONE_MICROSECOND))
        latest: datetime | None = None
        # A base that fires at its nominal instants lets the read jump: once an occurrence
        # moved to an opening fires there, every later one before that opening is skipped,
        # and those not after ``after`` are not even listed.
        plain = getattr(self.base, "at_floor", None) is None
        source = self.base.occurrences(start)
        while (occ := next(source, None)) is not None:
            if occ.skipped is None:
                at, note = self.window.place(occ.at)
                notes = (note,) if note else ()
                if latest is not None and at <= latest:
                    occ = replace(
                        occ, at=occ.nominal, local=occ.nominal.astimezone(self._tz),
                        notes=occ.notes + notes,
                        skipped=(f"window: an earlier occurrence already fires at the "
                                 f"opening {at.astimezone(self._tz):%Y-%m-%d %H:%M}"))
                else:
                    latest = at
                    occ = replace(occ, at=at, local=at.astimezone(self._tz),
                                  notes=occ.notes + notes)
                    jump = min(at - ONE_MICROSECOND, after)
                    if plain and note and jump > occ.nominal:
                        source = self.base.occurrences(jump)
            if occ.nominal > after:
                yield occ

    def skipped_until(self, occ: Occurrence) -> datetime | None:
        """Every occurrence outside the window up to its next opening lands on that opening,
        which an earlier one already took: the whole run up to it is skipped."""
        if not occ.skipped or not occ.skipped.startswith("window:"):
            return skipped_until(self.base, occ)
        if self.window.contains(occ.nominal) or getattr(self.base, "at_floor", None):
            return None  # inside the window, or a base that moves occurrences itself
        return self.window.next_opening(occ.nominal) - ONE_MICROSECOND

    def next_after(self, instant: datetime) -> datetime | None:
        return first_fire_after(self, instant)
