"""Trigger specs: the JSON shape the SDK, the CLI and the HTTP API share (issue 4).

A spec names exactly one kind::

    {"cron": "30 2 * * *", "timezone": "America/New_York"}
    {"rrule": "DTSTART;TZID=America/New_York:19970902T090000\\nRRULE:FREQ=MONTHLY;BYDAY=1MO"}
    {"rrule": "FREQ=MONTHLY;BYDAY=1MO", "dtstart": "1997-09-02T09:00:00",
     "timezone": "America/New_York", "exdates": [...], "rdates": [...]}
    {"at": "2027-03-14T07:30:00Z"}
    {"every": "PT15M", "start": "2027-03-14T00:00:00Z", "end": null}

(an ``every`` without ``start`` counts from when it is created: :func:`with_defaults`)

and may add ``"dst_gap"``, ``"dst_fold"``, ``"calendar"`` (``{"holidays": "US",
"subdivision": null, "business_day": "skip|next|previous", "extra_holidays": [...],
"weekend": [5, 6]}``), ``"window"`` (``{"start": "09:00", "end": "18:00", "days":
"business" | [0, ..., 6]}``) and ``"jitter"`` (seconds). The wrappers apply in that order:
calendar, then window, then jitter. Unknown fields and wrong types are rejected with
InvalidTrigger naming the field (``trigger.every: 'PT0S' must be a positive duration``).

``preview`` lists what a trigger will do after an instant; ``occurrence_to_json`` is the
``{"at", "local", "nominal", "skipped", "notes"}`` object of ``{"occurrences": [...]}``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hora.errors import InvalidTrigger
from hora.triggers import Occurrence, Trigger
from hora.triggers.basic import (
    MAX_EVERY,
    MAX_SKIPPED_RUN,
    RANGE_END,
    RANGE_START,
    AtTrigger,
    IntervalTrigger,
    nominal_floor,
    out_of_range,
    require_in_range,
    trigger_timezone,
)
from hora.triggers.calendar import BusinessCalendar, CalendarTrigger
from hora.triggers.dst import DstFold, DstGap, resolve_local, zone
from hora.triggers.jitter import JitterTrigger
from hora.triggers.rrule import RRuleTrigger, parse_datetime_value
from hora.triggers.window import DeliveryWindow, WindowTrigger

KINDS = ("cron", "rrule", "at", "every")
COMMON_FIELDS = ("timezone", "dst_gap", "dst_fold", "calendar", "window", "jitter")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "cron": (),
    "rrule": ("dtstart", "exdates", "rdates"),
    "at": (),
    "every": ("start", "end"),
}
CALENDAR_FIELDS = ("holidays", "subdivision", "business_day", "extra_holidays", "weekend")
WINDOW_FIELDS = ("start", "end", "days")

#: The largest ``jitter`` (seconds).
MAX_JITTER_SECONDS = 7 * 86400
#: A preview lists at most this many occurrences, within this span after ``after``.
MAX_PREVIEW_COUNT = 1000
PREVIEW_HORIZON = timedelta(days=366 * 100)

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$")


def _fail(field: str, message: str) -> InvalidTrigger:
    return InvalidTrigger(message, field=f"trigger.{field}")


def parse_duration(value: Any, field: str = "every") -> timedelta:
    """An ISO-8601 duration with a fixed length (weeks, days, hours, minutes, seconds)."""
    if not isinstance(value, str):
        raise _fail(field, f"must be an ISO-8601 duration string such as PT15M, not "
                           f"{type(value).__name__}")
    m = _DURATION.match(value.strip().upper())
    if not m or value.strip().upper() in ("P", "PT") or value.strip().upper().endswith("T"):
        raise _fail(field, f"{value!r} is not an ISO-8601 duration such as PT15M, PT1H30M "
                           "or P1D")
    parts = m.groupdict()
    if parts["years"] or parts["months"]:
        raise _fail(field, f"{value!r} uses years or months, which have no fixed length; use "
                           "an rrule such as FREQ=MONTHLY")
    try:
        duration = timedelta(
            weeks=int(parts["weeks"] or 0), days=int(parts["days"] or 0),
            hours=int(parts["hours"] or 0), minutes=int(parts["minutes"] or 0),
            seconds=float((parts["seconds"] or "0").replace(",", ".")))
    except (OverflowError, ValueError):
        duration = MAX_EVERY * 2  # past any maximum: refused just below
    if duration > MAX_EVERY:
        raise _fail(field, f"{value!r} is longer than the maximum {MAX_EVERY.days} days")
    if duration <= timedelta(0):
        raise _fail(field, f"{value!r} must be a positive duration")
    return duration


def _string(spec: Mapping[str, Any], field: str, *, prefix: str = "") -> str:
    value = spec[field]
    if not isinstance(value, str) or not value.strip():
        raise _fail(prefix + field, f"must be a non-empty string, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _policy(spec: Mapping[str, Any], field: str,
            kind: type[DstGap] | type[DstFold]) -> Any:
    value = spec[field]
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise _fail(field, f"{value!r} is not one of {allowed}") from None


def _parse_when(value: Any, field: str) -> datetime | date:
    """An ISO-8601 date or date-time (naive, or with an offset), or the iCalendar form."""
    if not isinstance(value, str):
        raise _fail(field, f"must be an ISO-8601 date or date-time string, not {_kind(value)}")
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        parsed, is_utc = parse_datetime_value(text, field)
    except InvalidTrigger:
        raise _fail(field, f"{value!r} is not an ISO-8601 date or date-time such as "
                           "1997-09-02T09:00:00") from None
    return parsed.replace(tzinfo=UTC) if is_utc and isinstance(parsed, datetime) else parsed


def _parse_instant(value: Any, field: str, timezone: str | None, gap: DstGap,
                   fold: DstFold) -> datetime:
    """An ISO-8601 instant; a naive one is read in ``timezone`` when the spec gives one."""
    when = _parse_when(value, field)
    if not isinstance(when, datetime):
        raise _fail(field, f"{value!r} is a date; give an instant such as "
                           f"{when.isoformat()}T09:00:00Z")
    if when.tzinfo is not None:
        return require_in_range(when, field)
    if timezone is None:
        raise _fail(field, f"{value!r} has no UTC offset; write it with Z or an offset "
                           "such as +01:00, or give a timezone")
    if not RANGE_START.year <= when.year < RANGE_END.year:
        raise out_of_range(when, field)
    instants, note = resolve_local(when, zone(timezone), gap, fold)
    if not instants:
        raise _fail(field, f"{value!r} does not exist in {timezone} ({note})")
    return require_in_range(instants[0], field)


def _list(spec: Mapping[str, Any], field: str) -> list[Any]:
    value = spec[field]
    if not isinstance(value, list | tuple):
        raise _fail(field, f"must be a list, not {_kind(value)}")
    return list(value)


def _calendar(spec: Any) -> tuple[BusinessCalendar, str]:
    if not isinstance(spec, Mapping):
        raise _fail("calendar", f"must be an object such as {{\"holidays\": \"US\", "
                                f"\"business_day\": \"next\"}}, not {_kind(spec)}")
    for key in spec:
        if key not in CALENDAR_FIELDS:
            raise _fail("calendar", f"unknown field {key!r} (allowed: "
                                    f"{', '.join(CALENDAR_FIELDS)})")
    country = spec.get("holidays")
    if country is not None and not isinstance(country, str):
        raise _fail("calendar.holidays", f"must be a country code such as \"US\" or null, "
                                         f"not {_kind(country)}")
    subdivision = spec.get("subdivision")
    if subdivision is not None and not isinstance(subdivision, str):
        raise _fail("calendar.subdivision", f"must be a subdivision code such as \"ENG\" or "
                                            f"null, not {_kind(subdivision)}")
    policy = spec.get("business_day", "skip")
    if policy not in ("skip", "next", "previous"):
        raise _fail("calendar.business_day", f"{policy!r} is not one of skip, next, previous")
    extra: dict[date, str] = {}
    raw_extra = spec.get("extra_holidays", [])
    if isinstance(raw_extra, Mapping):
        items = list(raw_extra.items())
    elif isinstance(raw_extra, list | tuple):
        items = [(d, "extra holiday") for d in raw_extra]
    else:
        raise _fail("calendar.extra_holidays", f"must be a list of dates such as "
                                               f"\"2027-12-24\", not {_kind(raw_extra)}")
    for raw, name in items:
        try:
            day = date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise _fail("calendar.extra_holidays", f"{raw!r} is not a date such as 2027-12-24")
        if not isinstance(name, str):
            raise _fail("calendar.extra_holidays", f"the name of {raw} must be a string")
        if not RANGE_START.date() <= day < RANGE_END.date():
            raise _prefixed(out_of_range(day, "calendar.extra_holidays"))
        extra[day] = name
    weekend = spec.get("weekend", [5, 6])
    if not isinstance(weekend, list | tuple):
        raise _fail("calendar.weekend", f"must be a list of weekday numbers (Monday 0 ... "
                                        f"Sunday 6), not {_kind(weekend)}")
    try:
        calendar = BusinessCalendar(country, subdivision, extra, weekend)
    except InvalidTrigger as e:
        raise _prefixed(e) from None
    return calendar, policy


def _time_of_day(value: Any, field: str) -> time:
    if not isinstance(value, str):
        raise _fail(field, f"must be a local time such as \"09:00\", not {_kind(value)}")
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise _fail(field, f"{value!r} is not a local time such as 09:00 or 18:30") from None
    if parsed.tzinfo is not None:
        raise _fail(field, f"{value!r} must not carry an offset (the trigger's timezone "
                           "applies)")
    return parsed


def _window(spec: Any, timezone: str, calendar: BusinessCalendar | None) -> DeliveryWindow:
    if not isinstance(spec, Mapping):
        raise _fail("window", f"must be an object such as {{\"start\": \"09:00\", \"end\": "
                              f"\"18:00\", \"days\": \"business\"}}, not {_kind(spec)}")
    for key in spec:
        if key not in WINDOW_FIELDS:
            raise _fail("window", f"unknown field {key!r} (allowed: {', '.join(WINDOW_FIELDS)})")
    for key in ("start", "end"):
        if key not in spec:
            raise _fail(f"window.{key}", "is required (a local time such as \"09:00\")")
    start = _time_of_day(spec["start"], "window.start")
    end = _time_of_day(spec["end"], "window.end")
    days = spec.get("days")
    chosen: BusinessCalendar | list[int] | None
    if days is None:
        chosen = None
    elif days == "business":
        chosen = calendar if calendar is not None else BusinessCalendar()
    elif isinstance(days, list | tuple):
        chosen = list(days)
    else:
        raise _fail("window.days", f"{days!r} is not \"business\", a list of weekday numbers "
                                   "(Monday 0 ... Sunday 6) or null")
    try:
        return DeliveryWindow(start, end, timezone, chosen)
    except InvalidTrigger as e:
        raise _prefixed(e) from None


def _prefixed(error: InvalidTrigger) -> InvalidTrigger:
    """The error with its field named inside the spec (``cron`` -> ``trigger.cron``), of the
    same class (a ``TooSparse`` stays one)."""
    field = error.field
    if field is not None and (field == "trigger" or field.startswith("trigger.")):
        return error
    return type(error)(error.reason, field=f"trigger.{field}" if field else "trigger")


def _cron(spec: Mapping[str, Any], gap: DstGap | None, fold: DstFold | None) -> Trigger:
    from hora.triggers.cron import CronTrigger  # imported here: written alongside this module

    expression = _string(spec, "cron")
    kwargs: dict[str, Any] = {}
    if gap is not None:
        kwargs["dst_gap"] = gap
    if fold is not None:
        kwargs["dst_fold"] = fold
    trigger: Trigger = CronTrigger(expression, spec.get("timezone") or "UTC", **kwargs)
    return trigger


def _rrule(spec: Mapping[str, Any], gap: DstGap | None, fold: DstFold | None) -> Trigger:
    text = _string(spec, "rrule")
    policies = {"dst_gap": gap or DstGap.SHIFT, "dst_fold": fold or DstFold.FIRST}
    timezone = spec.get("timezone")
    if "dtstart" not in spec:
        for key in ("exdates", "rdates"):
            if key in spec:
                raise _fail(key, "only goes with a structured rrule (give dtstart), or write "
                                 f"{'EXDATE' if key == 'exdates' else 'RDATE'} lines in the "
                                 "rrule text")
        if "DTSTART" not in text.upper():
            raise _fail("rrule", "has no DTSTART; give iCalendar text (DTSTART;TZID=America/"
                                 "New_York:19970902T090000 then RRULE:...) or a dtstart field")
        return RRuleTrigger.from_ical(text, timezone=timezone, **policies)
    dtstart = _parse_when(spec["dtstart"], "dtstart")
    exdates = [_parse_when(v, "exdates") for v in _list(spec, "exdates")] \
        if "exdates" in spec else []
    rdates = [_parse_when(v, "rdates") for v in _list(spec, "rdates")] \
        if "rdates" in spec else []
    return RRuleTrigger(text, dtstart, timezone if timezone is not None else "UTC",
                        exdates=exdates, rdates=rdates, **policies)


def _at(spec: Mapping[str, Any], gap: DstGap | None, fold: DstFold | None) -> Trigger:
    timezone = spec.get("timezone")
    at = _parse_instant(spec["at"], "at", timezone, gap or DstGap.FIRST_VALID,
                        fold or DstFold.FIRST)
    return AtTrigger(at, timezone=timezone or "UTC")


def _every(spec: Mapping[str, Any], gap: DstGap | None, fold: DstFold | None) -> Trigger:
    every = parse_duration(spec["every"])
    if "start" not in spec:
        raise _fail("start", "is required with every (the instant the interval counts from; "
                             "a schedule or preview fills in now when it is left out)")
    timezone = spec.get("timezone")
    policy = (gap or DstGap.FIRST_VALID, fold or DstFold.FIRST)
    start = _parse_instant(spec["start"], "start", timezone, *policy)
    end = None if spec.get("end") is None else _parse_instant(spec["end"], "end", timezone,
                                                              *policy)
    return IntervalTrigger(every, start, end, timezone=timezone or "UTC")


_BUILDERS = {"cron": _cron, "rrule": _rrule, "at": _at, "every": _every}


def with_defaults(spec: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The spec as hora stores it: an ``every`` trigger given without ``start`` counts from
    ``now`` (its creation, to the second), written into the spec so it never drifts. The one
    default for every surface: the SDK, the HTTP API and the CLI call this, and a preview
    of such a trigger counts from the preview's now."""
    out = dict(spec)
    if "every" in out and out.get("start") is None:
        out["start"] = _utc(now.replace(microsecond=0))
    refuse_ignored(out)
    return out


