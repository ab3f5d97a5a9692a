"""The worker: claim -> execute -> record the outcome, in batches.

One asyncio loop runs five cooperating loops:

* **claim** takes as many due jobs as there are free slots (they become ``running`` with a
  lease) and *reserves* jobs due within ``lookahead`` (leased, still ``scheduled``);
* **timers** hold reserved jobs and start each on its instant, not at the next poll;
* **flush** writes outcomes (and the starts of reserved jobs) in one transaction per batch —
  group commit: whatever finished while the previous write was in flight goes in the next;
* **heartbeat** extends every lease this worker holds in one statement, and learns which
  jobs were cancelled or lost;
* **rescue** returns jobs whose worker died (lease expired) to the queue.

Database calls run in a small thread pool (one thread for SQLite, whose writes are serial
anyway). Async handlers run on the loop; sync handlers in their own thread pool.
A job's outcome is applied only if this worker still holds its lease for that attempt, so a
job whose lease was lost is never completed twice.

While the database is unreachable every loop keeps its work and retries with a bounded
backoff; the store logs the outage once when it starts and once when it ends
(``StoreUnavailable`` is a debug line here, other store errors a warning each).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import reprlib
import signal
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from hora.batching import Batcher, batch_of, per_item
from hora.clock import SkippingClock
from hora.context import (
    BatchContext,
    JobContext,
    LogCapture,
    _capture,
    _current,
    install_log_capture,
)
from hora.errors import Cancel, Fail, NotFound, Retry, StoreError, StoreUnavailable, UnknownTask
from hora.ids import new_id
from hora.limits import (
    MAX_DELAY,
    MAX_RESULT_BYTES,
    TooLarge,
    check_int,
    check_json_shape,
    check_json_size,
    check_seconds,
)
from hora.models import DEFAULT_QUEUE, ClaimedJob, ErrorInfo, WorkerInfo
from hora.observability import JOBS_IN_FLIGHT, TaskMetrics, tracer, tracing
from hora.retry import RetryPolicy
from hora.states import BURY, CANCEL, RELEASE, RETRY, SUCCEED, Move
from hora.store import Outcome
from hora.waiting import JOB_DONE_STATES, job_key
from hora.workers import FORGET_AFTER, FORGET_BATCH, hora_version

if TYPE_CHECKING:
    from hora.app import Hora, Task

log = logging.getLogger("hora.worker")
T = TypeVar("T")

TRACEBACK_LIMIT = 16_000


class _Running:
    """One job in flight on this worker."""

    __slots__ = ("ctx", "job", "logs", "lost", "released", "task")

    def __init__(self, job: ClaimedJob, ctx: JobContext) -> None:
        self.job = job
        self.ctx = ctx
        self.logs: LogCapture | None = None
        self.task: asyncio.Task[None] | None = None
        self.lost = False
        self.released = False

#: The longest lease, heartbeat, poll, lookahead, grace period... a worker accepts.
MAX_WORKER_SECONDS = 86_400.0
#: The most slots, threads, batch size or held jobs a worker accepts.
MAX_WORKER_COUNT = 1_000_000


class Worker:
    """Runs the jobs of ``app``'s tasks from the given queues.

    Defaults suit short jobs: 100 slots, sync handlers on up to 16 threads, a 30 s
    lease renewed every 10 s, jobs due in the next 5 s held in memory to start on time.
    """

    def __init__(self, app: Hora, *, queues: tuple[str, ...] | list[str] = (DEFAULT_QUEUE,),
                 concurrency: int = 100, threads: int = 16, batch_size: int = 256,
                 poll_interval: float = 0.5, lease: float = 30.0,
                 heartbeat: float | None = None, lookahead: float = 5.0,
                 max_held: int = 2000, rescue_interval: float | None = None,
                 grace_period: float = 30.0, worker_id: str | None = None,
                 only_known_tasks: bool = True, schedules: bool = True,
                 schedule_interval: float = 1.0, capture_logs: bool = True,
                 gate_ahead: float = 0.25) -> None:
        # Within sane ranges (hora.limits style): a lease of 1e308 s would overflow the
        # first instant computed from it.
        for what, value, zero in (("lease", lease, False), ("poll_interval", poll_interval, False),
                                  ("heartbeat", heartbeat, False), ("lookahead", lookahead, True),
                                  ("rescue_interval", rescue_interval, False),
                                  ("grace_period", grace_period, True),
                                  ("schedule_interval", schedule_interval, False),
                                  ("gate_ahead", gate_ahead, True)):
            if value is not None:
                check_seconds(value, what, most=MAX_WORKER_SECONDS, zero=zero)
        for what, count, least in (("concurrency", concurrency, 1), ("threads", threads, 1),
                                   ("batch_size", batch_size, 1), ("max_held", max_held, 0)):
            check_int(count, what, least=least, most=MAX_WORKER_COUNT)
        self.app = app
        self.clock = app.clock
        self.queues = tuple(queues)
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease = lease
        self.heartbeat = heartbeat if heartbeat is not None else lease / 3
        self.lookahead = lookahead
        if gate_ahead >= lease:
            raise ValueError(f"gate_ahead ({gate_ahead} s) must be shorter than the lease "
                             f"({lease} s): a job held that long would lose its lease")
        #: A rate-limited job its gates admit within this many seconds starts in this claim,
        #: held until its instant (docs/flow.md): fewer, fuller claims under a busy limit.
        self.gate_ahead = gate_ahead
        self.max_held = max_held
        self.rescue_interval = rescue_interval if rescue_interval is not None else lease / 2
        self.grace_period = grace_period
        self.only_known_tasks = only_known_tasks
        #: Keep what each attempt's handler logs with the attempt (``hora.context``).
        self.capture_logs = capture_logs
        # Every worker also fires due schedules (safe with any number of them: firing is
        # idempotent per occurrence and schedulers skip each other's locked schedules).
        self.schedules = schedules
        self.schedule_interval = schedule_interval
        self._next_schedule_pass: datetime | None = None
        self._schedule_due_at: datetime | None = None
        self._until: datetime | None = None
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-12:]}"
        self._threads = threads
        # counters, for logs, benchmarks and tests
        self.stats = {"started": 0, "succeeded": 0, "retried": 0, "dead": 0, "cancelled": 0,
                      "lost": 0, "released": 0}
        self._running: dict[str, _Running] = {}
        self._metrics: dict[str, TaskMetrics] = {}
        self._held: dict[str, tuple[ClaimedJob, asyncio.Task[None]]] = {}
        # reserved jobs whose instant came, waiting for a free slot
        self._ready: deque[ClaimedJob] = deque()
        self._early_cancels: dict[str, str | None] = {}
        self._unwritten = 0  # outcomes not yet in the database: their slots are still taken
        self._outcomes: list[Outcome] = []
        # The tenant of each job with an unwritten outcome, to read the job back; and the
        # (job, attempt) whose write failed in a way that may have committed all the same.
        self._outcome_tenants: dict[str, str] = {}
        self._in_doubt: set[tuple[str, int]] = set()
        self._starts: list[tuple[str, datetime]] = []
        self._stopping = False
        #: True once this worker hears other processes' enqueues (PostgreSQL LISTEN).
        self.listening = False
        self._maybe_more = True
        #: When a flow gate pushed jobs back, the instant to claim again (the store's
        #: ``Claimed.wake_at``): the idle wait ends then instead of at the next poll.
        self._gate_wake: datetime | None = None
        self._until_idle = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._flush_wanted: asyncio.Event | None = None
        self._flushing = False
        self._flush_lock: asyncio.Lock | None = None
        self._db_pool: ThreadPoolExecutor | None = None
        self._handler_pool: ThreadPoolExecutor | None = None
        self._stop_event: asyncio.Event | None = None
        #: Batched tasks (``@app.task(batch=...)``): reserved, buffered and run per batch.
        self._batches = Batcher(self, _Running)

    # -- public control -----------------------------------------------------------------------

    def run_sync(self, **kwargs: Any) -> None:
        """Run until stopped (SIGTERM/SIGINT), from sync code."""
        asyncio.run(self.run(**kwargs))

    async def run(self, *, until_idle: bool = False, handle_signals: bool = False,
                  until: datetime | None = None) -> None:
        """Process jobs until ``stop()`` (or a signal, with ``handle_signals``).

        ``until_idle`` returns once nothing is running, held or unwritten and nothing falls
        due within ``lookahead``; with a clock that can skip (a ``SkippingClock``, such as
        ``FakeClock``) it instead skips the clock to each next due job until none is left,
        so months of retries and schedules run in milliseconds.
        ``until`` bounds that skipping (a recurring schedule never runs out): the run ends
        once nothing is left to do before that instant.
        """
        await self._apply_declared_schedules()
        if self.capture_logs:
            install_log_capture()
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._stop_event = asyncio.Event()
        self._stopping = False
        self._unwritten = 0
        self._until_idle = until_idle
        self._until = until
        self._next_schedule_pass = None
        self._batches.start()
        self._db_pool = ThreadPoolExecutor(self.app.store.max_concurrency,
                                           thread_name_prefix="hora-db")
        self._handler_pool = ThreadPoolExecutor(self._threads, thread_name_prefix="hora-job")
        if handle_signals:
            self._install_signals()
        # After the signal handlers: run() installs them before its first await.
        await self._register_tasks()
        self.app._workers.add(self)
        loops = [
            asyncio.create_task(self._flush_loop(), name="hora-flush"),
            asyncio.create_task(self._heartbeat_loop(), name="hora-heartbeat"),
            asyncio.create_task(self._rescue_loop(), name="hora-rescue"),
            asyncio.create_task(self._listen_loop(), name="hora-listen"),
        ]
        for t in loops:
            t.add_done_callback(self._loop_died)
        log.info("worker %s started: queues=%s concurrency=%d", self.id, self.queues,
                 self.concurrency)
        try:
            await self._register()
            await self._claim_loop(until_idle)
            if until_idle and not self._stopping:
                await self._warn_unrunnable()
        finally:
            self.app._workers.discard(self)
            await self._shutdown(loops)
            log.info("worker %s stopped: %s", self.id, self.stats)

    def info(self) -> WorkerInfo:
        """This worker's row in ``hora_workers`` (``app.workers()`` lists them)."""
        now = self.clock.now()
        tasks = self._tasks_filter()
        return WorkerInfo(
            id=self.id, host=socket.gethostname(), pid=os.getpid(), version=hora_version(),
            queues=self.queues, tasks=None if tasks is None else tuple(tasks),
            workflows=tuple(sorted(self.app.workflows.definitions)),
            concurrency=self.concurrency, heartbeat=self.heartbeat, started_at=now,
            last_seen_at=now, running=self.in_flight)

    async def _register(self) -> None:
        """Write this worker's row; a failure is logged, never fatal (the next heartbeat
        that finds no row writes it again)."""
        try:
            await self._db(functools.partial(self.app.store.register_worker, self.info()))
        except Exception as e:
            _store_failed("could not register this worker in hora_workers", e)

    async def _touch(self) -> None:
        """Refresh this worker's row (and age out rows of workers gone for a day)."""
        now = self.clock.now()
        try:
            found, _forgotten = await self._db(functools.partial(
                self.app.store.touch_worker, self.id, now=now, running=self.in_flight,
                forget_before=now - timedelta(seconds=FORGET_AFTER),
                forget_limit=FORGET_BATCH))
        except Exception as e:  # a heartbeat must outlive any one failure
            _store_failed("worker heartbeat failed", e)
            return
        if not found:  # registration failed, or the row aged out during a long outage
            await self._register()

    async def _warn_unrunnable(self) -> None:
        """``until_idle`` is done, yet jobs on its queues may be due that it has no handler
        for: say so, naming the tasks, rather than exit as if all were done."""
        if not self.only_known_tasks:
            return
        try:
            rows = await self._db(functools.partial(
                self.app.store.due_waiting_tasks, now=self.clock.now(), queues=self.queues))
        except Exception as e:
            _store_failed("could not count the due jobs left", e)
            return
        left = [(q, t, n) for q, t, n in rows if t not in self.app.tasks]
        if left:
            total = sum(n for _, _, n in left)
            names = ", ".join(f"{t} (queue {q}: {n})" for q, t, n in left[:20])
            log.warning("worker %s idle with %d due job(s) left that it has no handler for: "
                        "%s", self.id, total, names)
    async def _register_tasks(self) -> None:
        """The app's tasks and workflows go into the store's registry as the worker starts,
        so every surface knows their names, defaults and payload schema (``hora.registry``)."""
        try:
            count = await asyncio.to_thread(self.app.registry.register)
        except Exception as e:  # the registry is for other processes: never a reason to stop
            log.warning("worker %s could not register its tasks: %s", self.id, e)
            return
        if count:
            log.debug("worker %s registered %d task(s) and workflow(s)", self.id, count)

    async def _apply_declared_schedules(self) -> None:
        """Schedules declared in code (``@app.schedule``) are ensured as a worker starts, so
        deploying the code is what changes them (``ScheduleService.apply_declared``)."""
        if self.app.schedules.declared:
            report = await asyncio.to_thread(self.app.schedules.apply_declared)
            log.info("%s", report)

    def stop(self) -> None:
        """Stop claiming; in-flight jobs get ``grace_period`` to finish. Thread-safe."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._begin_stop)

    def notify(self, earliest_due: datetime) -> None:
        """An enqueue in this process: wake the claim loop if the job is due soon."""
        loop = self._loop
        if loop is None or self._wake is None or loop.is_closed():
            return
        if earliest_due <= self.clock.now() + timedelta(seconds=self.lookahead):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

    def notify_cancel(self, job_id: str, reason: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._cancel_local, job_id, reason)

    @property
    def in_flight(self) -> int:
        """Jobs running here (those of running batches included)."""
        return len(self._running) + len(self._batches.runs)

    # -- the claim loop -----------------------------------------------------------------------

    def _tasks_filter(self) -> list[str] | None:
        return sorted(self.app.tasks) if self.only_known_tasks else None

    def _claim_filter(self) -> list[str] | None:
        """The claim's tasks: not the batched ones, which the batcher reserves."""
        tasks = self._tasks_filter()
        if tasks is None or not self._batches.specs:
            return tasks
        return [t for t in tasks if t not in self._batches.specs]

    async def _claim_loop(self, until_idle: bool) -> None:
        assert self._wake is not None
        store = self.app.store
        tasks = self._claim_filter()
        while not self._stopping:
            self._wake.clear()
            await self._run_schedules()
            self._start_ready()
            await self._batches.poll()
            # Up to one slot's worth of outcomes may wait for the database while the next jobs
            # run (double buffering: a claim overlaps the previous batch's write); beyond that
            # a job holds its slot until its outcome is written, so a slow database pushes back
            # on claiming instead of piling up outcomes whose leases would run out.
            free = (self.concurrency - len(self._running) - self._backlog()
                    - self._batches.in_flight)
            room = self.max_held - len(self._held)
            limit = min(free, self.batch_size)
            reserve = min(room, self.batch_size) if self.lookahead > 0 else 0
            if tasks == []:  # every task is batched: nothing for the claim
                limit = reserve = 0
            started: list[ClaimedJob] = []
            if limit > 0 or reserve > 0:
                now = self.clock.now()
                try:
                    claimed = await self._db(
                        functools.partial(
                            store.claim_jobs, owner=self.id, queues=self.queues, tasks=tasks,
                            now=now, lease_until=now + timedelta(seconds=self.lease),
                            limit=limit, horizon=now + timedelta(seconds=self.lookahead),
                            reserve_limit=reserve,
                            gate_ahead=timedelta(seconds=self.gate_ahead)))
                    started, reserved = claimed
                    wake = getattr(claimed, "wake_at", None)
                    if self._gate_wake is not None and self._gate_wake <= now:
                        self._gate_wake = None  # this claim was that wake-up
                    if wake is not None and (self._gate_wake is None or wake < self._gate_wake):
                        self._gate_wake = wake
                except StoreError as e:
                    _store_failed("claim failed, retrying after the poll interval", e)
                    await self._idle_wait()
                    continue
                for job in started:
                    # A job a gate admitted a little ahead starts at its due instant.
                    self._spawn(job, max(now, job.due_at), recorded=True)
                for job in reserved:
                    self._hold(job)
            # Whether a freed slot is worth a claim: only if the last one came back full.
            self._maybe_more = limit == 0 or len(started) == limit
            if limit > 0 and len(started) == limit:
                await asyncio.sleep(0)  # more may be due: claim again at once
                continue
            if until_idle and self._quiescent():
                nxt = await self._next_due()
                now = self.clock.now()
                skipper = self.clock if isinstance(self.clock, SkippingClock) else None
                if nxt is None or (self._until is not None and nxt > self._until):
                    if self._until is not None and skipper is not None and now < self._until:
                        skipper.skip_to(self._until)  # nothing left before it: skip to it
                    return
                if nxt > now:
                    if self._until is not None and nxt > self._until:
                        if skipper is not None and now < self._until:
                            skipper.skip_to(self._until)
                        return
                    if skipper is not None:
                        # Nothing can happen before nxt: skip straight to it.
                        skipper.skip_to(nxt)
                        await asyncio.sleep(0)
                        continue
                    # Real time: done unless something falls due within the lookahead (it is,
                    # or is about to be, reserved and held: wait for it).
                    if (not self._held and not self._batches.buffered
                            and nxt > now + timedelta(seconds=self.lookahead)):
                        return
            await self._idle_wait()

    async def _idle_wait(self) -> None:
        """Sleep until woken (a slot freed, an enqueue here, a timer) or the poll interval."""
        assert self._wake is not None
        if self._wake.is_set():
            return
        timeout = self.poll_interval
        if self._gate_wake is not None:  # kept until it passes, then claimed at once
            ahead = (self._gate_wake - self.clock.now()).total_seconds()
            if ahead <= 0:
                self._gate_wake = None
                return
            timeout = min(timeout, ahead)
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    def _backlog(self) -> int:
        """Unwritten outcomes beyond the one batch allowed in flight: they hold slots."""
        return max(0, self._unwritten - self.concurrency)

    async def _run_schedules(self) -> None:
        """A scheduler pass, every ``schedule_interval`` or as soon as a schedule is due."""
        if not self.schedules:
            return
        now = self.clock.now()
        due = self._next_schedule_pass is None or now >= self._next_schedule_pass or (
            self._schedule_due_at is not None and now >= self._schedule_due_at)
        if not due:
            return
        self._next_schedule_pass = now + timedelta(seconds=self.schedule_interval)
        try:
            while True:
                _fired, processed = await self._db(
                    functools.partial(self.app.schedules.process_due, self.batch_size))
                if processed < self.batch_size:
                    break
            self._schedule_due_at = await self._db(self.app.schedules.next_schedule_fire)
        except Exception as e:  # a scheduler pass must not take the worker down
            _store_failed("scheduler pass failed", e)

    def _quiescent(self) -> bool:
        """Nothing running, starting or waiting to be written."""
        return not (self._running or self._ready or self._outcomes or self._starts
                    or self._flushing or self._batches.batches)

    async def _next_due(self) -> datetime | None:
        """The earliest instant at which this worker has something to do."""
        due = await self._db(functools.partial(
            self.app.store.next_due_at, queues=self.queues, tasks=self._tasks_filter(),
            now=self.clock.now()))
        held = min((job.due_at for job, _ in self._held.values()), default=None)
        candidates = [d for d in (due, held, self._schedule_due_at,
                                  self._batches.next_deadline()) if d is not None]
        return min(candidates) if candidates else None

    # -- holding reserved jobs until their instant --------------------------------------------

    def _hold(self, job: ClaimedJob) -> None:
        if job.id in self._held or job.id in self._running:
            return
        self._held[job.id] = (job, asyncio.create_task(self._timer(job)))

    async def _timer(self, job: ClaimedJob) -> None:
        await self.clock.sleep_until(job.due_at)
        if self._held.pop(job.id, None) is None or self._stopping:
            return
        self._ready.append(job)
        self._start_ready()

    def _start_ready(self) -> None:
        while (self._ready and not self._stopping and len(self._running) + self._backlog()
               + self._batches.in_flight < self.concurrency):
            job = self._ready.popleft()
            now = self.clock.now()
            # Start first, write the start behind: the handler runs on the instant and the
            # row follows in the next flush (the lease already keeps others away).
            self._starts.append((job.id, now))
            self._spawn(job, now, recorded=False)
            self._request_flush()

    # -- executing ----------------------------------------------------------------------------

    def _spawn(self, job: ClaimedJob, started_at: datetime, *, recorded: bool) -> None:
        attempt = job.attempt if recorded else job.attempt + 1
        ctx = JobContext(job_id=job.id, task=job.task, attempt=attempt,
                         max_attempts=job.max_attempts, correlation_id=job.correlation_id,
                         tenant_id=job.tenant_id, due_at=job.due_at, started_at=started_at,
                         worker_id=self.id)
        run = _Running(job, ctx)
        previous = self._running.get(job.id)
        if previous is not None:
            # Our own earlier attempt outlived its lease and the job came back to us: that
            # attempt's outcome must not be written, and it must not shadow this one.
            self._lose(job.id, "the job was claimed again after its lease expired")
        self._running[job.id] = run
        self.stats["started"] += 1
        self._task_metrics(job.task).lateness.observe(
            max(0.0, (started_at - job.due_at).total_seconds()))
        JOBS_IN_FLIGHT.inc()
        run.task = asyncio.create_task(self._execute(run))
        if self._early_cancels and job.id in self._early_cancels:
            self._cancel_local(job.id, self._early_cancels.pop(job.id))

    def _task_metrics(self, task: str) -> TaskMetrics:
        m = self._metrics.get(task)
        if m is None:
            m = self._metrics[task] = TaskMetrics(task)
        return m

    async def _execute(self, run: _Running) -> None:
        job, ctx = run.job, run.ctx
        if ctx.started_at > self.clock.now():  # admitted ahead by a rate gate: its instant
            await self.clock.sleep_until(ctx.started_at)
        token = _current.set(ctx)
        if self.capture_logs:
            run.logs = LogCapture()
        logs_token = _capture.set(run.logs)
        outcome: Outcome | None = None
        began = time.perf_counter()
        # The attempt's span is current while the handler runs: its own spans nest in it.
        span = None
        if tracing():
            attributes: dict[str, str | int] = {"hora.job_id": job.id, "hora.task": job.task,
                          "hora.attempt": ctx.attempt, "hora.tenant_id": job.tenant_id,
                          "hora.correlation_id": job.correlation_id or ""}
            span = tracer.start_span(f"hora.job {job.task}", kind=SpanKind.CONSUMER,
                                     attributes=attributes)
            span_token = otel_context.attach(trace.set_span_in_context(span))
        try:
            outcome = await self._invoke(run)
            _capture.reset(logs_token)
        finally:
            label = "lost" if outcome is None else outcome.outcome
            if span is not None:
                otel_context.detach(span_token)
                span.set_attribute("hora.outcome", label)
                if outcome is not None and outcome.error is not None:
                    span.set_status(StatusCode.ERROR, f"{outcome.error.type}: "
                                    f"{outcome.error.message}"[:500])
                span.end()
            self._task_metrics(job.task).ended(label, time.perf_counter() - began)
            JOBS_IN_FLIGHT.dec()
            _current.reset(token)
            if self._running.get(job.id) is run:
                del self._running[job.id]
            if outcome is not None and not run.lost:
                self._push_outcome(outcome, job.tenant_id)
            elif self._maybe_more and self._wake is not None:
                self._wake.set()  # the slot is free already: nothing to write
            if self._ready:
                self._start_ready()

    async def _invoke(self, run: _Running) -> Outcome | None:
        job, ctx = run.job, run.ctx
        task = self.app.tasks.get(job.task)
        timeout = job.timeout if job.timeout is not None else (task.timeout if task else None)
        policy = self._policy(job)
        try:
            if task is None:
                raise UnknownTask(f"no handler registered for task {job.task!r}")
            if batch_of(task) is not None:
                # A batched job claimed one by one (a worker with only_known_tasks=False):
                # a batch of one.
                item = per_item(await self._call(task, ([job.payload],), {}, timeout, ctx), 1)[0]
                if isinstance(item, BaseException):
                    raise item
                result = item
            else:
                result = await self._call(task, (), job.payload, timeout, ctx)
        except asyncio.CancelledError:
            if run.lost:
                return None
            if ctx.cancelled:  # asked to stop: that wins over a release at shutdown
                self.stats["cancelled"] += 1
                return self._final(run, CANCEL, "cancelled", reason=ctx.cancel_reason)
            if run.released:
                return self._released(run)
            raise
        except Exception as e:
            return self._error_outcome(run, e, policy)
        return self._result_outcome(run, result)

    async def _call(self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                    time_limit: float | None, ctx: JobContext | BatchContext) -> Any:
        """Run the handler with the timeout (``_Timeout`` when it runs out): async ones on
        the loop, sync ones in the handler pool with the caller's context."""
        if task.is_async:
            cm = asyncio.timeout(time_limit)
            try:
                async with cm:
                    return await task.fn(*args, **kwargs)
            except TimeoutError:
                if cm.expired():  # ours, not one the handler raised itself
                    raise _Timeout(time_limit) from None
                raise
        assert self._loop is not None
        call = functools.partial(_contextual(task.fn), *args, **kwargs)
        fut = self._loop.run_in_executor(self._handler_pool, call)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), time_limit)
        except TimeoutError:
            if fut.done():
                raise
            for c in ctx.jobs if isinstance(ctx, BatchContext) else (ctx,):
                c.request_cancel(f"timed out after {time_limit}s")
            raise _Timeout(time_limit) from None

    def _error_outcome(self, run: _Running, e: BaseException, policy: RetryPolicy) -> Outcome:
        """The outcome of an attempt that raised ``e`` (or whose batch item is ``e``)."""
        if isinstance(e, Cancel):
            self.stats["cancelled"] += 1
            return self._final(run, CANCEL, "cancelled", reason=e.reason)
        if isinstance(e, Retry):
            return self._failed(run, e, policy, delay=e.delay, outcome="retry")
        if isinstance(e, _Timeout):
            return self._failed(run, e, policy, outcome="timeout")
        return self._failed(run, e, policy, final=isinstance(e, UnknownTask))

    def _result_outcome(self, run: _Running, result: Any) -> Outcome:
        """The outcome of an attempt that returned ``result``."""
        try:
            result_json = _result_json(result)
        except TooLarge as e:  # over the result limit: no retry can make it smaller
            return self._failed(run, e, self._policy(run.job), final=True)
        self.stats["succeeded"] += 1
        return self._final(run, SUCCEED, "succeeded", result_json=result_json)

    def _push_outcome(self, outcome: Outcome, tenant_id: str) -> None:
        """Into the next flush; the job's slot stays taken until it is written."""
        self._outcomes.append(outcome)
        self._outcome_tenants[outcome.job_id] = tenant_id
        self._unwritten += 1
        self._request_flush()

    def _policy(self, job: ClaimedJob) -> RetryPolicy:
        if job.retry_policy:
            return RetryPolicy.from_dict(job.retry_policy)
        task = self.app.tasks.get(job.task)
        return task.retry_policy if task else RetryPolicy()

    def _final(self, run: _Running, move: Move, outcome: str, *, result_json: str | None = None,
               reason: str | None = None, error: ErrorInfo | None = None) -> Outcome:
        return Outcome.of(move, job_id=run.job.id, attempt=run.ctx.attempt, owner=self.id,
                          started_at=run.ctx.started_at,
                          outcome=outcome, result_json=result_json, error=error, reason=reason,
                          logs_json=_logs_json(run))

    def _failed(self, run: _Running, err: BaseException, policy: RetryPolicy, *,
                delay: float | None = None, outcome: str = "failed",
                final: bool = False) -> Outcome:
        attempt = run.ctx.attempt
        info = _error_info(err)
        exhausted = attempt >= run.job.max_attempts
        retryable = (isinstance(err, (Retry, _Timeout))
                     or (not isinstance(err, Fail) and policy.is_retryable(err)))
        if final or exhausted or not retryable:
            self.stats["dead"] += 1
            why = ("attempts exhausted" if exhausted and retryable and not final
                   else "non-retryable error")
            log.warning("job %s (%s) dead after attempt %d/%d: %s: %s", run.job.id,
                        run.job.task, attempt, run.job.max_attempts, info.type, info.message)
            return self._final(run, BURY, outcome, error=info,
                               reason=f"{why}: {info.type}: {info.message}"[:500])
        wait = policy.delay(attempt) if delay is None else delay
        if not wait <= MAX_DELAY:  # a handler's Retry(delay=1e308): as far as a delay may go
            wait = MAX_DELAY
        due = self.clock.now() + timedelta(seconds=wait)
        self.stats["retried"] += 1
        return Outcome.of(RETRY, job_id=run.job.id, attempt=attempt, owner=self.id,
                          started_at=run.ctx.started_at,
                          outcome=outcome, error=info, due_at=due,
                          reason=f"attempt {attempt} {outcome}; retry in {wait:.3f}s",
                          logs_json=_logs_json(run))

    def _released(self, run: _Running) -> Outcome:
        self.stats["released"] += 1
        return Outcome.of(RELEASE, job_id=run.job.id, attempt=run.ctx.attempt, owner=self.id,
                          started_at=run.ctx.started_at, outcome="released",
                          reason=f"released by worker {self.id} at shutdown",
                          logs_json=_logs_json(run))

    def _cancel_local(self, job_id: str, reason: str | None) -> None:
        run = self._running.get(job_id)
        if run is None and self._batches.cancel(job_id, reason):
            return
        if run is None:
            # The claim may have committed before this loop registered the job: remember the
            # request for a moment (bounded), and honour it when the job is spawned.
            self._early_cancels[job_id] = reason
            while len(self._early_cancels) > 1000:
                del self._early_cancels[next(iter(self._early_cancels))]
            return
        run.ctx.request_cancel(reason)
        task = self.app.tasks.get(run.job.task)
        if task is not None and task.is_async and run.task is not None:
            run.task.cancel()
        # Sync handlers cannot be interrupted: they see ctx.cancelled and stop themselves.

    # -- writing outcomes ---------------------------------------------------------------------

    def _request_flush(self) -> None:
        if self._flush_wanted is not None:
            self._flush_wanted.set()

    async def _flush_loop(self) -> None:
        assert self._flush_wanted is not None
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            await self._flush()

    async def _write_outcomes(self, outcomes: list[Outcome]) -> None:
        store = self.app.store
        applied = set(await self._db(functools.partial(
            store.finish_jobs, outcomes, self.clock.now())))
        for o in outcomes:
            tenant = self._outcome_tenants.pop(o.job_id, None)
            in_doubt = (o.job_id, o.attempt) in self._in_doubt
            self._in_doubt.discard((o.job_id, o.attempt))
            if o.job_id in applied:
                if o.state in JOB_DONE_STATES:
                    self.app._results.announce(job_key(o.job_id))
                continue
            recorded = (await self._outcome_recorded(o, tenant)
                        if in_doubt and tenant is not None else False)
            if recorded:
                # An earlier write committed, but its acknowledgement was lost with the
                # connection: nothing was discarded.
                log.debug("job %s: its outcome (%s) was written before the connection "
                          "dropped", o.job_id, o.outcome)
                continue
            self.stats["lost"] += 1
            if recorded is None:
                log.warning("job %s: lease lost, and whether an earlier write of its outcome "
                            "(%s) went through cannot be told now", o.job_id, o.outcome)
            else:
                log.warning("job %s: lease lost before its outcome (%s) was written; the "
                            "result is discarded", o.job_id, o.outcome)

    async def _outcome_recorded(self, o: Outcome, tenant_id: str) -> bool | None:
        """Whether the job's history holds this attempt ended by this worker as ``o`` says;
        None when the job cannot be read."""
        try:
            job = await self._db(functools.partial(
                self.app.store.get_job, o.job_id, tenant_id=tenant_id, history=True))
        except (NotFound, StoreError) as e:
            log.debug("job %s: cannot read it back to confirm its outcome: %s", o.job_id, e)
            return None
        return any(a.number == o.attempt and a.worker_id == o.owner
                   and a.outcome == o.outcome for a in job.attempts)

    async def _write_one_by_one(self, outcomes: list[Outcome]) -> None:
        """After an unexpected error on a batch: isolate the outcome that causes it, so one
        bad row cannot block every other job's outcome. What still fails is dropped (its
        lease will expire and the job will be retried elsewhere)."""
        for o in outcomes:
            try:
                await self._write_outcomes([o])
            except StoreError:
                raise
            except Exception:
                self._outcome_tenants.pop(o.job_id, None)
                self._in_doubt.discard((o.job_id, o.attempt))
                log.exception("job %s: cannot write its outcome (%s); leaving it to lease "
                              "expiry", o.job_id, o.outcome)

    async def _flush(self) -> None:
        """Write pending starts, then outcomes; on a database error keep them and retry."""
        assert self._flush_lock is not None
        async with self._flush_lock:  # the flush loop and shutdown never write at once
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        store = self.app.store
        self._flushing = True
        failures = 0
        try:
            while self._starts or self._outcomes:
                starts, self._starts = self._starts, []
                outcomes, self._outcomes = self._outcomes, []
                try:
                    if starts:
                        now = min(at for _, at in starts)
                        ids = [job_id for job_id, _ in starts]
                        got = await self._db(functools.partial(
                            store.start_reserved, ids, owner=self.id, now=now,
                            lease_until=self.clock.now() + timedelta(seconds=self.lease)))
                        for missing in set(ids) - set(got):
                            self._lose(missing, "reservation was taken or cancelled")
                    if outcomes:
                        await self._write_outcomes(outcomes)
                        self._unwritten -= len(outcomes)
                except StoreError as e:
                    # The database is unreachable or busy: keep everything and try again.
                    # The write may have committed with only its acknowledgement lost: a
                    # retry that finds the lease gone reads the job back before saying so.
                    _store_failed(f"writing {len(outcomes)} outcomes failed, will retry", e)
                    self._in_doubt.update((o.job_id, o.attempt) for o in outcomes)
                    self._starts[:0] = starts
                    self._outcomes[:0] = outcomes
                    failures += 1
                    await asyncio.sleep(_backoff(failures))
                except Exception:
                    log.exception("unexpected error writing a batch of %d outcomes",
                                  len(outcomes))
                    self._starts[:0] = starts
                    try:
                        await self._write_one_by_one(outcomes)
                        self._unwritten -= len(outcomes)
                    except StoreError:
                        self._in_doubt.update((o.job_id, o.attempt) for o in outcomes)
                        self._outcomes[:0] = outcomes
                        failures += 1
                        await asyncio.sleep(_backoff(failures))
        finally:
            self._flushing = False
            # until_idle must notice the last write landing; a live worker does not need to.
            if self._wake is not None and (self._until_idle or self._maybe_more):
                self._wake.set()

    def _lose(self, job_id: str, why: str) -> None:
        run = self._running.get(job_id)
        if run is None:
            return
        run.lost = True
        self.stats["lost"] += 1
        log.warning("job %s: lease lost (%s); stopping it here", job_id, why)
        run.ctx.request_cancel(why)
        if run.task is not None:
            run.task.cancel()

    # -- leases -------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.heartbeat)
            # Leases first: a beat that wakes late (a stalled loop, a skipped clock) must
            # extend them before anything else competes with the rescuer for the database.
            if (self._running or self._held or self._unwritten or self._starts
                    or self._batches.active):
                await self._extend_leases()
            await self._touch()  # this worker's row: one statement per beat, not per job

    async def _extend_leases(self) -> None:
        now = self.clock.now()
        # Only jobs held *before* the call can be judged by its answer: one claimed while
        # it ran (another DB thread) is simply not in it, and is not lost.
        running_before = dict(self._running)
        held_before = dict(self._held)
        batches_before = self._batches.snapshot()
        try:
            status = await self._db(functools.partial(
                self.app.store.extend_leases, owner=self.id, now=now,
                lease_until=now + timedelta(seconds=self.lease)))
        except Exception as e:  # a heartbeat must outlive any one failure
            _store_failed("heartbeat failed", e)
            return
        pending_starts = {job_id for job_id, _ in self._starts}
        for job_id, run in running_before.items():
            if (job_id not in status.held and job_id not in pending_starts
                    and self._running.get(job_id) is run):
                self._lose(job_id, "heartbeat found another owner")
        for job_id in status.cancel_requested:
            self._cancel_local(job_id, "cancelled on request")
        for job_id, entry in held_before.items():
            if job_id not in status.held and self._held.get(job_id) is entry:
                _job, timer = self._held.pop(job_id)
                timer.cancel()
        self._batches.after_heartbeat(status, batches_before)

    async def _rescue_loop(self) -> None:
        while True:
            await self.clock.sleep(self.rescue_interval)
            try:
                rescued = await self._db(functools.partial(
                    self.app.store.rescue_expired, self.clock.now()))
            except Exception as e:
                _store_failed("rescue failed", e)
                continue
            for job_id in rescued:
                if job_id in self._running:  # our own attempt outlived its lease
                    self._lose(job_id, "its lease expired while it ran here")
                self._batches.lose(job_id, "its lease expired while its batch ran here")
            if rescued:
                log.warning("rescued %d job(s) whose lease expired: %s", len(rescued),
                            ", ".join(rescued[:10]))
                if self._wake is not None:
                    self._wake.set()

    async def _listen_loop(self) -> None:
        """Wake on other processes' enqueues (PostgreSQL NOTIFY) instead of the next poll."""
        sub = self.app.store.subscribe()
        if sub is None:
            return
        assert self._loop is not None
        pool = ThreadPoolExecutor(1, thread_name_prefix="hora-listen")
        mine = set(self.queues)
        try:
            try:
                await self._loop.run_in_executor(pool, sub.wait, 0.0)  # connect and LISTEN
                self.listening = True
            except StoreError as e:
                _store_failed("cannot listen, relying on polling", e)
            while True:
                try:
                    queues = await self._loop.run_in_executor(pool, sub.wait, 1.0)
                except StoreError as e:
                    _store_failed("listening failed, falling back to polling for a second", e)
                    await asyncio.sleep(1.0)
                    continue
                if ("*" in queues or queues & mine) and self._wake is not None:
                    self._wake.set()
        finally:
            pool.submit(sub.close)  # after any wait in progress returns
            pool.shutdown(wait=False)

    # -- shutdown -----------------------------------------------------------------------------

    def _loop_died(self, task: asyncio.Task[None]) -> None:
        """A background loop died of an error: without it the worker is unsafe, so stop.
        (A loop may also finish normally, e.g. the listener where the store has no channel.)"""
        if task.cancelled() or self._stopping:
            return
        exc = task.exception()
        if exc is None:
            return
        log.critical("worker %s: %s stopped unexpectedly (%r); shutting down", self.id,
                     task.get_name(), exc, exc_info=exc)
        self._begin_stop()

    def _begin_stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._stop_event is not None:
            self._stop_event.set()

    def _install_signals(self) -> None:
        assert self._loop is not None
        presses = {"n": 0}

        def on_signal(signame: str) -> None:
            presses["n"] += 1
            if presses["n"] == 1:
                log.info("%s: finishing in-flight jobs (up to %ss); again to stop now",
                         signame, self.grace_period)
                self._begin_stop()
            else:
                self.grace_period = 0
                for run in list(self._running.values()):
                    run.released = True
                    if run.task is not None:
                        run.task.cancel()
                self._batches.release_all()

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, on_signal, sig.name)

    async def _shutdown(self, loops: list[asyncio.Task[None]]) -> None:
        self._stopping = True
        for _job, timer in list(self._held.values()):
            timer.cancel()
        self._held.clear()
        self._ready.clear()
        self._batches.clear()
        pending = [r.task for r in self._running.values() if r.task is not None]
        pending += self._batches.tasks()
        if pending:
            _done, not_done = await asyncio.wait(pending, timeout=self.grace_period)
            if not_done:
                log.warning("%d job(s) still running after the %ss grace period: releasing "
                            "them to other workers", len(not_done), self.grace_period)
                for run in list(self._running.values()):
                    run.released = True
                    if run.task is not None:
                        run.task.cancel()
                self._batches.release_all()
                await asyncio.gather(*not_done, return_exceptions=True)
        await self._flush()  # outcomes, including the released attempts
        try:
            # Reservations (leased, not started) go back to the queue at once.
            await self._db(functools.partial(self.app.store.release_jobs, [],
                                             owner=self.id, now=self.clock.now()))
        except StoreError as e:
            log.error("could not release reservations at shutdown (their leases will "
                      "expire): %s", e)
        for t in loops:
            t.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        try:
            await self._db(functools.partial(self.app.store.stop_worker, self.id,
                                             now=self.clock.now()))
        except Exception as e:
            _store_failed("could not mark this worker stopped (it will show as lost)", e)
        if self._db_pool is not None:
            self._db_pool.shutdown(wait=True)
        if self._handler_pool is not None:
            # A sync handler past its grace period cannot be killed; do not wait for it.
            self._handler_pool.shutdown(wait=False, cancel_futures=True)

    # -- plumbing -----------------------------------------------------------------------------

    async def _db(self, call: Callable[[], T]) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._db_pool, call)


