"""Job, schedule and workflow states, the scheduling policies, and the only moves between
job states.

The table here is the single source of truth: stores apply a move with
``UPDATE ... WHERE id = ? AND state IN (<move.sources>)`` and the database's CHECK
constraint rejects any state outside the enum, so an impossible row cannot be written and a
lost race surfaces as ``TransitionConflict`` rather than a silent overwrite.

::

    scheduled ──start──▶ running ──succeed──▶ succeeded
        ▲  │               │ │ │
        │  │      release  │ │ └──bury──▶ dead ──replay──▶ replayed
        └──┼───────────────┘ │             └────discard──▶ discarded
           │        retry    ▼
           │             retrying ──start──▶ running
           └──cancel──▶ cancelled ◀──cancel── retrying / running
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its due time (which may already have passed)
    RUNNING = "running"  # leased by a worker, an attempt is in progress
    RETRYING = "retrying"  # an attempt failed; waiting for the backoff to elapse
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    DEAD = "dead"  # attempts exhausted or a non-retryable error: in the dead-letter queue
    DISCARDED = "discarded"  # removed from the dead-letter queue, kept for history
    REPLAYED = "replayed"  # taken out of the dead-letter queue by a replay (see replay_job_id)

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_claimable(self) -> bool:
        return self in CLAIMABLE_STATES


CLAIMABLE_STATES = frozenset({JobState.SCHEDULED, JobState.RETRYING})
FINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.CANCELLED, JobState.DISCARDED, JobState.REPLAYED}
)
# Dead is not final: it can still be replayed or discarded.
PENDING_STATES = frozenset({JobState.SCHEDULED, JobState.RETRYING, JobState.RUNNING})


@dataclass(frozen=True, slots=True)
class Move:
    name: str
    sources: frozenset[JobState]
    target: JobState

    def allows(self, state: JobState | str) -> bool:
        return JobState(state) in self.sources


START = Move("start", CLAIMABLE_STATES, JobState.RUNNING)
SUCCEED = Move("succeed", frozenset({JobState.RUNNING}), JobState.SUCCEEDED)
RETRY = Move("retry", frozenset({JobState.RUNNING}), JobState.RETRYING)
BURY = Move("bury", frozenset({JobState.RUNNING}), JobState.DEAD)
RELEASE = Move("release", frozenset({JobState.RUNNING}), JobState.SCHEDULED)
CANCEL = Move(
    "cancel", frozenset({JobState.SCHEDULED, JobState.RETRYING, JobState.RUNNING}),
    JobState.CANCELLED,
)
REPLAY = Move("replay", frozenset({JobState.DEAD}), JobState.REPLAYED)
DISCARD = Move("discard", frozenset({JobState.DEAD}), JobState.DISCARDED)

MOVES: dict[str, Move] = {
    m.name: m for m in (START, SUCCEED, RETRY, BURY, RELEASE, CANCEL, REPLAY, DISCARD)
}


def move_named(name: str) -> Move:
    """The move called ``name``; KeyError for a name the table does not have."""
    return MOVES[name]


def allowed_targets(state: JobState | str) -> frozenset[JobState]:
    """Every state reachable from ``state`` in one move."""
    s = JobState(state)
    return frozenset(m.target for m in MOVES.values() if s in m.sources)


class ScheduleState(StrEnum):
    ACTIVE = "active"  # fires its occurrences
    PAUSED = "paused"  # fires nothing; a resume records the occurrences missed as skipped


class MisfirePolicy(StrEnum):
    """What a schedule does with occurrences later than its grace period (after downtime)."""

    SKIP = "skip"  # record them as skipped
    RUN_ONCE = "run_once"  # fire the newest, coalescing the others into it
    RUN_ALL = "run_all"  # fire each, up to the catch-up limit


class OverlapPolicy(StrEnum):
    """What a schedule does when an occurrence comes while its previous run is unfinished."""

    ALLOW = "allow"  # fire anyway
    SKIP = "skip"  # skip the occurrence
    QUEUE = "queue"  # fire unless a run is already waiting
    CANCEL_PREVIOUS = "cancel_previous"  # cancel the previous runs, then fire


class WorkflowState(StrEnum):
    RUNNING = "running"  # a worker is advancing it, or is about to
    SLEEPING = "sleeping"  # a durable timer
    WAITING = "waiting"  # a signal, an approval or a child workflow
    COMPENSATING = "compensating"  # running its rollbacks after a failure or cancellation
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in WORKFLOW_FINAL_STATES


WORKFLOW_FINAL_STATES = frozenset(
    {WorkflowState.COMPLETED, WorkflowState.FAILED, WorkflowState.CANCELLED}
)
