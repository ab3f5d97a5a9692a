"""Workers and queues you can see (``app.fleet``; ``app.workers()``, ``app.queues()``,
``app.pause_queue()`` and ``app.resume_queue()`` delegate to it).

Every ``Worker`` writes a row of ``hora_workers`` when it starts, refreshes it from its
heartbeat loop (last seen, jobs running) and marks it stopped on a clean shutdown. Reading
the rows works out each worker's status at the reader's clock:

* ``live``: seen within ``lost_after`` (60 s by default, and never less than three of the
  worker's own heartbeat intervals);
* ``lost``: not seen for longer, without a clean stop (it died, or cannot reach the database);
* ``stopped``: shut down cleanly.

Rows not seen for ``forget_after`` (24 h) are deleted, a bounded batch at a time, by every
worker's heartbeat. Workers claim the jobs of every tenant, so workers belong to no tenant:
over HTTP only the operator scope lists them, and a tenant sees per queue only how many live
workers serve it (``queues()``).

A queue is paused per tenant (``hora_queues``): its jobs are not claimed until it is resumed.
A waiting job that is due but that no live worker serves (its queue, and its task when the
worker runs only its own tasks) carries a ``waiting_reason`` when read through the API, and
the ``hora_jobs_unrunnable{queue,task}`` gauge counts such jobs at each ``/metrics`` scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from importlib import metadata

from hora.clock import Clock
from hora.errors import InvalidPayload
from hora.models import Job, QueueInfo, QueueState, WorkerInfo, Workflow
from hora.observability import JOBS_UNRUNNABLE
from hora.payloads import check_text
from hora.states import JobState
from hora.store import Store

__all__ = ["FORGET_AFTER", "LOST_AFTER", "WorkerService", "hora_version"]

log = logging.getLogger("hora.workers")

#: A worker not seen for this long (seconds; at least three of its heartbeats) is lost.
LOST_AFTER = 60.0
#: Worker rows not seen for this long (seconds) are deleted.
FORGET_AFTER = 86_400.0
#: Rows one heartbeat deletes at most.
FORGET_BATCH = 100
#: Longest queue name, as enqueue accepts it.
MAX_QUEUE_NAME = 200

_WAITING = (JobState.SCHEDULED, JobState.RETRYING)
#: How the claim's flow gates word a waiting job's state_reason (hora.store.gating).
_GATE_REASONS = ("rate_limited:", "concurrency:")


def hora_version() -> str:
    """The installed hora's version, for a worker's row."""
    try:
        return metadata.version("hora")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def worker_status(w: WorkerInfo, now: datetime, lost_after: float = LOST_AFTER) -> str:
    """``live``, ``lost`` or ``stopped`` at ``now``."""
    if w.stopped_at is not None:
        return "stopped"
    limit = max(lost_after, 3 * w.heartbeat)
    return "lost" if (now - w.last_seen_at).total_seconds() > limit else "live"


def check_queue_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_QUEUE_NAME:
        raise InvalidPayload(f"must be a string of 1 to {MAX_QUEUE_NAME} characters",
                             field="queue")
    check_text(queue=name)
    return name


class WorkerService:
    """The workers of the fleet and the queues of one tenant."""

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str,
                 lost_after: float = LOST_AFTER) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id
        self.lost_after = lost_after

    # -- workers ------------------------------------------------------------------------------

    def workers(self, *, all: bool = False) -> list[WorkerInfo]:
        """The live workers (``all=True``: lost and stopped ones too, until they age out),
        newest start first, each with its ``status``."""
        now = self.clock.now()
        out = []
        for w in self._store().list_workers():
            status = worker_status(w, now, self.lost_after)
            if all or status == "live":
                out.append(_with_status(w, status))
        return out

    def live_workers(self) -> list[WorkerInfo]:
        return self.workers()

    # -- queues -------------------------------------------------------------------------------

    def queues(self) -> list[QueueInfo]:
        """This tenant's queues (those with unfinished or dead jobs, paused ones, and those
        a live worker serves), by name: depth by state, the age in seconds of the oldest due
        waiting job, the live workers serving it, paused or not."""
        store = self._store()
        now = self.clock.now()
        depths = {d.queue: d for d in store.queue_depths(self.tenant_id, now=now)}
        states = {s.name: s for s in store.list_queue_states(self.tenant_id)}
        live = self.live_workers()
        names = set(depths) | {n for n, s in states.items() if s.paused}
        names.update(q for w in live for q in w.queues)
        out = []
        for name in sorted(names):
            d = depths.get(name)
            s = states.get(name)
            oldest = None if d is None or d.oldest_due_at is None else d.oldest_due_at
            out.append(QueueInfo(
                name=name, scheduled=d.scheduled if d else 0,
                retrying=d.retrying if d else 0, running=d.running if d else 0,
                dead=d.dead if d else 0, due=d.due if d else 0,
                oldest_due_age=None if oldest is None
                else max(0.0, round((now - oldest).total_seconds(), 3)),
                workers=sum(1 for w in live if name in w.queues),
                paused=bool(s and s.paused), paused_at=s.paused_at if s else None,
                reason=s.reason if s else None))
        return out

    def pause_queue(self, name: str, reason: str | None = None) -> QueueState:
        """Stop claiming this tenant's jobs on queue ``name`` (jobs running go on; new ones
        are accepted and wait) until ``resume_queue``."""
        check_queue_name(name)
        if reason is not None:
            check_text(reason=reason)
            if len(reason) > 500:
                raise InvalidPayload("must be at most 500 characters", field="reason")
        return self._store().set_queue_paused(self.tenant_id, name, paused=True,
                                              now=self.clock.now(), reason=reason)

    def resume_queue(self, name: str) -> QueueState:
        """Claim the queue's jobs again."""
        check_queue_name(name)
        return self._store().set_queue_paused(self.tenant_id, name, paused=False,
                                              now=self.clock.now())

    # -- what cannot run ----------------------------------------------------------------------

    def waiting_reasons(self, jobs: Iterable[Job]) -> dict[str, str]:
        """Per job id, why a waiting job is not being run: a flow gate passed it over (its
        rate limit or concurrency key), its queue is paused, or no live worker serves its
        task on its queue. One read of the workers (and of the queue states) for the whole
        page, and none when no job of it waits due."""
        now = self.clock.now()
        jobs = list(jobs)
        # A flow gate's reason (rate_limited: ..., concurrency: ...), recorded by the claim
        # that passed the job over; a paused queue or a missing worker says more and wins.
        out = {j.id: j.state_reason for j in jobs
               if j.state in _WAITING and j.state_reason is not None
               and j.state_reason.startswith(_GATE_REASONS)}
        due = [j for j in jobs if j.state in _WAITING and j.due_at <= now]
        if not due:
            return out
        store = self._store()
        paused = {s.name for s in store.list_queue_states(self.tenant_id) if s.paused}
        live = self.live_workers()
        for j in due:
            if j.queue in paused:
                out[j.id] = f"queue {j.queue} is paused"
            elif not any(w.serves(j.queue, j.task) for w in live):
                out[j.id] = f"no live worker serves task {j.task} on queue {j.queue}"
        return out

    def workflow_waiting_reasons(self, workflows: Iterable[Workflow]) -> dict[str, str]:
        """Per workflow id, why an unfinished workflow cannot make progress: no live worker
        has its definition, so its runs (jobs of ``hora.workflow:<name>``) wait unclaimed
        whatever it waits for. One read of the workers for the whole page, none when every
        workflow of it is final."""
        open_ = [w for w in workflows if not w.is_final]
        if not open_:
            return {}
        live = self.live_workers()
        return {w.id: f"no live worker runs workflow {w.name}" for w in open_
                if not any(w.name in worker.workflows for worker in live)}

    def unrunnable(self, *, queues: Sequence[str] | None = None,
                   workers: Sequence[WorkerInfo] | None = None,
                   ) -> list[tuple[str, str, int]]:
        """(queue, task, count) of due waiting jobs of every tenant that no live worker
        (or none of ``workers``) serves."""
        live = self.live_workers() if workers is None else list(workers)
        rows = self._store().due_waiting_tasks(now=self.clock.now(), queues=queues)
        return [(q, t, n) for q, t, n in rows if not any(w.serves(q, t) for w in live)]

    def refresh_unrunnable_metric(self) -> None:
        """Set ``hora_jobs_unrunnable{queue,task}`` from the store (at a /metrics scrape)."""
        found = {(q, t): n for q, t, n in self.unrunnable()}
        for labels in list(_GAUGED):
            if labels not in found:
                JOBS_UNRUNNABLE.labels(*labels).set(0)
        for labels, n in found.items():
            JOBS_UNRUNNABLE.labels(*labels).set(n)
            _GAUGED.add(labels)


#: The (queue, task) label sets the gauge has shown, so a cleared one drops to 0.
_GAUGED: set[tuple[str, str]] = set()


def _with_status(w: WorkerInfo, status: str) -> WorkerInfo:
    from dataclasses import replace

    return replace(w, status=status)
