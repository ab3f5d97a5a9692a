"""RFC 5545 recurrences: DTSTART, RRULE, EXDATE and RDATE, with hora's DST policy.

python-dateutil expands the rules; this module owns everything around it:

* **Parsing and validation.** Raw iCalendar text (``DTSTART;TZID=America/New_York:...``,
  ``RRULE:...``, ``EXDATE``, ``RDATE``, ``VALUE=DATE`` forms, folded lines) and structured
  fields are checked part by part against RFC 5545 §3.3.10, and every error names the bad
  part. COUNT with UNTIL, an unknown TZID, a missing DTSTART and a rule that never fires are
  rejected when the trigger is built.
* **Wall-clock expansion.** Rules are expanded on *naive local* times, so ``BYHOUR=9`` means
  09:00 on the wall clock all year. Each local time then becomes an instant through
  :func:`hora.triggers.dst.resolve_local` with the schedule's policy (RFC 5545's default:
  gap ``shift``, fold ``first``). A policy that maps two local times onto one instant fires it
  once (the recurrence is a *set*), and instants come out strictly increasing even when a
  ``shift`` or ``both`` policy reorders them around a transition.
* **Bounded work.** :mod:`hora.triggers.expand` starts each rule at its period just before
  the requested instant and searches a fixed number of periods ahead, so the next occurrence
  of a secondly rule from 1997 costs the same as one from yesterday, and a rule too sparse to
  be found there is refused (COUNT is capped at ``MAX_COUNT``). Nothing runs in the
  background: an evaluation ends when its caller has its answer.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil import rrule as du

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence
from hora.triggers.basic import (
    MAX_SKIPPED_RUN,
    RANGE_END,
    RANGE_START,
    clamp_to_range,
    first_fire_after,
    out_of_range,
    require_aware,
)
from hora.triggers.dst import DstFold, DstGap, resolve_local, zone
from hora.triggers.expand import (
    MAX_COUNT,
    MAX_PERIOD_CANDIDATES,
    count_end,
    dateutil_rule,
    expand,
    period_candidates_bound,
)

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FREQS = {"YEARLY": du.YEARLY, "MONTHLY": du.MONTHLY, "WEEKLY": du.WEEKLY, "DAILY": du.DAILY,
         "HOURLY": du.HOURLY, "MINUTELY": du.MINUTELY, "SECONDLY": du.SECONDLY}
FREQ_NAMES = {v: k for k, v in FREQS.items()}
RULE_PARTS = ("FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY",
              "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST")
PROPERTIES = ("DTSTART", "RRULE", "EXDATE", "RDATE")
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/GMT", "GMT", "Etc/Zulu",
                       "Zulu", "Universal", "Etc/Universal", "Etc/GMT+0", "Etc/GMT-0"})

# Integer list parts: (lowest, highest, negative values allowed).
_INT_RANGES = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}

_DATE_VALUE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?$")
_INT_VALUE = re.compile(r"^[+-]?\d+$")
_BYDAY_VALUE = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_PROPERTY_START = re.compile(r"^(DTSTART|RRULE|EXDATE|RDATE|EXRULE|BEGIN|END)[;:]", re.I)

#: A bound of how far apart a local time and its instant's neighbours can be around a DST
#: transition (at most a day, as in Samoa in 2011): UNTIL is compared with this margin.
_LOCAL_MARGIN = timedelta(days=2)
#: The largest INTERVAL by frequency: about 100 years (1000 for YEARLY).
_MAX_INTERVAL = {du.YEARLY: 1000, du.MONTHLY: 1200, du.WEEKLY: 5_218, du.DAILY: 36_600,
                 du.HOURLY: 36_600 * 24, du.MINUTELY: 36_600 * 1440,
                 du.SECONDLY: 36_600 * 86400}
#: The window around an instant in which a zone's UTC offsets are sampled (hourly) to know how
#: early local expansion must start (see ``_offset_spread``).
_OFFSET_WINDOW_HOURS = 48


# --- parsing -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RRulePart:
    """One RRULE, validated. ``until`` is an aware UTC instant, a naive local time, or a
    date (inclusive); the rule's other parts are exactly what the text said."""

    text: str
    freq: int
    interval: int = 1
    count: int | None = None
    until: datetime | date | None = None
    wkst: int = 0
    bysecond: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    byhour: tuple[int, ...] = ()
    byday: tuple[tuple[int, int | None], ...] = ()
    bymonthday: tuple[int, ...] = ()
    byyearday: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()
    bysetpos: tuple[int, ...] = ()


