"""Flow control declarations: rate limits, concurrency limits, debounce, throttle, batching.

A leaf module (errors and limits only), shared by the SDK that declares the options on a
task, the registry that stores them for processes without the code, the enqueue path that
turns them into a job's *gates* (``FlowSpec.gates``), and the stores that enforce the gates
inside the claim (``gcra``).

Rate limits are GCRA (the generic cell rate algorithm, a token bucket kept as one instant
per bucket, the *theoretical arrival time*): a limit of ``count`` per ``period`` with a
``burst`` admits a start at ``now`` if ``now >= tat - (burst - 1) * interval`` where
``interval = period / count``, and then moves ``tat`` to ``max(tat, now) + interval``.
Its guarantee, the one the docs promise: over any half-open window of length ``W`` at most
``ceil(W / interval) + burst - 1`` starts, so with the default ``burst=1`` "3/h" never
allows a fourth start within any hour.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from hora.errors import InvalidPayload
from hora.limits import MAX_RATE_LIMIT, check_int, check_seconds

__all__ = [
    "CONCURRENCY_POLICIES", "MAX_BATCH_SIZE", "MAX_BURST", "MAX_FLOW_WINDOW", "MAX_KEY_LENGTH",
    "Batch", "Concurrency", "Debounce", "FlowSpec", "Gates", "Rate", "RateLimit", "Throttle",
    "default_burst", "gcra", "key_value", "parse_rate",
]

#: A rate's period units, in seconds.
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(?P<count>[0-9]+)\s*/\s*(?P<mult>[0-9]*)\s*(?P<unit>[a-z]+?)s?\s*$")
#: The longest period of a rate, a debounce/throttle window, a batch's max_wait.
MAX_FLOW_WINDOW = 31 * 86400.0
#: The most jobs a rate limit may admit at once.
MAX_BURST = 100_000
#: The most jobs in one batch.
MAX_BATCH_SIZE = 10_000
#: A key computed from a payload (after ``str``), and a limit's name.
MAX_KEY_LENGTH = 200
#: With no ``burst`` given, a limit admits this many seconds of its rate at once (at least
#: one start). A claim is a commit, and a start that comes late does not bank the time it
#: lost: a limit of hundreds per second that admits one start at a time reaches a fraction of
#: its rate. Up to 19/s this is 1, the strict cap ("10/s": never 11 in a second).
DEFAULT_BURST_SECONDS = 0.1
#: Most concurrent runs per key.
MAX_CONCURRENCY = 100_000

CONCURRENCY_POLICIES = ("queue", "cancel_in_progress", "cancel_new")
ConcurrencyPolicy = Literal["queue", "cancel_in_progress", "cancel_new"]
#: A key: a payload field's name (dots walk into nested objects), or a function of the payload.
KeySpec = str | Callable[[Mapping[str, Any]], object] | None


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` starts per ``period`` seconds; ``str(rate)`` is its canonical text."""

    count: int
    period: float

    @property
    def interval_us(self) -> int:
        """The GCRA emission interval in microseconds (at least 1)."""
        return max(1, round(self.period * 1_000_000 / self.count))

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        for unit, seconds in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
            mult = self.period / seconds
            if mult >= 1 and mult == int(mult):
                return f"{self.count}/{'' if mult == 1 else int(mult)}{unit}"
        return f"{self.count}/{self.period:g}s"


def default_burst(rate: Rate) -> int:
    """The burst of a limit that names none: ``DEFAULT_BURST_SECONDS`` of its rate, at
    least 1 (so every rate up to 19/s is a strict cap)."""
    return max(1, min(MAX_BURST, math.floor(rate.per_second * DEFAULT_BURST_SECONDS)))


