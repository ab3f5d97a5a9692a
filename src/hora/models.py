"""The records hora stores, as frozen dataclasses.

Stores build these from rows; nothing else constructs them from scratch, so a ``Job`` in
hand is always a snapshot of what the database held at the moment it was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from hora.states import (
    WORKFLOW_FINAL_STATES,
    JobState,
    MisfirePolicy,
    OverlapPolicy,
    ScheduleState,
    WorkflowState,
)

T = TypeVar("T")

DEFAULT_QUEUE = "default"
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failure, kept as data so it can be listed, filtered and shown without a log search."""

    type: str
    message: str
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ErrorInfo | None:
        if not d:
            return None
        return cls(type=d.get("type", ""), message=d.get("message", ""),
                   traceback=d.get("traceback"))


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a handler logged during an attempt (a stdlib ``logging`` record): its wall
    time, level name and formatted message. A line with level ``TRUNCATED`` says how much
    past the per-attempt bound was not kept."""

    at: datetime
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a job, from start to outcome."""

    job_id: str
    number: int
    worker_id: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None  # succeeded | failed | retry | cancelled | timeout | lost | released
    error: ErrorInfo | None
    #: What the handler logged during this attempt (bounded; empty until it ends).
    logs: tuple[LogLine, ...] = ()


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One state transition. A job's history is the ordered list of these."""

    id: int
    job_id: str
    at: datetime
    from_state: JobState | None  # None for the enqueue event
    to_state: JobState
    attempt: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    task: str
    payload: dict[str, Any]
    queue: str
    priority: int
    state: JobState
    due_at: datetime
    attempt: int
    max_attempts: int
    retry_policy: dict[str, Any] | None
    timeout: float | None
    idempotency_key: str | None
    correlation_id: str | None
    tenant_id: str
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: Any
    last_error: ErrorInfo | None
    cancel_requested: bool
    state_reason: str | None
    replay_of: str | None
    replayed_as: str | None
    attempts: tuple[Attempt, ...] = field(default=())
    events: tuple[JobEvent, ...] = field(default=())
    schedule_id: str | None = None  # the schedule that fired this job, if any

    @property
    def is_final(self) -> bool:
        return self.state.is_final


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing; pass ``next_cursor`` back for the next one."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated enqueue request, ready for the store (payload already JSON-encoded)."""

    id: str
    task: str
    payload_json: str
    fingerprint: str
    queue: str
    priority: int
    due_at: datetime
    max_attempts: int
    retry_policy_json: str | None
    timeout: float | None
    idempotency_key: str | None
    correlation_id: str | None
    tenant_id: str
    replay_of: str | None = None
    schedule_id: str | None = None
    #: The job's flow-control gates as JSON (``hora.flow.Gates``), checked by every claim;
    #: None for a job without rate or concurrency limits.
    flow_json: str | None = None
    #: The concurrency key (limit name and key value) the job counts against, if any.
    concurrency_key: str | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What ``list_jobs`` selects. Every field narrows; ``None`` means any."""

    tenant_id: str = DEFAULT_TENANT
    states: tuple[JobState, ...] | None = None
    task: str | None = None
    queue: str | None = None
    correlation_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    #: Internal jobs (task ``hora.workflow:*``: the runs and timers of workflows) are left out
    #: unless True, or unless ``task`` names one.
    include_internal: bool = False


#: Jobs whose task starts with this are hora's own (workflow runs and timers): hidden from a
#: user's listings and counts unless asked for.
INTERNAL_TASK_PREFIX = "hora.workflow:"


def is_internal_task(task: str) -> bool:
    return task.startswith(INTERNAL_TASK_PREFIX)


class ClaimedJob(NamedTuple):
    """What a worker needs to run a job it has leased: the hot path's record.

    A tuple rather than a ``Job`` because the worker builds tens of thousands of these a
    second, and a 28-field frozen dataclass costs several times more to construct.
    """

    id: str
    task: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    retry_policy: dict[str, Any] | None
    timeout: float | None
    correlation_id: str | None
    tenant_id: str
    due_at: datetime
    priority: int


#: The columns a claim returns, in ClaimedJob's order.
CLAIM_COLUMNS = ("id", "task", "payload", "attempt", "max_attempts", "retry_policy", "timeout",
                 "correlation_id", "tenant_id", "due_at", "priority")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A durable recurring (or one-off) trigger that turns each occurrence into a job.

    ``trigger`` is the JSON spec (``hora.triggers.spec``), the only truth about when it fires:
    ``next_fire_at`` and ``cursor`` (the last nominal instant dealt with) are derived, and
    recomputed from the spec on every edit.
    """

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
    misfire_policy: MisfirePolicy
    misfire_grace: float  # seconds late an occurrence may still fire
    catchup_limit: int  # run_all fires at most this many missed occurrences
    overlap_policy: OverlapPolicy
    state: ScheduleState
    next_fire_at: datetime | None  # None: the trigger will never fire again
    cursor: datetime  # occurrences with nominal <= cursor have been dealt with
    created_at: datetime
    updated_at: datetime
    version: int = 0  # bumped by every write; an edit from a stale read is refused
    #: Why the scheduler could not evaluate the trigger (then ``next_fire_at`` is None); an
    #: edit or a resume clears it.
    error: str | None = None

    def __post_init__(self) -> None:
        # The enums are the truth: a plain string from a caller becomes (or fails as) one.
        object.__setattr__(self, "misfire_policy", MisfirePolicy(self.misfire_policy))
        object.__setattr__(self, "overlap_policy", OverlapPolicy(self.overlap_policy))
        object.__setattr__(self, "state", ScheduleState(self.state))


