"""The HTTP API's documents, as pydantic models: what ``/openapi.json`` publishes.

Requests refuse unknown fields (``extra="forbid"``) so a typo is a 422 naming the field,
not a silently ignored option. Responses are built from the SDK's records by
``hora.render`` and described here; schemathesis checks that the two agree.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from hora.errors import InvalidPayload
from hora.limits import (
    MAX_ATTEMPTS,
    MAX_BODY_BYTES,
    MAX_CATCHUP,
    MAX_DELAY,
    MAX_INSTANT,
    MAX_LOCK_TTL,
    MAX_MISFIRE_GRACE,
    MAX_PAYLOAD_BYTES,
    MAX_PRIORITY,
    MAX_QUOTA,
    MAX_RATE_LIMIT,
    MAX_RETRY_BASE,
    MAX_RETRY_DELAY,
    MAX_RETRY_FACTOR,
    MAX_TIMEOUT,
    MIN_INSTANT,
    MIN_RATE_LIMIT,
    check_instant,
    check_json_shape,
)


def _in_range(value: Any) -> Any:
    try:
        check_instant(value, "-")
    except InvalidPayload as e:  # the 422 names the field (its loc): the reason is enough
        raise ValueError(e.reason) from None
    return value


#: An aware instant within hora's range (hora.limits): nothing near datetime's own ends.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range), Field(
    description=f"An instant with an offset, from {MIN_INSTANT:%Y-%m-%dT%H:%M:%SZ} to "
                f"{MAX_INSTANT:%Y-%m-%dT%H:%M:%SZ}.")]
Priority = Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]
Attempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS)]
Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT, description="Seconds.")]
Quota = Annotated[int, Field(ge=1, le=MAX_QUOTA)]
RateLimit = Annotated[float, Field(ge=MIN_RATE_LIMIT, le=MAX_RATE_LIMIT,
                                   description="API requests per second.")]

Name = Annotated[str, Field(min_length=1, max_length=200)]
Key = Annotated[str, Field(min_length=1, max_length=255)]
TenantId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
                                description="lower-case letters, digits, - and _")]
Scope = Literal["read", "write", "approve", "admin", "operator"]
_READ_WRITE: list[Scope] = ["read", "write"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable(self) -> Any:
        """Refuse NUL and unpaired surrogates anywhere in a request: PostgreSQL cannot store
        them, and a 422 naming the field beats a failed write."""
        for name, value in self:
            # First the nesting, iteratively: the walk below recurses.
            check_json_shape(value, name, max_bytes=MAX_BODY_BYTES)
            where = _unstorable(value, name)
            if where is not None:
                raise InvalidPayload("contains a NUL character or an unpaired surrogate, "
                                     "which cannot be stored", field=where)
        return self


_BAD = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if _BAD.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and _BAD.search(k):
                return f"{path}.{k!r}"
            found = _unstorable(v, f"{path}.{k}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _unstorable(v, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(value, BaseModel):
        for k, v in value:
            found = _unstorable(v, f"{path}.{k}")
            if found is not None:
                return found
    return None


# -- errors -----------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details: every error the API returns has this shape."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


# -- jobs -------------------------------------------------------------------------------------


class RetryIn(_In):
    max_attempts: Attempts = 5
    backoff: Literal["exponential", "linear", "fixed"] = "exponential"
    base: float = Field(1.0, ge=0, le=MAX_RETRY_BASE)
    factor: float = Field(2.0, ge=1, le=MAX_RETRY_FACTOR)
    max_delay: float = Field(3600.0, ge=0, le=MAX_RETRY_DELAY)
    jitter: Literal["full", "equal", "none"] = "full"
    non_retryable: list[Name] = Field(default_factory=list)


class HttpTargetIn(_In):
    """An HTTP call made at the due time, signed per Standard Webhooks."""

    url: Annotated[str, Field(min_length=1, max_length=2000)]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    timeout: float = Field(30.0, gt=0, le=300)


class _Work(_In):
    """What runs: a Python task by name, or an HTTP target."""

    task: Name | None = Field(None, description="A Python task a worker knows.")
    target: HttpTargetIn | None = Field(None, description="An HTTP call instead of a task.")
    payload: dict[str, Any] = Field(default_factory=dict, description=(
        f"The task's keyword arguments (JSON, at most {MAX_PAYLOAD_BYTES} bytes)."))
    queue: Name | None = None
    priority: Priority | None = None
    retry: RetryIn | None = None
    timeout: Timeout | None = None
    max_attempts: Attempts | None = None
    correlation_id: Key | None = None
    allow_unregistered: bool = Field(False, description=(
        "Accept a task name that no worker registered (by default one is refused with 422 "
        "unknown-task and suggestions, once the tenant has registered tasks)."))

    @model_validator(mode="after")
    def _one_kind_of_work(self) -> _Work:
        if (self.task is None) == (self.target is None):
            raise InvalidPayload("give exactly one of task (a Python task's name) or target "
                                 "(an HTTP call)", field="task")
        if self.target is not None and self.payload:
            raise InvalidPayload("belongs to a task; an HTTP target carries its body",
                                 field="payload")
        return self


class JobIn(_Work):
    at: Instant | None = Field(None, description="When to run (with an offset).")
    delay: float | None = Field(None, ge=0, le=MAX_DELAY,
                                description="Seconds from now, instead of at.")
    idempotency_key: Key | None = None


class ErrorOut(BaseModel):
    type: str
    message: str
    traceback: str | None = None


#: The long-poll's answer header: whether the job or workflow has ended (``true``) or the
#: wait ran out first (``false``); a plain read carries it too.
DONE_HEADER = "Hora-Done"

WaitSeconds = Annotated[float | None, Query(
    ge=0, le=60, description="Long-poll: answer as soon as the job or workflow has ended, or "
    "after this many seconds (at most 60) with its current state; the Hora-Done header says "
    "which.")]
#: The OpenAPI declaration of DONE_HEADER on the two routes that send it.
DONE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"headers": {DONE_HEADER: {
    "description": "true when the job's run is over or the workflow has ended, else false",
    "schema": {"type": "string", "enum": ["true", "false"]}}}}}

StrictWait = Annotated[bool, Query(
    description="With wait: a wait that runs out answers 409 wait-timeout instead of 200.")]


class LogLineOut(BaseModel):
    at: str | None
    level: str
    message: str


class AttemptOut(BaseModel):
    number: int
    worker_id: str | None
    started_at: str | None
    ended_at: str | None
    outcome: str | None
    error: ErrorOut | None
    logs: list[LogLineOut] = []


class EventOut(BaseModel):
    id: int
    at: str | None
    from_state: str | None
    to_state: str
    attempt: int
    reason: str | None


class JobOut(BaseModel):
    id: str
    task: str
    state: str
    payload: dict[str, Any]
    queue: str
    priority: int
    due_at: str | None
    attempt: int
    max_attempts: int
    retry_policy: dict[str, Any] | None
    timeout: float | None
    idempotency_key: str | None
    correlation_id: str | None
    tenant_id: str
    lease_owner: str | None
    lease_expires_at: str | None
    created_at: str | None
    updated_at: str | None
    started_at: str | None
    finished_at: str | None
    result: Any = None
    last_error: ErrorOut | None
    cancel_requested: bool
    state_reason: str | None
    replay_of: str | None
    replayed_as: str | None
    schedule_id: str | None
    attempts: list[AttemptOut] | None = None
    events: list[EventOut] | None = None
    waiting_reason: str | None = Field(
        None, description="Why a due waiting job is not running: its queue is paused, or no "
        "live worker serves its task on its queue. Absent otherwise.")


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class CancelIn(_In):
    reason: Annotated[str, Field(max_length=500)] = "cancelled on request"


class RescheduleIn(_In):
    """A waiting job's new due time: exactly one of at and delay."""

    at: Instant | None = Field(None, description="When to run (with an offset).")
    delay: float | None = Field(None, ge=0, le=MAX_DELAY,
                                description="Seconds from now, instead of at.")

    @model_validator(mode="after")
    def _one_of(self) -> RescheduleIn:
        if (self.at is None) == (self.delay is None):
            raise InvalidPayload("give either at or delay", field="at")
        return self