def parse_rate(value: str | Rate, field: str = "rate") -> Rate:
    """``"10/s"``, ``"3/h"``, ``"100/15m"``, ``"20/second"`` → Rate; anything else is an
    InvalidPayload naming ``field`` and saying what a rate looks like."""
    if isinstance(value, Rate):
        return value
    if not isinstance(value, str):
        raise InvalidPayload(f"must be a rate such as '10/s' or '3/h', not "
                             f"{type(value).__name__}", field=field)
    m = _RATE.match(value.lower()) if len(value) <= 40 else None
    unit = _UNITS.get(m["unit"]) if m else None
    if m is None or unit is None:
        raise InvalidPayload(f"{value[:40]!r} is not a rate: write COUNT/PERIOD such as "
                             "'10/s', '3/h' or '100/15m' (units s, m, h, d)", field=field)
    count = int(m["count"])
    mult = int(m["mult"]) if m["mult"] else 1
    period = unit * mult
    if count < 1 or mult < 1:
        raise InvalidPayload(f"{value!r}: the count and the period must be at least 1 "
                             "(to stop a task, pause its queue)", field=field)
    if period > MAX_FLOW_WINDOW:
        raise InvalidPayload(f"{value!r}: the period is longer than "
                             f"{MAX_FLOW_WINDOW / 86400:g} days", field=field)
    if count / period > MAX_RATE_LIMIT:
        raise InvalidPayload(f"{value!r}: more than {MAX_RATE_LIMIT:g} per second",
                             field=field)
    return Rate(count, period)


def _check_key(key: object, field: str) -> KeySpec:
    if key is None or callable(key):
        return key
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidPayload("must be a payload field name (1-200 characters) or a function "
                             "of the payload", field=field)
    return key


