"""The store seam: what hora needs from a database, in the domain's own words.

Two implementations, ``SQLiteStore`` (one file, zero set-up) and ``PostgresStore`` (many
nodes), pass one conformance suite (``tests/store/``). Methods are synchronous: both drivers
block, a sync core serves sync callers (a Django view, a script) without an event loop, and
the asyncio worker calls it from a thread. Every method takes ``now`` from the caller's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from hora.errors import ConfigError
from hora.flow import Rate
from hora.models import (
    ApiKey,
    ApprovalRequest,
    ClaimedJob,
    ErrorInfo,
    HistoryEntry,
    IdempotencyRecord,
    Job,
    JobFilter,
    LockRecord,
    NewJob,
    Page,
    QueueDepth,
    QueueState,
    RateLimitOverride,
    RegisteredTask,
    RetentionPolicy,
    Schedule,
    Signal,
    Tenant,
    Tick,
    WorkerInfo,
    Workflow,
)
from hora.notify.model import DeliveryState, Notification, Preferences, Recipient
from hora.states import MOVES, JobState, Move, allowed_targets
from hora.store.notification_rows import DigestItem, NewDelivery, NewNotification
from hora.store.notify_rows import InboxAction, InboxItem, InboxStatus, StoredTemplate

#: The states a worker's outcome may move a running job to.
_WORKER_TARGETS = allowed_targets(JobState.RUNNING)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, as the worker reports it for a batched write.

    ``state`` is the job's next state, the target of one of the moves out of running in
    ``hora.states`` (succeed, retry, bury, cancel, release): build it with ``Outcome.of``.
    ``outcome`` is the attempt's label (succeeded, failed, retry, timeout, cancelled,
    released).
    """

    job_id: str
    attempt: int
    owner: str
    state: JobState
    outcome: str
    started_at: datetime
    result_json: str | None = None
    error: ErrorInfo | None = None
    due_at: datetime | None = None  # for retrying: when to try again
    reason: str | None = None
    #: What the handler logged during the attempt: a JSON array of {"at", "level",
    #: "message"} (already bounded by the worker), or None when it logged nothing.
    logs_json: str | None = None

    def __post_init__(self) -> None:
        state = JobState(self.state)
        if state not in _WORKER_TARGETS:
            raise ValueError(f"{state} is not a move out of running")
        object.__setattr__(self, "state", state)

    @classmethod
    def of(cls, move: Move, *, job_id: str, attempt: int, owner: str, outcome: str,
           started_at: datetime, result_json: str | None = None,
           error: ErrorInfo | None = None, due_at: datetime | None = None,
           reason: str | None = None, logs_json: str | None = None) -> Outcome:
        """The outcome that applies ``move`` (one allowed from running) to the job."""
        if not move.allows(JobState.RUNNING):
            raise ValueError(f"the move {move.name} does not start from running")
        return cls(job_id, attempt, owner, move.target, outcome, started_at, result_json,
                   error, due_at, reason, logs_json)

    @property
    def move(self) -> Move:
        """The named move this outcome applies."""
        return next(m for m in MOVES.values()
                    if m.target is self.state and m.allows(JobState.RUNNING))


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """What a heartbeat learns about the jobs one worker holds."""

    held: frozenset[str]
    cancel_requested: frozenset[str]


@dataclass(frozen=True, slots=True)
class ScheduleAdvance:
    """Where a scheduler pass leaves one schedule: its new cursor and next fire instant, and
    the error that stops it firing (None clears a previous one)."""

    schedule_id: str
    cursor: datetime
    next_fire_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class JobCancel:
    """A job an overlap policy cancels (waiting: cancelled; running: asked to stop)."""

    job_id: str
    tenant_id: str
    reason: str