class CancelJobsIn(_In):
    """Which waiting jobs to cancel: every filter given must match (at least one, or
    all=true)."""

    correlation_id: Key | None = None
    task: Name | None = None
    queue: Name | None = None
    schedule_id: Key | None = None
    created_before: Instant | None = Field(None, description="Created before this instant.")
    include_running: bool = Field(False, description=(
        "Also ask the matching running jobs to stop (cooperatively), as a single cancel "
        "does."))
    all: bool = Field(False, description="Allow no filter: every waiting job of the tenant.")
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "cancelled on request"


class CancelJobsOut(BaseModel):
    cancelled: int = Field(description=(
        "Jobs cancelled (and, with include_running, running jobs asked to stop)."))


class TerminateIn(_In):
    reason: Annotated[str, Field(max_length=500)] = "terminated on request"


class RegisteredTaskOut(BaseModel):
    tenant_id: str
    kind: Literal["task", "workflow"]
    name: str
    queue: str
    priority: int
    max_attempts: int
    retry: dict[str, Any] | None
    timeout: float | None
    payload_schema: dict[str, Any]
    registered_at: str
    updated_at: str


class RegisteredTaskList(BaseModel):
    items: list[RegisteredTaskOut]


class IdsIn(_In):
    ids: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=1000)


class ReplayOut(BaseModel):
    items: list[JobOut]


