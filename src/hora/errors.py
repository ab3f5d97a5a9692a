"""Every error hora raises, under one root so callers can catch ``HoraError``.

The tree::

    HoraError
    ├── ConfigError            (also ValueError)   bad settings, an unknown database URL
    ├── InvalidPayload         (also ValueError)   a payload that is not JSON, bad options
    ├── InvalidTrigger         (also ValueError)   a cron/RRULE/zone/calendar that cannot work
    ├── NotFound               (also LookupError)  no such job (or not visible to the caller)
    ├── NotAllowed             (also PermissionError)  this actor may not do that
    ├── Conflict
    │   ├── TransitionConflict                     the record was not in the state the move needs
    │   ├── IdempotencyConflict                    same idempotency key, different request
    │   └── StaleRecord                            changed by someone else since it was read
    ├── StoreError                                 the database failed (driver error: __cause__)
    │   └── StoreUnavailable                       cannot reach it now (down, partitioned, busy)
    └── UnknownTask            (also LookupError)  no handler registered under that name

Handlers raise the two *control* exceptions below to steer their own job. They are not
errors of hora itself and therefore do not derive from ``HoraError``:

    Retry(delay=...)   try again after ``delay`` (counts as an attempt)
    Cancel(reason)     stop for good; the job ends ``cancelled``, not dead
    Fail(reason)       fail for good, whatever the retry policy: the job goes ``dead``
"""

from __future__ import annotations

from datetime import timedelta


class HoraError(Exception):
    """Root of every error hora raises."""


class ConfigError(HoraError, ValueError):
    """A setting or database URL that hora cannot use."""


class InvalidPayload(HoraError, ValueError):
    """Enqueue input that cannot be stored: not JSON-serialisable, or contradictory options."""


class InvalidTrigger(HoraError, ValueError):
    """A trigger that cannot work: a bad cron field, an unknown zone, an RRULE error, an
    expression that never fires. The message names the field and says why."""


class NotFound(HoraError, LookupError):
    """The record does not exist, or is not visible to the caller."""


class NotAllowed(HoraError, PermissionError):
    """The actor may not do this (an approval request names who may decide it)."""


class UnknownTask(HoraError, LookupError):
    """A job names a task that no handler is registered for."""


class Conflict(HoraError):
    """The request contradicts what is already stored."""


class TransitionConflict(Conflict):
    """A state move found the record in a state other than the one it requires.

    Raised instead of overwriting, so two actors racing on one job never both win.
    """

    def __init__(self, job_id: str, expected: str | tuple[str, ...], actual: str | None) -> None:
        self.job_id = job_id
        self.expected = expected
        self.actual = actual
        exp = expected if isinstance(expected, str) else " or ".join(expected)
        super().__init__(f"job {job_id} is {actual or 'missing'}, expected {exp}")


class IdempotencyConflict(Conflict):
    """The idempotency key was used before with a different task or payload.

    Like Stripe, hora refuses rather than silently returning a job the caller did not ask for.
    """

    def __init__(self, key: str, existing_job_id: str) -> None:
        self.key = key
        self.existing_job_id = existing_job_id
        super().__init__(
            f"idempotency key {key!r} was already used for job {existing_job_id} "
            "with a different task or payload; use a new key for a different request"
        )


class StaleRecord(Conflict):
    """A write based on a stale read: the record's version moved on meanwhile."""


class StoreError(HoraError):
    """The database failed. The driver's own exception is kept as ``__cause__``."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now: refused or timed-out connections, a lost
    connection, no pooled connection free within the pool timeout. Transient by nature: the
    API answers 503 with ``Retry-After``, the worker keeps its work and tries again."""


class Retry(Exception):
    """Raised by a handler to be tried again after ``delay`` (or the policy's backoff)."""

    def __init__(self, delay: timedelta | float | None = None, reason: str = "") -> None:
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        if delay is not None and delay < 0:
            raise ValueError("Retry delay must be >= 0")
        self.delay: float | None = delay
        self.reason = reason
        super().__init__(reason or (f"retry in {delay}s" if delay is not None else "retry"))


class Cancel(Exception):
    """Raised by a handler to stop its job for good without burying it in the DLQ."""

    def __init__(self, reason: str = "cancelled by handler") -> None:
        self.reason = reason
        super().__init__(reason)


class Fail(Exception):
    """Raised by a handler whose failure no retry can fix (a 4xx answer, a payload the
    handler cannot use): the job goes straight to the dead-letter queue, as BullMQ's
    ``UnrecoverableError`` does, instead of burning its attempts."""

    def __init__(self, reason: str = "failed permanently") -> None:
        self.reason = reason
        super().__init__(reason)
