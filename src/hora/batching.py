"""Batching: a task declared ``@app.task(batch=Batch(max_size, max_wait, key))`` runs once
per batch of jobs, with the list of their payloads (docs/flow.md, "Batching").

Batched jobs are ordinary jobs: each keeps its own state, attempts, retry policy and history.
Only the way a worker takes them differs. The normal claim leaves them alone; instead the
worker's ``Batcher``:

* **reserves** due jobs of its batched tasks (``Store.reserve_due``: leased, still waiting,
  oldest first) and buffers them in memory per (task, key value), each waiting job showing
  the reason ``batching: <key>=<value>``;
* **starts** a group when it holds ``max_size`` jobs, when its oldest job has been due for
  ``max_wait``, or when the buffer is full: all its jobs in one statement
  (``Store.start_batch``: running, attempt + 1, one lease), then the handler once with the
  list of payloads;
* **records** each job's outcome through the worker's batched finish path: a list of one
  item per job (a result, or an exception instance: that job fails by its own policy); a
  raised error fails every job by its own policy; any other value is every job's result.

The worker's heartbeat extends the leases of buffered and running jobs alike (they are all
leased to it); a dead worker's buffer comes back when its leases expire, and its running
batch is rescued job by job like any running job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind, StatusCode

from hora.context import (
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    BatchContext,
    JobContext,
    LogCapture,
    _capture,
    _current_batch,
)
from hora.errors import Cancel, StoreError, StoreUnavailable
from hora.flow import Batch, key_value
from hora.models import ClaimedJob
from hora.observability import JOBS_IN_FLIGHT, tracer, tracing
from hora.states import JobState

if TYPE_CHECKING:
    from hora.store import LeaseStatus
    from hora.worker import Worker, _Running

log = logging.getLogger("hora.worker")

#: The most jobs one reservation statement leases.
RESERVE_PAGE = 1000


def batch_of(task: object) -> Batch | None:
    """The task's ``Batch`` declaration, or None for a task that runs job by job."""
    flow = getattr(task, "flow", None)
    return None if flow is None else flow.batch


def per_item(result: Any, n: int) -> list[Any]:
    """A batch handler's answer as one value per job: a list of ``n`` items is per item (a
    result, or an exception instance: that job fails by its own policy); a list of another
    length holding an exception is an error for every job (its items cannot be matched to
    the jobs); anything else is every job's result."""
    if isinstance(result, list):
        if len(result) == n:
            return list(result)
        if any(isinstance(x, BaseException) for x in result):
            err = ValueError(f"the batch handler returned {len(result)} outcomes for {n} "
                             "jobs: return one per job, in the order of the payloads")
            return [err] * n
    return [result] * n


def merged_logs(shared: LogCapture | None, own: LogCapture | None) -> LogCapture | None:
    """One job's log lines: the batch's (logged outside ``batch.job(i)``) and its own, in
    time order, within the per-attempt bounds."""
    if shared is None and own is None:
        return None
    if shared is None or not (shared.lines or shared.dropped):
        return own
    if own is None or not (own.lines or own.dropped):
        return shared
    out = LogCapture()
    lines = sorted([*shared.lines, *own.lines], key=lambda ln: float(ln["at"]))
    out.dropped = shared.dropped + own.dropped
    for line in lines:
        cost = len(str(line["message"]).encode("utf-8", "replace"))
        if len(out.lines) >= MAX_LOG_LINES or out.size + cost > MAX_LOG_BYTES:
            out.dropped += 1
            continue
        out.size += cost
        out.lines.append(line)
    return out