class SchedulePass(Protocol):
    """The SQL of one scheduler pass, all inside the one transaction ``schedule_pass`` opened:
    ``hora.scheduler.fire_due_schedules`` holds the logic and calls these in order."""

    def due(self, limit: int) -> list[Schedule]:
        """Lock up to ``limit`` due active schedules, earliest first, skipping any another
        scheduler holds (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite has one writer)."""
        ...

    def active_jobs(self, schedule_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Per schedule, its unfinished jobs as (id, state), by id."""
        ...

    def task_flows(self, keys: Sequence[tuple[str, str]],
                   ) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Per (tenant, task name), the flow options the registry records for it (None: no
        entry, or none), read in the pass's transaction."""
        ...

    def insert_jobs(self, jobs: Sequence[NewJob]) -> dict[str, str]:
        """Insert the fired jobs; per planned id, the id stored under its idempotency key: its
        own, or that of the job an earlier fire of the same occurrence inserted."""
        ...

    def record_ticks(self, ticks: Sequence[Tick]) -> None:
        """Append to the ledger; an occurrence recorded already keeps its first record."""
        ...

    def advance(self, advances: Sequence[ScheduleAdvance]) -> None: ...

    def cancel_jobs(self, cancels: Sequence[JobCancel]) -> None:
        """Cancel waiting jobs, ask running ones to stop; locks them in the order given (the
        caller sorts by id, as every batch that locks several jobs does)."""
        ...


class Subscription(Protocol):
    """A channel on which other processes announce jobs (PostgreSQL LISTEN/NOTIFY)."""

    def wait(self, timeout: float) -> set[str]:
        """Block up to ``timeout`` seconds; the queues announced meanwhile (maybe none)."""
        ...

    def close(self) -> None: ...


class JobStore(Protocol):
    """Jobs: enqueue, the worker's moves, visibility and control."""

    def insert_jobs(self, jobs: Sequence[NewJob], now: datetime) -> list[tuple[str, bool]]:
        """Insert in one transaction; per job (id, created). An existing idempotency key with
        the same fingerprint yields that job's id and False; a different one raises
        IdempotencyConflict and inserts nothing."""
        ...

    # the worker's moves
    def claim_jobs(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str] | None,
                   now: datetime, lease_until: datetime, limit: int,
                   horizon: datetime | None = None, reserve_limit: int = 0,
                   gate_ahead: timedelta = timedelta(0),
                   ) -> tuple[list[ClaimedJob], list[ClaimedJob]]:
        """Start up to ``limit`` due jobs (now running) and reserve up to ``reserve_limit``
        jobs due by ``horizon`` (leased, still waiting). Returns (started, reserved).

        A job with flow gates (rate limits, a concurrency key, a queue limit) starts only if
        they all admit it, checked in this transaction (``hora.store.gating``); one they
        refuse stays waiting with the reason, pushed to its slot or parked. Such jobs are
        never reserved. A gated job every gate admits within ``gate_ahead`` of now starts
        at that instant: its ``due_at`` is then later than now, and the caller must not run
        it before. The pair returned is a ``hora.store.gating.Claimed``: its ``wake_at``
        says when to claim again after a gate pushed jobs back (None: no gate did)."""
        ...

    def start_reserved(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                       lease_until: datetime) -> list[str]:
        """Move reserved jobs to running; returns the ids that moved (the others were
        cancelled or their reservation was taken)."""
        ...
    def finish_jobs(self, outcomes: Sequence[Outcome], now: datetime) -> list[str]:
        """Apply outcomes in one transaction; returns the ids applied (others lost their
        lease and are left alone)."""
        ...

    def extend_leases(self, *, owner: str, now: datetime, lease_until: datetime) -> LeaseStatus:
        ...

    def rescue_expired(self, now: datetime, limit: int = 500) -> list[str]: ...
    def release_jobs(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> int: ...
    def next_due_at(self, *, queues: Sequence[str], tasks: Sequence[str] | None,
                    now: datetime) -> datetime | None: ...

    # visibility and control
    def get_job(self, job_id: str, *, tenant_id: str, history: bool = True) -> Job: ...
    def list_jobs(self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None,
                  ) -> Page[Job]:
        """Newest first; internal jobs only with ``flt.include_internal`` or when
        ``flt.task`` names one."""
        ...
    def cancel_job(self, job_id: str, *, tenant_id: str, now: datetime, reason: str) -> Job: ...
    def replay_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                    ) -> list[Job]: ...
    def discard_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                     ) -> list[str]: ...
    def count_jobs(self, *, tenant_id: str, include_internal: bool = False) -> dict[str, int]:
        """Jobs per state; internal jobs (``hora.workflow:*``) only with ``include_internal``."""
        ...
    def count_pending_jobs(self, tenant_id: str, *, limit: int) -> int:
        """Unfinished jobs (scheduled, retrying, running) of a tenant, counted up to
        ``limit`` (a quota check needs no more)."""
        ...

    def subscribe(self) -> Subscription | None:
        """Announcements of new due work from other processes, or None where the database
        has no such channel (SQLite: workers in other processes find work by polling)."""
        ...

    def subscribe_results(self) -> Subscription | None:
        """Announcements of jobs and workflows that reached their end (``job:<id>``,
        ``workflow:<id>``), from any process; None where the database has no such channel
        (SQLite: waiters are woken by a worker in their own process, else they poll)."""
        ...


@dataclass(frozen=True, slots=True)
class JobSelection:
    """Which of a tenant's jobs a bulk cancel acts on: its waiting jobs (and, with
    ``include_running``, its running ones not yet asked to stop) matching every filter given
    (None: any). hora's own jobs (``hora.workflow:*``) only when ``task`` names one."""

    tenant_id: str
    correlation_id: str | None = None
    task: str | None = None
    queue: str | None = None
    schedule_id: str | None = None
    created_before: datetime | None = None
    include_running: bool = False

    #: The filter fields, in the order the store's SQL adds them.
    FILTERS = ("correlation_id", "task", "queue", "schedule_id", "created_before")

    def given(self) -> tuple[str, ...]:
        """The filter fields set (not None)."""
        return tuple(f for f in self.FILTERS if getattr(self, f) is not None)


@dataclass(frozen=True, slots=True)
class CancelBatch:
    """What one batch of a bulk cancel did: waiting jobs cancelled, running ones asked to
    stop, and the last id it looked at (the next batch starts after it), None when no job
    is left to look at."""

    cancelled: tuple[str, ...]
    requested: tuple[str, ...]
    last_id: str | None