def _logs_json(run: _Running) -> str | None:
    """What the attempt's handler logged, as the store keeps it (None: nothing)."""
    return None if run.logs is None else run.logs.to_json()


def _store_failed(what: str, e: BaseException) -> None:
    """Log a failed database call: an outage is the store's to report (once), anything
    else is worth a warning each time, with the traceback when it is not a store error."""
    if isinstance(e, StoreUnavailable):
        log.debug("%s: %s", what, e)
    else:
        log.warning("%s: %s", what, e, exc_info=not isinstance(e, StoreError))


def _backoff(failures: int) -> float:
    """Seconds before retrying a write: 0.1 s, doubling up to 2 s."""
    return min(2.0, 0.1 * 2.0 ** min(failures - 1, 5))


class _Timeout(Exception):
    def __init__(self, seconds: float | None) -> None:
        super().__init__(f"timed out after {seconds}s")


def _contextual(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` in a copy of the caller's context, so current_job() works in threads."""
    import contextvars

    ctx = contextvars.copy_context()

    def call(*args: Any, **kwargs: Any) -> T:
        return ctx.run(fn, *args, **kwargs)

    return call


def _error_info(err: BaseException) -> ErrorInfo:
    if isinstance(err, _Timeout):
        return ErrorInfo("hora.Timeout", str(err), None)
    t = type(err)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    tb = "".join(traceback.format_exception(err))
    if len(tb) > TRACEBACK_LIMIT:
        tb = tb[: TRACEBACK_LIMIT // 2] + "\n...\n" + tb[-TRACEBACK_LIMIT // 2 :]
    return ErrorInfo(name, str(err)[:2000], tb)


def _result_json(result: Any) -> str | None:
    """What a handler returned as JSON (a repr excerpt if it is not JSON); TooLarge
    when it is nested deeper or larger than the documented limits (it is not stored)."""
    if result is None:
        return None
    check_json_shape(result, "result", max_bytes=MAX_RESULT_BYTES)
    try:
        text = json.dumps(result, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return json.dumps({"unserialisable": reprlib.repr(result)[:1000]})
    return check_json_size(text, "result", max_bytes=MAX_RESULT_BYTES)
