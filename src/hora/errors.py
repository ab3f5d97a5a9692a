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
    │   ├── LockTimeout                            a lock stayed held for all of ``wait``
    │   └── WaitTimeout                            a job/workflow had not ended within the wait
    ├── StoreError                                 the database failed (driver error: __cause__)
    │   └── StoreUnavailable                       cannot reach it now (down, partitioned, busy)
    ├── UnknownTask            (also LookupError)  no handler registered under that name
    ├── NondeterminismError                        workflow code diverged from its journal
    ├── StepFailed                                 a workflow step failed for good
    ├── ChildFailed                                a child workflow failed or was cancelled
    ├── WorkflowFailed                             a waited-for workflow failed or was cancelled
    └── ApiError                                   an HTTP answer (hora.Client): .status, .problem
        ├── AuthError                              401, or 403 for a missing scope
        │   └── QuotaExceeded                      403: the tenant is at a quota
        ├── RateLimited                            429: the tenant's rate limit (.retry_after)
        └── ServerError                            a 5xx, or an answer that cannot be read
            ├── ServiceUnavailable (also StoreUnavailable)  503: the server's database is down
            └── ConnectionFailed                   no answer at all (httpx's error: __cause__)

On the wire: each class names its RFC 9457 problem ``type`` (``urn:hora:problem:<slug>``) and
HTTP status as the class attributes ``problem_type`` and ``http_status`` (the tree is the
table), and lists in ``members`` the typed attributes it carries. ``problem_members()`` writes
them (with ``field`` and the class name as ``exception``) as extension members of the problem
document; ``from_problem()`` rebuilds the same exception from them, so an error raised in the
server comes out of ``hora.Client`` as the same class with the same fields, and nothing ever
reads them back out of a message.

Handlers raise the two *control* exceptions below to steer their own job. They are not
errors of hora itself and therefore do not derive from ``HoraError``:

    Retry(delay=...)   try again after ``delay`` (counts as an attempt)
    Cancel(reason)     stop for good; the job ends ``cancelled``, not dead
    Fail(reason)       fail for good, whatever the retry policy: the job goes ``dead``

``WorkflowCancelled`` is the same kind of control flow inside a workflow's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from hora.models import ErrorInfo

#: The extension member naming the exception's class (how the client picks the class).
EXCEPTION_MEMBER = "exception"


class HoraError(Exception):
    """Root of every error hora raises.

    ``field`` names the input at fault (``trigger.cron``, ``payload``, ``retry.base``) so
    that the HTTP API can put it in the problem document and the client can rebuild the
    same error from it, without reading it back out of the message. The message then reads
    ``"<field>: <reason>"``; ``reason`` is the part after the field.
    """

    #: The problem type's slug (after ``urn:hora:problem:``) and the HTTP status the API
    #: answers with. Errors the API has no status for are a 500 that says nothing.
    problem_type: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    #: Typed attributes written as extension members and read back by ``from_problem``.
    members: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)

    def problem_members(self) -> dict[str, Any]:
        """The typed fields as JSON extension members of a problem document (a 5xx shows
        none: its detail must not leak internals)."""
        if self.http_status >= 500 and not isinstance(self, StoreUnavailable):
            return {}
        out: dict[str, Any] = {EXCEPTION_MEMBER: type(self).__name__}
        if self.field is not None:
            out["field"] = self.field
        for name in self.members:
            out[name] = _to_json(getattr(self, name))
        return out

    @classmethod
    def from_problem(cls, detail: str, members: Mapping[str, Any]) -> Self:
        """The exception a problem document written by ``problem_members`` stands for; its
        message is the document's ``detail``, whatever wording the server chose."""
        field = members.get("field")
        field = field if isinstance(field, str) and field else None
        reason = detail
        if field is not None:
            for e in members.get("errors") or ():
                if isinstance(e, Mapping) and e.get("field") == field:
                    reason = str(e.get("message", detail))
                    break
        err = cls._rebuild(reason, field, {name: members.get(name) for name in cls.members})
        err.args = (detail,)
        return err

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        """A new instance from the reason, field and typed members (constructors differ)."""
        return cls(reason, field=field)


def _to_json(value: Any) -> Any:
    """A typed attribute as JSON: tuples as lists, everything else as is."""
    return list(value) if isinstance(value, tuple) else value


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


class ConfigError(HoraError, ValueError):
    """A setting or database URL that hora cannot use."""


class InvalidPayload(HoraError, ValueError):
    """Enqueue input that cannot be stored: not JSON-serialisable, or contradictory options."""

    problem_type = "invalid-request"
    http_status = 422


class InvalidTrigger(HoraError, ValueError):
    """A trigger that cannot work: a bad cron field, an unknown zone, an RRULE error, an
    expression that never fires. ``field`` names the part of the trigger at fault."""

    problem_type = "invalid-trigger"
    http_status = 422


