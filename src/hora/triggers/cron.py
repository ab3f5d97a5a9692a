"""Cron expressions evaluated in an IANA time zone: a small matcher of our own.

We do not use a cron library because croniter fires fixed-time jobs twice in the repeated
hour, and cronsim turns its DST handling off for 6-field expressions and rejects macros.

Grammar
-------
* 5 fields ``minute hour day-of-month month day-of-week``, or 6 fields with the seconds
  *first* ``second minute hour day-of-month month day-of-week`` (as Quartz, Spring, BullMQ).
* Macros: ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``),
  ``@hourly``. ``@reboot`` is not a time and is rejected.
* In every field: ``*``, lists ``1,15``, ranges ``1-5``, steps ``*/15``, ``10-50/10`` and
  ``5/15`` (from 5 to the field's maximum, every 15). ``?`` means ``*`` and is allowed in the
  two day fields only. Names ``JAN``-``DEC`` and ``SUN``-``SAT`` (any case) wherever a number
  goes in month and day-of-week; day-of-week is 0-7, where 0 and 7 are Sunday, and a range
  may end on Sunday (``FRI-SUN``).
* Day-of-month extensions: ``L`` (last day), ``L-3`` (three days before the last), ``15W``
  (the weekday nearest the 15th, never crossing into another month), ``LW`` (the last
  weekday). Day-of-week extensions: ``5L`` / ``FRIL`` (the last Friday of the month),
  ``1#2`` / ``MON#2`` (the second Monday). Extensions may be mixed with plain values in a
  list (``1,L``), not used in ranges or steps.
* Vixie's rule for the two day fields: when both are restricted a day matches if *either*
  matches; a field that starts with ``*`` (or ``?``) counts as unrestricted, so then both
  must match (``*/2`` in day-of-month with ``MON`` in day-of-week means odd days that are
  Mondays, as Vixie cron and cronie do).

Time zones and DST
------------------
Expressions are matched against the wall clock of the schedule's zone. There are two modes,
decided by the minute and hour fields:

* **Fixed time** (neither the minute nor the hour field starts with ``*``, e.g.
  ``30 2 * * *``, ``0 9,17 * * MON-FRI``): each matching wall time is turned into instants by
  :func:`hora.triggers.dst.resolve_local` with the schedule's ``dst_gap`` / ``dst_fold``
  policy (defaults ``first_valid`` + ``first``). So ``30 2 * * *`` in America/New_York fires
  at 03:00 EDT on the spring-forward day (03:30 with ``shift``, not at all with ``skip``) and
  once, at the first 01:30, in autumn for ``30 1 * * *``. When several wall times of one gap
  move to the same first valid instant, that instant fires once and the others are reported
  as skipped.
* **Real time** (the minute or the hour field starts with ``*``: ``*``, ``*/15``, i.e. the
  schedule runs hourly or more often): like Vixie cron it follows elapsed time, firing at
  every real instant whose wall time matches. A wall time inside the spring gap does not
  fire (it is reported as skipped unless its slot is taken by a real firing at the same
  instant) and a wall time in the autumn fold fires twice. ``dst_gap`` and ``dst_fold`` do
  not apply to these schedules.

Occurrences
-----------
``nominal`` is the instant the expression names. For a wall time moved by the DST policy
the moved instant is both ``nominal`` and ``at`` and a note says why. A wall time that does
not fire because of DST is yielded with ``skipped`` set; its ``nominal`` is the instant the
wall time would have had with the offset from before the gap (distinct from its neighbours,
and stable, so the tick ledger can key it). Occurrences are strictly increasing by
``nominal``, and the stream from any instant is the tail of the stream from an earlier one.
"""

from __future__ import annotations

import calendar
import heapq
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence
from hora.triggers.dst import DstFold, DstGap, resolve_local, zone

__all__ = ["CronTrigger"]

_P = TypeVar("_P", DstGap, DstFold)

_MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES: Final = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DOW_NAMES: Final = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}

