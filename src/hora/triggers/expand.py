"""Bounded expansion of one RRULE into naive local times.

python-dateutil expands a rule period by period from DTSTART, and it checks UNTIL only when
it produces a candidate: a rule whose BY-parts rarely (or never) match together makes it scan
period after period, up to the year 9999, before it answers. Here the work to the next
candidate is bounded by counting, never by wall time:

* **Start near the instant asked for.** Expansion starts at the rule's period (aligned with
  its INTERVAL) at or before the requested local time, with every default dateutil derives
  from DTSTART written out (``_with_dtstart_defaults``), so the cost does not depend on how
  far DTSTART lies in the past. A COUNT rule is turned into its last occurrence once (COUNT
  is at most ``MAX_COUNT``) and then expands like an UNTIL rule.
* **Search a bounded horizon.** From any point, the next candidate is looked for at most
  ``SEARCH_YEARS[freq]`` ahead, counted in the periods (or, below DAILY, the days) visited;
  a rule with no candidate there raises :class:`TooSparse` (an ``InvalidTrigger``).
* **Drive each period ourselves.** DAILY and finer rules run dateutil without their day
  filters (BYMONTH, BYMONTHDAY, BYYEARDAY, BYDAY), which are checked here day by day, so
  dateutil always has a candidate at hand; WEEKLY periods are computed directly; a MONTHLY or
  YEARLY period is one dateutil period (an INTERVAL so large that the next one lies past
  the year 9999 ends the iteration at once).

Local times past ``LAST_LOCAL`` are never produced: a recurrence ends cleanly (None) at the
end of the supported range instead of overflowing.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

from dateutil import rrule as du

from hora.errors import (
    InvalidTrigger,
    TooSparse,
)
from hora.triggers.basic import RANGE_END

if TYPE_CHECKING:
    from hora.triggers.rrule import RRulePart

#: How far ahead of any point the next occurrence is looked for, by frequency. The work is
#: the periods visited in that span (days, below DAILY): a rule sparser than this is refused.
SEARCH_YEARS = {du.YEARLY: 400, du.MONTHLY: 100, du.WEEKLY: 50, du.DAILY: 30, du.HOURLY: 8,
                du.MINUTELY: 4, du.SECONDLY: 2}
#: The largest COUNT accepted (COUNT is counted from DTSTART, so its end is computed once by
#: expanding the rule from DTSTART: this bounds that work).
MAX_COUNT = 10_000
#: The most candidates one period (a year, month, week or day) may hold before BYSETPOS picks
#: from them, e.g. FREQ=YEARLY with every BYHOUR and BYMINUTE: use a finer FREQ instead.
MAX_PERIOD_CANDIDATES = 50_000
#: No local time after this is produced (the supported range ends at RANGE_END, UTC).
LAST_LOCAL = RANGE_END.replace(tzinfo=None) + timedelta(days=2)

_FREQ_NAMES = {du.YEARLY: "YEARLY", du.MONTHLY: "MONTHLY", du.WEEKLY: "WEEKLY",
               du.DAILY: "DAILY", du.HOURLY: "HOURLY", du.MINUTELY: "MINUTELY",
               du.SECONDLY: "SECONDLY"}
_UNIT_SECONDS = {du.HOURLY: 3600, du.MINUTELY: 60, du.SECONDLY: 1}
#: An INTERVAL that puts a MONTHLY or YEARLY rule's second period past the year 9999.
_ONE_PERIOD = 100_000
_ONE_DAY = timedelta(days=1)
#: A period start that ends every expansion (after LAST_LOCAL, far from datetime.max).
_PAST_END = LAST_LOCAL + _ONE_DAY


def _after_weeks(week: date, weeks: int) -> datetime:
    if weeks > (LAST_LOCAL.date() - week).days // 7:
        return _PAST_END
    return datetime.combine(week + timedelta(weeks=weeks), time())


def dateutil_rule(rule: RRulePart, dtstart: datetime) -> du.rrule:
    return du.rrule(
        cast(Any, rule.freq), dtstart=dtstart, interval=rule.interval, wkst=rule.wkst,
        count=rule.count, bysetpos=rule.bysetpos or None, bymonth=rule.bymonth or None,
        bymonthday=rule.bymonthday or None, byyearday=rule.byyearday or None,
        byweekno=rule.byweekno or None,
        byweekday=[du.weekday(wd, n) for wd, n in rule.byday] or None,
        byhour=rule.byhour or None, byminute=rule.byminute or None,
        bysecond=rule.bysecond or None, cache=False)


def _too_sparse(rule: RRulePart, since: datetime) -> TooSparse:
    years = SEARCH_YEARS[rule.freq]
    return TooSparse(
        f"{rule.text} is too sparse: no occurrence within {years} years after "
        f"{since.isoformat()} (hora looks at most {years} years ahead for "
        f"FREQ={_FREQ_NAMES[rule.freq]}; the BY-rules may never match together, or use a "
        "coarser FREQ such as YEARLY)", field="rrule")


def _add_years(value: datetime, years: int) -> datetime:
    """``value`` plus whole years, saturating at LAST_LOCAL."""
    if value.year + years >= LAST_LOCAL.year:
        return LAST_LOCAL
    return value.replace(year=value.year + years, day=min(value.day, 28))


def period_candidates_bound(full: RRulePart) -> int:
    """An upper bound of the candidates in one period of a (defaults-explicit) rule."""
    days = {du.YEARLY: 366, du.MONTHLY: 31, du.WEEKLY: 7}.get(full.freq, 1)
    times = 1
    for part, finer_than in ((full.byhour, du.HOURLY), (full.byminute, du.MINUTELY),
                             (full.bysecond, du.SECONDLY)):
        if full.freq < finer_than:
            times *= max(1, len(part))
    return days * times


def aligned_start(rule: RRulePart, dtstart: datetime, at: datetime) -> datetime:
    """The start of the last period of the rule's grid (DTSTART's period plus a multiple of
    INTERVAL periods) that begins at or before ``at``; DTSTART itself when that is DTSTART's
    own period (dateutil's first period starts at DTSTART: a first week is partial)."""
    if at <= dtstart:
        return dtstart
    start = _grid_start(rule, dtstart, at)
    return dtstart if start <= dtstart else start


def _grid_start(rule: RRulePart, dtstart: datetime, at: datetime) -> datetime:
    iv = rule.interval
    if rule.freq == du.YEARLY:
        k = (at.year - dtstart.year) // iv * iv
        return datetime(dtstart.year + k, 1, 1)
    if rule.freq == du.MONTHLY:
        k = ((at.year - dtstart.year) * 12 + at.month - dtstart.month) // iv * iv
        month = dtstart.year * 12 + dtstart.month - 1 + k
        return datetime(month // 12, month % 12 + 1, 1)
    if rule.freq == du.WEEKLY:
        week = dtstart.date() - timedelta(days=(dtstart.weekday() - rule.wkst) % 7)
        k = (at.date() - week).days // 7 // iv * iv
        return datetime.combine(week + timedelta(weeks=k), time())
    if rule.freq == du.DAILY:
        k = (at.date() - dtstart.date()).days // iv * iv
        return datetime.combine(dtstart.date() + timedelta(days=k), time())
    unit = _UNIT_SECONDS[rule.freq]
    base = dtstart.replace(minute=0, second=0) if rule.freq == du.HOURLY else (
        dtstart.replace(second=0) if rule.freq == du.MINUTELY else dtstart)
    k = int((at - base).total_seconds()) // (unit * iv) * iv
    return base + timedelta(seconds=k * unit)


@dataclass(frozen=True, slots=True)
class _DayFilter:
    """The day-level BY-parts of a DAILY or finer rule (no ordinals there), per day."""

    months: frozenset[int]
    weekdays: frozenset[int]
    monthdays: frozenset[int]
    yeardays: frozenset[int]

    @classmethod
    def of(cls, rule: RRulePart) -> _DayFilter:
        return cls(frozenset(rule.bymonth), frozenset(wd for wd, _ in rule.byday),
                   frozenset(rule.bymonthday), frozenset(rule.byyearday))

    def ok(self, d: date) -> bool:
        if self.months and d.month not in self.months:
            return False
        if self.weekdays and d.weekday() not in self.weekdays:
            return False
        if self.monthdays:
            length = calendar.monthrange(d.year, d.month)[1]
            if d.day not in self.monthdays and d.day - length - 1 not in self.monthdays:
                return False
        if self.yeardays:
            length = 366 if calendar.isleap(d.year) else 365
            day = d.timetuple().tm_yday
            if day not in self.yeardays and day - length - 1 not in self.yeardays:
                return False
        return True

    def next_day(self, d: date, last: date) -> date | None:
        """The first matching day from ``d`` to ``last``; a month BYMONTH excludes is
        skipped whole."""
        while d <= last:
            if self.months and d.month not in self.months:
                d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
                continue
            if self.ok(d):
                return d
            d += _ONE_DAY
        return None


def _safe(source: Iterator[datetime]) -> Iterator[datetime]:
    """dateutil's candidates; its iteration ends (instead of raising) at the year 9999, and a
    combination of INTERVAL and BY-parts it finds empty ends it too."""
    while True:
        try:
            value = next(source)
        except StopIteration:
            return
        except (ValueError, OverflowError) as e:
            if "empty rule" in str(e):
                raise InvalidTrigger(f"never fires ({e})", field="rrule") from None
            return
        yield value


def _expand_daily(full: RRulePart, dtstart: datetime, start: datetime,
                  end: datetime) -> Iterator[datetime]:
    """DAILY and finer: dateutil for the times, the day filters checked here."""
    days = _DayFilter.of(full)
    stripped = replace(full, bymonth=(), bymonthday=(), byyearday=(), byday=(), count=None)
    since = t = max(start, dtstart)
    while True:
        limit = min(_add_years(since, SEARCH_YEARS[full.freq]), end)
        d = days.next_day(t.date(), limit.date())
        if d is None:
            if limit >= end:
                return
            raise _too_sparse(full, since)
        s = max(t, datetime.combine(d, time()))
        for c in _safe(iter(dateutil_rule(stripped, aligned_start(stripped, dtstart, s)))):
            if c < s:
                continue
            if c > end:
                return
            if c.date() != d:
                if c > limit:
                    t = c
                    break
                if not days.ok(c.date()):
                    t = datetime.combine(c.date() + _ONE_DAY, time())
                    break
                d = c.date()
            yield c
            since = c
        else:
            return


def _week_candidates(full: RRulePart, first: date, week_end: date) -> list[datetime]:
    """One WEEKLY period's candidates (days ``first`` to ``week_end``), after BYSETPOS."""
    weekdays = {wd for wd, _ in full.byday}
    days: list[date] = []
    d = first
    while d <= week_end:
        if d.weekday() in weekdays and (not full.bymonth or d.month in full.bymonth):
            days.append(d)
        d += _ONE_DAY
    times = sorted(time(h, m, s) for h in full.byhour for m in full.byminute
                   for s in full.bysecond)
    candidates = [datetime.combine(d, t) for d in days for t in times]
    if not full.bysetpos:
        return candidates
    picked: set[datetime] = set()
    for pos in full.bysetpos:
        index = pos - 1 if pos > 0 else pos
        if -len(candidates) <= index < len(candidates):
            picked.add(candidates[index])
    return sorted(picked)


def _expand_periods(full: RRulePart, dtstart: datetime, start: datetime,
                    end: datetime) -> Iterator[datetime]:
    """WEEKLY, MONTHLY and YEARLY: one grid period at a time."""
    since = t = max(start, dtstart)
    period = aligned_start(full, dtstart, t)
    one = replace(full, interval=_ONE_PERIOD, count=None)
    while True:
        if period > min(_add_years(since, SEARCH_YEARS[full.freq]), end):
            if period > end:
                return
            raise _too_sparse(full, since)
        if full.freq == du.WEEKLY:
            week = period.date() - timedelta(days=(period.weekday() - full.wkst) % 7)
            found: Iterator[datetime] = iter(_week_candidates(
                full, period.date(), week + timedelta(days=6)))
            nxt = _after_weeks(week, full.interval)
        else:
            if full.freq == du.MONTHLY:
                month = period.year * 12 + period.month - 1 + full.interval
                nxt = datetime(month // 12, month % 12 + 1, 1) \
                    if month // 12 <= LAST_LOCAL.year else _PAST_END
                skip = bool(full.bymonth) and period.month not in full.bymonth
            else:
                nxt = datetime(period.year + full.interval, 1, 1) \
                    if period.year + full.interval <= LAST_LOCAL.year else _PAST_END
                skip = False
            found = iter(()) if skip else _safe(iter(dateutil_rule(one, period)))
        for c in found:
            if c < t:
                continue
            if c > end:
                return
            yield c
            since = c
        period = nxt


def expand(full: RRulePart, dtstart: datetime, start: datetime,
           end: datetime | None) -> Iterator[datetime]:
    """The local times of one defaults-explicit rule (without COUNT) that are at or after
    ``start`` and DTSTART, up to ``end`` (inclusive) and ``LAST_LOCAL``, in order."""
    stop = LAST_LOCAL if end is None else min(end, LAST_LOCAL)
    if full.freq >= du.DAILY:
        return _expand_daily(full, dtstart, start, stop)
    return _expand_periods(full, dtstart, start, stop)


@functools.lru_cache(maxsize=1024)
def count_end(full: RRulePart, dtstart: datetime) -> datetime | None:
    """The COUNT-th (last) local time of a rule with COUNT, or None when it has fewer before
    the end of the supported range. Pure, so cached: the scheduler rebuilds triggers."""
    assert full.count is not None
    last: datetime | None = None
    for n, local in enumerate(expand(replace(full, count=None), dtstart, dtstart, None), 1):
        last = local
        if n >= full.count:
            return last
    return last


__all__ = ["LAST_LOCAL", "MAX_COUNT", "MAX_PERIOD_CANDIDATES", "SEARCH_YEARS", "TooSparse",
           "aligned_start", "count_end", "dateutil_rule", "expand", "period_candidates_bound"]