class DiscardOut(BaseModel):
    discarded: list[str]


# -- schedules and triggers -------------------------------------------------------------------

TRIGGER_DOC = (
    'One of {"cron": "30 2 * * *", "timezone": "America/New_York"}, {"rrule": "DTSTART;TZID='
    '...:...\\nRRULE:..."} (or structured rrule/dtstart/timezone/exdates/rdates), '
    '{"at": "<instant>"}, {"every": "PT15M", "start": "<instant>"}; each optionally with '
    '"calendar": {"holidays": "US", "subdivision": null, "business_day": "skip|next|previous"}, '
    '"dst_gap", "dst_fold", "window", "jitter". See docs/api.md.')

Trigger = Annotated[dict[str, Any], Field(description=TRIGGER_DOC)]


class ScheduleIn(_Work):
    trigger: Trigger | str = Field(description=TRIGGER_DOC + " A bare string is a cron "
                                   "expression or iCalendar text.")
    name: Name | None = None
    misfire: Literal["skip", "run_once", "run_all"] = "skip"
    misfire_grace: float = Field(60.0, ge=0, le=MAX_MISFIRE_GRACE)
    catchup_limit: int = Field(10, ge=1, le=MAX_CATCHUP)
    overlap: Literal["allow", "skip", "queue", "cancel_previous"] = "allow"
    paused: bool = False

    @model_validator(mode="after")
    def _no_ignored_option(self) -> ScheduleIn:
        if "catchup_limit" in self.model_fields_set and self.misfire != "run_all":
            raise InvalidPayload(f"only applies with misfire run_all (misfire is "
                                 f"{self.misfire}): it would be ignored", field="catchup_limit")
        return self


class SchedulePatch(_In):
    """Only the fields given change; the schedule's future is recomputed from now."""

    trigger: Trigger | None = None
    payload: dict[str, Any] | None = None
    target: HttpTargetIn | None = None
    name: Name | None = None
    queue: Name | None = None
    priority: Priority | None = None
    max_attempts: Attempts | None = None
    timeout: Timeout | None = None
    correlation_id: Key | None = None
    misfire: Literal["skip", "run_once", "run_all"] | None = None
    misfire_grace: float | None = Field(None, ge=0, le=MAX_MISFIRE_GRACE)
    catchup_limit: int | None = Field(None, ge=1, le=MAX_CATCHUP)
    overlap: Literal["allow", "skip", "queue", "cancel_previous"] | None = None