@dataclass(frozen=True, slots=True)
class Tick:
    """What happened to one nominal occurrence of a schedule: fired (with its job) or skipped
    (with the reason). "Why didn't my job run on Monday?" is a query over these."""

    schedule_id: str
    nominal: datetime
    fire_at: datetime
    outcome: str  # fired | skipped
    reason: str | None
    job_id: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Tenant:
    """Who owns records. Every job and schedule carries a tenant id; API keys act in one.

    Quotas are soft: checked before a write, so requests racing one another may overshoot a
    limit by as many as are in flight. ``None`` means unlimited.
    """

    id: str
    name: str
    #: Standard Webhooks signing secret for HTTP targets: ``whsec_`` + base64 of the key.
    webhook_secret: str
    max_pending_jobs: int | None
    max_active_schedules: int | None
    rate_limit: float | None  # API requests per second (a token bucket per API process)
    created_at: datetime
    updated_at: datetime


#: What retention prunes, each with its own age: finished jobs (succeeded, cancelled,
#: discarded, replayed), dead jobs (the dead-letter queue), schedule ticks, finished
#: workflows, and the HTTP API's idempotency records.
RETENTION_KINDS = ("jobs", "dead", "ticks", "workflows", "idempotency")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of finished record is kept, in seconds. ``None``: for a tenant's
    override, "as the global policy says"; in a resolved policy, "never pruned"."""

    jobs: float | None = None
    dead: float | None = None
    ticks: float | None = None
    workflows: float | None = None
    idempotency: float | None = None

    def age(self, kind: str) -> float | None:
        if kind not in RETENTION_KINDS:
            raise ValueError(f"unknown retention kind {kind!r}")
        value: float | None = getattr(self, kind)
        return value

    def over(self, base: RetentionPolicy) -> RetentionPolicy:
        """This override's ages where set, ``base``'s elsewhere."""
        return RetentionPolicy(**{k: base.age(k) if self.age(k) is None else self.age(k)
                                  for k in RETENTION_KINDS})


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's record. The key itself is shown once at creation and never stored:
    ``key_hash`` is its SHA-256 (keys are 190 random bits, so a slow hash buys nothing)."""

    id: str
    tenant_id: str
    name: str | None
    prefix: str  # the key's first characters, to recognise it in a listing
    key_hash: str
    scopes: tuple[str, ...]  # read, write, approve, admin, operator (hora.api.auth.SCOPES)
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None  # refused from this instant on; None: never expires

    def live_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What an ``Idempotency-Key`` has seen: the request's fingerprint and, once the first
    request finished, its response (``status`` None while that request is in progress)."""

    tenant_id: str
    key: str
    fingerprint: str
    status: int | None
    body: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RegisteredTask:
    """A task or workflow that a worker (or ``hora serve --app``) registered for a tenant:
    the defaults its jobs get wherever they are enqueued from, and the JSON Schema of its
    payload (derived from the function's signature), which every enqueue is checked
    against. ``kind`` is ``task`` or ``workflow``; ``retry`` is the retry policy as JSON
    (``RetryPolicy.to_dict``), ``timeout`` seconds or None."""

    tenant_id: str
    kind: str  # task | workflow
    name: str
    queue: str
    priority: int
    max_attempts: int
    retry: dict[str, Any] | None
    timeout: float | None
    payload_schema: dict[str, Any]
    registered_at: datetime
    updated_at: datetime
    #: The task's flow options (``hora.flow.FlowSpec.to_dict``); None without any.
    flow: dict[str, Any] | None = None


WORKFLOW_STATES = tuple(WorkflowState)
WORKFLOW_FINAL = WORKFLOW_FINAL_STATES


@dataclass(frozen=True, slots=True)
class Workflow:
    """A durable workflow: a function whose every step, timer and signal is journaled, so a
    run after any crash replays the journal and carries on where it stopped.

    ``state``: running (a worker is advancing it, or is about to), sleeping (a durable timer),
    waiting (a signal or a child workflow), compensating (running its rollbacks after a
    failure or cancellation), and finally completed, failed or cancelled. ``wait_*`` say what
    a sleeping or waiting workflow waits for and until when (the approvals inbox).
    """

    tenant_id: str
    id: str
    name: str
    args: dict[str, Any]
    state: WorkflowState
    result: Any
    error: ErrorInfo | None
    correlation_id: str | None
    parent_id: str | None
    wait_kind: str | None  # sleep | signal | child
    wait_name: str | None  # the signal's name, or the child workflow's id
    wait_until: datetime | None
    cancel_requested: bool
    cancel_reason: str | None
    compensation: str | None  # None | running | completed | failed
    run_owner: str | None  # the job advancing it now (a lease, with run_until)
    run_until: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    version: int = 0

    def __post_init__(self) -> None:
        # The enum is the truth: a plain string from a caller becomes (or fails as) one.
        object.__setattr__(self, "state", WorkflowState(self.state))

    @property
    def is_final(self) -> bool:
        return self.state.is_final


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One journaled call of a workflow, by position ``seq``: the journal replay relies on.

    ``kind``: step, sleep, signal, child, now, random, uuid, rollback (a registered
    compensation) or compensate (a compensation run). ``status``: pending (a timer or wait
    not over yet; a step between retries), done, failed.
    """

    tenant_id: str
    workflow_id: str
    seq: int
    kind: str
    name: str
    input: Any
    output: Any
    error: ErrorInfo | None
    status: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    deadline: datetime | None  # a timer's or wait's end; a step's next attempt


@dataclass(frozen=True, slots=True)
class Signal:
    """A message to a workflow, kept in order until a ``wait_for_signal`` consumes it.
    ``actor`` and ``comment`` make an approval an audit record."""

    id: str
    tenant_id: str
    workflow_id: str
    name: str
    payload: Any
    actor: str | None
    comment: str | None
    sent_at: datetime
    consumed_seq: int | None = None


APPROVAL_STATES = ("pending", "approved", "rejected", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One ``wait_for_approval`` of a workflow: a request a person decides, by its id.

    Made once per journal position (``workflow_id``, ``seq``): a replay finds the same one,
    and a decision names it, so a repeated decision is the same decision and can never
    answer a later request. ``state`` moves once, from pending to approved or rejected (a
    decision), expired (the deadline passed) or cancelled (the workflow was cancelled or
    ended); ``decided_at`` is that move's instant. ``approvers``: the actors (over HTTP, the
    API keys' names) that may decide it; None lets anyone with the approve scope decide.
    """

    id: str
    tenant_id: str
    workflow_id: str
    workflow_name: str
    seq: int
    name: str
    approvers: tuple[str, ...] | None
    context: Any
    state: str
    deadline: datetime | None
    created_at: datetime
    decided_by: str | None = None  # the actor: an API key's name, or the SDK's actor
    decided_by_key: str | None = None  # the deciding API key's id (None from the SDK)
    comment: str | None = None
    decided_at: datetime | None = None

    @property
    def is_pending(self) -> bool:
        return self.state == "pending"


@dataclass(frozen=True, slots=True)
class LockRecord:
    """A distributed lock as stored: who holds it, under which fencing token, until when.

    ``token`` is the latest grant's: it grows by one with every grant of the name and is never
    reused, so a resource that remembers the highest token it has seen can refuse a write
    from an older holder. ``owner`` is None once released; a lock is held at an instant only
    while it has an owner and has not expired (``held_at``).
    """

    tenant_id: str
    name: str
    owner: str | None
    token: int
    acquired_at: datetime
    expires_at: datetime

    def held_at(self, now: datetime) -> bool:
        return self.owner is not None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process as its row says (``hora_workers``), with ``status`` worked out at
    read time: ``live``, ``lost`` (not seen for longer than the lost-after interval: it
    died or cannot reach the database) or ``stopped`` (shut down cleanly).

    Workers claim the jobs of every tenant, so a worker belongs to no tenant. ``tasks`` is
    None for a worker that runs any task (``only_known_tasks=False``); otherwise the names
    it has handlers for, which is all it claims.
    """

    id: str
    host: str
    pid: int
    version: str
    queues: tuple[str, ...]
    tasks: tuple[str, ...] | None
    workflows: tuple[str, ...]
    concurrency: int
    heartbeat: float
    started_at: datetime
    last_seen_at: datetime
    running: int = 0
    stopped_at: datetime | None = None
    status: str = "live"

    def serves(self, queue: str, task: str) -> bool:
        """Whether this worker would claim a job of ``task`` on ``queue``."""
        return queue in self.queues and (self.tasks is None or task in self.tasks)


@dataclass(frozen=True, slots=True)
class QueueState:
    """A queue's own row (``hora_queues``): paused or not, per tenant."""

    tenant_id: str
    name: str
    paused: bool
    paused_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """One tenant's jobs on one queue, counted by state, as one grouped read returns them.

    ``due`` counts the waiting jobs (scheduled or retrying) due now; ``oldest_due_at`` is the
    due time of the oldest of them."""

    queue: str
    scheduled: int = 0
    retrying: int = 0
    running: int = 0
    dead: int = 0
    due: int = 0
    oldest_due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as ``app.queues()`` shows it: depth by state, the age of its oldest due
    waiting job, the live workers serving it, and whether it is paused (for this tenant)."""

    name: str
    scheduled: int
    retrying: int
    running: int
    dead: int
    due: int
    oldest_due_age: float | None  # seconds; None when no job is due
    workers: int
    paused: bool
    paused_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimitOverride:
    """A rate limit set at run time by name (``hora_rate_limits``): ``count`` starts per
    ``period`` seconds, ``burst`` at once. It overrides the rate tasks declare under the same
    name; a name ``queue:<queue>`` limits every job of that queue."""

    tenant_id: str
    name: str
    count: int
    period: float
    burst: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """A named rate limit as ``app.rate_limits`` shows it: the rate in force (``rate``,
    canonical text such as ``20/s``, with ``burst``), where it comes from (``source``:
    ``override`` when set at run time, else ``declared``), what the code declares under the
    name (``declared_rate``/``declared_burst``, None when no task known here or in the
    registry declares it) and the tasks that declare it."""

    name: str
    rate: str
    burst: int
    source: str  # override | declared
    count: int
    period: float
    declared_rate: str | None = None
    declared_burst: int | None = None
    tasks: tuple[str, ...] = ()
    updated_at: datetime | None = None  # when the override was set