class InvalidNotification(HoraError, ValueError):
    """Notification input that cannot work: a recipient with an unknown time zone or quiet
    hours ``25:00``, an e-mail address without ``@``, a template that does not parse, a send
    to an unknown channel. ``field`` names the input (``timezone``, ``quiet_hours.start``,
    ``addresses.email``, ``template.html``)."""

    problem_type = "invalid-notification"
    http_status = 422


class DeliveryError(HoraError):
    """A channel could not deliver a message. Raised by a channel's ``send``; the delivery
    job retries it per its policy."""


class PermanentDeliveryError(DeliveryError):
    """A delivery that no retry can fix (an SMTP 5xx such as 550 mailbox unknown, an HTTP
    410 Gone, an address the provider refuses): the delivery job fails at once, without
    retries, and goes to the dead-letter queue with this message."""


class NotFound(HoraError, LookupError):
    """The record does not exist, or is not visible to the caller."""

    problem_type = "not-found"
    http_status = 404


class NotAllowed(HoraError, PermissionError):
    """The actor may not do this (an approval request names who may decide it)."""

    problem_type = "forbidden"
    http_status = 403


class UnknownTask(HoraError, LookupError):
    """A job names a task that no handler is registered for: a worker met one, or an
    enqueue (a job, a schedule, a workflow start) named a task or workflow the tenant's
    registry does not hold (``allow_unregistered`` accepts it anyway). ``name`` is the name
    asked for, ``kind`` ``task`` or ``workflow``, ``suggestions`` the registered names it
    is closest to ("did you mean ...?")."""

    problem_type = "unknown-task"
    http_status = 422
    members = ("name", "kind", "suggestions")

    def __init__(self, message: str = "", *, field: str | None = None, name: str | None = None,
                 kind: str = "task", suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message, field=field)
        self.name = name
        self.kind = kind
        self.suggestions = tuple(suggestions)

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        name = typed.get("name")
        suggestions = typed.get("suggestions")
        return cls(reason, field=field, name=None if name is None else str(name),
                   kind=str(typed.get("kind") or "task"),
                   suggestions=tuple(str(s) for s in suggestions)
                   if isinstance(suggestions, list) else ())


class Conflict(HoraError):
    """The request contradicts what is already stored."""

    problem_type = "conflict"
    http_status = 409


class TransitionConflict(Conflict):
    """A state move found the record in a state other than the one it requires.

    Raised instead of overwriting, so two actors racing on one job never both win.
    ``job_id`` is the record's id (a job's, a workflow's or an approval request's);
    ``message`` replaces the default wording for records other than jobs.
    """

    problem_type = "state-conflict"
    members = ("job_id", "expected", "actual")

    def __init__(self, job_id: str, expected: str | tuple[str, ...], actual: str | None,
                 *, message: str | None = None) -> None:
        self.job_id = job_id
        self.expected = expected
        self.actual = actual
        exp = expected if isinstance(expected, str) else " or ".join(expected)
        super().__init__(message or f"job {job_id} is {actual or 'missing'}, expected {exp}")

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        expected = typed.get("expected")
        exp = tuple(expected) if isinstance(expected, list) else str(expected or "")
        actual = typed.get("actual")
        return cls(str(typed.get("job_id") or ""), exp,
                   None if actual is None else str(actual), message=reason)


class IdempotencyConflict(Conflict):
    """The idempotency key was used before with a different task or payload.

    Like Stripe, hora refuses rather than silently returning a job the caller did not ask for.
    """

    problem_type = "idempotency-conflict"
    members = ("key", "existing_job_id")

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        return cls(str(typed.get("key") or ""), str(typed.get("existing_job_id") or ""))

    def __init__(self, key: str, existing_job_id: str) -> None:
        self.key = key
        self.existing_job_id = existing_job_id
        super().__init__(
            f"idempotency key {key!r} was already used for job {existing_job_id} "
            "with a different task or payload; use a new key for a different request"
        )


class StaleRecord(Conflict):
    """A write based on a stale read: the record's version moved on meanwhile."""

    problem_type = "stale-record"


class StoreError(HoraError):
    """The database failed. The driver's own exception is kept as ``__cause__``."""

    problem_type = "store-unavailable"
    http_status = 503


