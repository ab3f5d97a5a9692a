"""Jitter: spread occurrences over a bounded offset, the same offset every time.

The offset of an occurrence is ``sha256(key + nominal ISO-8601)`` scaled into
``[0, max_seconds)`` (to the microsecond), so the same schedule (``key``) and the same nominal
instant always get the same offset: a preview, the scheduler and a replay agree, and any
number of scheduler processes fire at the same moment.

Offsets never reorder occurrences: when an offset would reach the next fired occurrence (a
bound larger than the gap between occurrences), it is scaled into that gap instead.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence, Trigger
from hora.triggers.basic import (
    MAX_SKIPPED_RUN,
    at_floor,
    first_fire_after,
    nominal_floor,
    require_aware,
    skipped_until,
    trigger_timezone,
)
from hora.triggers.dst import zone


def jitter_fraction(key: str, nominal: datetime) -> int:
    """A 64-bit number derived from the key and the nominal instant (in UTC)."""
    text = key + nominal.astimezone(UTC).isoformat()
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _scaled(fraction: int, span_us: int) -> int:
    """``fraction / 2**64 * span_us``, exactly, in ``[0, span_us)``."""
    return (fraction * span_us) >> 64


class JitterTrigger:
    """``base`` with each fired occurrence delayed by a deterministic ``[0, max_seconds)``."""

    def __init__(self, base: Trigger, max_seconds: float, key: str) -> None:
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float):
            raise InvalidTrigger(f"must be a number of seconds, not "
                                 f"{type(max_seconds).__name__}", field="jitter")
        if not math.isfinite(max_seconds) or max_seconds < 0:
            raise InvalidTrigger(f"{max_seconds!r} must be a finite number of seconds "
                                 ">= 0", field="jitter")
        if not isinstance(key, str):
            raise InvalidTrigger("the key must be a string (the schedule's id)", field="jitter")
        self.base = base
        self.max_seconds = float(max_seconds)
        self.key = key
        self._max_us = round(self.max_seconds * 1_000_000)
        self._tz = zone(trigger_timezone(base))

    def __repr__(self) -> str:
        return f"JitterTrigger({self.base!r}, max_seconds={self.max_seconds!r}, key={self.key!r})"

    def offset(self, nominal: datetime) -> timedelta:
        """The uncapped offset of the occurrence with this nominal instant."""
        return timedelta(microseconds=_scaled(jitter_fraction(self.key, nominal), self._max_us))

    def nominal_floor(self, instant: datetime) -> datetime:
        return nominal_floor(self.base, instant - timedelta(microseconds=self._max_us))

    def at_floor(self, after: datetime) -> datetime:
        return at_floor(self.base, after)

    def skipped_until(self, occ: Occurrence) -> datetime | None:
        return skipped_until(self.base, occ)

    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        after = require_aware(after, "after")
        source = self.base.occurrences(after)
        ahead: deque[Occurrence] = deque()
        exhausted = False

        def next_fired() -> Occurrence | None:
            """The next fired occurrence after the head of ``ahead``, reading on as needed."""
            nonlocal exhausted
            for queued in list(ahead)[1:]:
                if queued.skipped is None:
                    return queued
            run = 0
            while not exhausted and run < MAX_SKIPPED_RUN:
                read = next(source, None)
                if read is None:
                    exhausted = True
                    return None
                ahead.append(read)
                if read.skipped is None:
                    return read
                run += 1
            return None

        while True:
            if not ahead:
                first = next(source, None)
                if first is None:
                    return
                ahead.append(first)
            occ = ahead[0]
            if occ.skipped is None and self._max_us > 0:
                fraction = jitter_fraction(self.key, occ.nominal)
                offset_us = _scaled(fraction, self._max_us)
                note = f"jitter: +{offset_us / 1_000_000:.3f}s"
                following = next_fired()
                if following is not None:
                    gap_us = (following.at - occ.at) // timedelta(microseconds=1)
                    if offset_us >= gap_us:
                        offset_us = _scaled(fraction, gap_us)
                        note = (f"jitter: +{offset_us / 1_000_000:.3f}s (scaled into the "
                                "gap before the next occurrence)")
                at = occ.at + timedelta(microseconds=offset_us)
                occ = replace(occ, at=at, local=at.astimezone(self._tz),
                              notes=(*occ.notes, note))
            ahead.popleft()
            yield occ

    def next_after(self, instant: datetime) -> datetime | None:
        return first_fire_after(self, instant)