def _fail(message: str) -> InvalidTrigger:
    return InvalidTrigger(message, field="rrule")


def _parse_int(name: str, raw: str) -> int:
    if not _INT_VALUE.match(raw):
        raise _fail(f"{name}={raw} is not an integer")
    return int(raw)


def _parse_int_list(name: str, raw: str) -> tuple[int, ...]:
    low, high, negative = _INT_RANGES[name]
    values: list[int] = []
    for item in raw.split(","):
        if not item:
            raise _fail(f"{name}={raw} has an empty value")
        value = _parse_int(name, item)
        if not (low <= abs(value) <= high and (negative or value >= 0)):
            allowed = f"{low} to {high}" + (f" or -{high} to -{low}" if negative else "")
            if name == "BYSECOND" and value == 60:
                raise _fail(f"{name}=60 (a leap second) is not supported; use 0 to 59")
            raise _fail(f"{name}={item} is out of range ({allowed})")
        values.append(value)
    return tuple(values)


def _parse_weekday(name: str, raw: str) -> int:
    if raw not in WEEKDAYS:
        raise _fail(f"{name}={raw} is not a weekday ({', '.join(WEEKDAYS)})")
    return WEEKDAYS.index(raw)


def parse_datetime_value(raw: str, what: str) -> tuple[datetime | date, bool]:
    """An iCalendar DATE (``19970902``) or DATE-TIME (``19970902T090000``, ``...Z``): the
    value, and whether it is UTC."""
    m = _DATE_VALUE.match(raw.strip().upper())
    if not m:
        raise _fail(f"{what}: {raw!r} is not a DATE (19970902) or DATE-TIME "
                    "(19970902T090000, or 19970902T090000Z in UTC)")
    y, mo, d, h, mi, s, z = m.groups()
    try:
        if h is None:
            return date(int(y), int(mo), int(d)), False
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s)), z is not None
    except ValueError as e:
        raise _fail(f"{what}: {raw!r} is not a valid date-time ({e})") from None


def _check_local_range(value: datetime | date, what: str) -> None:
    """Refuse a local date or date-time clearly outside the supported range (an instant
    is checked exactly once its zone is known)."""
    day = value.date() if isinstance(value, datetime) else value
    if not (RANGE_START.date() - timedelta(days=1) <= day <= RANGE_END.date()):
        raise _fail(str(out_of_range(value, what)))


