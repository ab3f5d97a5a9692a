"""Retry policies: given the attempt that just failed and its error, wait how long, or give up.

The maths is the AWS "exponential backoff and jitter" family: the cap grows as
``base * factor ** (attempt - 1)`` up to ``max_delay``; ``full`` jitter draws uniformly from
``[0, cap]`` (spreads a thundering herd best), ``equal`` from ``[cap/2, cap]`` (keeps a floor),
``none`` waits exactly ``cap``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from hora.errors import InvalidPayload
from hora.limits import (
    MAX_ATTEMPTS,
    MAX_RETRY_BASE,
    MAX_RETRY_DELAY,
    MAX_RETRY_FACTOR,
    check_int,
    check_number,
    check_seconds,
)

Backoff = Literal["exponential", "linear", "fixed"]
Jitter = Literal["full", "equal", "none"]


def _qualname(t: type[BaseException] | str) -> str:
    return t if isinstance(t, str) else f"{t.__module__}.{t.__qualname__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failing job.

    ``non_retryable`` holds exception types (or their dotted names, so a policy can be stored
    as JSON on a job and still be understood by a worker); an error of one of these types, or
    a subclass, sends the job straight to the dead-letter queue.
    """

    max_attempts: int = 5
    backoff: Backoff = "exponential"
    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 3600.0
    jitter: Jitter = "full"
    non_retryable: tuple[type[BaseException] | str, ...] = field(default=())

    def __post_init__(self) -> None:
        check_int(self.max_attempts, "retry.max_attempts", least=1, most=MAX_ATTEMPTS)
        object.__setattr__(self, "base", check_seconds(self.base, "retry.base",
                                                       most=MAX_RETRY_BASE))
        object.__setattr__(self, "max_delay", check_seconds(self.max_delay, "retry.max_delay",
                                                            most=MAX_RETRY_DELAY))
        object.__setattr__(self, "factor", check_number(self.factor, "retry.factor", least=1,
                                                        most=MAX_RETRY_FACTOR))
        if self.backoff not in ("exponential", "linear", "fixed"):
            raise InvalidPayload(f"{self.backoff!r} is not one of exponential, linear, fixed",
                                 field="retry.backoff")
        if self.jitter not in ("full", "equal", "none"):
            raise InvalidPayload(f"{self.jitter!r} is not one of full, equal, none",
                                 field="retry.jitter")
        object.__setattr__(self, "non_retryable", tuple(self.non_retryable))

    def cap(self, attempt: int) -> float:
        """The longest wait after failed attempt number ``attempt`` (1-based), before jitter."""
        n = max(1, attempt)
        if self.backoff == "fixed":
            raw = self.base
        elif self.backoff == "linear":
            raw = self.base * n
        else:
            # Compare exponents instead of computing a huge power that overflows a float.
            try:
                raw = self.base * self.factor ** (n - 1)
            except OverflowError:
                raw = self.max_delay
        return min(self.max_delay, raw)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the attempt after ``attempt``."""
        cap = self.cap(attempt)
        r = rng or random
        if self.jitter == "full":
            return r.uniform(0.0, cap)
        if self.jitter == "equal":
            return cap / 2 + r.uniform(0.0, cap / 2)
        return cap

    def is_retryable(self, error: BaseException) -> bool:
        names = {_qualname(t) for t in self.non_retryable}
        if not names:
            return True
        return not any(_qualname(k) in names for k in type(error).__mro__)

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        return attempt < self.max_attempts and self.is_retryable(error)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts, "backoff": self.backoff, "base": self.base,
            "factor": self.factor, "max_delay": self.max_delay, "jitter": self.jitter,
            "non_retryable": [_qualname(t) for t in self.non_retryable],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RetryPolicy:
        known = {"max_attempts", "backoff", "base", "factor", "max_delay", "jitter",
                 "non_retryable"}
        unknown = set(d) - known
        if unknown:
            raise InvalidPayload(f"unknown field(s) {', '.join(sorted(unknown))}", field="retry")
        args: dict[str, Any] = dict(d)
        if "non_retryable" in args:
            args["non_retryable"] = tuple(_as_names(args["non_retryable"]))
        return cls(**args)


def _as_names(items: Iterable[Any]) -> Iterable[str]:
    for item in items:
        yield item if isinstance(item, str) else _qualname(item)


DEFAULT_RETRY = RetryPolicy()
