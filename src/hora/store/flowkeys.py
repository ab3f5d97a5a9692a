"""Debounce and throttle, what both stores share: the due time of a fold, the reasons written
on the jobs, and how long an expired hora_flow_keys row is kept (``FlowKeyStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from hora.store import FlowEnqueue

#: A key's row is deleted once its ``until`` is this far in the past (a throttle's window
#: closed, a debounced job long due): until then a debounced job that has not started yet
#: (no worker running) still takes the folds of its key.
FLOW_KEY_GRACE = timedelta(hours=1)
#: Expired rows deleted by an enqueue that creates a key's row (amortised clean-up: the
#: table grows no faster than it shrinks; the retention pass deletes the rest in batches).
PRUNE_ON_ENQUEUE = 16


def fold_due(due_at: datetime, flow: FlowEnqueue, first_at: datetime) -> datetime:
    """When a debounced job runs after a fold: the later enqueue's due (its own due plus the
    window), but no later than ``first_at + max_wait``, and never before the due time the
    enqueue asked for."""
    due = due_at
    if flow.max_wait is not None:
        due = min(due, first_at + timedelta(seconds=flow.max_wait))
    if flow.not_before is not None:
        due = max(due, flow.not_before)
    return due


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(window: float) -> str:
    return f"{window:g}s"


def fold_reason_tail(now: datetime) -> str:
    """The end of the debounced job's state_reason, after "debounced: <N>" (the count of
    enqueues it stands for, which the fold's UPDATE computes from the job's events)."""
    return f" enqueues folded into this job, the last at {_iso(now)}"


def fold_event(due: datetime) -> str:
    """The event a fold leaves in the job's history."""
    return f"debounced: a later enqueue replaced the payload, due {_iso(due)}"


def throttle_reason(window: float, holder: str) -> str:
    return f"throttled: within {_seconds(window)} of job {holder}"


def flow_order(flows: Sequence[FlowEnqueue | None], tasks: Sequence[str]) -> list[int]:
    """The indexes of the flow jobs in the order their keys are locked: by (kind, task,
    key), so two batches never wait on each other's keys in opposite orders; jobs of one key
    keep their request order (a stable sort)."""
    keyed = [(f.kind, tasks[i], f.key, i) for i, f in enumerate(flows) if f is not None]
    return [i for *_, i in sorted(keyed, key=lambda t: t[:3])]