def _key_label(key: KeySpec) -> str | None:
    if key is None:
        return None
    return key if isinstance(key, str) else getattr(key, "__name__", "key")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``rate`` starts, shared by every worker on the store; per value of ``key``
    when given. ``name`` is what an operator overrides at run time
    (``app.rate_limits.set(name, ...)``) and what a waiting job's reason shows; it defaults
    to the task's name (with ``[key]`` for a keyed limit). Several tasks naming the same
    limit share its budget (one provider's quota)."""

    rate: str | Rate
    key: KeySpec = None
    name: str | None = None
    #: Starts admitted at once; None: ``default_burst(rate)``.
    burst: int = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", parse_rate(self.rate, "rate_limit"))
        _check_key(self.key, "rate_limit.key")
        if self.burst is None:
            object.__setattr__(self, "burst", default_burst(self.parsed))
        check_int(self.burst, "rate_limit.burst", least=1, most=MAX_BURST)
        if self.name is not None and not (0 < len(self.name) <= MAX_KEY_LENGTH):
            raise InvalidPayload("must be 1-200 characters", field="rate_limit.name")
        if self.name is not None and self.name.startswith("hora."):
            raise InvalidPayload(f"{self.name!r} is reserved: names starting with 'hora.' are "
                                 "hora's own (the API's request limit)",
                                 field="rate_limit.name")

    @property
    def parsed(self) -> Rate:
        assert isinstance(self.rate, Rate)
        return self.rate


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most ``limit`` jobs running at once per value of ``key`` (per task without one),
    across the cluster. When a job's turn comes and its key is full, ``policy`` decides:
    ``queue`` waits (FIFO per key), ``cancel_new`` cancels the newcomer,
    ``cancel_in_progress`` cancels the running ones (and older waiting ones) in its favour."""

    limit: int = 1
    key: KeySpec = None
    policy: ConcurrencyPolicy = "queue"
    name: str | None = None

    def __post_init__(self) -> None:
        check_int(self.limit, "concurrency.limit", least=1, most=MAX_CONCURRENCY)
        _check_key(self.key, "concurrency.key")
        if self.policy not in CONCURRENCY_POLICIES:
            raise InvalidPayload(f"{self.policy!r} is not a policy: one of "
                                 f"{', '.join(CONCURRENCY_POLICIES)}", field="concurrency.policy")


@dataclass(frozen=True, slots=True)
class Debounce:
    """Enqueues of the same key within ``window`` collapse into one job that runs ``window``
    after the last of them, with the last payload; ``max_wait`` bounds how long a steady
    stream can push it back."""

    window: timedelta | float
    key: KeySpec = None
    max_wait: timedelta | float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", check_seconds(
            self.window, "debounce.window", most=MAX_FLOW_WINDOW, zero=False))
        _check_key(self.key, "debounce.key")
        if self.max_wait is not None:
            object.__setattr__(self, "max_wait", check_seconds(
                self.max_wait, "debounce.max_wait", most=MAX_FLOW_WINDOW, zero=False))


@dataclass(frozen=True, slots=True)
class Throttle:
    """The first enqueue of a key runs; further ones within ``window`` of it are recorded
    as cancelled with the reason (never silently lost)."""

    window: timedelta | float
    key: KeySpec = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", check_seconds(
            self.window, "throttle.window", most=MAX_FLOW_WINDOW, zero=False))
        _check_key(self.key, "throttle.key")


@dataclass(frozen=True, slots=True)
class Batch:
    """The handler receives a list of payloads: up to ``max_size`` jobs of one key, started
    when that many are due or when the oldest has waited ``max_wait``."""

    max_size: int = 100
    max_wait: timedelta | float = 1.0
    key: KeySpec = None

    def __post_init__(self) -> None:
        check_int(self.max_size, "batch.max_size", least=1, most=MAX_BATCH_SIZE)
        object.__setattr__(self, "max_wait", check_seconds(
            self.max_wait, "batch.max_wait", most=MAX_FLOW_WINDOW))
        _check_key(self.key, "batch.key")


@dataclass(frozen=True, slots=True)
class Gates:
    """What the claim must check for one job, computed at enqueue and stored on the row.

    ``rates``: (limit name, key value or "", Rate, burst) per limit; ``concurrency``: the
    full key (limit name and key value), its limit and policy. ``json`` is the row's text.
    """

    rates: tuple[tuple[str, str, Rate, int], ...] = ()
    concurrency: tuple[str, int, str] | None = None

    @property
    def json(self) -> str | None:
        if not self.rates and self.concurrency is None:
            return None
        doc: dict[str, Any] = {}
        if self.rates:
            doc["rate"] = [{"name": n, "key": k, "count": r.count, "period": r.period,
                            "burst": b} for n, k, r, b in self.rates]
        if self.concurrency is not None:
            key, limit, policy = self.concurrency
            doc["concurrency"] = {"key": key, "limit": limit, "policy": policy}
        return json.dumps(doc, separators=(",", ":"))

    @staticmethod
    def from_json(text: str | None) -> Gates:
        """The gates of a row's text; cached, since the jobs of one task (and one key)
        carry the same text and a claim decodes every gated candidate's."""
        return _gates_of(text) if text else _NO_GATES

    @staticmethod
    def _decode(text: str) -> Gates:
        doc = json.loads(text)
        rates = tuple((r["name"], r["key"], Rate(int(r["count"]), float(r["period"])),
                       int(r["burst"])) for r in doc.get("rate", ()))
        c = doc.get("concurrency")
        return Gates(rates, None if c is None else (c["key"], int(c["limit"]), c["policy"]))

    @property
    def concurrency_key(self) -> str | None:
        return None if self.concurrency is None else self.concurrency[0]


_NO_GATES = Gates()
_gates_of = functools.lru_cache(maxsize=8192)(Gates._decode)


def key_value(key: KeySpec, payload: Mapping[str, Any], *, task: str, what: str) -> str:
    """The key's value for this payload, as text ("" without a key). A missing field is an
    InvalidPayload naming it, raised at enqueue (not at claim, where nobody would see it)."""
    if key is None:
        return ""
    if isinstance(key, str):
        value: object = payload
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise InvalidPayload(
                    f"task {task} {what} per {key!r}, but the payload has no field {key!r}",
                    field=f"payload.{key}")
            value = value[part]
    else:
        try:
            value = key(payload)
        except InvalidPayload:
            raise
        except Exception as e:  # the user's function: its failure is a bad payload
            raise InvalidPayload(f"task {task}: the {what} key function failed: "
                                 f"{type(e).__name__}: {e}", field="payload") from None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) > MAX_KEY_LENGTH:
        raise InvalidPayload(f"task {task}: the {what} key is longer than {MAX_KEY_LENGTH} "
                             "characters", field=f"payload.{_key_label(key)}")
    return text


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """A task's flow options, validated and named (``FlowSpec.build``)."""

    task: str
    rate_limits: tuple[RateLimit, ...] = ()
    concurrency: Concurrency | None = None
    debounce: Debounce | None = None
    throttle: Throttle | None = None
    batch: Batch | None = None
    #: Limit names, parallel to ``rate_limits`` (the declared name or the default).
    names: tuple[str, ...] = field(default=())

    @staticmethod
    def build(task: str, *, rate_limit: str | RateLimit | Sequence[str | RateLimit] | None = None,
              concurrency: int | Concurrency | None = None,
              debounce: timedelta | float | Debounce | None = None,
              throttle: timedelta | float | Throttle | None = None,
              batch: Batch | None = None) -> FlowSpec | None:
        """The spec of ``@app.task(...)``'s flow options, or None when there are none."""
        if rate_limit is None:
            limits: tuple[RateLimit, ...] = ()
        elif isinstance(rate_limit, str | RateLimit):
            limits = (_as_limit(rate_limit),)
        else:
            limits = tuple(_as_limit(r) for r in rate_limit)
        if isinstance(concurrency, int) and not isinstance(concurrency, bool):
            concurrency = Concurrency(concurrency)
        elif concurrency is not None and not isinstance(concurrency, Concurrency):
            raise InvalidPayload("must be an int or a hora.Concurrency", field="concurrency")
        if debounce is not None and not isinstance(debounce, Debounce):
            debounce = Debounce(debounce)
        if throttle is not None and not isinstance(throttle, Throttle):
            throttle = Throttle(throttle)
        if batch is not None and not isinstance(batch, Batch):
            raise InvalidPayload("must be a hora.Batch", field="batch")
        if debounce is not None and throttle is not None:
            raise InvalidPayload("give debounce= or throttle=, not both", field="throttle")
        if batch is not None and (limits or concurrency is not None):
            # A batch starts outside the claim, where rate and concurrency gates are checked:
            # refused rather than silently unenforced.
            raise InvalidPayload("a batched task cannot also have rate_limit= or concurrency= "
                                 "(yet): limit the batches' handler instead", field="batch")
        if not (limits or concurrency or debounce or throttle or batch):
            return None
        names = tuple(r.name or (task if r.key is None else f"{task}[{_key_label(r.key)}]")
                      for r in limits)
        if len(set(names)) != len(names):
            raise InvalidPayload(f"task {task}: two rate limits with the same name; give each "
                                 "a name=", field="rate_limit")
        return FlowSpec(task, limits, concurrency, debounce, throttle, batch, names)

    def gates(self, payload: Mapping[str, Any]) -> Gates:
        """The gates of one job of this task (key values computed from its payload)."""
        rates = tuple(
            (name, key_value(r.key, payload, task=self.task, what="is rate-limited"),
             r.parsed, r.burst)
            for name, r in zip(self.names, self.rate_limits, strict=True))
        conc = None
        c = self.concurrency
        if c is not None:
            value = key_value(c.key, payload, task=self.task, what="limits concurrency")
            base = c.name or self.task
            label = _key_label(c.key)
            full = base if label is None else f"{base}:{label}={value}"
            conc = (full, c.limit, c.policy)
        if self.batch is not None:  # a missing key field is refused here, not at the worker
            key_value(self.batch.key, payload, task=self.task, what="is batched")
        return Gates(rates, conc)

    def to_dict(self) -> dict[str, Any]:
        """For the registry: what a process without the code needs. A key computed by a
        function is recorded as ``{"fn": name}``: only a process with the code can use it."""

        def key(k: KeySpec) -> Any:
            return k if k is None or isinstance(k, str) else {"fn": _key_label(k)}

        doc: dict[str, Any] = {}
        if self.rate_limits:
            doc["rate_limits"] = [
                {"name": n, "rate": str(r.parsed), "key": key(r.key), "burst": r.burst}
                for n, r in zip(self.names, self.rate_limits, strict=True)]
        if self.concurrency is not None:
            c = self.concurrency
            doc["concurrency"] = {"limit": c.limit, "key": key(c.key), "policy": c.policy,
                                  "name": c.name}
        if self.debounce is not None:
            d = self.debounce
            doc["debounce"] = {"window": d.window, "key": key(d.key), "max_wait": d.max_wait}
        if self.throttle is not None:
            doc["throttle"] = {"window": self.throttle.window, "key": key(self.throttle.key)}
        if self.batch is not None:
            b = self.batch
            doc["batch"] = {"max_size": b.max_size, "max_wait": b.max_wait, "key": key(b.key)}
        return doc

    @staticmethod
    def from_dict(task: str, doc: Mapping[str, Any] | None) -> FlowSpec | None:
        """The registry's record back as a spec. Keys computed by a function come back as
        a function that refuses, naming the task: such a job can only be enqueued where
        the code is."""
        if not doc:
            return None

        def key(k: Any) -> KeySpec:
            if k is None or isinstance(k, str):
                return k
            return _remote_key(task, str(k.get("fn", "key")))

        limits = [RateLimit(r["rate"], key(r.get("key")), r.get("name"), r.get("burst"))
                  for r in doc.get("rate_limits", ())]
        c = doc.get("concurrency")
        d = doc.get("debounce")
        t = doc.get("throttle")
        b = doc.get("batch")
        return FlowSpec.build(
            task, rate_limit=limits or None,
            concurrency=None if c is None else Concurrency(
                int(c["limit"]), key(c.get("key")), c.get("policy", "queue"), c.get("name")),
            debounce=None if d is None else Debounce(d["window"], key(d.get("key")),
                                                     d.get("max_wait")),
            throttle=None if t is None else Throttle(t["window"], key(t.get("key"))),
            batch=None if b is None else Batch(int(b["max_size"]), b["max_wait"],
                                               key(b.get("key"))))