def refuse_ignored(spec: Mapping[str, Any]) -> None:
    """Refuse a field the trigger would ignore, naming it (what a new spec is checked with;
    stored specs are not, so an old schedule keeps firing).

    ``dst_gap`` / ``dst_fold`` choose how a *local* time is turned into an instant. Without a
    calendar (whose moved runs are local times), they do nothing for a cron expression that
    follows real time (its minute or hour field starts with ``*``), nor for an ``at`` or
    ``every`` whose instants all carry an offset."""
    given = [f for f in ("dst_gap", "dst_fold") if spec.get(f) is not None]
    if not given or spec.get("calendar") is not None:
        return
    why = None
    if isinstance(spec.get("cron"), str):
        from hora.triggers.cron import CronTrigger

        try:
            real_time = CronTrigger(spec["cron"]).real_time
        except InvalidTrigger:
            return  # trigger_from_spec names the error
        if real_time:
            why = ("does not apply to a cron expression whose minute or hour field starts "
                   "with * (it follows real time: a missing minute does not fire, a repeated "
                   "one fires twice); leave it out")
    else:
        kind = "at" if "at" in spec else "every" if "every" in spec else None
        instants = [spec.get(k) for k in (("at",) if kind == "at" else ("start", "end"))]
        if kind is not None and all(_has_offset(v) for v in instants if v is not None):
            why = (f"does nothing here: every instant of this {kind} trigger carries its UTC "
                   "offset; it applies to a local time (no offset) read in the timezone")
    if why is not None:
        raise _fail(given[0], why)