class JobControlStore(Protocol):
    """Job control beyond a single cancel: a waiting job's new due time, bulk cancels."""

    def reschedule_job(self, job_id: str, *, tenant_id: str, due_at: datetime,
                       now: datetime, reason: str) -> Job:
        """Move a waiting (scheduled or retrying) job's due time to ``due_at``, drop a
        worker's reservation of it, set its state_reason to ``reason`` and record an event
        (from its state to itself, with ``reason``), in one transaction; the job as stored.
        NotFound for an unknown id (or another tenant's); TransitionConflict when it is not
        waiting."""
        ...

    def cancel_jobs_batch(self, selection: JobSelection, *, now: datetime, reason: str,
                          after: str | None, limit: int) -> CancelBatch:
        """In one short transaction, up to ``limit`` of the selected jobs with ids after
        ``after`` (by id): cancel the waiting ones, ask the running ones to stop (with
        ``selection.include_running``), both with ``reason``. ``last_id`` is None once fewer
        than ``limit`` jobs were left."""
        ...


class ScheduleStore(Protocol):
    """Schedules, their tick ledger, and the transaction of a scheduler pass."""

    def insert_schedule(self, schedule: Schedule) -> Schedule: ...
    def get_schedule(self, schedule_id: str, *, tenant_id: str) -> Schedule: ...
    def list_schedules(self, *, tenant_id: str, state: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> Page[Schedule]: ...
    def update_schedule(self, schedule: Schedule,
                        skipped: Sequence[tuple[datetime, datetime, str]] = ()) -> Schedule:
        ...

    def next_schedule_fire(self) -> datetime | None: ...
    def delete_schedule(self, schedule_id: str, *, tenant_id: str) -> None: ...
    def get_schedule_by_name(self, name: str, *, tenant_id: str) -> Schedule: ...
    def mark_schedules_declared(self, schedule_ids: Sequence[str], *, tenant_id: str,
                                now: datetime) -> None:
        """Mark schedules as declared in code (idempotent; see migration 0011)."""
    def declared_schedules(self, *, tenant_id: str) -> list[Schedule]:
        """The tenant's schedules marked as declared in code, by id."""
    def list_ticks(self, schedule_id: str, *, tenant_id: str, outcome: str | None = None,
                   limit: int = 100, cursor: datetime | None = None) -> Page[Tick]: ...
    def count_active_schedules(self, tenant_id: str, *, limit: int) -> int: ...
    def schedule_pass(self, now: datetime) -> AbstractContextManager[SchedulePass]:
        """One write transaction for a scheduler pass at ``now``: committed when the block
        ends, rolled back (nothing fired, nothing advanced) if it raises."""
        ...


class TenantStore(Protocol):
    """Tenants, API keys and HTTP idempotency records: the API's own state."""

    def insert_tenant(self, tenant: Tenant) -> Tenant:
        """Raises Conflict if a tenant with that id exists."""
        ...

    def ensure_tenant(self, tenant: Tenant) -> Tenant:
        """Insert unless a tenant with that id exists; either way return the stored one."""
        ...

    def get_tenant(self, tenant_id: str) -> Tenant: ...
    def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]: ...
    def update_tenant(self, tenant: Tenant) -> Tenant:
        """Write name, quotas and rate limit (not id, secret or created_at)."""
        ...

    def insert_api_key(self, key: ApiKey) -> ApiKey: ...
    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with that hash, revoked or not (the caller refuses revoked keys)."""
        ...

    def list_api_keys(self, *, tenant_id: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page[ApiKey]: ...
    def get_api_key(self, key_id: str) -> ApiKey: ...
    def revoke_api_key(self, key_id: str, *, now: datetime,
                       allow_last_operator: bool = False) -> ApiKey:
        """Mark revoked (idempotent: revoking twice keeps the first instant). Raises Conflict
        instead when the key is the last live (unrevoked, unexpired at ``now``) operator key,
        unless ``allow_last_operator``: checked and written in one serialised step."""
        ...

    def set_webhook_secret(self, tenant_id: str, secret: str, *, now: datetime) -> Tenant:
        """Replace a tenant's webhook signing secret (a rotation); NotFound if none."""
        ...

    def count_api_keys(self) -> int:
        """All keys, revoked included: zero means a fresh installation."""
        ...

    def begin_idempotent(self, tenant_id: str, key: str, fingerprint: str, *, now: datetime,
                         expired_before: datetime, stuck_before: datetime,
                         ) -> IdempotencyRecord | None:
        """Claim ``key`` for a new request: None when claimed (a fresh key, one whose record
        was created before ``expired_before``, or one still in progress since before
        ``stuck_before``, whose request presumably died); otherwise the existing record."""
        ...

    def finish_idempotent(self, tenant_id: str, key: str, *, status: int, body: str) -> None: ...
    def abort_idempotent(self, tenant_id: str, key: str) -> None:
        """Forget an in-progress key (its request failed; a retry may run afresh)."""
        ...

    def purge_idempotent(self, before: datetime) -> int: ...