class ScheduleOut(BaseModel):
    id: str
    tenant_id: str
    name: str | None
    task: str
    payload: dict[str, Any]
    trigger: dict[str, Any]
    queue: str
    priority: int
    max_attempts: int
    retry_policy: dict[str, Any] | None
    timeout: float | None
    correlation_id: str | None
    misfire_policy: str
    misfire_grace: float
    catchup_limit: int
    overlap_policy: str
    state: str
    next_fire_at: str | None
    cursor: str | None
    created_at: str | None
    updated_at: str | None
    version: int
    error: str | None = Field(None, description="Why the scheduler cannot evaluate the "
                              "trigger (the schedule no longer fires); cleared by an edit or "
                              "a resume.")


class SchedulePage(BaseModel):
    items: list[ScheduleOut]
    next_cursor: str | None


class TickOut(BaseModel):
    schedule_id: str
    nominal: str | None
    fire_at: str | None
    outcome: str
    reason: str | None
    job_id: str | None
    recorded_at: str | None


class TickPage(BaseModel):
    items: list[TickOut]
    next_cursor: str | None


class PreviewIn(_In):
    trigger: Trigger | str = Field(description=TRIGGER_DOC + " A bare string is a cron "
                                   "expression or iCalendar text.")
    after: Instant | None = Field(None, description="Default: now.")
    count: int = Field(10, ge=1, le=1000)


class OccurrenceOut(BaseModel):
    at: str
    local: str
    nominal: str
    skipped: str | None
    notes: list[str]


class PreviewOut(BaseModel):
    occurrences: list[OccurrenceOut]


# -- workflows --------------------------------------------------------------------------------

WorkflowState = Literal["running", "sleeping", "waiting", "compensating", "completed", "failed",
                        "cancelled"]
Actor = Annotated[str, Field(min_length=1, max_length=200)]
Comment = Annotated[str, Field(max_length=2000)]


class WorkflowIn(_In):
    workflow: Name = Field(description="The registered name of the workflow. One that no "
                           "worker registered is refused (422 unknown-task) unless "
                           "allow_unregistered.")
    args: dict[str, Any] = Field(default_factory=dict,
                                 description="The workflow function's keyword arguments.")
    workflow_id: Name | None = Field(
        None, description="Your id for it: starting again with the same id returns the "
        "workflow already there, whatever its state. No '/'. Default: a new id.")
    correlation_id: Key | None = Field(None, description="Default: the workflow id.")
    allow_unregistered: bool = Field(False, description=(
        "Start a workflow name that no worker registered (it waits for one that knows it)."))

    @model_validator(mode="after")
    def _addressable(self) -> WorkflowIn:
        wid = self.workflow_id
        if wid is not None and ("/" in wid or wid in (".", "..")):
            raise InvalidPayload("must not contain '/' or be '.' or '..' (it is a path "
                                 "segment of /v1/workflows/{id})", field="workflow_id")
        return self


class SignalIn(_In):
    payload: Any = Field(None, description="Any JSON value, handed to the waiting workflow.")
    actor: Actor | None = Field(None, description="Who sent it (kept for the audit trail).")
    comment: Comment | None = None


class ApprovalIn(_In):
    """A decision by workflow id: that workflow's single pending request (of ``name``)."""

    comment: Comment | None = Field(None, description="Why (kept with the decision).")
    name: Name | None = Field(None, description="Only the workflow's requests of this name "
                              "(the name its wait_for_approval gave).")
    actor: Actor | None = Field(None, deprecated=True,
                                description="Ignored: the actor is the API key that decides "
                                "(its name), never a field of the request.")


class DecisionIn(_In):
    comment: Comment | None = Field(None, description="Why (kept with the decision).")


ApprovalState = Literal["pending", "approved", "rejected", "expired", "cancelled"]