@dataclass(slots=True)
class _Group:
    """Buffered jobs of one (task, key value), waiting to be started together."""

    task: str
    key: str
    spec: Batch
    jobs: dict[str, ClaimedJob] = field(default_factory=dict)
    #: The earliest due instant of its jobs (kept as jobs come and go).
    oldest: datetime | None = None

    def add(self, job: ClaimedJob) -> None:
        self.jobs[job.id] = job
        if self.oldest is None or job.due_at < self.oldest:
            self.oldest = job.due_at

    def take(self, n: int) -> list[ClaimedJob]:
        """The first ``n`` jobs (in the order they were reserved: oldest first)."""
        out = list(itertools.islice(self.jobs.values(), n))
        for job in out:
            del self.jobs[job.id]
        self._recompute()
        return out

    def remove(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self._recompute()

    def _recompute(self) -> None:
        self.oldest = min((j.due_at for j in self.jobs.values()), default=None)

    def deadline(self) -> datetime:
        assert self.oldest is not None
        wait = self.spec.max_wait
        return self.oldest + (wait if isinstance(wait, timedelta) else timedelta(seconds=wait))


class Batcher:
    """The worker's batching: buffers, groups and running batches (see the module doc).

    Called from the worker's loop only; the worker passes itself (for its clock, store
    calls, slots and outcome path) and its class of in-flight job records.
    """

    def __init__(self, worker: Worker, run_type: type[_Running]) -> None:
        self.w = worker
        self._run_type = run_type
        #: The batched tasks this worker runs, by name (set when the worker starts).
        self.specs: dict[str, Batch] = {}
        self.groups: dict[tuple[str, str], _Group] = {}
        #: job id -> its group's key, for every buffered job
        self.buffered: dict[str, tuple[str, str]] = {}
        #: job id -> its record, for every job of a running batch
        self.runs: dict[str, _Running] = {}
        self.batches: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None
        self._starting: set[asyncio.Future[list[str]]] = set()
        #: Jobs whose start failed in a way that may have committed all the same.
        self._in_doubt: set[str] = set()
        #: Whether the last reservation came back full (more may be due).
        self._more = True

    # -- what the worker asks -----------------------------------------------------------------

    def start(self) -> None:
        self.specs = {name: spec for name, t in self.w.app.tasks.items()
                      if (spec := batch_of(t)) is not None}

    @property
    def in_flight(self) -> int:
        """Running batches: each takes one of the worker's slots."""
        return len(self.batches)

    @property
    def active(self) -> bool:
        """Whether this worker holds leases for batching (buffered or running jobs)."""
        return bool(self.buffered or self.runs)

    @property
    def max_buffered(self) -> int:
        return max(self.w.max_held, max((s.max_size for s in self.specs.values()), default=1))

    def next_deadline(self) -> datetime | None:
        """When the earliest buffered group must start (None: nothing buffered)."""
        return min((g.deadline() for g in self.groups.values()), default=None)

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self.batches)

    # -- reserving and starting ---------------------------------------------------------------

    async def poll(self) -> None:
        """Reserve due jobs of the batched tasks while the buffer has room, then start every
        group that is ready and for which a slot is free."""
        w = self.w
        if not self.specs or w._stopping:
            return
        tasks = sorted(self.specs)
        fresh: list[str] = []
        while not w._stopping:
            room = self.max_buffered - len(self.buffered)
            limit = min(room, RESERVE_PAGE)
            if limit <= 0:
                break
            now = w.clock.now()
            try:
                jobs = await w._db(functools.partial(
                    w.app.store.reserve_due, owner=w.id, queues=w.queues, tasks=tasks,
                    now=now, lease_until=now + timedelta(seconds=w.lease), limit=limit))
            except StoreError as e:
                _store_failed("reserving jobs to batch failed, retrying after the poll "
                              "interval", e)
                break
            for job in jobs:
                if self._buffer(job):
                    fresh.append(job.id)
            self._more = len(jobs) == limit
            if not self._more:
                break
            self.start_ready()  # a full page: start what is full before reserving more
        self.start_ready()
        # Jobs of groups that wait to fill up (not those of full groups, about to start).
        waiting = [(job_id, self._reason(gk)) for job_id in fresh
                   if (gk := self.buffered.get(job_id)) is not None
                   and len(self.groups[gk].jobs) < self.specs[gk[0]].max_size]
        if waiting:
            with contextlib.suppress(StoreError):  # only the waiting reason: never fatal
                await w._db(functools.partial(w.app.store.mark_batching, waiting,
                                              owner=w.id))
        self._arm_timer()

    def _buffer(self, job: ClaimedJob) -> bool:
        if job.id in self.buffered or job.id in self.runs:
            return False
        spec = self.specs.get(job.task)
        if spec is None:  # pragma: no cover - reserve_due only returns our tasks
            return False
        try:
            key = key_value(spec.key, job.payload, task=job.task, what="is batched")
        except Exception as e:  # a key that cannot be computed: a batch of its own
            log.warning("job %s (%s): cannot compute its batch key (%s); batching it alone",
                        job.id, job.task, e)
            key = f"\x00{job.id}"
        gk = (job.task, key)
        group = self.groups.get(gk)
        if group is None:
            group = self.groups[gk] = _Group(job.task, key, spec)
        group.add(job)
        self.buffered[job.id] = gk
        return True

    def _reason(self, gk: tuple[str, str]) -> str:
        task, key = gk
        spec = self.specs[task]
        if spec.key is None:
            return f"batching: {task}"
        label = spec.key if isinstance(spec.key, str) else getattr(spec.key, "__name__", "key")
        return f"batching: {label}={key}"[:500]

    def _free_slots(self) -> int:
        w = self.w
        return w.concurrency - len(w._running) - w._backlog() - self.in_flight

    def start_ready(self) -> None:
        """Start the groups that are full, due (``max_wait`` after their oldest job), or
        the oldest ones while the buffer is full, as slots allow."""
        w = self.w
        if w._stopping:
            return
        now = w.clock.now()
        ready: list[tuple[tuple[str, str], list[ClaimedJob]]] = []
        free = self._free_slots()
        for gk in sorted(self.groups, key=lambda k: self.groups[k].deadline()):
            group = self.groups.get(gk)
            while group is not None and free > len(ready):
                full = len(group.jobs) >= group.spec.max_size
                crowded = len(self.buffered) >= self.max_buffered
                if not (full or crowded or now >= group.deadline()):
                    break
                take = group.take(group.spec.max_size)
                for job in take:
                    del self.buffered[job.id]
                if not group.jobs:
                    del self.groups[gk]
                    group = None
                ready.append((gk, take))
        if not ready:
            return
        # Every ready batch starts in one statement; each batch's task awaits it.
        start = asyncio.ensure_future(w._db(functools.partial(  # noqa: RUF006 (kept below)
            w.app.store.start_batch, [j.id for _, take in ready for j in take], owner=w.id,
            now=now, lease_until=now + timedelta(seconds=w.lease))))
        self._starting.add(start)
        start.add_done_callback(self._started)
        for gk, take in ready:
            task = asyncio.create_task(self._run_batch(gk, take, start, now),
                                       name=f"hora-batch {gk[0]}")
            self.batches.add(task)
            task.add_done_callback(self._batch_done)

    def _started(self, start: asyncio.Future[list[str]]) -> None:
        self._starting.discard(start)
        if not start.cancelled():
            start.exception()  # retrieved: each batch's task handles it

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self.batches.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a batch ended with an unexpected error", exc_info=task.exception())
        w = self.w
        if w._wake is not None and (self.groups or self._more or w._until_idle):
            w._wake.set()  # a slot is free: start the next group, reserve more

    def _arm_timer(self) -> None:
        """Wake the worker when the earliest buffered group is due to start. A group past
        its deadline waits for a slot, and a freed slot wakes the worker already."""
        now = self.w.clock.now()
        at = min((d for g in self.groups.values() if (d := g.deadline()) > now), default=None)
        if at == self._timer_at and self._timer is not None and not self._timer.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, at
        if at is not None:
            self._timer = asyncio.create_task(self._wake_at(at), name="hora-batch-timer")

    async def _wake_at(self, at: datetime) -> None:
        await self.w.clock.sleep_until(at)
        if self.w._wake is not None:
            self.w._wake.set()

    # -- running one batch --------------------------------------------------------------------

    async def _run_batch(self, gk: tuple[str, str], jobs: list[ClaimedJob],
                         start: asyncio.Future[list[str]], now: datetime) -> None:
        w = self.w
        name, key = gk
        try:
            ids = await asyncio.shield(start)
        except Exception as e:
            # Still ours (leased): back into the buffer, started by a later pass.
            _store_failed(f"starting a batch of {len(jobs)} failed, will retry", e)
            self._in_doubt.update(j.id for j in jobs)  # the start may have committed
            for job in jobs:
                self._buffer(job)
            return
        started = set(ids)
        doubt = [j for j in jobs if j.id not in started and j.id in self._in_doubt]
        if doubt:
            started |= await self._started_before(doubt)
        self._in_doubt.difference_update(j.id for j in jobs)
        if len(started) < len(jobs):
            log.debug("batch of %s: %d job(s) were cancelled or taken before it started",
                      name, len(jobs) - len(started))
        jobs = [j for j in jobs if j.id in started]
        if not jobs:
            return
        task = w.app.tasks[name]
        runs: list[_Running] = []
        for job in jobs:
            ctx = JobContext(job_id=job.id, task=job.task, attempt=job.attempt + 1,
                             max_attempts=job.max_attempts, correlation_id=job.correlation_id,
                             tenant_id=job.tenant_id, due_at=job.due_at, started_at=now,
                             worker_id=w.id)
            run = self._run_type(job, ctx)
            run.task = asyncio.current_task()
            self.runs[job.id] = run
            runs.append(run)
            w._task_metrics(job.task).lateness.observe(
                max(0.0, (now - job.due_at).total_seconds()))
        w.stats["started"] += len(runs)
        JOBS_IN_FLIGHT.inc(len(runs))
        captures = tuple(LogCapture() if w.capture_logs else None for _ in runs)
        shared = LogCapture() if w.capture_logs else None
        bctx = BatchContext(task=name, key=key, jobs=tuple(r.ctx for r in runs),
                            _captures=captures)
        timeouts = [j.timeout for j in jobs if j.timeout is not None]
        timeout = min(timeouts) if timeouts else task.timeout
        began = time.perf_counter()
        span = None
        if tracing():
            span = tracer.start_span(f"hora.batch {name}", kind=SpanKind.CONSUMER, attributes={
                "hora.task": name, "hora.jobs": len(runs), "hora.batch_key": key,
                "hora.tenant_id": jobs[0].tenant_id})
        items: list[Any] | None = None
        try:
            token = _current_batch.set(bctx)
            logs_token = _capture.set(shared)
            try:
                result = await w._call(task, ([j.payload for j in jobs],), {}, timeout, bctx)
                items = per_item(result, len(runs))
            except asyncio.CancelledError:
                items = None
                if not any(r.released or r.ctx.cancelled or r.lost for r in runs):
                    raise
            except Exception as e:
                items = [e] * len(runs)
            finally:
                _capture.reset(logs_token)
                _current_batch.reset(token)
            self._record(runs, items, shared, captures, time.perf_counter() - began)
            if span is not None:
                failed = sum(isinstance(x, BaseException) for x in items or ())
                span.set_attribute("hora.failed", failed)
                if failed:
                    span.set_status(StatusCode.ERROR, f"{failed} of {len(runs)} job(s) failed")
        finally:
            if span is not None:
                span.end()
            for run in runs:
                if self.runs.get(run.job.id) is run:
                    del self.runs[run.job.id]
            JOBS_IN_FLIGHT.dec(len(runs))

    async def _started_before(self, jobs: list[ClaimedJob]) -> set[str]:
        """Of jobs whose earlier start failed in a way that may have committed, those it did
        start (running, this worker's, that attempt): they run in this batch, not never."""
        w = self.w
        out: set[str] = set()
        for job in jobs:
            try:
                row = await w._db(functools.partial(
                    w.app.store.get_job, job.id, tenant_id=job.tenant_id, history=False))
            except Exception as e:  # unreadable: its lease will tell (expiry, rescue)
                _store_failed(f"job {job.id}: cannot read it back after a failed start", e)
                continue
            if (row.state is JobState.RUNNING and row.lease_owner == w.id
                    and row.attempt == job.attempt + 1):
                out.add(job.id)
        return out

    def _record(self, runs: list[_Running], items: list[Any] | None,
                shared: LogCapture | None, captures: tuple[LogCapture | None, ...],
                seconds: float) -> None:
        """Each job's outcome into the worker's next flush."""
        w = self.w
        for i, run in enumerate(runs):
            metrics = w._task_metrics(run.job.task)
            if run.lost:
                metrics.ended("lost", seconds)
                continue
            run.logs = merged_logs(shared, captures[i])
            if items is None:  # the batch was interrupted: cancelled or released
                if run.ctx.cancelled:
                    outcome = w._error_outcome(run, Cancel(run.ctx.cancel_reason
                                                           or "cancelled"), w._policy(run.job))
                else:
                    outcome = w._released(run)
            else:
                item = items[i]
                outcome = (w._error_outcome(run, item, w._policy(run.job))
                           if isinstance(item, BaseException) else w._result_outcome(run, item))
            metrics.ended(outcome.outcome, seconds)
            w._push_outcome(outcome, run.job.tenant_id)

    # -- leases, cancellation, shutdown -------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, tuple[str, str]], dict[str, _Running]]:
        """What is held before a heartbeat call (only that can be judged by its answer)."""
        return dict(self.buffered), dict(self.runs)

    def after_heartbeat(self, status: LeaseStatus,
                        before: tuple[dict[str, tuple[str, str]], dict[str, _Running]]) -> None:
        buffered, runs = before
        for job_id, gk in buffered.items():
            if job_id not in status.held and self.buffered.get(job_id) == gk:
                self._unbuffer(job_id)  # cancelled, or the reservation was taken
        for job_id, run in runs.items():
            if job_id not in status.held and self.runs.get(job_id) is run:
                self.lose(job_id, "heartbeat found another owner")
        # (Cancel requests reach self.cancel through the worker's _cancel_local.)

    def _unbuffer(self, job_id: str) -> None:
        gk = self.buffered.pop(job_id, None)
        if gk is None:
            return
        group = self.groups.get(gk)
        if group is not None:
            group.remove(job_id)
            if not group.jobs:
                del self.groups[gk]

    def lose(self, job_id: str, why: str) -> bool:
        """A job of a running batch lost its lease: its outcome will not be written (the
        rest of the batch goes on)."""
        run = self.runs.get(job_id)
        if run is None or run.lost:
            return run is not None
        run.lost = True
        self.w.stats["lost"] += 1
        log.warning("job %s: lease lost (%s); its batch goes on without it", job_id, why)
        run.ctx.request_cancel(why)
        return True

    def cancel(self, job_id: str, reason: str | None) -> bool:
        """A cancel request for a job this batcher holds: a buffered one is dropped (the
        store has cancelled it); a running one sees it on its context (``current_batch()
        .jobs[i].cancelled``): the handler decides, as a sync handler does for one job."""
        if job_id in self.buffered:
            self._unbuffer(job_id)
            return True
        run = self.runs.get(job_id)
        if run is None:
            return False
        run.ctx.request_cancel(reason)
        return True

    def release_all(self) -> None:
        """Shutdown past the grace period: interrupt running batches; their jobs are
        released (back to waiting, the attempt recorded as released)."""
        for run in self.runs.values():
            run.released = True
        for task in self.batches:
            task.cancel()

    def clear(self) -> None:
        """Shutdown: forget the buffer (the store releases the reservations)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        self.groups.clear()
        self.buffered.clear()


def _store_failed(what: str, e: BaseException) -> None:
    if isinstance(e, StoreUnavailable):
        log.debug("%s: %s", what, e)
    else:
        log.warning("%s: %s", what, e, exc_info=not isinstance(e, StoreError))
