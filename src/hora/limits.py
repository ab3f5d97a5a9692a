"""The documented limits of every input, in one leaf module the SDK, the API and the
triggers share (it imports nothing of hora but its errors).

An input outside these ranges is refused with an error naming the field, on every surface,
instead of overflowing somewhere deeper: ``datetime`` arithmetic near year 1 or 9999, a
float that becomes ``inf``, an integer the database cannot hold, a JSON document nested so
deep that a recursive walk crashes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hora.errors import (
    HoraError,
    InvalidPayload,
    TooLarge,
)

# -- instants ---------------------------------------------------------------------------------

#: The earliest and latest instant hora accepts anywhere (jobs' ``at``, preview's ``after``,
#: trigger starts and ends). Far enough from ``datetime``'s own ends (years 1 and 9999)
#: that any offset, any documented duration and a trigger's period can be added or
#: subtracted without overflow.
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)

# -- durations, in seconds --------------------------------------------------------------------

DAY = 86_400.0
#: ``delay`` of a job: at most ten years from now.
MAX_DELAY = 3660 * DAY
#: ``timeout`` of one attempt.
MAX_TIMEOUT = 7 * DAY
#: A retry policy's ``base`` and ``max_delay``, and its ``factor``.
MAX_RETRY_BASE = DAY
MAX_RETRY_DELAY = 31 * DAY
MAX_RETRY_FACTOR = 100.0
#: A schedule's ``misfire_grace``.
MAX_MISFIRE_GRACE = 366 * DAY
#: A lock's ``ttl`` (a dead holder blocks for a ttl: renew instead).
MAX_LOCK_TTL = DAY

# -- counts -----------------------------------------------------------------------------------

#: Attempts of one job.
MAX_ATTEMPTS = 1000
#: Job and schedule priority, both ways (lower runs first).
MAX_PRIORITY = 1_000_000
#: A schedule's ``catchup_limit``.
MAX_CATCHUP = 10_000
#: Tenant quotas (``max_pending_jobs``, ``max_active_schedules``).
MAX_QUOTA = 1_000_000_000
#: A tenant's API ``rate_limit`` in requests per second: below the minimum one request
#: would wait more than a quarter of an hour, and the wait would overflow towards ``inf``.
MIN_RATE_LIMIT = 0.001
MAX_RATE_LIMIT = 1_000_000.0
#: The longest ``Retry-After`` the API ever answers, in seconds.
MAX_RETRY_AFTER = 3600

# -- sizes ------------------------------------------------------------------------------------

#: An HTTP request body, counted as it is read (chunked or not).
MAX_BODY_BYTES = 1 << 20
#: A job's or schedule's payload, a workflow's arguments, as compact UTF-8 JSON.
MAX_PAYLOAD_BYTES = 256 * 1024
#: What a handler returns, a workflow step's result or a workflow's output, as JSON.
MAX_RESULT_BYTES = 256 * 1024
#: Nesting of lists and objects in any JSON value hora stores.
MAX_JSON_DEPTH = 64


def check_instant(value: datetime, field: str,
                  error: type[HoraError] = InvalidPayload) -> datetime:
    """``value`` in UTC, if it is aware and within [MIN_INSTANT, MAX_INSTANT]; else
    ``error`` naming ``field``. Never overflows, whatever the offset."""
    if not isinstance(value, datetime):
        raise error(f"must be a datetime, not {type(value).__name__}", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise error(f"naive datetime {value.isoformat()}; give an offset "
                    "(e.g. 2026-01-01T00:00:00Z)", field=field)
    try:
        instant = value.astimezone(UTC)
    except (OverflowError, ValueError):
        instant = None
    if instant is None or not MIN_INSTANT <= instant <= MAX_INSTANT:
        raise error(f"{value.isoformat()} is outside the supported range "
                    f"{_iso(MIN_INSTANT)} .. {_iso(MAX_INSTANT)}", field=field)
    return instant


def check_seconds(value: object, field: str, *, most: float, zero: bool = True,
                  error: type[HoraError] = InvalidPayload) -> float:
    """A duration (seconds or a ``timedelta``) as finite seconds within [0, most] (or
    (0, most] without ``zero``); else ``error`` naming ``field``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"must be seconds or a timedelta, not {type(value).__name__}", field=field)
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond any float
        seconds = math.inf
    low_ok = seconds >= 0 if zero else seconds > 0
    if not (low_ok and seconds <= most):  # NaN fails both comparisons
        bound = "at least 0" if zero else "more than 0"
        raise error(f"must be {bound} and at most {most:g} seconds, not {_show(value)}",
                    field=field)
    return seconds