class ApprovalOut(BaseModel):
    id: str
    tenant_id: str
    workflow_id: str
    workflow_name: str
    seq: int = Field(description="The wait's position in the workflow's journal.")
    name: str
    approvers: list[str] | None = Field(description="The API key names that may decide; "
                                        "null: any key with the approve scope.")
    context: Any = Field(None, description="What the workflow shows the deciders.")
    state: str = Field(description="pending, approved, rejected, expired or cancelled.")
    deadline: str | None
    created_at: str | None
    decided_by: str | None = Field(description="The actor: the deciding key's name.")
    decided_by_key: str | None = Field(description="The deciding API key's id.")
    comment: str | None
    decided_at: str | None = Field(description="When it left pending.")


class ApprovalPage(BaseModel):
    items: list[ApprovalOut]
    next_cursor: str | None


class HistoryOut(BaseModel):
    seq: int
    kind: str
    name: str
    status: str
    attempts: int
    input: Any = None
    output: Any = None
    error: ErrorOut | None
    started_at: str | None
    finished_at: str | None
    deadline: str | None


class SignalOut(BaseModel):
    id: str
    tenant_id: str
    workflow_id: str
    name: str
    payload: Any = None
    actor: str | None
    comment: str | None
    sent_at: str | None
    consumed_seq: int | None


class WorkflowOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    args: dict[str, Any]
    state: str
    result: Any = None
    error: ErrorOut | None
    correlation_id: str | None
    parent_id: str | None
    wait_kind: str | None
    wait_name: str | None
    wait_until: str | None
    cancel_requested: bool
    cancel_reason: str | None
    compensation: str | None
    run_owner: str | None
    run_until: str | None
    created_at: str | None
    updated_at: str | None
    finished_at: str | None
    version: int
    history: list[HistoryOut] | None = Field(
        None, description="GET /v1/workflows/{id} only: the journal, in order.")
    signals: list[SignalOut] | None = Field(
        None, description="GET /v1/workflows/{id} only: every signal sent, in order.")
    waiting_reason: str | None = Field(
        None, description="Why an unfinished workflow cannot make progress: no live worker "
        "runs it (none has its definition). Absent otherwise.")


class WorkflowPage(BaseModel):
    items: list[WorkflowOut]
    next_cursor: str | None


# -- tenants and keys -------------------------------------------------------------------------


class TenantIn(_In):
    id: TenantId
    name: Name | None = None
    max_pending_jobs: Quota | None = None
    max_active_schedules: Quota | None = None
    rate_limit: RateLimit | None = None


#: A retention age in seconds: more than zero, at most ten years.
RetentionAge = Annotated[float, Field(gt=0, le=3650 * 86400,
                                      description="Seconds; null: the global policy's age.")]


class RetentionIn(_In):
    """A tenant's retention ages where they differ from the global policy (null or absent:
    as the global policy says)."""

    jobs: RetentionAge | None = None
    dead: RetentionAge | None = None
    ticks: RetentionAge | None = None
    workflows: RetentionAge | None = None
    idempotency: RetentionAge | None = None


class RetentionOut(BaseModel):
    jobs: float | None = None
    dead: float | None = None
    ticks: float | None = None
    workflows: float | None = None
    idempotency: float | None = None


class TenantPatch(_In):
    name: Name | None = None
    max_pending_jobs: Quota | None = None
    max_active_schedules: Quota | None = None
    rate_limit: RateLimit | None = None
    retention: RetentionIn | None = Field(
        None, description="Operator only: the tenant's retention overrides, in seconds per "
        "kind (jobs, dead, ticks, workflows, idempotency); null removes them.")


class TenantOut(BaseModel):
    id: str
    name: str
    max_pending_jobs: int | None
    max_active_schedules: int | None
    rate_limit: float | None
    created_at: str | None
    updated_at: str | None
    retention: RetentionOut = Field(
        default_factory=RetentionOut,
        description="The tenant's retention overrides in seconds (null: the global policy).")


class TenantSecretOut(TenantOut):
    """A tenant as created or with a rotated secret: the only answers that show it."""

    webhook_secret: str | None = Field(
        description="Standard Webhooks secret HTTP targets are signed with; shown in this "
        "answer only (at creation and rotation), never in a read; null in an "
        "Idempotency-Key replay (it is not kept).")


