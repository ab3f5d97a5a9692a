"""The two simplest triggers, ``at`` and ``interval``, and what every wrapper shares.

``AtTrigger`` fires once; ``IntervalTrigger`` fires every fixed duration from an anchor, in
absolute time (a UTC instant plus n times the duration), so DST never stretches or shrinks it.

Wrappers (calendars, delivery windows, jitter) move an occurrence's ``at`` away from its
``nominal``. Two optional methods let them answer ``next_after`` without scanning from the
beginning of time, and let ``occurrences(after)`` decide exactly as a full scan would:

* ``nominal_floor(instant)``: a nominal instant ``L`` such that every occurrence that fires
  strictly after ``instant`` has ``nominal > L``;
* ``at_floor(after)``: a lower bound of ``at`` for every occurrence with ``nominal > after``;
* ``skipped_until(occ)``: for a skipped occurrence it yielded, a nominal instant ``R`` such
  that every occurrence with ``nominal`` in ``(occ.nominal, R]`` is skipped too (a closed
  window, a non-business day), so a search for the next firing jumps the run instead of
  reading a secondly trigger's weekend one second at a time.

A trigger without them fires at its nominal instant (``at``, ``interval``, ``cron``,
``rrule``), and the functions below then answer ``instant`` and ``after``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from hora.errors import InvalidTrigger
from hora.limits import MAX_INSTANT, MIN_INSTANT
from hora.triggers import Occurrence, Trigger
from hora.triggers.dst import zone

#: How many skipped occurrences in a row a search looks at before it concludes that the
#: trigger never fires again (say, a Saturday-only rule with the ``skip`` weekend policy).
#: A jumped run (a whole weekend of a secondly rule) counts as one, so real triggers stay far
#: below it; a jump restarts the expansion (~200 us), so 100,000 cost 20 CPU-s per search —
#: one create or preview of a never-firing rule — while 10,000 cost about 2.
MAX_SKIPPED_RUN = 10_000

ONE_MICROSECOND = timedelta(microseconds=1)

#: The supported range of instants: every instant a trigger is given (``at``, ``start``,
#: ``end``, DTSTART, UNTIL, EXDATE, RDATE, a preview's ``after``) must lie in it, and no
#: occurrence is produced after its end (a trigger then simply ends), so datetime arithmetic
#: never overflows near the year 9999.
#: The same range as every other instant hora takes (``hora.limits``), one message for both.
RANGE_START = MIN_INSTANT
RANGE_END = MAX_INSTANT
#: The longest ``every`` of an interval trigger.
MAX_EVERY = timedelta(days=36_600)


def nominal_floor(trigger: Trigger, instant: datetime) -> datetime:
    """A nominal instant before every occurrence of ``trigger`` that fires after ``instant``."""
    method = getattr(trigger, "nominal_floor", None)
    if method is None:
        return instant
    result: datetime = method(instant)
    return result


def at_floor(trigger: Trigger, after: datetime) -> datetime:
    """A lower bound of ``at`` for the occurrences of ``trigger`` with ``nominal > after``."""
    method = getattr(trigger, "at_floor", None)
    if method is None:
        return after
    result: datetime = method(after)
    return result


def skipped_until(trigger: Trigger, occ: Occurrence) -> datetime | None:
    """How far the run of skipped occurrences that ``occ`` starts surely lasts (see the
    module docstring), or None when the trigger cannot tell."""
    method = getattr(trigger, "skipped_until", None)
    if method is None or occ.skipped is None:
        return None
    result: datetime | None = method(occ)
    return result


#: A run of skipped occurrences is jumped (the search restarts after it) when it lasts at
#: least this long; shorter ones are read through.
_JUMP_AT_LEAST = timedelta(minutes=1)


def first_fire_after(trigger: Trigger, instant: datetime) -> datetime | None:
    """The first instant strictly after ``instant`` at which ``trigger`` fires.

    Fired occurrences come in strictly increasing ``at`` order, so the first one that fires
    after ``instant`` (starting from the trigger's ``nominal_floor``) is the answer. Runs of
    skipped occurrences a wrapper can bound (``skipped_until``) are jumped; at most
    ``MAX_SKIPPED_RUN`` skipped occurrences (read or jumped runs) are looked at.
    """
    instant = require_aware(instant, "instant")
    start = nominal_floor(trigger, instant)
    skipped_run = 0
    while True:
        jumped = False
        for occ in trigger.occurrences(start):
            if occ.skipped is not None:
                skipped_run += 1
                if skipped_run >= MAX_SKIPPED_RUN:
                    return None
                until = skipped_until(trigger, occ)
                if until is not None and until - occ.nominal >= _JUMP_AT_LEAST:
                    start, jumped = until, True
                    break
                continue
            skipped_run = 0
            if occ.at > instant:
                return occ.at
        if not jumped:
            return None


def trigger_timezone(trigger: object) -> str:
    """The IANA zone a trigger's wall-clock times are read in (``UTC`` when it has none)."""
    seen: set[int] = set()
    current: object = trigger
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = getattr(current, "timezone", None)
        if isinstance(name, str) and name:
            return name
        current = getattr(current, "base", None)
    return "UTC"


def require_aware(value: datetime, field: str) -> datetime:
    """``value`` as an aware UTC datetime, or InvalidTrigger naming ``field``."""
    if not isinstance(value, datetime):
        raise InvalidTrigger(f"must be a datetime, not {type(value).__name__}", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTrigger(
            f"{value.isoformat()} has no UTC offset; give an aware instant "
            "such as 2027-03-14T07:30:00+00:00", field=field)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # a local time at the very edge of datetime's range
        raise out_of_range(value, field) from None


def out_of_range(value: object, field: str) -> InvalidTrigger:
    shown = value.isoformat() if isinstance(value, datetime) else repr(value)
    return InvalidTrigger(
        f"{shown} is outside the supported range {_z(RANGE_START)} .. "
        f"{_z(RANGE_END)}", field=field)


def _z(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def require_in_range(value: datetime, field: str) -> datetime:
    """``value`` as an aware UTC datetime within the supported range, or InvalidTrigger."""
    instant = require_aware(value, field)
    if not RANGE_START <= instant < RANGE_END:
        raise out_of_range(value, field)
    return instant


def clamp_to_range(instant: datetime) -> datetime:
    """An aware instant moved into the supported range (a search from before its start
    starts at the start; one from after its end finds nothing)."""
    return min(max(instant, RANGE_START - timedelta(days=7)), RANGE_END)


class AtTrigger:
    """Fires once, at ``at``."""

    def __init__(self, at: datetime, *, timezone: str = "UTC") -> None:
        self.at = require_in_range(at, "at")
        self._tz = zone(timezone)
        self.timezone = timezone

    def __repr__(self) -> str:
        return f"AtTrigger({self.at.isoformat()!r}, timezone={self.timezone!r})"

    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        after = require_aware(after, "after")
        if self.at > after:
            yield Occurrence(nominal=self.at, at=self.at, local=self.at.astimezone(self._tz))

    def next_after(self, instant: datetime) -> datetime | None:
        instant = require_aware(instant, "instant")
        return self.at if self.at > instant else None


class IntervalTrigger:
    """Fires at ``start + n * every`` (n = 0, 1, ...) up to and including ``end``.

    The arithmetic is on UTC instants: "every 24 hours" stays 24 real hours apart across a
    DST change (use a cron or rrule trigger for "every day at 09:00 local").
    """

    def __init__(self, every: timedelta, start: datetime, end: datetime | None = None, *,
                 timezone: str = "UTC") -> None:
        if not isinstance(every, timedelta):
            raise InvalidTrigger(f"must be a timedelta, not {type(every).__name__}", field="every")
        if every <= timedelta(0):
            raise InvalidTrigger(f"{every} must be a positive duration", field="every")
        if every > MAX_EVERY:
            raise InvalidTrigger(f"{every} is longer than the maximum "
                                 f"{MAX_EVERY.days} days", field="every")
        self.every = every
        self.start = require_in_range(start, "start")
        self.end = None if end is None else require_in_range(end, "end")
        # The last index before the end of the supported range: nothing fires after it.
        self._last_index = (RANGE_END - self.start) // every
        if self.end is not None and self.end < self.start:
            raise InvalidTrigger(
                f"{self.end.isoformat()} is before start {self.start.isoformat()}; "
                "the interval never fires", field="end")
        self._tz = zone(timezone)
        self.timezone = timezone

    def __repr__(self) -> str:
        return (f"IntervalTrigger(every={self.every!r}, start={self.start.isoformat()!r}, "
                f"end={self.end.isoformat() if self.end else None!r})")

    def _first_index_after(self, after: datetime) -> int:
        if after < self.start:
            return 0
        return min((after - self.start) // self.every + 1, self._last_index + 1)

    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        after = require_aware(after, "after")
        n = self._first_index_after(after)
        while True:
            if n > self._last_index:
                return
            at = self.start + n * self.every
            if self.end is not None and at > self.end:
                return
            yield Occurrence(nominal=at, at=at, local=at.astimezone(self._tz))
            n += 1

    def next_after(self, instant: datetime) -> datetime | None:
        instant = require_aware(instant, "instant")
        n = self._first_index_after(instant)
        if n > self._last_index:
            return None
        at = self.start + n * self.every
        if self.end is not None and at > self.end:
            return None
        return at