def check_int(value: object, field: str, *, least: int, most: int,
              error: type[HoraError] = InvalidPayload) -> int:
    """An integer within [least, most] (bool refused); else ``error`` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"must be an integer, not {type(value).__name__}", field=field)
    if not least <= value <= most:
        raise error(f"must be between {least} and {most}, not {_show(value)}", field=field)
    return value


def check_number(value: object, field: str, *, least: float, most: float,
                 error: type[HoraError] = InvalidPayload) -> float:
    """A finite number within [least, most] (bool refused); else ``error`` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"must be a number, not {type(value).__name__}", field=field)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not least <= number <= most:
        raise error(f"must be between {least:g} and {most:g}, not {_show(value)}", field=field)
    return number


def check_json_shape(value: object, field: str, *, max_bytes: int,
                     error: type[HoraError] = TooLarge) -> None:
    """Refuse a value nested deeper than MAX_JSON_DEPTH, or one that cannot fit in
    ``max_bytes`` of JSON, before anything recursive (``json.dumps``, a validator) walks it.

    Iterative, and its work is bounded by ``max_bytes``: every value costs at least one
    byte of JSON and every string its length, so the walk stops as soon as the budget is
    spent, however large the value. Non-JSON leaves are left for ``json.dumps`` to refuse.
    """
    budget = max_bytes
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if isinstance(item, str):
            budget -= len(item)
        elif isinstance(item, dict | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise error(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field=field)
            budget -= len(item)  # a separator per member, checked before any is visited
            if budget < 0:
                break
            if isinstance(item, dict):
                budget -= sum(len(k) + 2 for k in item if isinstance(k, str))
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        if budget < 0:
            break
    if budget < 0:
        raise error(f"JSON over its limit of {max_bytes} bytes", field=field)


def check_json_size(text: str, field: str, *, max_bytes: int,
                    error: type[HoraError] = TooLarge) -> str:
    """``text`` (JSON) if its UTF-8 form fits in ``max_bytes``; else ``error`` naming
    ``field`` with the size."""
    if len(text) > max_bytes // 4:  # only long texts can be over: count their bytes
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise error(f"{size} bytes of JSON, over its limit of {max_bytes} bytes", field=field)
    return text


def _show(value: object) -> str:
    """A value for an error message, cut short (an int can have thousands of digits)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


__all__ = [
    "MAX_ATTEMPTS", "MAX_BODY_BYTES", "MAX_CATCHUP", "MAX_DELAY", "MAX_INSTANT",
    "MAX_JSON_DEPTH", "MAX_LOCK_TTL", "MAX_MISFIRE_GRACE", "MAX_PAYLOAD_BYTES",
    "MAX_PRIORITY", "MAX_QUOTA", "MAX_RATE_LIMIT", "MAX_RESULT_BYTES", "MAX_RETRY_AFTER",
    "MAX_RETRY_BASE", "MAX_RETRY_DELAY", "MAX_RETRY_FACTOR", "MAX_TIMEOUT", "MIN_INSTANT",
    "MIN_RATE_LIMIT", "TooLarge", "check_instant", "check_int", "check_json_shape",
    "check_json_size", "check_number", "check_seconds",
]