class TenantPage(BaseModel):
    items: list[TenantOut]
    next_cursor: str | None


class KeyIn(_In):
    tenant_id: TenantId | None = Field(None, description="Default: the caller's tenant.")
    name: Name | None = None
    scopes: list[Scope] = Field(default_factory=lambda: _READ_WRITE.copy(), min_length=1)
    expires_at: AwareDatetime | None = Field(
        None, description="Refused from this instant on: after now, at most 3660 days ahead; "
        "none: never expires.")


class KeyOut(BaseModel):
    id: str
    tenant_id: str
    name: str | None
    prefix: str
    scopes: list[str]
    created_at: str | None
    revoked_at: str | None
    expires_at: str | None


class NewKeyOut(KeyOut):
    key: str | None = Field(description="The secret; shown this once and never again "
                            "(null in an Idempotency-Key replay: it is not kept).")


class KeyPage(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None


class Health(BaseModel):
    status: str
    detail: str | None = None


# -- locks ------------------------------------------------------------------------------------


class LockIn(_In):
    ttl: float = Field(30.0, gt=0, le=MAX_LOCK_TTL, description="Seconds the grant lasts.")
    owner: Name | None = Field(None, description="Who holds it (default: generated); "
                               "needed again to renew and release.")


class LeaseIn(_In):
    owner: Name
    token: int = Field(ge=1, le=2**62)
    ttl: float = Field(30.0, gt=0, le=MAX_LOCK_TTL)


class LeaseRef(_In):
    owner: Name
    token: int = Field(ge=1, le=2**62)


class LeaseOut(BaseModel):
    name: str
    owner: str
    token: int = Field(description="The fencing token: pass it with every write the lock "
                       "protects; it grows with every grant and is never reused.")
    expires_at: str | None


class LockOut(BaseModel):
    name: str
    owner: str | None
    token: int
    acquired_at: str | None
    expires_at: str | None
    held: bool


class ReleasedOut(BaseModel):
    released: bool


# -- workers and queues -----------------------------------------------------------------------


class WorkerOut(BaseModel):
    id: str
    status: Literal["live", "lost", "stopped"]
    host: str
    pid: int
    version: str
    queues: list[str]
    tasks: list[str] | None = Field(description="The tasks it runs; null: any task.")
    workflows: list[str]
    concurrency: int
    heartbeat: float
    running: int
    started_at: str | None
    last_seen_at: str | None
    stopped_at: str | None


class WorkerList(BaseModel):
    items: list[WorkerOut]


class QueueOut(BaseModel):
    name: str
    paused: bool
    paused_at: str | None
    reason: str | None
    scheduled: int
    retrying: int
    running: int
    dead: int
    due: int = Field(description="Waiting jobs (scheduled or retrying) due now.")
    oldest_due_age: float | None = Field(
        description="Seconds since the oldest due waiting job fell due; null: none is due.")
    workers: int = Field(description="Live workers serving the queue.")


class QueueList(BaseModel):
    items: list[QueueOut]


class QueueStateOut(BaseModel):
    tenant_id: str
    name: str
    paused: bool
    paused_at: str | None
    reason: str | None


class QueuePauseIn(_In):
    reason: Annotated[str | None, Field(max_length=500)] = None


# -- schedules declared in code (PUT /v1/schedules/by-name/{name}) ----------------------------


class ScheduleEnsureIn(ScheduleIn):
    """``POST /v1/schedules``'s body; ``name`` may be left out (the path names it) but, if
    given, must be the path's."""


class ScheduleEnsureOut(ScheduleOut):
    outcome: Literal["created", "updated", "unchanged"] = Field(
        description="What the PUT did: created (201), updated (the spec or options differed; "
        "the future is recomputed from now) or unchanged (nothing written).")



# -- rate limits set at run time (/v1/rate-limits) --------------------------------------------


class RateLimitIn(_In):
    rate: str = Field(max_length=40, description="COUNT/PERIOD: '20/s', '3/h', '100/15m' "
                      "(units s, m, h, d).", examples=["20/s"])
    burst: int | None = Field(None, description="Starts admitted at once (at least 1); "
                              "omitted: 0.1 s of the rate, at least 1.")


class RateLimitOut(BaseModel):
    name: str = Field(description="The limit's name; 'queue:<queue>' limits a whole queue.")
    rate: str = Field(description="The rate in force, canonical: '20/s'.")
    burst: int
    source: Literal["override", "declared"] = Field(
        description="override: set at run time; declared: as the tasks declare it.")
    count: int
    period: float = Field(description="Seconds.")
    declared_rate: str | None = Field(description="What the code declares; null: nothing.")
    declared_burst: int | None
    tasks: list[str] = Field(description="The tasks that declare the limit.")
    updated_at: str | None = Field(description="When the override was set.")


class RateLimitList(BaseModel):
    items: list[RateLimitOut]


# -- notification recipients (/v1/recipients) ------------------------------------------------
# Loose on purpose where hora.notify checks more than JSON Schema can (a zone, an e-mail
# address, 25:00): the 422 then names the field as the SDK does (``quiet_hours.start``).


class QuietHoursIn(_In):
    start: str = Field(max_length=10, examples=["21:00"])
    end: str = Field(max_length=10, examples=["08:00"])


class PreferencesIn(_In):
    channels: dict[str, bool] = Field(
        default_factory=dict, description="A channel set to false receives nothing.",
        examples=[{"email": False}])
    categories: dict[str, bool | dict[str, bool]] = Field(
        default_factory=dict, description="A category set to false receives nothing; an "
        "object names the channels of that category turned off.",
        examples=[{"marketing": False, "digest": {"email": False}}])


class RecipientIn(_In):
    id: str | None = Field(None, max_length=200, description="Required in a bulk upsert; "
                           "in PUT /v1/recipients/{id} the path's id (may be omitted).")
    timezone: str = Field("UTC", max_length=100, examples=["Europe/Paris"])
    locale: str = Field("en", max_length=35, examples=["fr-FR"])
    quiet_hours: str | QuietHoursIn | None = Field(
        None, description="No delivery from start to end, local time: '21:00-08:00' runs "
        "overnight. A delivery inside is moved to the end.", examples=["21:00-08:00"])
    holidays: str | None = Field(None, max_length=20, description="A country code (holidays "
                                 "package, 'US-CA' with a subdivision).", examples=["FR"])
    business_days_only: bool = Field(False, description="Deliver Monday-Friday, minus the "
                                     "holidays.")
    addresses: dict[str, str] = Field(default_factory=dict, description="Channel -> address.",
                                      examples=[{"email": "ada@example.com"}])
    preferences: PreferencesIn | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="What templates see as "
                                 "recipient.data (at most 16 KiB as JSON).")


class RecipientsBulkIn(_In):
    recipients: list[RecipientIn] = Field(max_length=10_000, description="Written in one "
                                          "transaction: all, or none on any bad one.")


class RecipientsBulkOut(BaseModel):
    upserted: int


class QuietHoursOut(BaseModel):
    start: str
    end: str


class PreferencesOut(BaseModel):
    channels: dict[str, bool]
    categories: dict[str, bool | dict[str, bool]]


class RecipientOut(BaseModel):
    id: str
    timezone: str
    locale: str
    quiet_hours: QuietHoursOut | None
    holidays: str | None
    business_days_only: bool
    addresses: dict[str, str]
    preferences: PreferencesOut
    data: dict[str, Any]
    created_at: str | None
    updated_at: str | None


class RecipientList(BaseModel):
    items: list[RecipientOut]
    next_cursor: str | None


class UnsubscribeLinkIn(_In):
    base_url: str | None = Field(None, max_length=2048, description="The server's public "
                                 "URL; omitted: the URL this request came to.")


class UnsubscribeLinkOut(BaseModel):
    recipient_id: str
    url: str = Field(description="Works without an API key; shown once (only its hash is "
                     "stored): a new link replaces the old.")
