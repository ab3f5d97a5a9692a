"""Triggers: when something happens. Pure functions of time, no I/O.

Every trigger answers ``next_after(instant)`` (the first occurrence strictly after it, or
None when there is none) and ``occurrences(after)`` (the same, as a stream that also yields
the *skipped* nominal occurrences with their reason, for previews and the tick ledger).
Calendars (holidays, business days), delivery windows and jitter wrap a base trigger
(``at``, ``interval``, ``cron``, ``rrule``); DST is decided only in ``hora.triggers.dst``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of a trigger.

    ``nominal`` is the instant the expression names (the schedule's idempotency key is
    ``(schedule_id, nominal)``); ``at`` is when it really fires after the DST policy,
    calendar moves, window and jitter. ``skipped`` holds the reason when this nominal
    occurrence does not fire at all (then ``at`` equals ``nominal``). ``notes`` say what
    changed it and why.
    """

    nominal: datetime
    at: datetime
    local: datetime
    notes: tuple[str, ...] = field(default=())
    skipped: str | None = None


@runtime_checkable
class Trigger(Protocol):
    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        """Occurrences (fired and skipped) with ``nominal`` strictly after ``after``, in
        order of ``nominal``."""
        ...

    def next_after(self, instant: datetime) -> datetime | None:
        """The first instant strictly after ``instant`` at which this trigger fires."""
        ...
