"""Every error hora raises, under one root so callers can catch ``HoraError``.

The tree::

    HoraError
    ├── ConfigError            (also ValueError)   bad settings, an unknown database URL
    ├── InvalidPayload         (also ValueError)   a payload that is not JSON, bad options
    │   └── TooLarge                               over a size or nesting limit (never retried)
    ├── InvalidTrigger         (also ValueError)   a cron/RRULE/zone/calendar that cannot work
    │   └── TooSparse                              no occurrence within the searched horizon
    ├── SignatureError         (also ValueError)   a webhook whose signature does not verify
    ├── NotFound               (also LookupError)  no such job (or not visible to the caller)
    ├── NotAllowed             (also PermissionError)  this actor may not do that
    ├── Conflict
    │   ├── TransitionConflict                     the record was not in the state the move needs
    │   ├── IdempotencyConflict                    same idempotency key, different request
    │   ├── StaleRecord                            changed by someone else since it was read
    │   └── LockTimeout                            a lock stayed held for all of ``wait``
    ├── StoreError                                 the database failed (driver error: __cause__)
    │   └── StoreUnavailable                       cannot reach it now (down, partitioned, busy)
    ├── UnknownTask            (also LookupError)  no handler registered under that name
    ├── NondeterminismError                        workflow code diverged from its journal
    ├── StepFailed                                 a workflow step failed for good
    └── ChildFailed                                a child workflow failed or was cancelled

Handlers raise the two *control* exceptions below to steer their own job. They are not
errors of hora itself and therefore do not derive from ``HoraError``:

    Retry(delay=...)   try again after ``delay`` (counts as an attempt)
    Cancel(reason)     stop for good; the job ends ``cancelled``, not dead
    Fail(reason)       fail for good, whatever the retry policy: the job goes ``dead``

``WorkflowCancelled`` is the same kind of control flow inside a workflow's code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hora.models import ErrorInfo


class HoraError(Exception):
    """Root of every error hora raises.

    ``field`` names the input at fault (``trigger.cron``, ``payload``, ``retry.base``) so
    that the HTTP API can put it in the problem document and the client can rebuild the
    same error from it, without reading it back out of the message. The message then reads
    ``"<field>: <reason>"``; ``reason`` is the part after the field.
    """

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)


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


# -- limits, triggers, locks, webhooks --------------------------------------------------------


class TooLarge(InvalidPayload):
    """A value over its documented size or nesting limit. Retrying cannot shrink it, so a
    handler's or a step's result that is too large fails for good."""

class TooSparse(InvalidTrigger):
    """The rule has no occurrence within the searched horizon (it may never fire)."""

class LockTimeout(Conflict):
    """The lock stayed held by another owner for all of the ``wait`` allowed."""

    def __init__(self, name: str, wait: float) -> None:
        self.name = name
        self.wait = wait
        super().__init__(f"lock {name!r} is held by another owner; gave up after {wait:g}s")

class SignatureError(HoraError, ValueError):
    """A webhook whose signature headers are missing, stale, or match no signature."""


# -- workflows -------------------------------------------------------------------------------


class NondeterminismError(HoraError):
    """The workflow's code made a different call than its journal has at that position."""


class StepFailed(HoraError):
    """A step failed for good (retries exhausted or a non-retryable error). Raised inside
    the workflow on the first run and on every replay alike, so code that catches it
    behaves the same both times; ``error`` is the step's last error."""

    def __init__(self, step: str, error: ErrorInfo) -> None:
        self.step = step
        self.error = error
        super().__init__(f"step {step} failed: {error.type}: {error.message}")


class ChildFailed(HoraError):
    """A child workflow ended failed or cancelled."""

    def __init__(self, child_id: str, state: str, error: ErrorInfo | None) -> None:
        self.child_id = child_id
        self.state = state
        self.error = error
        why = f": {error.type}: {error.message}" if error else ""
        super().__init__(f"child workflow {child_id} {state}{why}")


# -- control flow: raised by user code to steer hora, not errors of hora ----------------------


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


class WorkflowCancelled(Exception):
    """Raised inside a workflow at its next call once cancellation was requested. Not a
    ``HoraError``: it is control flow, like ``asyncio.CancelledError``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