_SECOND: Final = timedelta(seconds=1)
_YEARS_TO_PROVE_IT_FIRES: Final = range(2000, 2028)  # 28 years: every leap-year weekday
_SEARCH_MONTHS: Final = 400 * 12  # the Gregorian calendar repeats every 400 years
_GIVE_UP_AFTER: Final = timedelta(days=146_097)  # 400 years of nothing but DST skips
_CACHE_LIMIT: Final = 512


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    lo: int
    hi: int
    star_hi: int  # the top of ``*`` and of open steps (day-of-week: 6, not 7)
    names: dict[str, int] | None = None


_SECONDS: Final = _Field("second", 0, 59, 59)
_MINUTES: Final = _Field("minute", 0, 59, 59)
_HOURS: Final = _Field("hour", 0, 23, 23)
_DOM: Final = _Field("day-of-month", 1, 31, 31)
_MONTHS: Final = _Field("month", 1, 12, 12, _MONTH_NAMES)
_DOW: Final = _Field("day-of-week", 0, 7, 6, _DOW_NAMES)


def _fail(message: str) -> InvalidTrigger:
    return InvalidTrigger(message, field="cron")


def _value(token: str, f: _Field) -> int:
    """One number or name of field ``f``, range-checked."""
    if token.isdigit():
        n = int(token)
        if not f.lo <= n <= f.hi:
            raise _fail(f"{f.name} {n} is out of range {f.lo}-{f.hi}")
        return n
    if token.isalpha():
        if f.names is None:
            raise _fail(f"{token!r} in {f.name} is not a number")
        if token not in f.names:
            raise _fail(f"unknown name {token!r} in {f.name}")
        return f.names[token]
    if not token:
        raise _fail(f"missing value in {f.name}")
    raise _fail(f"invalid value {token!r} in {f.name}")


def _plain(term: str, f: _Field) -> set[int]:
    """``*``, ``?``, ``a``, ``a-b``, each with an optional ``/step``."""
    base, slash, step_text = term.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit():
            raise _fail(f"invalid step {step_text!r} in {f.name}")
        step = int(step_text)
        if step == 0:
            raise _fail(f"step 0 in {f.name}")
        # A step larger than the field's range is allowed, as cronie, croniter and cronsim
        # allow it: ``*/90`` in minutes is the first value only (minute 0).
    if base in ("*", "?"):
        lo, hi = f.lo, f.star_hi
    elif "-" in base:
        a, _, b = base.partition("-")
        if not a or not b:
            raise _fail(f"invalid range {base!r} in {f.name}")
        lo, hi = _value(a, f), _value(b, f)
        if f is _DOW and hi == 0 and lo > 0:
            hi = 7  # FRI-SUN: Sunday as the end of the week
        if lo > hi:
            # A wrapping range (FRI-MON, 22-2, NOV-FEB), as croniter reads it: from lo to
            # the field's end, then from its start to hi.
            if slash:
                raise _fail(f"wrapping range {base}/{step} in {f.name}: implementations "
                            "step across the wrap differently; write the two parts, e.g. "
                            f"{lo}-{f.star_hi}/{step},{f.lo}-{hi}/{step}")
            return set(range(lo, f.hi + 1)) | set(range(f.lo, hi + 1))
    else:
        lo = _value(base, f)
        hi = f.star_hi if slash else lo
    return set(range(lo, hi + 1, step))


def _terms(text: str, f: _Field) -> list[str]:
    terms = text.split(",")
    if any(not t for t in terms):
        raise _fail(f"empty list item in {f.name}")
    if f not in (_DOM, _DOW) and any("?" in t for t in terms):
        raise _fail(f"'?' is only allowed in day-of-month and day-of-week, not in {f.name}")
    return terms


def _simple_field(text: str, f: _Field) -> tuple[int, ...]:
    values: set[int] = set()
    for term in _terms(text, f):
        values |= _plain(term, f)
    return tuple(sorted(values))