class WorkflowStore(Protocol):
    """Workflows: a row each, a journal of calls, and signals waiting to be consumed."""

    def start_workflow(self, workflow: Workflow, job: NewJob) -> tuple[Workflow, bool]:
        """Insert ``workflow`` and its first run ``job`` in one transaction, unless a workflow
        with that (tenant, id) exists: then nothing is written and the stored one is returned
        with False (a user-supplied id makes starting idempotent)."""
        ...

    def get_workflow(self, workflow_id: str, *, tenant_id: str) -> Workflow: ...
    def list_workflows(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       wait_kind: str | None = None, parent_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        """Newest first (by created_at, then id); the cursor is opaque."""
        ...

    def acquire_workflow(self, workflow_id: str, *, tenant_id: str, owner: str,
                         now: datetime, until: datetime,
                         replaces: str | None = None) -> Workflow | None:
        """Lease the workflow's run to ``owner`` until ``until``: None when another owner's
        lease is still valid at ``now`` (or the workflow is final); else the workflow, now
        with run_owner/run_until set, state running unless compensating, version bumped.
        ``replaces`` names an owner whose lease may be taken over although valid (an earlier
        attempt of the same job, which the job core already declared lost)."""
        ...

    def load_history(self, workflow_id: str, *, tenant_id: str) -> list[HistoryEntry]:
        """The journal in seq order."""
        ...

    def record_history(self, entries: Sequence[HistoryEntry], *, owner: str) -> None:
        """Insert or overwrite (by tenant, workflow, seq) in one transaction, if ``owner``
        still holds the run lease; else raise StaleRecord and write nothing."""
        ...

    def consume_signal(self, entry: HistoryEntry, *, owner: str) -> Signal | None:
        """In one transaction (owner-checked like record_history): take the oldest
        unconsumed signal named ``entry.name`` for the workflow; if there is one, mark it
        consumed by ``entry.seq`` and record ``entry`` with status done and output the
        signal's payload wrapped as {"payload", "actor", "comment", "signal_id"}; return it.
        None (nothing written) when no such signal waits."""
        ...

    def finish_run(self, workflow: Workflow, *, owner: str, jobs: Sequence[NewJob] = ()
                   ) -> Workflow:
        """End a run: write the workflow's new state, wait, result, error, compensation and
        finished_at, clear the run lease, and insert ``jobs`` (wake-ups, resumes of a parent;
        existing idempotency keys are skipped, not errors), all in one transaction, only if
        ``owner`` still holds the lease (else StaleRecord). A final state also cancels the
        workflow's pending approval requests and its waiting runs (timers, wake-ups: jobs of
        its runner task not yet running). Returns the stored row."""
        ...

    def send_signal(self, signal: Signal, resume: NewJob) -> Signal:
        """Store a signal and enqueue ``resume`` (a run of the workflow), in one transaction.
        NotFound for an unknown workflow; TransitionConflict when it is final."""
        ...

    def list_signals(self, workflow_id: str, *, tenant_id: str) -> list[Signal]:
        """Every signal sent to the workflow, in order sent (consumed or not)."""
        ...

    def request_workflow_cancel(self, workflow_id: str, *, tenant_id: str, reason: str,
                                now: datetime, resume: NewJob) -> Workflow:
        """Set cancel_requested (and reason), cancel the workflow's pending approval
        requests and enqueue ``resume``, in one transaction; TransitionConflict when the
        workflow is final."""
        ...

    def terminate_workflow(self, workflow_id: str, *, tenant_id: str, reason: str,
                           error: ErrorInfo, now: datetime, jobs: Sequence[NewJob] = ()
                           ) -> Workflow:
        """End the workflow now, whoever holds its run (no compensation runs): state
        cancelled with ``error`` and cancel_reason ``reason``, run lease cleared, pending
        approval requests cancelled, its waiting runs (timers, wake-ups) cancelled, and
        ``jobs`` inserted (a parent's resume), in one transaction. TransitionConflict when
        it is final already; NotFound for an unknown workflow. Returns the stored row."""
        ...


class ApprovalStore(Protocol):
    """Approval requests: one per wait_for_approval (by journal position), decided by id."""

    def open_approval(self, request: ApprovalRequest, entry: HistoryEntry, *, owner: str
                      ) -> ApprovalRequest:
        """In one transaction, owner-checked like record_history: record ``entry`` (the
        wait's journal row) and insert ``request`` unless its position (tenant, workflow,
        seq) has a request already; return the position's request, new or found."""
        ...

    def get_approval(self, approval_id: str, *, tenant_id: str) -> ApprovalRequest: ...
    def list_approvals(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       workflow_id: str | None = None, name: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[ApprovalRequest]:
        """Newest first (by created_at, then id); the cursor is opaque."""
        ...

    def decide_approval(self, approval_id: str, *, tenant_id: str, state: str, actor: str,
                        actor_key: str | None, comment: str | None, now: datetime,
                        resume: NewJob) -> ApprovalRequest:
        """Move the request from pending to ``state`` (approved or rejected), only before its
        deadline, and enqueue ``resume`` (skipped if its key exists), in one transaction. A
        pending request past its deadline is expired instead. Returns the request as stored
        afterwards, whatever happened: the caller compares its state with the decision
        (another decision may have come first). NotFound for an unknown id."""
        ...

    def close_approval(self, approval_id: str, *, tenant_id: str, state: str, now: datetime
                       ) -> ApprovalRequest:
        """Move a pending request to expired (only once its deadline has passed at ``now``)
        or cancelled; returns the request as stored afterwards (it may have been decided
        first)."""
        ...


class LockStore(Protocol):
    """Distributed locks: a row per (tenant, name), with a fencing token counting its
    grants."""

    def acquire_lock(self, tenant_id: str, name: str, *, owner: str, now: datetime,
                     expires_at: datetime) -> int | None:
        """Grant the lock to ``owner`` until ``expires_at``, in one atomic statement, if it is
        free at ``now`` (never held, released, or expired): returns the grant's fencing
        token, which starts at 1 and grows by one with every grant of (tenant, name), across
        owners and releases, never reused. None when a grant still holds it at ``now`` --
        ``owner``'s own too: locks are not re-entrant (extend a held one with renew_lock)."""
        ...

    def renew_lock(self, tenant_id: str, name: str, *, owner: str, token: int, now: datetime,
                   expires_at: datetime) -> bool:
        """Move the grant's expiry to ``expires_at``, only if (``owner``, ``token``) still
        holds the lock and it has not expired at ``now``; False otherwise (nothing written)."""
        ...

    def release_lock(self, tenant_id: str, name: str, *, owner: str, token: int) -> bool:
        """Free the lock (owner cleared, expiry moved to the past; the row and its token count
        stay), only if (``owner``, ``token``) is its latest grant: True then, even if that
        grant had expired without anybody taking over; False when another grant replaced
        it or it was released already."""
        ...

    def get_lock(self, tenant_id: str, name: str) -> LockRecord | None:
        """The lock's row (held, expired or released), or None if it was never granted."""
        ...

class RetentionStore(Protocol):
    """Retention: bounded prunes of old finished records (``hora.retention`` decides what and
    when), and the tenants' overrides of the retention ages.

    ``kind`` is one of ``hora.models.RETENTION_KINDS``: ``jobs`` (succeeded, cancelled,
    discarded, replayed; with their attempts and events), ``dead`` (dead letters, likewise),
    ``ticks``, ``workflows`` (completed, failed, cancelled; with their journal, signals and
    approval requests) and ``idempotency`` (the HTTP API's records). A batch is for one
    tenant (``tenant_id``) or for every tenant but ``exclude_tenants``."""

    def prune_batch(self, kind: str, *, cutoff: datetime, limit: int,
                    tenant_id: str | None = None, exclude_tenants: Sequence[str] = (),
                    ) -> int:
        """Delete, in one short transaction, up to ``limit`` of the oldest records of
        ``kind`` that ended (jobs, workflows), occurred (ticks) or were created
        (idempotency) before ``cutoff``, and what hangs off them; returns how many records
        went. Never a waiting or running job, nor a job or child workflow a live workflow
        still needs; on PostgreSQL rows another transaction holds are skipped, not waited
        for."""
        ...

    def count_prunable(self, kind: str, *, cutoff: datetime, limit: int,
                       tenant_id: str | None = None, exclude_tenants: Sequence[str] = (),
                       ) -> int:
        """How many records ``prune_batch`` would delete, counted up to ``limit``."""
        ...

    def retention_overrides(self) -> dict[str, RetentionPolicy]:
        """Per tenant with an override, its ages (None: as the global policy says)."""
        ...

    def set_retention(self, tenant_id: str, policy: RetentionPolicy | None, *,
                      now: datetime) -> None:
        """Store a tenant's override; None (or every age None) removes it."""
        ...

@runtime_checkable
class RateLimitStore(Protocol):
    """Rate limits set at run time by name (``hora_rate_limits``, written by
    ``hora.ratelimits``; the claim reads them), GCRA buckets taken a slice at a time
    (``take_tokens``: the API's request limit), and the waiting-by-reason counts."""

    def set_rate_limit(self, limit: RateLimitOverride) -> RateLimitOverride:
        """Insert or replace the tenant's limit of that name, in one transaction with moving
        every bucket of the name (``hora_rate_buckets``: its tat and slot) no later than
        ``updated_at`` plus ``burst`` of the new rate's intervals: a limit raised from 1/h
        to 10/s is in force at once, not after the hour a bucket owed the old one."""
        ...

    def get_rate_limit(self, tenant_id: str, name: str) -> RateLimitOverride | None: ...
    def list_rate_limits(self, tenant_id: str, *, limit: int = 1000,
                         ) -> list[RateLimitOverride]:
        """The tenant's limits by name, at most ``limit``."""
        ...

    def delete_rate_limit(self, tenant_id: str, name: str, *, now: datetime,
                          fallback: tuple[Rate, int] | None = None) -> bool:
        """Remove the limit (the declared rate applies again); with ``fallback`` (that rate
        and burst) its buckets are moved as ``set_rate_limit`` does. False when there was
        none."""
        ...

    def take_tokens(self, tenant_id: str, name: str, key: str, *, rate: Rate, burst: int,
                    want: int, now: datetime) -> tuple[int, float]:
        """Take up to ``want`` starts from the GCRA bucket (tenant, name, key) of ``rate``
        and ``burst``, atomically (one writer per bucket: a row lock / SQLite's write
        lock): returns (granted, retry_after) -- how many were taken (0 to ``want``, never
        more than the bucket holds at ``now``) and, when none was, the seconds until one
        is free (0.0 when some were granted)."""
        ...

    def waiting_by_reason(self, *, now: datetime, limit: int = 500,
                          ) -> list[tuple[str, str, int]]:
        """(reason, name, count) of waiting jobs of every tenant held back by flow control:
        ``rate_limited``/``concurrency`` by limit name (from ``blocked_on``, set by a claim
        that passed them over) and ``queue_paused`` by queue (due jobs of paused queues).
        Two grouped reads, at most ``limit`` groups each, the largest first."""
        ...

    def prune_rate_buckets(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` buckets whose tat and slot are before ``before`` (full
        again: the same as no row), in one short transaction."""
        ...

class WorkerStore(Protocol):
    """Workers (a row each, refreshed by its heartbeat) and queues (depth, pause), the
    visibility of ``hora.workers``. Worker rows belong to no tenant; queue rows do."""

    def register_worker(self, worker: WorkerInfo) -> None:
        """Insert the worker's row, or start it afresh (a restart under the same id)."""
        ...

    def touch_worker(self, worker_id: str, *, now: datetime, running: int,
                     forget_before: datetime | None = None, forget_limit: int = 100,
                     ) -> tuple[bool, int]:
        """Refresh the worker's last_seen_at and running count and, with ``forget_before``,
        delete up to ``forget_limit`` rows not seen since then, in one transaction; returns
        whether the worker's row was there, and how many rows were deleted."""
        ...

    def stop_worker(self, worker_id: str, *, now: datetime) -> None:
        """Mark the worker stopped (a clean shutdown)."""
        ...

    def list_workers(self, *, limit: int = 1000) -> list[WorkerInfo]:
        """Every worker row, newest start first (``status`` left at its default: the
        service works it out)."""
        ...

    def queue_depths(self, tenant_id: str, *, now: datetime) -> list[QueueDepth]:
        """The tenant's jobs per queue by state, in one grouped read."""
        ...

    def due_waiting_tasks(self, *, now: datetime, tenant_id: str | None = None,
                          queues: Sequence[str] | None = None, limit: int = 1000,
                          ) -> list[tuple[str, str, int]]:
        """(queue, task, count) of waiting jobs due at ``now``, by queue and task."""
        ...

    def set_queue_paused(self, tenant_id: str, name: str, *, paused: bool, now: datetime,
                         reason: str | None = None) -> QueueState:
        """Pause or resume the tenant's queue (creating its row); returns it."""
        ...

    def list_queue_states(self, tenant_id: str) -> list[QueueState]: ...


class RegistryStore(Protocol):
    """The task and workflow registry: what workers can run, per tenant, with defaults and
    the JSON Schema of the payload (``hora.registry``)."""

    def register_tasks(self, entries: Sequence[RegisteredTask], now: datetime) -> None:
        """Upsert every entry by (tenant, kind, name) in one transaction: a new one gets
        registered_at and updated_at ``now``, an existing one its new defaults and schema
        and updated_at ``now``."""
        ...

    def get_registered_task(self, *, tenant_id: str, kind: str,
                            name: str) -> RegisteredTask | None: ...
    def probe_registered_task(self, *, tenant_id: str, kind: str,
                              name: str) -> tuple[RegisteredTask | None, bool]:
        """In one read: the entry (tenant, kind, name) or None, and whether the tenant has
        any entry of ``kind`` at all (what an enqueue of a name needs to know)."""
        ...

    def list_registered_tasks(self, *, tenant_id: str, kind: str | None = None,
                              limit: int = 1000) -> list[RegisteredTask]:
        """The tenant's entries (of ``kind``), by kind then name, at most ``limit``."""
        ...


@dataclass(frozen=True, slots=True)
class FlowEnqueue:
    """How a task's debounce or throttle treats one enqueue (``hora.flow``): ``key`` is the
    key's value for the job's payload ("" for an unkeyed one), ``window`` and ``max_wait``
    seconds. ``not_before`` is the due time the request asked for (a debounced job never
    runs before it, whatever ``max_wait`` says)."""

    kind: str  # "debounce" | "throttle"
    key: str
    window: float
    max_wait: float | None = None
    not_before: datetime | None = None


#: What ``enqueue_flow`` did with each job: inserted as asked; an existing job returned for
#: its idempotency key; folded into the key's waiting debounced job (that job's id); inserted
#: as cancelled by a throttle.
FlowOutcome = str  # "created" | "existing" | "debounced" | "throttled"


@runtime_checkable
class FlowKeyStore(Protocol):
    """Debounce and throttle on enqueue: one row per (tenant, kind, task, key) in
    hora_flow_keys, locked for the enqueue's transaction (``hora.flow``, docs/flow.md)."""

    def enqueue_flow(self, jobs: Sequence[NewJob], flows: Sequence[FlowEnqueue | None],
                     now: datetime) -> list[tuple[str, FlowOutcome]]:
        """Enqueue ``jobs`` in one transaction (all or nothing), each as its ``flows`` entry
        says (None: as ``insert_jobs`` would). Per job (id, outcome).

        debounce: if the key's job is still waiting (scheduled, not leased), fold this one
        into it -- its payload (and gates) become this job's, its due time
        ``min(job.due_at, first_at + max_wait)`` (never before ``not_before``), an event
        records the fold -- and return that job's id with "debounced"; otherwise insert the
        job and make it the key's. throttle: if the key's window (from its first job's
        enqueue) is still open, insert the job as cancelled with the reason
        "throttled: within <window> of job <id>"; otherwise insert it and open a window.
        Before either, an idempotency key already stored returns that job ("existing") or
        raises IdempotencyConflict, as ``insert_jobs`` does. Enqueues of one key are
        serialised by its row (PostgreSQL: the row lock; SQLite: the one writer)."""
        ...

    def prune_flow_keys(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` hora_flow_keys rows whose ``until`` is before ``before``
        (expired windows, debounced jobs long due), in one short transaction."""
        ...


class BatchStore(Protocol):
    """Batching (``hora.batching``): the due jobs of batched tasks are reserved (leased, still
    waiting) and buffered by a worker per key, then started a batch at a time."""

    def reserve_due(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str],
                    now: datetime, lease_until: datetime, limit: int) -> list[ClaimedJob]:
        """Lease up to ``limit`` due, unleased jobs of ``tasks`` (oldest first) without
        changing their state; extend_leases keeps them, release_jobs gives them back, and an
        expired lease makes them claimable again."""
        ...

    def start_batch(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                    lease_until: datetime) -> list[str]:
        """Start reserved jobs in one statement (running, attempt + 1, one lease); the ids
        that moved, in the order given (the others were cancelled or taken)."""
        ...

    def mark_batching(self, reasons: Sequence[tuple[str, str]], *, owner: str) -> int:
        """Set the waiting reason ((job id, reason) pairs) of jobs this worker reserved."""
        ...


@runtime_checkable
class NotificationStore(Protocol):
    """Notifications and their deliveries (``hora.notify.service``): a notification, its
    deliveries and their jobs are written in one transaction, so none is half there."""

    def create_notification(self, n: NewNotification, deliveries: Sequence[NewDelivery],
                            jobs: Sequence[NewJob], now: datetime,
                            digests: Sequence[NewJob] = ()) -> tuple[str, bool]:
        """Insert all, or with a dedup key the recipient already used within its window
        (``dedup_until`` after ``now``) nothing: (that notification's id, False). The same
        key with a different ``fingerprint`` raises Conflict (field ``dedup_key``).

        ``digests`` are the digest jobs deliveries fold into (by idempotency key: one per
        recipient, category, channel and instant); a delivery naming one gets the job
        that waits under its key, or a new one for the same instant when that one has
        started already, so no delivery is ever folded into a digest that was sent."""
        ...

    def digest_items(self, tenant_id: str, job_id: str) -> list[DigestItem]:
        """The notifications whose deliveries wait in this digest job, oldest first."""
        ...

    def finish_digest(self, tenant_id: str, job_id: str, state: DeliveryState, *,
                      reason: str | None, provider_id: str | None, now: datetime) -> int:
        """Move every delivery still waiting in this digest job to ``state``."""
        ...

    def count_direct(self, tenant_id: str, recipient_id: str, category: str,
                     since: datetime) -> int:
        """The recipient's notifications of ``category`` since ``since`` that went out on
        their own (not digested, not suppressed)."""
        ...

    def get_notification(self, tenant_id: str, notification_id: str) -> Notification | None:
        ...

    def list_notifications(self, tenant_id: str, *, recipient_id: str | None = None,
                           correlation_id: str | None = None, category: str | None = None,
                           after: str | None = None, limit: int = 100) -> list[Notification]:
        """Newest first; ``after`` is the last id of the previous page."""
        ...

    def set_delivery(self, tenant_id: str, notification_id: str, channel: str,
                     state: DeliveryState, *, reason: str | None, provider_id: str | None,
                     now: datetime) -> bool:
        """Move a scheduled delivery to ``state`` (a final one stays as it is)."""
        ...

    def delivery_counts(self, tenant_id: str) -> dict[tuple[str, str], int]:
        """(channel, state) -> deliveries."""

@runtime_checkable
class TemplateStore(Protocol):
    """Notification templates (``hora_templates``, written by ``hora.notify.templates``):
    per tenant, name and channel (``*``: any channel), a new version per put."""

    def put_template(self, tenant_id: str, name: str, channel: str, subject: str, text: str,
                     html: str | None, now: datetime) -> int:
        """Store the next version of (tenant, name, channel) -- the highest so far plus 1,
        taken atomically: two concurrent puts get two versions -- and return it."""
        ...

    def get_template(self, tenant_id: str, name: str, channel: str,
                     version: int | None = None) -> StoredTemplate | None:
        """That version, or the latest when ``version`` is None; None when there is none
        (no fallback to ``*`` here: the service decides)."""
        ...

    def list_templates(self, tenant_id: str, *, after: tuple[str, str] | None = None,
                       limit: int = 100) -> list[StoredTemplate]:
        """The latest version of each (name, channel) after ``after`` (a (name, channel)
        cursor), by name then channel, at most ``limit``."""
        ...

    def count_templates(self, tenant_id: str, name: str | None = None,
                        channel: str | None = None) -> int:
        """With name and channel: how many versions they have; else how many (name,
        channel) pairs the tenant has (what the service bounds)."""
        ...

    def delete_template(self, tenant_id: str, name: str, channel: str | None = None) -> int:
        """Delete every version of the name, of ``channel`` or (None) of every channel;
        returns how many versions went."""
        ...


@runtime_checkable
class InboxStore(Protocol):
    """The in-app channel's inbox (``hora_inbox``): per tenant and recipient, items that are
    unread until read, and in the feed until archived."""

    def add_inbox_item(self, item: InboxItem) -> bool:
        """Store the item (``created_at`` set); False when its id is there already (a
        retried delivery), which changes nothing."""
        ...

    def get_inbox_item(self, tenant_id: str, recipient_id: str,
                       item_id: str) -> InboxItem | None: ...

    def list_inbox(self, tenant_id: str, recipient_id: str, *, status: InboxStatus = "all",
                   after: tuple[datetime, str] | None = None,
                   limit: int = 50) -> list[InboxItem]:
        """Newest first (created_at, id), older than the ``after`` cursor; ``status``: all
        (every item not archived), unread, read (not archived), archived."""
        ...

    def mark_inbox(self, tenant_id: str, recipient_id: str, ids: Sequence[str],
                   action: InboxAction, now: datetime) -> int:
        """Mark the recipient's items of ``ids`` read (read_at = now), unread, archived
        (archived_at = now) or unarchived, in one statement; returns how many changed (an
        item already so, or another recipient's, does not count)."""
        ...

    def inbox_counts(self, tenant_id: str, recipient_id: str) -> dict[str, int]:
        """``{"unread": n, "total": n}`` of the feed (archived items count in neither)."""
        ...
class RecipientStore(Protocol):
    """Notification recipients (``hora_recipients``, written by ``hora.notify.recipients``):
    one row per (tenant, id). The unsubscribe token is kept as its sha256 only."""

    def upsert_recipients(self, recipients: Sequence[Recipient], now: datetime) -> int:
        """Insert or replace every recipient in one transaction (all or none; the caller
        validated them). A new one gets the hash of a token nobody knows; an existing one
        keeps its token hash and ``created_at``. Returns how many were written."""
        ...

    def get_recipient(self, tenant_id: str, recipient_id: str) -> Recipient | None: ...
    def list_recipients(self, tenant_id: str, *, after: str | None,
                        limit: int) -> list[Recipient]:
        """The tenant's recipients by id, those after ``after`` (a keyset cursor), at most
        ``limit``."""
        ...

    def delete_recipient(self, tenant_id: str, recipient_id: str) -> bool: ...
    def set_unsubscribe_token(self, tenant_id: str, recipient_id: str,
                              token_hash: str) -> bool:
        """Replace the recipient's token hash (the old link stops working); False when
        there is no such recipient."""
        ...

    def recipient_by_token_hash(self, token_hash: str) -> Recipient | None:
        """The recipient of any tenant whose token hashes to ``token_hash``: the public
        unsubscribe link carries no tenant, the token alone names the recipient."""
        ...

    def update_preferences(self, tenant_id: str, recipient_id: str, preferences: Preferences,
                           now: datetime) -> bool: ...


class Store(JobStore, ScheduleStore, TenantStore, WorkflowStore, ApprovalStore, LockStore,
            WorkerStore, RegistryStore, RetentionStore, RateLimitStore, JobControlStore,
            FlowKeyStore, BatchStore, NotificationStore, TemplateStore, InboxStore,
            RecipientStore, Protocol):
    """Everything hora needs from a database: the union of the aggregates' protocols."""

    dialect: str
    #: How many threads may usefully call the store at once from one process.
    max_concurrency: int

    def migrate(self) -> list[int]: ...
    def close(self) -> None: ...


def open_store(url: str, **options: object) -> Store:
    """Open the store a database URL names: ``sqlite:///path``, a bare path, or
    ``postgresql://...``."""
    if url.startswith(("postgresql://", "postgres://")):
        from hora.store.postgres import PostgresStore

        return PostgresStore(url, **options)  # type: ignore[arg-type]
    if url.startswith("sqlite:"):
        from hora.store.sqlite import SQLiteStore

        prefix = "sqlite:///"
        if not url.startswith(prefix):
            raise ConfigError(f"SQLite URL {url!r} must look like sqlite:///path/to/file.db")
        return SQLiteStore(url[len(prefix):], **options)  # type: ignore[arg-type]
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or "
                          "postgresql://")
    from hora.store.sqlite import SQLiteStore

    return SQLiteStore(url, **options)  # type: ignore[arg-type]


__all__ = [
    "ApprovalStore",
    "CancelBatch",
    "FlowEnqueue",
    "FlowKeyStore",
    "FlowOutcome",
    "InboxStore",
    "JobCancel",
    "JobControlStore",
    "JobSelection",
    "JobStore",
    "LeaseStatus",
    "LockStore",
    "NotificationStore",
    "Outcome",
    "RateLimitStore",
    "RecipientStore",
    "RegistryStore",
    "RetentionStore",
    "ScheduleAdvance",
    "SchedulePass",
    "ScheduleStore",
    "Store",
    "Subscription",
    "TemplateStore",
    "TenantStore",
    "WorkerStore",
    "WorkflowStore",
    "open_store",
]