class StoreUnavailable(StoreError):
    """The database cannot be reached right now: refused or timed-out connections, a lost
    connection, no pooled connection free within the pool timeout. Transient by nature: the
    API answers 503 with ``Retry-After``, the worker keeps its work and tries again.
    ``retry_after`` is the advice in seconds, when there is one."""

    members = ("retry_after",)

    def __init__(self, message: str = "", *, field: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        return cls(reason, field=field, retry_after=_float_or_none(typed.get("retry_after")))


# -- limits, triggers, locks, webhooks --------------------------------------------------------


class TooLarge(InvalidPayload):
    """A value over its documented size or nesting limit. Retrying cannot shrink it, so a
    handler's or a step's result that is too large fails for good."""


class TooSparse(InvalidTrigger):
    """The rule has no occurrence within the searched horizon (it may never fire)."""


class LockTimeout(Conflict):
    """The lock stayed held by another owner for all of the ``wait`` allowed (0: it was
    only tried once). ``retry_after``: when the current hold runs out, in seconds, if known.
    """

    problem_type = "lock-held"
    members = ("name", "wait", "retry_after")

    def __init__(self, name: str, wait: float, *, retry_after: float | None = None) -> None:
        self.name = name
        self.wait = wait
        self.retry_after = retry_after
        after = f"gave up after {wait:g}s" if wait else "try again later"
        super().__init__(f"lock {name!r} is held by another owner; {after}")

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        return cls(str(typed.get("name") or ""), _float_or_none(typed.get("wait")) or 0.0,
                   retry_after=_float_or_none(typed.get("retry_after")))


class WaitTimeout(Conflict):
    """A wait for a job or workflow to end (``app.wait_for_job``, ``Client.wait_for_job``,
    ``GET /v1/jobs/{id}?wait=..&strict=true``) ran out first. ``kind`` is ``job`` or
    ``workflow``, ``record_id`` its id, ``state`` the state it was last seen in, ``waited``
    the seconds waited. Nothing changed: wait again, or cancel it."""

    problem_type = "wait-timeout"
    members = ("kind", "record_id", "state", "waited")

    def __init__(self, kind: str, record_id: str, state: str, waited: float) -> None:
        self.kind = kind
        self.record_id = record_id
        self.state = state
        self.waited = waited
        super().__init__(f"{kind} {record_id} is still {state} after waiting {waited:g}s")

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        return cls(str(typed.get("kind") or ""), str(typed.get("record_id") or ""),
                   str(typed.get("state") or ""), _float_or_none(typed.get("waited")) or 0.0)


class SignatureError(HoraError, ValueError):
    """A webhook whose signature headers are missing, stale, or match no signature."""

    problem_type = "invalid-signature"
    http_status = 422


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


# -- answers of the HTTP API, as hora.Client sees them -----------------------------------------


class WorkflowFailed(HoraError):
    """``app.workflows.result()``: the workflow ended ``failed`` or ``cancelled`` instead of
    completing; ``state`` says which, ``error_type`` and ``error_message`` are its error."""

    problem_type = "workflow-failed"
    http_status = 409
    members = ("workflow_id", "state", "error_type", "error_message")

    def __init__(self, workflow_id: str, state: str, error_type: str | None = None,
                 error_message: str | None = None) -> None:
        self.workflow_id = workflow_id
        self.state = state
        self.error_type = error_type
        self.error_message = error_message
        why = f": {error_type}: {error_message}" if error_type else ""
        super().__init__(f"workflow {workflow_id} ended {state}{why}")

    @classmethod
    def _rebuild(cls, reason: str, field: str | None, typed: dict[str, Any]) -> Self:
        def text(name: str) -> str | None:
            value = typed.get(name)
            return value if isinstance(value, str) else None

        return cls(text("workflow_id") or "", text("state") or "", text("error_type"),
                   text("error_message"))


class ApiError(HoraError):
    """An answer the SDK's own errors do not cover; ``status`` and ``problem`` say what.
    (Every error ``hora.Client`` raises for an answer carries those two attributes.)"""

    def __init__(self, message: str, *, status: int | None = None,
                 problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem: dict[str, Any] = problem or {}


class AuthError(ApiError):
    """401 (no key, an unknown or revoked key) or 403 (the key lacks a scope)."""


class QuotaExceeded(AuthError):
    """403 ``quota-exceeded``: the tenant is at its ``max_pending_jobs`` or
    ``max_active_schedules``."""


class RateLimited(ApiError):
    """429: the tenant's rate limit; ``retry_after`` is the server's advice, in seconds."""

    def __init__(self, message: str, *, status: int | None = 429,
                 problem: dict[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status=status, problem=problem)
        self.retry_after = retry_after


class ServerError(ApiError):
    """A 5xx answer (503: the store is unavailable), or an unreadable answer."""


class ServiceUnavailable(ServerError, StoreUnavailable):
    """503 ``store-unavailable``: the server is up but its database is not. It is the SDK's
    ``StoreUnavailable`` too, so code written against ``Hora`` catches it unchanged;
    ``retry_after`` is the server's advice, in seconds."""

    def __init__(self, message: str, *, status: int | None = 503,
                 problem: dict[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        ApiError.__init__(self, message, status=status, problem=problem)
        self.retry_after = retry_after


class ConnectionFailed(ServerError):
    """No answer: the server could not be reached, or the connection broke (``__cause__``
    is httpx's exception)."""


def _subclasses(cls: type[HoraError]) -> list[type[HoraError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


#: Every SDK error by class name, for the client to rebuild (the API's own answers, the
#: ``ApiError`` family, are chosen from the status instead).
PROBLEM_CLASSES: dict[str, type[HoraError]] = {
    c.__name__: c for c in _subclasses(HoraError)
    if c.__module__ == __name__ and not issubclass(c, ApiError)
}


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