def _as_limit(value: str | RateLimit) -> RateLimit:
    return value if isinstance(value, RateLimit) else RateLimit(value)


def _remote_key(task: str, fn_name: str) -> Callable[[Mapping[str, Any]], object]:
    def refuse(payload: Mapping[str, Any]) -> object:
        raise InvalidPayload(
            f"task {task} computes a flow-control key in code ({fn_name}); enqueue it from a "
            "process that defines the task (the SDK, or hora serve --app)", field="task")

    refuse.__name__ = fn_name
    return refuse


def gcra(tat_us: int | None, now_us: int, rate: Rate, burst: int) -> tuple[bool, int, int]:
    """One GCRA decision: (admitted, the bucket's new tat, the instant it admits next).

    Integer microseconds throughout, so every store and every process computes the same
    answer. A bucket never seen (``tat_us`` None) is full.
    """
    interval = rate.interval_us
    tolerance = interval * (burst - 1)
    tat = now_us if tat_us is None or tat_us < now_us else tat_us
    allow_at = tat - tolerance
    if now_us >= allow_at:
        new_tat = tat + interval
        return True, new_tat, max(now_us, new_tat - tolerance)
    return False, tat, allow_at


def window_bound(rate: Rate, burst: int, window_s: float) -> int:
    """The most starts GCRA admits in any half-open window ``[t, t + window_s)`` (the
    documented guarantee, which the tests check observed starts against; a closed window
    can hold one more start, at its far end)."""
    return math.ceil(window_s * 1_000_000 / rate.interval_us) + burst - 1