def parse_rule(text: str) -> RRulePart:
    """One RRULE value (``FREQ=...;...``, with or without the ``RRULE:`` name), validated
    against RFC 5545 §3.3.10."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body:
        raise _fail("empty rule (expected e.g. FREQ=DAILY;COUNT=10)")
    seen: dict[str, str] = {}
    for part in body.split(";"):
        if not part:
            continue
        if "=" not in part:
            raise _fail(f"{part!r} is not NAME=VALUE")
        name, value = part.split("=", 1)
        name = name.strip().upper()
        value = value.strip().upper()
        if name not in RULE_PARTS:
            raise _fail(f"unknown rule part {name!r} (RFC 5545 §3.3.10 allows "
                        f"{', '.join(RULE_PARTS)})")
        if name in seen:
            raise _fail(f"{name} is given twice")
        if not value:
            raise _fail(f"{name} has no value")
        seen[name] = value
    if "FREQ" not in seen:
        raise _fail(f"FREQ is required (e.g. FREQ=DAILY), in {body!r}")
    if seen["FREQ"] not in FREQS:
        raise _fail(f"FREQ={seen['FREQ']} is not one of {', '.join(FREQS)}")
    if "COUNT" in seen and "UNTIL" in seen:
        raise _fail("COUNT and UNTIL cannot both be given (RFC 5545 §3.3.10)")
    freq = FREQS[seen["FREQ"]]
    fname = seen["FREQ"]
    kw: dict[str, Any] = {}
    if "INTERVAL" in seen:
        kw["interval"] = _parse_int("INTERVAL", seen["INTERVAL"])
        if kw["interval"] < 1:
            raise _fail(f"INTERVAL={seen['INTERVAL']} must be a positive integer")
        if kw["interval"] > _MAX_INTERVAL[freq]:
            raise _fail(f"INTERVAL={seen['INTERVAL']} is more than the maximum "
                        f"{_MAX_INTERVAL[freq]} for FREQ={seen['FREQ']} (about 100 years)")
    if "COUNT" in seen:
        kw["count"] = _parse_int("COUNT", seen["COUNT"])
        if kw["count"] < 1:
            raise _fail(f"COUNT={seen['COUNT']} must be a positive integer")
        if kw["count"] > MAX_COUNT:
            raise _fail(f"COUNT={seen['COUNT']} is more than the maximum {MAX_COUNT}; use "
                        "UNTIL, or no end")
    if "UNTIL" in seen:
        until, is_utc = parse_datetime_value(seen["UNTIL"], "UNTIL")
        _check_local_range(until, "UNTIL")
        kw["until"] = until.replace(tzinfo=UTC) if is_utc and isinstance(until, datetime) \
            else until
    if "WKST" in seen:
        kw["wkst"] = _parse_weekday("WKST", seen["WKST"])
    for name in _INT_RANGES:
        if name in seen:
            kw[name.lower()] = _parse_int_list(name, seen[name])
    if "BYDAY" in seen:
        days: list[tuple[int, int | None]] = []
        for item in seen["BYDAY"].split(","):
            m = _BYDAY_VALUE.match(item)
            if not m:
                raise _fail(f"BYDAY={item} is not a weekday (MO, TU, WE, TH, FR, SA, SU, "
                            "optionally with an ordinal such as 1MO or -1FR)")
            n = int(m.group(1)) if m.group(1) else None
            if n is not None:
                if fname not in ("MONTHLY", "YEARLY"):
                    raise _fail(f"BYDAY={item}: an ordinal weekday is only allowed with "
                                "FREQ=MONTHLY or FREQ=YEARLY")
                if fname == "YEARLY" and "BYWEEKNO" in seen:
                    raise _fail(f"BYDAY={item}: an ordinal weekday cannot be combined with "
                                "BYWEEKNO")
                limit = 5 if fname == "MONTHLY" or "BYMONTH" in seen else 53
                if n == 0 or abs(n) > limit:
                    scope = "month" if limit == 5 else "year"
                    raise _fail(f"BYDAY={item}: the ordinal must be 1 to {limit} or "
                                f"-{limit} to -1 (a {scope} has at most {limit} of each "
                                "weekday)")
            days.append((WEEKDAYS.index(m.group(2)), n))
        kw["byday"] = tuple(days)
    if "BYWEEKNO" in seen and fname != "YEARLY":
        raise _fail(f"BYWEEKNO is only allowed with FREQ=YEARLY, not FREQ={fname}")
    if "BYYEARDAY" in seen and fname in ("DAILY", "WEEKLY", "MONTHLY"):
        raise _fail(f"BYYEARDAY is not allowed with FREQ={fname}")
    if "BYMONTHDAY" in seen and fname == "WEEKLY":
        raise _fail("BYMONTHDAY is not allowed with FREQ=WEEKLY")
    if "BYSETPOS" in seen and not any(p.startswith("BY") and p != "BYSETPOS" for p in seen):
        raise _fail("BYSETPOS needs another BYxxx part to select from")
    normal = ";".join(f"{p}={seen[p]}" for p in RULE_PARTS if p in seen)
    return RRulePart(text=normal, freq=freq, **kw)


def _with_dtstart_defaults(rule: RRulePart, dtstart: datetime) -> RRulePart:
    """The rule with every value dateutil would take from DTSTART written out, so the same
    set can be expanded from another start (see ``_expand``)."""
    changes: dict[str, Any] = {}
    if not (rule.byweekno or rule.byyearday or rule.bymonthday or rule.byday):
        if rule.freq == du.YEARLY:
            changes["bymonth"] = rule.bymonth or (dtstart.month,)
            changes["bymonthday"] = (dtstart.day,)
        elif rule.freq == du.MONTHLY:
            changes["bymonthday"] = (dtstart.day,)
        elif rule.freq == du.WEEKLY:
            changes["byday"] = ((dtstart.weekday(), None),)
    if rule.freq < du.HOURLY and not rule.byhour:
        changes["byhour"] = (dtstart.hour,)
    if rule.freq < du.MINUTELY and not rule.byminute:
        changes["byminute"] = (dtstart.minute,)
    if rule.freq < du.SECONDLY and not rule.bysecond:
        changes["bysecond"] = (dtstart.second,)
    return replace(rule, **changes)


def _days_feasible(rule: RRulePart) -> bool:
    """Whether any day matches the rule's day filters (BYDAY ordinals ignored), checked on
    2001-2028: every combination of (weekday of 1 January, leap year) occurs there."""
    if not (rule.bymonthday or rule.byyearday):
        return True
    weekdays = {wd for wd, _ in rule.byday}
    for year in range(2001, 2029):
        first = date(year, 1, 1)
        length = 366 if date(year, 12, 31).timetuple().tm_yday == 366 else 365
        for offset in range(length):
            d = first + timedelta(days=offset)
            if rule.bymonth and d.month not in rule.bymonth:
                continue
            if weekdays and d.weekday() not in weekdays:
                continue
            if rule.bymonthday:
                month_len = ((d.replace(day=28) + timedelta(days=4)).replace(day=1)
                             - timedelta(days=1)).day
                if d.day not in rule.bymonthday and d.day - month_len - 1 not in rule.bymonthday:
                    continue
            if rule.byyearday and (offset + 1 not in rule.byyearday
                                   and offset - length not in rule.byyearday):
                continue
            return True
    return False


def _never_fires(rule: RRulePart, full: RRulePart, dtstart: datetime) -> str | None:
    """Why the rule can never produce an occurrence, when a cheap check can tell (dateutil
    would otherwise search to the year 9999 before giving up)."""
    if not _days_feasible(full):
        return (f"no day matches its BYxxx parts (with the defaults taken from DTSTART "
                f"{dtstart.isoformat()})")
    weekdays = {wd for wd, n in full.byday if n is None}
    if (rule.freq == du.DAILY and full.byday and not any(n for _, n in full.byday)
            and rule.interval % 7 == 0 and dtstart.weekday() not in weekdays):
        day = _DAY_NAMES[dtstart.weekday()]
        return f"with INTERVAL={rule.interval} from DTSTART, a {day}, it only reaches {day}s"
    if rule.freq == du.MONTHLY and full.bymonth:
        reached = {(dtstart.month - 1 + k * rule.interval) % 12 + 1 for k in range(12)}
        if not reached & set(full.bymonth):
            return (f"with INTERVAL={rule.interval} from DTSTART in month {dtstart.month}, it "
                    f"never reaches BYMONTH={','.join(map(str, full.bymonth))}")
    if full.bysetpos:
        # An upper bound of the candidates in one period (a day, week, month or year).
        ordinals = sum(1 for _, n in full.byday if n is not None)
        per_weekday = {du.YEARLY: 5 * len(full.bymonth) if full.bymonth else 53,
                       du.MONTHLY: 5, du.WEEKLY: 1}.get(rule.freq, 1)
        limits = [{du.YEARLY: 366, du.MONTHLY: 31, du.WEEKLY: 7}.get(rule.freq, 1)]
        if full.byday:
            limits.append(len(weekdays) * per_weekday + ordinals * max(1, len(full.bymonth)))
        if full.bymonthday and rule.freq in (du.YEARLY, du.MONTHLY):
            limits.append(len(full.bymonthday) * (max(1, len(full.bymonth))
                                                  if rule.freq == du.YEARLY else 1))
        if full.byyearday:
            limits.append(len(full.byyearday))
        times = 1
        for part, finer_than in ((full.byhour, du.HOURLY), (full.byminute, du.MINUTELY),
                                 (full.bysecond, du.SECONDLY)):
            if rule.freq < finer_than:
                times *= max(1, len(part))
        most = min(limits) * times
        if min(abs(p) for p in full.bysetpos) > most:
            return (f"BYSETPOS={','.join(map(str, full.bysetpos))} asks for positions beyond "
                    f"the at most {most} candidate(s) in each period")
    return None


@functools.lru_cache(maxsize=4096)
def _offset_spread(tz: Any, hour: int) -> timedelta:
    """How far a zone's UTC offsets spread (largest minus smallest) in the two days around
    an hour (hours since the epoch): a local time whose instant lies after that hour is at
    most this much earlier than the hour's own local time. Zero for a fixed offset, an hour
    near a DST change, a day for Samoa's 2011 skip. Sampled hourly, cached by hour."""
    offsets = set()
    for h in range(hour - _OFFSET_WINDOW_HOURS, hour + _OFFSET_WINDOW_HOURS + 1):
        instant = datetime.fromtimestamp(h * 3600, UTC)
        offsets.add(instant.astimezone(tz).utcoffset())
    known = [o for o in offsets if o is not None]
    return max(known) - min(known) if known else timedelta(0)