def _has_offset(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value.strip()).tzinfo is not None
    except ValueError:
        return False


def trigger_from_spec(spec: Mapping[str, Any], *, jitter_key: str | None = None) -> Trigger:
    """The trigger a JSON spec describes, or InvalidTrigger naming the offending field.

    ``jitter_key`` identifies the schedule for jitter (its id); without one, the spec's own
    canonical JSON is the key, so the same spec always gets the same offsets.
    """
    if not isinstance(spec, Mapping):
        raise InvalidTrigger(f"must be an object such as {{\"cron\": \"30 2 * * *\", "
                             f"\"timezone\": \"America/New_York\"}}, not {_kind(spec)}",
                             field="trigger")
    kinds = [k for k in KINDS if k in spec]
    if not kinds:
        raise InvalidTrigger(f"needs one of {', '.join(KINDS)}", field="trigger")
    if len(kinds) > 1:
        raise InvalidTrigger(f"give only one of {', '.join(KINDS)} (got "
                             f"{' and '.join(kinds)})", field="trigger")
    kind = kinds[0]
    allowed = (kind, *COMMON_FIELDS, *KIND_FIELDS[kind])
    for key in spec:
        if key in allowed:
            continue
        owners = [k for k, fields in KIND_FIELDS.items() if key in fields]
        if owners:
            raise _fail(key, f"only goes with {' or '.join(owners)}, not {kind}")
        raise InvalidTrigger(f"unknown field {key!r} (allowed with {kind}: "
                             f"{', '.join(allowed)})", field="trigger")
    if "timezone" in spec and spec["timezone"] is not None:
        _string(spec, "timezone")
    try:
        gap = _policy(spec, "dst_gap", DstGap) if spec.get("dst_gap") is not None else None
        fold = _policy(spec, "dst_fold", DstFold) if spec.get("dst_fold") is not None else None
        trigger = _BUILDERS[kind](spec, gap, fold)
        timezone = trigger_timezone(trigger)
        calendar: BusinessCalendar | None = None
        if spec.get("calendar") is not None:
            calendar, policy = _calendar(spec["calendar"])
            trigger = CalendarTrigger(trigger, calendar, policy, timezone,
                                      dst_gap=gap, dst_fold=fold)
        if spec.get("window") is not None:
            trigger = WindowTrigger(trigger, _window(spec["window"], timezone, calendar))
        jitter = spec.get("jitter")
        if jitter is not None:
            if isinstance(jitter, bool) or not isinstance(jitter, int | float) \
                    or not math.isfinite(jitter) or jitter < 0:
                raise _fail("jitter", f"{jitter!r} must be a number of seconds >= 0")
            if jitter > MAX_JITTER_SECONDS:
                raise _fail("jitter", f"{jitter!r} is more than the maximum "
                                      f"{MAX_JITTER_SECONDS} seconds (7 days)")
            if jitter > 0:
                key = jitter_key if jitter_key is not None else _spec_key(spec)
                trigger = JitterTrigger(trigger, float(jitter), key)
    except InvalidTrigger as e:
        raise _prefixed(e) from None
    return trigger