@dataclass(frozen=True, slots=True)
class _Days:
    """The two day fields, parsed. Day-of-week numbers are 0-6 with Sunday 0."""

    dom: frozenset[int]
    dom_from_last: frozenset[int]  # L -> 0, L-3 -> 3
    dom_nearest_weekday: frozenset[int]  # 15W -> 15
    dom_last_weekday: bool  # LW
    dom_star: bool
    dow: frozenset[int]
    dow_nth: frozenset[tuple[int, int]]  # MON#2 -> (1, 2)
    dow_last: frozenset[int]  # FRIL -> 5
    dow_star: bool

    def days_of(self, year: int, month: int) -> tuple[int, ...]:
        first_py, ndays = calendar.monthrange(year, month)
        first = (first_py + 1) % 7  # cron's weekday of the 1st (Sunday 0)

        def weekday(day: int) -> int:
            return (first + day - 1) % 7

        by_dom = {d for d in self.dom if d <= ndays}
        by_dom |= {ndays - k for k in self.dom_from_last if ndays - k >= 1}
        for n in self.dom_nearest_weekday:
            if n > ndays:
                continue
            wd = weekday(n)
            if wd == 6:  # Saturday: the Friday before, unless that leaves the month
                by_dom.add(n - 1 if n > 1 else n + 2)
            elif wd == 0:  # Sunday: the Monday after, unless that leaves the month
                by_dom.add(n + 1 if n < ndays else n - 2)
            else:
                by_dom.add(n)
        if self.dom_last_weekday:
            wd = weekday(ndays)
            by_dom.add(ndays - 1 if wd == 6 else ndays - 2 if wd == 0 else ndays)

        by_dow = {d for d in range(1, ndays + 1) if weekday(d) in self.dow}
        for wd, nth in self.dow_nth:
            d = 1 + (wd - first) % 7 + 7 * (nth - 1)
            if d <= ndays:
                by_dow.add(d)
        for wd in self.dow_last:
            by_dow.add(ndays - (weekday(ndays) - wd) % 7)

        days = by_dom & by_dow if self.dom_star or self.dow_star else by_dom | by_dow
        return tuple(sorted(days))


def _parse_days(dom_text: str, dow_text: str) -> _Days:
    dom: set[int] = set()
    from_last: set[int] = set()
    nearest: set[int] = set()
    last_weekday = False
    for term in _terms(dom_text, _DOM):
        if term == "L":
            from_last.add(0)
        elif term == "LW":
            last_weekday = True
        elif term.startswith("L-"):
            k = term[2:]
            if not k.isdigit() or int(k) > 30:
                raise _fail(f"{term} in day-of-month: the offset after L- must be 0-30")
            from_last.add(int(k))
        elif term.endswith("W"):
            n = term[:-1]
            if not n.isdigit():
                raise _fail(f"{term} in day-of-month: W needs one day before it, as in 15W")
            nearest.add(_value(n, _DOM))
        elif "L" in term or "W" in term:
            raise _fail(f"invalid day-of-month {term!r} (L, L-3, 15W and LW are allowed)")
        else:
            dom |= _plain(term, _DOM)

    dow: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last: set[int] = set()
    for term in _terms(dow_text, _DOW):
        if "#" in term:
            day, _, k = term.partition("#")
            if not k.isdigit() or not 1 <= int(k) <= 5:
                raise _fail(f"{term} in day-of-week: the number after # must be 1-5")
            nth.add((_value(day, _DOW) % 7, int(k)))
        elif term == "L":
            raise _fail("L alone in day-of-week is ambiguous; write 5L or FRIL for the "
                        "last Friday of the month")
        elif term.endswith("L"):
            last.add(_value(term[:-1], _DOW) % 7)
        else:
            dow |= {d % 7 for d in _plain(term, _DOW)}

    return _Days(
        dom=frozenset(dom), dom_from_last=frozenset(from_last),
        dom_nearest_weekday=frozenset(nearest), dom_last_weekday=last_weekday,
        dom_star=dom_text.startswith(("*", "?")),
        dow=frozenset(dow), dow_nth=frozenset(nth), dow_last=frozenset(last),
        dow_star=dow_text.startswith(("*", "?")),
    )