# --- the trigger ---------------------------------------------------------------------------

def _policy(value: DstGap | DstFold | str, kind: type[DstGap] | type[DstFold],
            field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidTrigger(f"{value!r} is not one of {allowed}", field=field) from None


class RRuleTrigger:
    """An RFC 5545 recurrence set (RRULEs and RDATEs, minus EXDATEs) in an IANA zone.

    ``dtstart`` is a naive local time in ``timezone`` (an aware one is converted). EXDATE and
    RDATE values are local times too (aware ones are converted; a ``date`` EXDATE removes
    every occurrence on that day, a ``date`` RDATE adds one at DTSTART's time of day).
    """

    def __init__(self, rrule: str, dtstart: datetime | date, timezone: str,
                 exdates: Iterable[datetime | date] = (),
                 rdates: Iterable[datetime | date] = (),
                 dst_gap: DstGap | str = DstGap.SHIFT,
                 dst_fold: DstFold | str = DstFold.FIRST) -> None:
        if not isinstance(rrule, str):
            raise _fail(f"the rule must be a string such as 'FREQ=DAILY', not "
                        f"{type(rrule).__name__}")
        self._tz = zone(timezone)
        self.timezone = timezone
        self.dst_gap: DstGap = _policy(dst_gap, DstGap, "dst_gap")
        self.dst_fold: DstFold = _policy(dst_fold, DstFold, "dst_fold")
        self.dtstart = self._local(dtstart, "DTSTART")
        self.rules = tuple(parse_rule(line) for line in rrule.splitlines() if line.strip())
        self._expanded = tuple(_with_dtstart_defaults(r, self.dtstart) for r in self.rules)
        for rule, full in zip(self.rules, self._expanded, strict=True):
            why = _never_fires(rule, full, self.dtstart)
            if why is not None:
                raise _fail(f"{rule.text} never fires: {why}")
            most = period_candidates_bound(full)
            if most > MAX_PERIOD_CANDIDATES:
                raise _fail(f"{rule.text} has up to {most} candidates in each period, more "
                            f"than the maximum {MAX_PERIOD_CANDIDATES}; use a finer FREQ")
            try:
                dateutil_rule(full, self.dtstart)
            except ValueError as e:
                raise _fail(f"{rule.text} never fires from DTSTART {self.dtstart:%H:%M:%S} "
                            f"({e})") from None
        self._ends = tuple(self._end_of(full) for full in self._expanded)
        ex_times: set[datetime] = set()
        ex_days: set[date] = set()
        for value in exdates:
            if isinstance(value, datetime):
                ex_times.add(self._local(value, "EXDATE"))
            elif isinstance(value, date):
                ex_days.add(value)
            else:
                raise _fail(f"EXDATE: {value!r} is not a date or datetime")
        self.exdates: tuple[datetime | date, ...] = (*sorted(ex_times), *sorted(ex_days))
        self._ex_times = frozenset(ex_times)
        self._ex_days = frozenset(ex_days)
        extra: set[datetime] = set()
        for value in rdates:
            if isinstance(value, datetime):
                extra.add(self._local(value, "RDATE"))
            elif isinstance(value, date):
                extra.add(datetime.combine(value, self.dtstart.time()))
            else:
                raise _fail(f"RDATE: {value!r} is not a date or datetime")
        self.rdates: tuple[datetime, ...] = tuple(sorted(extra))
        # With no RRULE the set is DTSTART and the RDATEs (RFC 5545 §3.8.5.2).
        self._explicit = sorted(extra | ({self.dtstart} if not self.rules else set()))
        origin = min([self.dtstart, *self._explicit])
        self._origin = self._earliest(origin) - _LOCAL_MARGIN - timedelta(days=1)
        # Bounded: every rule is searched a fixed number of periods ahead (TooSparse beyond).
        if first_fire_after(self, self._origin) is None:
            raise _fail(f"the recurrence never fires (no occurrence from DTSTART "
                        f"{self.dtstart.isoformat()} on, after EXDATEs and the DST policy)")

    # -- constructors --

    @classmethod
    def from_ical(cls, text: str, *, timezone: str | None = None,
                  dst_gap: DstGap | str = DstGap.SHIFT,
                  dst_fold: DstFold | str = DstFold.FIRST) -> RRuleTrigger:
        """Build from iCalendar text: one DTSTART, any number of RRULE, EXDATE and RDATE
        lines. A floating DTSTART is read in ``timezone`` (UTC when not given)."""
        if not isinstance(text, str):
            raise _fail(f"expected iCalendar text, not {type(text).__name__}")
        dtstart: tuple[datetime | date, bool, str | None] | None = None
        rules: list[str] = []
        exdates: list[tuple[datetime | date, bool, str | None]] = []
        rdates: list[tuple[datetime | date, bool, str | None]] = []
        for line in _content_lines(text):
            name, params, value = _split_property(line)
            if name not in PROPERTIES:
                hint = " (EXRULE is deprecated by RFC 5545)" if name == "EXRULE" else ""
                raise _fail(f"unsupported property {name!r}{hint}; expected "
                            f"{', '.join(PROPERTIES)}")
            if name == "RRULE":
                if params:
                    raise _fail(f"RRULE takes no parameters, got {';'.join(params)}")
                rules.append(value)
                continue
            allowed = {"TZID", "VALUE"}
            for p in params:
                if p not in allowed:
                    raise _fail(f"{name}: unknown parameter {p!r} (expected TZID or VALUE)")
            kind = params.get("VALUE", "").upper()
            if kind == "PERIOD":
                raise _fail(f"{name}: VALUE=PERIOD is not supported")
            if kind not in ("", "DATE", "DATE-TIME"):
                raise _fail(f"{name}: VALUE={kind} is not DATE or DATE-TIME")
            tzid = params.get("TZID")
            if tzid is not None:
                tzid = tzid.lstrip("/")
            values = []
            for raw in value.split(","):
                parsed, is_utc = parse_datetime_value(raw, name)
                if kind == "DATE" and isinstance(parsed, datetime):
                    raise _fail(f"{name}: {raw!r} is a DATE-TIME but VALUE=DATE was given")
                if kind == "DATE-TIME" and not isinstance(parsed, datetime):
                    raise _fail(f"{name}: {raw!r} is a DATE but VALUE=DATE-TIME was given")
                if is_utc and tzid is not None:
                    raise _fail(f"{name}: {raw!r} is UTC (ends in Z) and cannot have a TZID")
                values.append((parsed, is_utc, tzid))
            if name == "DTSTART":
                if dtstart is not None:
                    raise _fail("DTSTART is given twice")
                if len(values) != 1:
                    raise _fail("DTSTART takes one value")
                dtstart = values[0]
            elif name == "EXDATE":
                exdates.extend(values)
            else:
                rdates.extend(values)
        if dtstart is None:
            raise _fail("missing DTSTART (e.g. DTSTART;TZID=America/New_York:19970902T090000)")
        start, start_utc, start_tzid = dtstart
        if start_tzid is not None:
            _zone_of_tzid(start_tzid, "DTSTART")
            if timezone is not None and timezone != start_tzid:
                raise _fail(f"DTSTART has TZID={start_tzid} but timezone {timezone!r} was "
                            "given; drop one of them")
            tz_name = start_tzid
        elif start_utc:
            if timezone is not None and timezone not in UTC_NAMES:
                raise _fail(f"DTSTART is in UTC (ends in Z) but timezone {timezone!r} was "
                            f"given; write DTSTART;TZID={timezone}:... to expand in that zone")
            tz_name = timezone or "UTC"
        else:
            tz_name = timezone or "UTC"
        return cls(
            "\n".join(rules), start, tz_name,
            exdates=[_as_value(v, u, t, tz_name, name="EXDATE") for v, u, t in exdates],
            rdates=[_as_value(v, u, t, tz_name, name="RDATE") for v, u, t in rdates],
            dst_gap=dst_gap, dst_fold=dst_fold)

    def __repr__(self) -> str:
        rules = "\\n".join(r.text for r in self.rules)
        return (f"RRuleTrigger({rules!r}, dtstart={self.dtstart.isoformat()!r}, "
                f"timezone={self.timezone!r}, dst_gap={self.dst_gap.value!r}, "
                f"dst_fold={self.dst_fold.value!r})")

    # -- helpers --

    def _local(self, value: datetime | date, what: str) -> datetime:
        """A naive local time of the recurrence's zone, within the supported range."""
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                try:
                    value = value.astimezone(self._tz).replace(tzinfo=None)
                except (OverflowError, ValueError):
                    raise _fail(str(out_of_range(value, what))) from None
            local = value.replace(microsecond=0)
        elif isinstance(value, date):
            local = datetime.combine(value, time())
        else:
            raise _fail(f"{what}: {value!r} is not a date or datetime")
        _check_local_range(local, what)
        instant = self._earliest(local)
        if not RANGE_START <= instant < RANGE_END:
            raise _fail(str(out_of_range(instant, what)))
        return local

    def _end_of(self, full: RRulePart) -> datetime | None:
        """The last local time a rule may produce: from UNTIL (with the DST margin when it
        is an instant), or its COUNT-th occurrence; None when it has no end."""
        if full.count is not None:
            last = count_end(full, self.dtstart)
            return self.dtstart - timedelta(seconds=1) if last is None else last
        until = full.until
        if isinstance(until, datetime):
            if until.tzinfo is None:
                return until
            return until.astimezone(self._tz).replace(tzinfo=None) + _LOCAL_MARGIN
        if isinstance(until, date):
            return datetime.combine(until, time(23, 59, 59))
        return None

    def _earliest(self, local: datetime) -> datetime:
        """The earliest instant ``local`` can stand for under any policy."""
        instants, _ = resolve_local(local, self._tz, DstGap.FIRST_VALID, DstFold.FIRST)
        return instants[0]

    def _rule_locals(self, index: int, target: datetime) -> Iterator[datetime]:
        """Local times of one RRULE, from about ``target`` on, honouring its UNTIL."""
        rule = self.rules[index]
        source = expand(replace(self._expanded[index], count=None), self.dtstart, target,
                        self._ends[index])
        until = rule.until
        until_local: datetime | None = None
        if isinstance(until, datetime) and until.tzinfo is not None:
            until_local = until.astimezone(self._tz).replace(tzinfo=None)
        for local in source:
            if until is not None:
                if isinstance(until, datetime) and until.tzinfo is None:
                    if local > until:
                        return
                elif isinstance(until, datetime) and until_local is not None:
                    if local > until_local - _LOCAL_MARGIN and (
                            local > until_local + _LOCAL_MARGIN
                            or self._earliest(local) > until):
                        return
                elif isinstance(until, date) and local.date() > until:
                    return
            if local >= target:
                yield local

    def _locals(self, target: datetime) -> Iterator[datetime]:
        """The recurrence set's local times from about ``target`` on, in order."""
        streams: list[Iterator[datetime]] = [self._rule_locals(i, target)
                                             for i in range(len(self.rules))]
        streams.append(iter(self._explicit[bisect.bisect_left(self._explicit, target):]))
        previous: datetime | None = None
        for local in heapq.merge(*streams):
            if local == previous:
                continue
            previous = local
            if local in self._ex_times or local.date() in self._ex_days:
                continue
            yield local

    # -- the Trigger protocol --

    def occurrences(self, after: datetime) -> Iterator[Occurrence]:
        after = require_aware(after, "after")
        # Local times are expanded from as early as a local time can map to an instant after
        # ``after`` (the zone's offsets around it), not from DTSTART: the cost does not grow
        # with the distance to DTSTART.
        start = clamp_to_range(after)
        target = (start.astimezone(self._tz).replace(tzinfo=None)
                  - _offset_spread(self._tz, int(start.timestamp()) // 3600))
        tz = self._tz
        # Instants may come out of local order around a transition (gap ``shift``, fold
        # ``both``); a heap holds them until no later local time can produce an earlier one.
        # Ties (one instant from two local times) keep a fired one over a skipped one and a
        # local time that exists over one the gap policy moved there.
        pending: list[tuple[datetime, int, int, int, Occurrence, datetime]] = []
        last: datetime | None = None
        seq = 0

        def push(instant: datetime, skipped: int, occ: Occurrence, local: datetime) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(pending, (instant, skipped, len(occ.notes), seq, occ, local))

        def release(bound: datetime | None) -> Iterator[Occurrence]:
            nonlocal last
            while pending and (bound is None or pending[0][0] < bound):
                instant, _, _, _, occ, local = heapq.heappop(pending)
                if instant == last:
                    # The same instant twice: the set has it once. A gap time that
                    # ``first_valid`` moved onto an instant that already fires is reported
                    # as skipped at its pre-gap instant (as cron does), unless that instant
                    # is taken too.
                    pre_gap = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
                    if occ.skipped is None and pre_gap > instant:
                        reason = (f"dst_gap: {local:%H:%M} does not exist; its first valid "
                                  f"time {instant.astimezone(tz):%H:%M} already fires")
                        push(pre_gap, 1, Occurrence(
                            nominal=pre_gap, at=pre_gap, local=pre_gap.astimezone(tz),
                            notes=occ.notes, skipped=reason), local)
                    continue
                last = instant
                if after < occ.nominal < RANGE_END:
                    yield occ

        for local in self._locals(target):
            instants, note = resolve_local(local, tz, self.dst_gap, self.dst_fold)
            notes = (note,) if note else ()
            if instants:
                for instant in instants:
                    push(instant, 0, Occurrence(nominal=instant, at=instant,
                                                local=instant.astimezone(tz), notes=notes),
                         local)
                bound = instants[0] if note is None else self._earliest(local)
            else:
                nominal = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
                push(nominal, 1, Occurrence(nominal=nominal, at=nominal,
                                            local=nominal.astimezone(tz), notes=notes,
                                            skipped=note), local)
                bound = self._earliest(local)
            yield from release(bound)
        yield from release(None)

    def next_after(self, instant: datetime) -> datetime | None:
        return first_fire_after(self, instant)


# --- iCalendar text ------------------------------------------------------------------------

def _content_lines(text: str) -> list[str]:
    """Unfolded content lines (RFC 5545 §3.1), blank lines dropped."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        continuation = raw[:1] in (" ", "\t") and not _PROPERTY_START.match(raw.strip())
        if continuation and lines:
            lines[-1] += raw[1:].rstrip()
            continue
        line = raw.strip()
        if line:
            lines.append(line)
    return lines


def _split_property(line: str) -> tuple[str, dict[str, str], str]:
    """``NAME;P=V;...:VALUE`` → (NAME, {P: V}, VALUE), honouring quoted parameter values."""
    quoted = False
    colon = -1
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            colon = i
            break
    if colon < 0:
        if line.upper().startswith("FREQ="):
            raise _fail(f"{line!r} needs its property name: write RRULE:{line}")
        raise _fail(f"line {line!r} is not NAME[;PARAM=VALUE]:VALUE")
    head, value = line[:colon], line[colon + 1:]
    pieces: list[str] = []
    current = ""
    quoted = False
    for ch in head:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            pieces.append(current)
            current = ""
        else:
            current += ch
    pieces.append(current)
    name = pieces[0].strip().upper()
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        if "=" not in piece:
            raise _fail(f"{name}: parameter {piece!r} is not NAME=VALUE")
        key, val = piece.split("=", 1)
        params[key.strip().upper()] = val.strip().strip('"')
    if not value.strip():
        raise _fail(f"{name} has no value")
    return name, params, value.strip()


def _zone_of_tzid(tzid: str, what: str) -> Any:
    try:
        return zone(tzid)
    except InvalidTrigger:
        raise _fail(f"{what}: unknown TZID {tzid!r} (use an IANA name such as "
                    "America/New_York)") from None


def _as_value(value: datetime | date, is_utc: bool, tzid: str | None, tz_name: str, *,
              name: str) -> datetime | date:
    """An EXDATE/RDATE value for the constructor: naive when it is a local time of the
    recurrence's zone, aware when it is UTC or names another zone."""
    if isinstance(value, datetime):
        if is_utc:
            return value.replace(tzinfo=UTC)
        if tzid is not None and tzid != tz_name:
            tz = _zone_of_tzid(tzid, name)
            instants, _ = resolve_local(value, tz, DstGap.FIRST_VALID, DstFold.FIRST)
            return instants[0]
    return value


__all__ = ["MAX_SKIPPED_RUN", "RRulePart", "RRuleTrigger", "parse_rule"]