def _spec_key(spec: Mapping[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- previews ------------------------------------------------------------------------------

def preview(trigger: Trigger, after: datetime, count: int, *,
            include_skipped: bool = True) -> list[Occurrence]:
    """What ``trigger`` does after ``after``: up to ``count`` occurrences, in order.

    A fired occurrence is listed when it fires strictly after ``after`` (even when its
    nominal instant is earlier, as for a run moved to the next business day); a skipped one
    when its nominal instant is strictly after ``after``. Both are capped: ``count`` at
    ``MAX_PREVIEW_COUNT``, the span at ``PREVIEW_HORIZON`` after ``after`` (the list ends
    there), so a preview's work is bounded whatever the trigger.
    """
    after = require_in_range(after, "after")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidTrigger(f"{count!r} must be an integer >= 0", field="count")
    if count > MAX_PREVIEW_COUNT:
        raise InvalidTrigger(f"{count} is more than the maximum {MAX_PREVIEW_COUNT}", field="count")
    horizon = after + PREVIEW_HORIZON
    result: list[Occurrence] = []
    if count == 0:
        return result
    skipped_run = 0
    for occ in trigger.occurrences(nominal_floor(trigger, after)):
        if occ.nominal > horizon:
            break
        if occ.skipped is not None:
            if occ.nominal <= after:
                continue
            if not include_skipped:
                skipped_run += 1
                if skipped_run >= MAX_SKIPPED_RUN:
                    break
                continue
        else:
            if occ.at <= after:
                continue
            skipped_run = 0
        result.append(occ)
        if len(result) >= count:
            break
    return result


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def occurrence_to_json(occ: Occurrence, timezone: str) -> dict[str, Any]:
    """One occurrence as the preview JSON object (UTC ``at``/``nominal``, local ``at``)."""
    tz = zone(timezone)
    return {
        "at": _utc(occ.at),
        "local": occ.at.astimezone(tz).isoformat(),
        "nominal": _utc(occ.nominal),
        "skipped": occ.skipped,
        "notes": list(occ.notes),
    }


def preview_to_json(trigger: Trigger, after: datetime, count: int, *,
                    include_skipped: bool = True) -> dict[str, Any]:
    """``{"occurrences": [...]}``, the body of a preview answer."""
    timezone = trigger_timezone(trigger)
    return {"occurrences": [occurrence_to_json(o, timezone)
                            for o in preview(trigger, after, count,
                                             include_skipped=include_skipped)]}


__all__ = ["KINDS", "occurrence_to_json", "parse_duration", "preview", "preview_to_json",
           "trigger_from_spec", "trigger_timezone", "with_defaults"]