@dataclass(frozen=True, slots=True)
class _Pending:
    """An occurrence waiting in the reorder buffer."""

    nominal: datetime
    local: datetime  # the wall time the expression matched
    note: str | None
    skipped: str | None
    moved: bool  # the DST policy moved this wall time to another instant


class CronTrigger:
    """A cron expression in an IANA zone (see the module docstring for the grammar and DST).

    Raises :class:`~hora.errors.InvalidTrigger` at construction for a malformed expression,
    an unknown zone or policy, or an expression that never fires (``0 0 30 2 *``).
    """

    def __init__(self, expression: str, timezone: str = "UTC", *,
                 dst_gap: DstGap | str = DstGap.FIRST_VALID,
                 dst_fold: DstFold | str = DstFold.FIRST) -> None:
        if not isinstance(expression, str):
            raise _fail("the expression must be a string")
        self.expression = expression.strip()
        self.timezone = timezone
        self._tz: ZoneInfo = zone(timezone)
        self.dst_gap = _policy(DstGap, dst_gap, "dst_gap")
        self.dst_fold = _policy(DstFold, dst_fold, "dst_fold")

        text = self.expression
        if text.startswith("@"):
            key = text.lower()
            if key == "@reboot":
                raise _fail("@reboot is not supported: it names no time (run the task when "
                            "your process starts instead)")
            if key.startswith("@every"):
                raise _fail(f"{text!r} is not cron: use an interval trigger instead, e.g. "
                            '{"every": "PT5M"} (an ISO-8601 duration)')
            if key not in _MACROS:
                raise _fail(f"unknown macro {text!r} (use one of {', '.join(_MACROS)})")
            text = _MACROS[key]
        fields = text.upper().split()
        if not fields:
            raise _fail("empty expression")
        if len(fields) == 7:
            raise _fail("expected 5 or 6 fields, got 7: hora has no year field (croniter's "
                        "and Quartz's 7th); drop it, and use an rrule with UNTIL or an "
                        "at trigger to bound the years")
        if len(fields) not in (5, 6):
            raise _fail(f"expected 5 or 6 fields, got {len(fields)}")
        hashed = [t for t in fields if t == "H" or t.startswith(("H(", "H/", "R("))
                  or t == "R"]
        if hashed:
            raise _fail(f"{hashed[0]!r} (a hashed or random value, as in Jenkins and "
                        "croniter) is not supported: give a fixed value, and add a \"jitter\" "
                        "(seconds) to the trigger to spread schedules")
        self.has_seconds = len(fields) == 6
        if not self.has_seconds:
            fields.insert(0, "0")
        sec, minute, hour, dom, month, dow = fields
        self._seconds = _simple_field(sec, _SECONDS)
        self._minutes = _simple_field(minute, _MINUTES)
        self._hours = _simple_field(hour, _HOURS)
        self._months = _simple_field(month, _MONTHS)
        self._days = _parse_days(dom, dow)
        #: True when the schedule follows real elapsed time (hourly or finer granularity).
        # As cronie decides it (its MIN_STAR / HR_STAR flags): by the first character, so
        # ``0 */30 * * *`` (daily, as a step past the range leaves hour 0 only) is real time.
        self.real_time = minute.startswith("*") or hour.startswith("*")
        self._gap, self._fold = ((DstGap.SKIP, DstFold.BOTH) if self.real_time
                                 else (self.dst_gap, self.dst_fold))
        self._day_cache: dict[tuple[int, int], tuple[int, ...]] = {}
        if not any(self._days_of(y, m) for y in _YEARS_TO_PROVE_IT_FIRES
                   for m in self._months):
            raise _fail("expression never fires")

    def __repr__(self) -> str:
        return (f"CronTrigger({self.expression!r}, {self.timezone!r}, "
                f"dst_gap={self.dst_gap.value!r}, dst_fold={self.dst_fold.value!r})")

    # -- the protocol ------------------------------------------------------------------

    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        """Fired and skipped occurrences with ``nominal`` strictly after ``after``."""
        return self._stream(_aware_utc(after, "after"))

    def next_after(self, instant: datetime) -> datetime | None:
        """The first instant strictly after ``instant`` at which this fires, or None."""
        start = _aware_utc(instant, "instant")
        try:
            give_up = start + _GIVE_UP_AFTER
        except OverflowError:
            give_up = datetime.max.replace(tzinfo=UTC)
        for occ in self._stream(start):
            if occ.skipped is None:
                return occ.at
            if occ.nominal > give_up:
                break
        return None

    # -- matching wall times -----------------------------------------------------------

    def _days_of(self, year: int, month: int) -> tuple[int, ...]:
        key = (year, month)
        days = self._day_cache.get(key)
        if days is None:
            if len(self._day_cache) >= _CACHE_LIMIT:
                self._day_cache.clear()
            days = self._day_cache[key] = self._days.days_of(year, month)
        return days

    def _time_from(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        """The first matching time of day at or after hour:minute:second."""
        hs, ms, ss = self._hours, self._minutes, self._seconds
        i = bisect_left(hs, hour)
        if i < len(hs) and hs[i] == hour:
            j = bisect_left(ms, minute)
            if j < len(ms) and ms[j] == minute:
                k = bisect_left(ss, second)
                if k < len(ss):
                    return hour, minute, ss[k]
                j += 1
            if j < len(ms):
                return hour, ms[j], ss[0]
            i += 1
        if i < len(hs):
            return hs[i], ms[0], ss[0]
        return None

    def _next_local(self, start: datetime) -> datetime | None:
        """The first matching wall time at or after ``start`` (naive, whole seconds),
        jumping month by month and day by day rather than minute by minute."""
        year, month = start.year, start.month
        day, clock = start.day, (start.hour, start.minute, start.second)
        first_time = (self._hours[0], self._minutes[0], self._seconds[0])
        for _ in range(_SEARCH_MONTHS):
            if year > datetime.max.year:
                return None
            if month in self._months:
                days = self._days_of(year, month)
                for d in days[bisect_left(days, day):]:
                    t = self._time_from(*clock) if d == day else first_time
                    if t is not None:
                        return datetime(year, month, d, *t)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            day, clock = 1, (0, 0, 0)
        return None  # pragma: no cover - construction proved it fires within 28 years

    # -- wall times to instants --------------------------------------------------------

    def _resolve(self, local: datetime) -> tuple[list[_Pending], datetime]:
        """The occurrences of one matching wall time, and a watermark: no wall time from
        ``local`` on can produce an instant before it (every such instant shows ``local``
        or later on the wall clock, so none precedes the first instant that does)."""
        tz = self._tz
        instants, note = resolve_local(local, tz, self._gap, self._fold)
        if self.real_time and note is not None:
            note += " (this schedule follows real elapsed time)"
        if note is None:
            return [_Pending(instants[0], local, None, None, moved=False)], instants[0]
        # Not normal: read the wall time with both offsets. In a fold the earlier reading is
        # the first instant showing it; in a gap both lie before the gap's end.
        watermark = min(local.replace(tzinfo=tz, fold=0).astimezone(UTC),
                        local.replace(tzinfo=tz, fold=1).astimezone(UTC))
        if not instants:  # a gap under "skip": keyed by the offset from before the gap
            nominal = resolve_local(local, tz, DstGap.SHIFT, DstFold.FIRST)[0][0]
            return [_Pending(nominal, local, note, note, moved=False)], watermark
        pending = [_Pending(i, local, note, None, moved=_wall(i, tz) != local)
                   for i in instants]
        return pending, watermark

    def _scan_start(self, after: datetime) -> datetime:
        """The wall time to start matching from so that every occurrence after ``after``
        is seen, with every wall time its DST handling depends on.

        Normally that is ``after``'s own wall time. A wall time before it can only produce
        a later instant if it lies in a gap or fold near ``after`` (shifted forward, or the
        second pass of a repeated hour), so then matching starts where that gap or fold
        begins on the wall clock.
        """
        tz = self._tz
        start = _wall(after, tz).replace(microsecond=0)
        for change, before, later in _offset_changes(tz, after):
            size = abs(later - before)
            if change + size >= after:
                start = min(start, (change + min(before, later)).replace(tzinfo=None))
        return start

    def _stream(self, after: datetime) -> Iterator[Occurrence]:
        tz = self._tz
        try:
            start = self._scan_start(after)
        except OverflowError:  # within a day of the ends of datetime's range
            start = (datetime.min if after.year == 1
                     else after.replace(tzinfo=None, microsecond=0) - timedelta(days=1))
        heap: list[tuple[datetime, int, int, _Pending]] = []
        seq = 0  # ties: exact matches first, then moved ones, then skipped; then wall order
        last: datetime | None = None
        candidate = self._next_local(start)
        while True:
            watermark: datetime | None = None
            if candidate is not None:
                try:
                    pending, watermark = self._resolve(candidate)
                except OverflowError:  # the end of datetime's range
                    candidate = None
                else:
                    for p in pending:
                        rank = 2 if p.skipped else (1 if p.note else 0)
                        heapq.heappush(heap, (p.nominal, rank, seq, p))
                        seq += 1
            while heap and (watermark is None or heap[0][0] < watermark):
                nominal, _, order, p = heapq.heappop(heap)
                if last is not None and nominal <= last:
                    taken = _taken(p, tz)
                    if taken is not None and taken.nominal > nominal:
                        heapq.heappush(heap, (taken.nominal, 2, order, taken))
                    continue
                last = nominal
                if nominal > after:
                    yield Occurrence(
                        nominal=nominal, at=nominal, local=nominal.astimezone(tz),
                        notes=(p.note,) if p.note else (), skipped=p.skipped)
            if candidate is None:
                return
            candidate = self._next_local(candidate + _SECOND)


def _taken(p: _Pending, tz: ZoneInfo) -> _Pending | None:
    """A wall time moved (first_valid) onto an instant that already fires: report it as
    skipped, keyed like any other skipped wall time."""
    if p.skipped or not p.moved:
        return None
    nominal = resolve_local(p.local, tz, DstGap.SHIFT, DstFold.FIRST)[0][0]
    reason = (f"dst_gap: {p.local:%H:%M} does not exist; its first valid time, "
              f"{_wall(p.nominal, tz):%H:%M}, already fires")
    return _Pending(nominal, p.local, reason, reason, moved=False)


def _offset_changes(tz: ZoneInfo, around: datetime,
                    ) -> list[tuple[datetime, timedelta, timedelta]]:
    """UTC offset changes of ``tz`` within 27 hours of ``around``: (instant, offset before,
    offset after). Sampled every 3 hours (no zone keeps an offset for less), each change
    then found to the second by bisection."""
    step = timedelta(hours=3)
    changes = []
    t = around.replace(microsecond=0) - 9 * step  # whole seconds, as transitions are
    offset = _offset(t, tz)
    for _ in range(18):
        u = t + step
        next_offset = _offset(u, tz)
        if next_offset != offset:
            lo, hi = t, u
            while hi - lo > _SECOND:
                mid = (lo + (hi - lo) / 2).replace(microsecond=0)
                if _offset(mid, tz) == offset:
                    lo = mid
                else:
                    hi = mid
            changes.append((hi, offset, next_offset))
        t, offset = u, next_offset
    return changes


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _aware_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None \
            or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _policy(kind: type[_P], value: _P | str, name: str) -> _P:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise InvalidTrigger(f"{name} must be one of {choices}, got {value!r}",
                             field="cron") from None
