"""Wall-clock times in a zone, made into instants: the one place DST is decided.

A local time may not exist (the spring-forward gap) or exist twice (the autumn fold). Every
trigger turns its local occurrences into UTC instants through ``resolve_local`` with the
schedule's policy, so "02:30 on the night the clocks jump" means the same thing everywhere:

* gap ``first_valid``: the first instant after the gap (cron's convention: 02:30 → 03:00);
* gap ``shift``: keep the offset from before the gap (RFC 5545 §3.3.5: 02:30 → 03:30);
* gap ``skip``: no occurrence;
* fold ``first`` / ``last``: the earlier / later of the two instants; ``both``: each of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hora.errors import InvalidTrigger


class DstGap(StrEnum):
    FIRST_VALID = "first_valid"
    SHIFT = "shift"
    SKIP = "skip"


class DstFold(StrEnum):
    FIRST = "first"
    LAST = "last"
    BOTH = "both"


def zone(name: str) -> ZoneInfo:
    """An IANA zone, or a clear InvalidTrigger naming the bad value."""
    if not isinstance(name, str) or not name:
        raise InvalidTrigger("must be an IANA zone name such as Europe/London", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTrigger(
            f"unknown time zone {name!r} (use an IANA name such as "
            "America/New_York, Europe/London or UTC)", field="timezone") from None


def _utc_of(local: datetime, tz: ZoneInfo, fold: int) -> datetime:
    return local.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _round_trips(instant: datetime, local: datetime, tz: ZoneInfo) -> bool:
    return instant.astimezone(tz).replace(tzinfo=None) == local


def gap_end(local: datetime, tz: ZoneInfo) -> datetime:
    """The instant the clocks jumped over ``local`` (a time inside a gap), in UTC."""
    lo = _utc_of(local, tz, 1)  # read with the offset after the jump: lands before it
    hi = _utc_of(local, tz, 0)  # read with the offset before the jump: lands after it
    if lo > hi:
        lo, hi = hi, lo
    # Whole seconds (the tz database has no finer transitions), so halving always progresses.
    lo = lo.replace(microsecond=0)
    if hi.microsecond:
        hi = hi.replace(microsecond=0) + timedelta(seconds=1)
    after = hi.astimezone(tz).utcoffset()
    # Binary search (to the second) for the first instant with the post-jump offset.
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi


def resolve_local(local: datetime, tz: ZoneInfo, gap: DstGap, fold: DstFold,
                  ) -> tuple[list[datetime], str | None]:
    """The UTC instants a naive local time stands for under the policy, and a note when DST
    changed anything (for previews and the tick ledger)."""
    if local.tzinfo is not None:
        raise ValueError("resolve_local takes a naive local time")
    first, second = _utc_of(local, tz, 0), _utc_of(local, tz, 1)
    ok_first, ok_second = _round_trips(first, local, tz), _round_trips(second, local, tz)
    if ok_first and ok_second:
        if first == second:
            return [first], None
        early, late = sorted((first, second))
        if fold is DstFold.FIRST:
            return [early], f"dst_fold: {local:%H:%M} happens twice; first taken"
        if fold is DstFold.LAST:
            return [late], f"dst_fold: {local:%H:%M} happens twice; last taken"
        return [early, late], f"dst_fold: {local:%H:%M} happens twice; both taken"
    if ok_first or ok_second:  # pragma: no cover - zoneinfo keeps valid times stable
        return [first if ok_first else second], None
    # A gap: the wall clock never shows this time on this day.
    if gap is DstGap.SKIP:
        return [], f"dst_gap: {local:%H:%M} does not exist; skipped"
    if gap is DstGap.SHIFT:
        shifted = _utc_of(local, tz, 0)
        return [shifted], (f"dst_gap: {local:%H:%M} does not exist; shifted to "
                           f"{shifted.astimezone(tz):%H:%M}")
    end = gap_end(local, tz)
    return [end], (f"dst_gap: {local:%H:%M} does not exist; moved to "
                   f"{end.astimezone(tz):%H:%M}, the first valid time")
