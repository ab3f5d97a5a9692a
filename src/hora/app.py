"""The in-process SDK: ``Hora`` holds the store, the clock, the task registry and its
services -- ``app.schedules``, ``app.workflows``, ``app.locks`` -- with the jobs on itself.

Each service is built with what it needs (a store getter, the clock, the tenant, the tasks,
callables to enqueue and to wake workers) and depends downward on ``hora.payloads``; none
imports this module. ``Hora`` keeps every method users call (``app.create_schedule``,
``app.start_workflow``, ``app.lock``, ...) as a one-line delegation to its service.

Its methods are synchronous so a Django view or a script can call them without an event
loop; async code uses ``app.aio``, the same methods as coroutines (run in a thread, typed
with the sync method's signature). ``aenqueue``/``aenqueue_many``, ``alock`` and
``Lease.arenew`` are the older spellings of the same calls and stay.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import functools
import inspect
import json
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from opentelemetry.trace import SpanKind

from hora.clock import Clock, SystemClock
from hora.errors import ConfigError, InvalidPayload, WaitTimeout
from hora.flow import Batch, Concurrency, Debounce, FlowSpec, RateLimit, Throttle, key_value
from hora.limits import (
    MAX_DELAY,
    MAX_PRIORITY,
    MAX_TIMEOUT,
    check_instant,
    check_int,
    check_seconds,
)
from hora.locks import Lease, LockService
from hora.models import DEFAULT_QUEUE, DEFAULT_TENANT, Job, JobFilter, NewJob, Page, Workflow
from hora.notify.channels import Channels, default_channels
from hora.notify.inbox import InboxService
from hora.notify.recipients import RecipientService
from hora.notify.service import NotificationService
from hora.notify.service import install as install_notifications
from hora.notify.templates import TemplateService
from hora.observability import JOBS_ENQUEUED, tracer
from hora.payloads import (
    ENQUEUE_OPTIONS,
    RESERVED_TASK_PREFIX,
    JobRequest,
    check_public_task,
    check_text,
    new_job,
)
from hora.ratelimits import RateLimitService
from hora.registry import RegistryService
from hora.retry import DEFAULT_RETRY, RetryPolicy
from hora.schedules import DeclaredSchedule, ScheduleService
from hora.states import JobState
from hora.store import FlowEnqueue, JobSelection, Store, open_store
from hora.waiting import ResultWaiters, check_timeout, job_done, job_key
from hora.workers import WorkerService
from hora.workflows import WorkflowDef, WorkflowService

if TYPE_CHECKING:
    from hora.worker import Worker

__all__ = ["ENQUEUE_OPTIONS", "RESERVED_TASK_PREFIX", "AsyncHora", "Hora", "JobRequest",
           "Task", "check_public_task", "check_text", "database_url_from_env"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_DATABASE_URL = "sqlite:///hora.db"
#: Jobs one transaction of ``cancel_jobs`` cancels at most: a bulk cancel never holds the
#: write lock for long, whatever it matches.
CANCEL_BATCH = 500

def database_url_from_env() -> str:
    return os.environ.get("HORA_DATABASE_URL") or DEFAULT_DATABASE_URL


class Task(Generic[P, R]):
    """A registered handler. Calling it runs the function; ``enqueue`` schedules a job."""

    def __init__(self, app: Hora, fn: Callable[P, R], *, name: str, queue: str,
                 priority: int, retry: RetryPolicy | None, timeout: float | None,
                 flow: FlowSpec | None = None) -> None:
        self.app = app
        #: Rate and concurrency limits, debounce, throttle, batching (``hora.flow``).
        self.flow = flow
        self.fn = fn
        self.name = name
        self.queue = queue
        self.priority = priority
        self.retry = retry
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        if flow is not None and flow.batch is not None:
            positional = [p for p in self.signature.parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if not positional or any(p.default is p.empty for p in positional[1:]):
                raise TypeError(f"task {name} is batched: its handler takes one argument, "
                                "the list of payloads")
        for p in self.signature.parameters.values():
            if p.kind is p.VAR_POSITIONAL:
                raise TypeError(f"task {name}: *{p.name} cannot be stored as a JSON payload; "
                                "use named parameters")
            if p.name in ENQUEUE_OPTIONS and p.kind is not p.VAR_KEYWORD:
                raise TypeError(
                    f"task {name}: parameter {p.name!r} collides with the enqueue option of "
                    f"the same name; rename it, or enqueue with app.enqueue({name!r}, payload)")

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.retry or DEFAULT_RETRY

    def payload_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Bind call arguments to parameter names, so a job can be replayed as ``fn(**p)``.
        A batched task's payload is its keyword arguments (its handler takes a list of them)."""
        if self.flow is not None and self.flow.batch is not None:
            if args:
                raise InvalidPayload(f"task {self.name} is batched: give its payload as "
                                     "keyword arguments", field="payload")
            return dict(kwargs)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise InvalidPayload(f"task {self.name}: {e}") from None
        payload: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if self.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                payload.update(value)
            else:
                payload[name] = value
        return payload

    def request(self, *args: Any, **kwargs: Any) -> JobRequest:
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in ENQUEUE_OPTIONS}
        return JobRequest(task=self.name, payload=self.payload_of(args, kwargs), **options)

    def enqueue(self, *args: Any, **kwargs: Any) -> Job:
        """Schedule one run. Payload fields and options (``at``, ``delay``, ``queue``,
        ``priority``, ``idempotency_key``, ``correlation_id``, ``retry``, ``timeout``,
        ``max_attempts``) are keyword arguments side by side."""
        return self.app.enqueue_many([self.request(*args, **kwargs)])[0]

    async def aenqueue(self, *args: Any, **kwargs: Any) -> Job:
        request = self.request(*args, **kwargs)
        return (await self.app.aenqueue_many([request]))[0]


class _Delegate(Generic[P, R]):
    """A method of ``Hora`` that is its service's: ``app.create_schedule(...)`` is
    ``app.schedules.create_schedule(...)``, with the same signature for type checkers and
    the same docstring for ``help()``. Resolved on each access, so a tenant's view (which
    has its own services) delegates to its own."""

    def __init__(self, service: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.service = service
        self.name = method.__name__
        self.__doc__ = method.__doc__
        self.__wrapped__ = method

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, obj: object | None, owner: type[Any]) -> Self | Callable[P, R]:
        if obj is None:
            return self
        bound: Callable[P, R] = getattr(getattr(obj, self.service), self.name)
        return bound


class _Async(Generic[P, R]):
    """One method of ``app.aio``: the sync method ``method`` (of the app, or of its service
    ``service``) as a coroutine function with the same parameters, run in a thread."""

    def __init__(self, method: Callable[Concatenate[Any, P], R],
                 service: str | None = None) -> None:
        self.service = service
        self.name = method.__name__
        self.__doc__ = method.__doc__
        self.__wrapped__ = method

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: AsyncHora, owner: type[Any]) -> Callable[P, Awaitable[R]]: ...

    def __get__(self, obj: AsyncHora | None,
                owner: type[Any]) -> Self | Callable[P, Awaitable[R]]:
        if obj is None:
            return self
        host: object = obj._app if self.service is None else getattr(obj._app, self.service)
        sync: Callable[P, R] = getattr(host, self.name)

        @functools.wraps(sync)  # its name, docstring and signature
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return await asyncio.to_thread(sync, *args, **kwargs)

        return call


class Hora:
    """A hora application: a store, a clock and the tasks this process knows.

    ``Hora()`` uses ``HORA_DATABASE_URL`` or ``./hora.db``; ``Hora("postgresql://...")`` a
    PostgreSQL database. The store opens (and migrates) on first use, so a module can create
    its app at import time and a CLI flag can still choose the database.
    """

    def __init__(self, database_url: str | None = None, *, clock: Clock | None = None,
                 tenant_id: str = DEFAULT_TENANT, store: Store | None = None,
                 store_options: dict[str, Any] | None = None) -> None:
        self.database_url = database_url
        self.clock: Clock = clock or SystemClock()
        self.tenant_id = tenant_id
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._store = store
        self._store_options = store_options or {}
        self._store_lock = threading.Lock()
        self._workers: set[Worker] = set()
        self._workflow_defs: dict[str, WorkflowDef] = {}
        self._declared_schedules: list[DeclaredSchedule] = []
        #: Who waits for which job or workflow to end in this process (every tenant's view
        #: shares it, and with it one PostgreSQL listener): ``hora.waiting``.
        self._results = ResultWaiters(self._open_store)
        self._notify_config = install_notifications(self)
        #: The notification channels, by name (``hora.notify.channels``): shared by every
        #: tenant's view, like the store.
        self.channels: Channels = default_channels(self)
        self._build_services()

    def _build_services(self) -> None:
        """The services, bound to this app's tenant (and rebuilt for a tenant's view)."""
        self.schedules = ScheduleService(
            store=self._open_store, clock=self.clock, tenant_id=self.tenant_id,
            tasks=self.tasks, enqueue=self.enqueue_many, notify=self._notify_workers,
            declared=self._declared_schedules)
        self.workflows = WorkflowService(
            store=self._open_store, clock=self.clock, tenant_id=self.tenant_id,
            tasks=self.tasks, register_task=self._register_task, notify=self._notify_workers,
            definitions=self._workflow_defs, results=self._results)
        self.locks = LockService(store=self._open_store, clock=self.clock,
                                 tenant_id=self.tenant_id)
        self.fleet = WorkerService(store=self._open_store, clock=self.clock,
                                   tenant_id=self.tenant_id)
        self.registry = RegistryService(
            store=self._open_store, clock=self.clock, tenant_id=self.tenant_id,
            tasks=self.tasks, definitions=self._workflow_defs)
        self.rate_limits = RateLimitService(store=self._open_store, clock=self.clock,
                                            tenant_id=self.tenant_id, tasks=self.tasks)
        #: Notifications (docs/notifications.md): ``app.notify`` is ``notifications.notify``.
        self.notifications = NotificationService(self, self._notify_config)
        self.notify = self.notifications.notify
        self.templates = TemplateService(store=self._open_store, clock=self.clock,
                                         tenant_id=self.tenant_id)
        self.inbox = InboxService(store=self._open_store, clock=self.clock,
                                  tenant_id=self.tenant_id)
        self.recipients = RecipientService(store=self._open_store, clock=self.clock,
                                           tenant_id=self.tenant_id)
        self.workflows.registry = self.registry
        self.schedules.resolve_task = self.registry.resolve_task
        self.aio = AsyncHora(self)

    # -- set-up -------------------------------------------------------------------------------

    def for_tenant(self, tenant_id: str) -> Hora:
        """The same app (store, clock, tasks, workers) acting for another tenant: what the
        HTTP API hands each request, so every SDK method is tenant-scoped for free."""
        store = self.store  # open it once, on the shared app, before sharing it
        view = copy.copy(self)
        view.tenant_id = tenant_id
        view._store = store
        view._build_services()
        return view

    @property
    def store(self) -> Store:
        return self._open_store()

    def _open_store(self) -> Store:
        """The store, opened (and migrated) on first use: what the services get."""
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    url = self.database_url or database_url_from_env()
                    self._store = open_store(url, **self._store_options)
        return self._store

    def use_database(self, url: str) -> None:
        """Point a not-yet-used app at another database (the CLI's ``--database-url``)."""
        if self._store is not None:
            raise ConfigError("the store is already open; choose the database before first use")
        self.database_url = url

    def close(self) -> None:
        self._results.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def migrate(self) -> list[int]:
        return self.store.migrate()

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: None = None, /, *, name: str | None = None,
             queue: str = DEFAULT_QUEUE, priority: int = 0, retry: RetryPolicy | None = None,
             timeout: float | timedelta | None = None,
             rate_limit: str | RateLimit | Sequence[str | RateLimit] | None = None,
             concurrency: int | Concurrency | None = None,
             debounce: timedelta | float | Debounce | None = None,
             throttle: timedelta | float | Throttle | None = None,
             batch: Batch | None = None,
             ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    @overload
    def task(self, fn: Callable[P, R], /, *, name: str | None = None,
             queue: str = DEFAULT_QUEUE, priority: int = 0, retry: RetryPolicy | None = None,
             timeout: float | timedelta | None = None,
             rate_limit: str | RateLimit | Sequence[str | RateLimit] | None = None,
             concurrency: int | Concurrency | None = None,
             debounce: timedelta | float | Debounce | None = None,
             throttle: timedelta | float | Throttle | None = None,
             batch: Batch | None = None) -> Task[P, R]: ...

    def task(self, fn: Callable[P, R] | None = None, /, *, name: str | None = None,
             queue: str = DEFAULT_QUEUE, priority: int = 0, retry: RetryPolicy | None = None,
             timeout: float | timedelta | None = None,
             rate_limit: str | RateLimit | Sequence[str | RateLimit] | None = None,
             concurrency: int | Concurrency | None = None,
             debounce: timedelta | float | Debounce | None = None,
             throttle: timedelta | float | Throttle | None = None,
             batch: Batch | None = None,
             ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a handler: ``@app.task`` or ``@app.task(retry=RetryPolicy(...))``.

        The task's name defaults to ``module.qualname``: jobs store the name, so renaming a
        function or moving it to another module strands the jobs already enqueued under the
        old name unless ``name=`` pins it.
        """

        def register(f: Callable[P, R]) -> Task[P, R]:
            task_name = name or f"{f.__module__}.{f.__qualname__}"
            if task_name in self.tasks:
                raise ValueError(f"a task named {task_name!r} is already registered")
            check_int(priority, "priority", least=-MAX_PRIORITY, most=MAX_PRIORITY)
            flow = FlowSpec.build(task_name, rate_limit=rate_limit, concurrency=concurrency,
                                  debounce=debounce, throttle=throttle, batch=batch)
            t = Task(self, f, name=task_name, queue=queue, priority=priority, retry=retry,
                     timeout=None if timeout is None else check_seconds(
                         timeout, "timeout", most=MAX_TIMEOUT, zero=False), flow=flow)
            self.tasks[task_name] = t
            return t

        return register(fn) if fn is not None else register

    def schedule(self, *, name: str | None = None, cron: str | None = None,
                 rrule: str | None = None, every: str | timedelta | None = None,
                 trigger: Mapping[str, Any] | str | None = None,
                 timezone: str | None = None, payload: dict[str, Any] | None = None,
                 **options: Any) -> Callable[[Callable[P, R] | Task[P, R]], Task[P, R]]:
        """Declare a schedule in code: ``@app.schedule(cron="0 9 * * MON-FRI")`` on a task.

        Exactly one of ``cron``, ``rrule``, ``every`` (an ISO-8601 duration or a timedelta,
        counted from when the schedule is first created, as on every surface; later
        start-ups keep that stored start) or ``trigger`` (a full
        spec). ``name`` defaults to the task's name; ``options`` are ``ensure``'s (queue,
        priority, misfire, overlap, ...). Stacked on ``@app.task`` or used alone (then it
        registers the function as ``@app.task`` would). Nothing is written here: declared
        schedules are ensured when a worker or ``hora serve --app`` starts, or by
        ``app.schedules.apply_declared()``.
        """
        given = [k for k, v in (("cron", cron), ("rrule", rrule), ("every", every),
                                ("trigger", trigger)) if v is not None]
        if len(given) != 1:
            raise ValueError("@app.schedule needs exactly one of cron, rrule, every, trigger"
                             + (f" (got {', '.join(given)})" if given else ""))
        spec: Mapping[str, Any] | str
        if trigger is not None:
            spec = trigger
        elif every is not None:
            text = every if isinstance(every, str) else f"PT{every.total_seconds():g}S"
            spec = {"every": text}  # start: the creation (hora.triggers.spec.with_defaults)
        else:
            spec = {"cron": cron} if cron is not None else {"rrule": rrule}
        if timezone is not None:
            if not isinstance(spec, Mapping):
                raise ValueError("timezone= goes inside a trigger spec, not with a string")
            spec = {**spec, "timezone": timezone}

        def declare(fn: Callable[P, R] | Task[P, R]) -> Task[P, R]:
            t = fn if isinstance(fn, Task) else self.task(fn)
            self.schedules.declare(DeclaredSchedule(
                name=name or t.name, task=t.name, trigger=spec, payload=payload,
                options=dict(options)))
            return t

        return declare

    def _register_task(self, fn: Callable[..., Any], /, *, name: str,
                       retry: RetryPolicy | None = None) -> object:
        return self.task(fn, name=name, retry=retry)

    def worker(self, **options: Any) -> Worker:
        from hora.worker import Worker

        return Worker(self, **options)

    # -- enqueue ------------------------------------------------------------------------------

    def enqueue(self, /, task: str | Task[Any, Any], payload: dict[str, Any] | None = None,
                **options: Any) -> Job:
        """Enqueue by task name (or Task) with an explicit payload dict."""
        name = task if isinstance(task, str) else task.name
        unknown = set(options) - ENQUEUE_OPTIONS
        if unknown:
            raise InvalidPayload(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")
        return self.enqueue_many([JobRequest(task=name, payload=payload or {}, **options)])[0]

    async def aenqueue(self, task: str | Task[Any, Any], payload: dict[str, Any] | None = None,
                       **options: Any) -> Job:
        """``await app.aio.enqueue(...)``, by its older name."""
        return await self.aio.enqueue(task, payload, **options)

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[Job]:
        """Enqueue all in one transaction: all are stored, or none (on any error)."""
        now = self.clock.now()
        prepared = [self._prepare(r, now) for r in requests]
        if not prepared:
            return []
        new_jobs = [nj for nj, _ in prepared]
        flows = [f for _, f in prepared]
        with tracer.start_as_current_span(
                "hora.enqueue", kind=SpanKind.PRODUCER,
                attributes={"hora.jobs": len(new_jobs), "hora.task": new_jobs[0].task,
                            "hora.correlation_id": new_jobs[0].correlation_id or ""}):
            if any(f is not None for f in flows):
                # Debounce/throttle: keys locked and jobs written in one transaction.
                results = self.store.enqueue_flow(new_jobs, flows, now)
            else:
                results = [(job_id, "created" if created else "existing")
                           for job_id, created in self.store.insert_jobs(new_jobs, now)]
        seen = collections.Counter(job_id for job_id, _ in results)
        jobs: list[Job] = []
        for nj, (job_id, outcome) in zip(new_jobs, results, strict=True):
            if outcome == "created":
                _enqueued(nj.task, nj.queue).inc()
            if outcome == "created" and seen[job_id] == 1:
                jobs.append(_job_from_new(nj, now))
            else:  # found by its key, folded into (maybe by a later one of this batch), cancelled
                jobs.append(self.store.get_job(job_id, tenant_id=nj.tenant_id, history=False))
        self._notify_workers(min(nj.due_at for nj in new_jobs))
        return jobs

    async def aenqueue_many(self, requests: Iterable[JobRequest]) -> list[Job]:
        """``await app.aio.enqueue_many(...)``, by its older name."""
        return await self.aio.enqueue_many(list(requests))

    def _prepare(self, r: JobRequest, now: datetime) -> tuple[NewJob, FlowEnqueue | None]:
        # Every option is checked first, without I/O; then the name and payload against
        # the registry (``hora.registry``), whose defaults fill in what the request omits.
        local = self.tasks.get(r.task)
        job = new_job(r, now, tenant_id=self.tenant_id, task=local)
        task = self.registry.resolve_task(r.task, r.payload,
                                          allow_unregistered=r.allow_unregistered)
        if task is not None and task is not local:
            job = new_job(r, now, tenant_id=self.tenant_id, task=task)
        defaults = task if task is not None else local
        return _flow_enqueue(job, None if defaults is None else defaults.flow, r.payload, now)

    def _notify_workers(self, earliest_due: datetime) -> None:
        for w in list(self._workers):
            w.notify(earliest_due)

    # -- visibility and control ---------------------------------------------------------------

    def get_job(self, job_id: str, *, history: bool = True) -> Job:
        return self.store.get_job(job_id, tenant_id=self.tenant_id, history=history)

    def list_jobs(self, *, state: JobState | str | Sequence[JobState | str] | None = None,
                  task: str | None = None, queue: str | None = None,
                  correlation_id: str | None = None, created_after: datetime | None = None,
                  created_before: datetime | None = None, limit: int = 50,
                  cursor: str | None = None, include_internal: bool = False) -> Page[Job]:
        """Newest first; pass the page's ``next_cursor`` back for the next page. hora's own
        jobs (task ``hora.workflow:*``: workflow runs and timers) are left out unless
        ``include_internal`` or ``task`` names one."""
        if not 1 <= limit <= 1000:
            raise InvalidPayload("limit must be between 1 and 1000")
        states: tuple[JobState, ...] | None = None
        if state is not None:
            raw = [state] if isinstance(state, str) else list(state)
            try:
                states = tuple(JobState(s) for s in raw)
            except ValueError:
                raise InvalidPayload(
                    f"unknown state in {raw!r}; states are "
                    f"{', '.join(s.value for s in JobState)}") from None
        flt = JobFilter(tenant_id=self.tenant_id, states=states, task=task, queue=queue,
                        correlation_id=correlation_id,
                        created_after=None if created_after is None
                        else check_instant(created_after, "created_after"),
                        created_before=None if created_before is None
                        else check_instant(created_before, "created_before"),
                        include_internal=include_internal)
        return self.store.list_jobs(flt, limit=limit, cursor=cursor)

    def cancel_job(self, job_id: str, reason: str = "cancelled on request") -> Job:
        """Cancel a waiting job now, or ask a running one to stop (cooperatively)."""
        job = self.store.cancel_job(job_id, tenant_id=self.tenant_id, now=self.clock.now(),
                                    reason=reason)
        if job_done(job):
            self._results.announce(job_key(job_id))
        if job.state is JobState.RUNNING:
            for w in list(self._workers):
                w.notify_cancel(job_id, reason)
        return job

    # -- job control (docs/flow.md "Job control") -------------------------------------------

    def reschedule_job(self, job_id: str, *, at: datetime | None = None,
                       delay: float | timedelta | None = None) -> Job:
        """Move a waiting job (scheduled or retrying) to a new due time: ``at`` (an aware
        datetime) or ``delay`` (seconds or a timedelta from now), checked as enqueue checks
        them. Its history records it (``rescheduled to <instant> by request``). A running or
        finished job: ``TransitionConflict``; an unknown id: ``NotFound``."""
        now = self.clock.now()
        if (at is None) == (delay is None):
            raise InvalidPayload("give either at= or delay=", field="at")
        due = (check_instant(at, "at") if at is not None else
               now + timedelta(seconds=check_seconds(delay, "delay", most=MAX_DELAY)))
        stamp = due.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return self._move_due(job_id, due, now, f"rescheduled to {stamp} by request")

    def run_job_now(self, job_id: str) -> Job:
        """Make a waiting job due now (its history says ``run now by request``). Flow
        control still applies: a paused queue, a rate or concurrency limit hold it back as
        they hold any due job."""
        now = self.clock.now()
        return self._move_due(job_id, now, now, "run now by request")

    def _move_due(self, job_id: str, due: datetime, now: datetime, reason: str) -> Job:
        job = self.store.reschedule_job(job_id, tenant_id=self.tenant_id, due_at=due,
                                        now=now, reason=reason)
        self._notify_workers(due)
        return job

    def cancel_jobs(self, *, correlation_id: str | None = None, task: str | None = None,
                    queue: str | None = None, schedule_id: str | None = None,
                    created_before: datetime | None = None, include_running: bool = False,
                    all: bool = False, reason: str = "cancelled on request") -> int:
        """Cancel every waiting job of this tenant matching all the filters given (e.g.
        ``correlation_id="onboarding-u42"`` when the user opts out); with
        ``include_running`` also ask the matching running ones to stop, as ``cancel_job``
        does. At least one filter, or ``all=True``. Works in batches of ``CANCEL_BATCH``
        jobs, one short transaction each. Returns how many jobs it cancelled or asked to
        stop."""
        flt = {"correlation_id": correlation_id, "task": task, "queue": queue,
               "schedule_id": schedule_id}
        for name, value in flt.items():
            if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 255):
                raise InvalidPayload("must be a string of 1 to 255 characters", field=name)
        if not isinstance(reason, str) or not 1 <= len(reason) <= 500:
            raise InvalidPayload("must be a string of 1 to 500 characters", field="reason")
        check_text(**flt, reason=reason)
        selection = JobSelection(
            tenant_id=self.tenant_id, correlation_id=correlation_id, task=task, queue=queue,
            schedule_id=schedule_id, include_running=include_running,
            created_before=None if created_before is None
            else check_instant(created_before, "created_before"))
        if not selection.given() and not all:
            raise InvalidPayload("give at least one filter (correlation_id, task, queue, "
                                 "schedule_id, created_before), or all=True to cancel every "
                                 "waiting job", field="filter")
        count, after = 0, None
        while True:
            batch = self.store.cancel_jobs_batch(selection, now=self.clock.now(),
                                                 reason=reason, after=after,
                                                 limit=CANCEL_BATCH)
            count += len(batch.cancelled) + len(batch.requested)
            for job_id in batch.cancelled:
                self._results.announce(job_key(job_id))
            for job_id in batch.requested:
                for w in list(self._workers):
                    w.notify_cancel(job_id, reason)
            if batch.last_id is None:
                return count
            after = batch.last_id

    # -- waiting for results ------------------------------------------------------------------

    def wait_for_job(self, job: Job | str, timeout: float | timedelta | None = None) -> Job:
        """Block until the job's run is over -- succeeded, cancelled, dead (also discarded or
        replayed) -- and return it with its attempts (and their log lines); Celery's
        ``AsyncResult.get(timeout)``, Temporal's ``handle.result()``. ``timeout`` is in
        seconds of real (monotonic) time, whatever the app's clock; None waits without bound.
        Raises ``WaitTimeout`` (with the state last seen) when it runs out first, and
        ``NotFound`` for an unknown id. A worker in this process wakes the wait when it writes
        the outcome, PostgreSQL's NOTIFY does from other processes, and otherwise (SQLite
        across processes) the wait polls, 50 ms doubling to 1 s (``hora.waiting``)."""
        job_id = job if isinstance(job, str) else job.id
        seconds = check_timeout(timeout)
        found, done = self.poll_job(job_id, seconds)
        if not done:
            raise WaitTimeout("job", job_id, str(found.state), seconds or 0.0)
        return found

    #: ``final = app.wait(job, timeout=30)``: ``wait_for_job`` for the ``Job`` that
    #: ``enqueue`` returned (or its id).
    wait = wait_for_job

    def poll_job(self, job_id: str, wait: float | timedelta | None = 0.0) -> tuple[Job, bool]:
        """The job once its run is over or ``wait`` seconds have passed, whichever is first,
        and whether it is over: what ``GET /v1/jobs/{id}?wait=`` answers (no error either
        way)."""
        return self._results.wait(job_key(job_id), lambda: self.get_job(job_id),
                                  job_done, check_timeout(wait))

    def dead_jobs(self, *, task: str | None = None, queue: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[Job]:
        """The dead-letter queue: jobs whose attempts ran out or hit a non-retryable error."""
        return self.list_jobs(state=JobState.DEAD, task=task, queue=queue, limit=limit,
                              cursor=cursor, include_internal=True)

    def replay(self, job_ids: str | Sequence[str]) -> list[Job]:
        """Give dead jobs a new attempt cycle: one new job each, linked by ``replay_of``."""
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        jobs = self.store.replay_jobs(ids, tenant_id=self.tenant_id, now=self.clock.now())
        if jobs:
            self._notify_workers(min(j.due_at for j in jobs))
        return jobs

    def discard(self, job_ids: str | Sequence[str]) -> list[str]:
        """Take dead jobs out of the dead-letter queue for good (their history stays)."""
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        return self.store.discard_jobs(ids, tenant_id=self.tenant_id, now=self.clock.now())

    def count_jobs(self, *, include_internal: bool = False) -> dict[str, int]:
        """Jobs per state (internal ``hora.workflow:*`` jobs only with ``include_internal``)."""
        return self.store.count_jobs(tenant_id=self.tenant_id,
                                     include_internal=include_internal)



    # -- schedules: app.schedules -------------------------------------------------------------

    create_schedule = _Delegate("schedules", ScheduleService.create_schedule)
    get_schedule = _Delegate("schedules", ScheduleService.get_schedule)
    list_schedules = _Delegate("schedules", ScheduleService.list_schedules)
    update_schedule = _Delegate("schedules", ScheduleService.update_schedule)
    pause_schedule = _Delegate("schedules", ScheduleService.pause_schedule)
    resume_schedule = _Delegate("schedules", ScheduleService.resume_schedule)
    delete_schedule = _Delegate("schedules", ScheduleService.delete_schedule)
    trigger_schedule = _Delegate("schedules", ScheduleService.trigger_schedule)
    schedule_ticks = _Delegate("schedules", ScheduleService.schedule_ticks)
    preview_schedule = _Delegate("schedules", ScheduleService.preview_schedule)
    preview = _Delegate("schedules", ScheduleService.preview)
    next_schedule_fire = _Delegate("schedules", ScheduleService.next_schedule_fire)
    ensure_schedule = _Delegate("schedules", ScheduleService.ensure)
    get_schedule_by_name = _Delegate("schedules", ScheduleService.get_schedule_by_name)
    apply_declared_schedules = _Delegate("schedules", ScheduleService.apply_declared)
    #: Kept for ``api/server.py``'s preview route; new code calls ``app.schedules.trigger_of``.
    _trigger = _Delegate("schedules", ScheduleService.trigger_of)

    # -- workflows: app.workflows -------------------------------------------------------------

    workflow = _Delegate("workflows", WorkflowService.workflow)
    start_workflow = _Delegate("workflows", WorkflowService.start_workflow)
    get_workflow = _Delegate("workflows", WorkflowService.get_workflow)
    list_workflows = _Delegate("workflows", WorkflowService.list_workflows)
    workflow_history = _Delegate("workflows", WorkflowService.workflow_history)
    workflow_signals = _Delegate("workflows", WorkflowService.workflow_signals)
    signal_workflow = _Delegate("workflows", WorkflowService.signal_workflow)
    cancel_workflow = _Delegate("workflows", WorkflowService.cancel_workflow)
    terminate_workflow = _Delegate("workflows", WorkflowService.terminate_workflow)
    approvals = _Delegate("workflows", WorkflowService.approvals)
    get_approval = _Delegate("workflows", WorkflowService.get_approval)
    approve = _Delegate("workflows", WorkflowService.approve)
    reject = _Delegate("workflows", WorkflowService.reject)
    decide_approval = _Delegate("workflows", WorkflowService.decide_approval)
    wait_for_workflow = _Delegate("workflows", WorkflowService.wait)
    workflow_result = _Delegate("workflows", WorkflowService.result)

    # -- the task registry: app.registry ------------------------------------------------------

    registered_tasks = _Delegate("registry", RegistryService.registered_tasks)
    register_tasks = _Delegate("registry", RegistryService.register)

    # -- locks: app.locks ---------------------------------------------------------------------

    try_lock = _Delegate("locks", LockService.try_lock)
    lock = _Delegate("locks", LockService.lock)
    alock = _Delegate("locks", LockService.alock)
    get_lock = _Delegate("locks", LockService.get_lock)
    renew_lease = _Delegate("locks", LockService.renew_lease)
    release_lease = _Delegate("locks", LockService.release_lease)

    # -- workers and queues: app.fleet --------------------------------------------------------

    workers = _Delegate("fleet", WorkerService.workers)
    queues = _Delegate("fleet", WorkerService.queues)
    pause_queue = _Delegate("fleet", WorkerService.pause_queue)
    resume_queue = _Delegate("fleet", WorkerService.resume_queue)

    # -- rate limits set at run time: app.rate_limits -----------------------------------------

    set_rate_limit = _Delegate("rate_limits", RateLimitService.set)
    get_rate_limit = _Delegate("rate_limits", RateLimitService.get)
    list_rate_limits = _Delegate("rate_limits", RateLimitService.list)
    delete_rate_limit = _Delegate("rate_limits", RateLimitService.delete)


class AsyncHora:
    """``app.aio``: the SDK's one async face -- every operation of ``Hora`` as a coroutine
    with the sync method's signature, run in a worker thread (the store's drivers are
    synchronous; one implementation of every operation). ``lock`` is the async context
    manager (``async with app.aio.lock(name)``), waiting on the app's clock."""

    def __init__(self, app: Hora) -> None:
        self._app = app

    enqueue = _Async(Hora.enqueue)
    enqueue_many = _Async(Hora.enqueue_many)
    get_job = _Async(Hora.get_job)
    list_jobs = _Async(Hora.list_jobs)
    cancel_job = _Async(Hora.cancel_job)
    reschedule_job = _Async(Hora.reschedule_job)
    run_job_now = _Async(Hora.run_job_now)
    cancel_jobs = _Async(Hora.cancel_jobs)
    dead_jobs = _Async(Hora.dead_jobs)
    replay = _Async(Hora.replay)
    discard = _Async(Hora.discard)
    count_jobs = _Async(Hora.count_jobs)

    async def wait_for_job(self, job: Job | str,
                           timeout: float | timedelta | None = None) -> Job:  # noqa: ASYNC109 (the sync method's signature)
        """``Hora.wait_for_job`` as a real async wait: the task sleeps on an event (woken by
        a worker of this process, PostgreSQL's NOTIFY, or the poll), holding no thread."""
        job_id = job if isinstance(job, str) else job.id
        seconds = check_timeout(timeout)
        found, done = await self.poll_job(job_id, seconds)
        if not done:
            raise WaitTimeout("job", job_id, str(found.state), seconds or 0.0)
        return found

    wait = wait_for_job

    async def poll_job(self, job_id: str, wait: float | timedelta | None = 0.0,
                       ) -> tuple[Job, bool]:
        """``Hora.poll_job``, async (what the HTTP long-poll awaits)."""
        app = self._app
        return await app._results.await_(
            job_key(job_id), lambda: asyncio.to_thread(app.get_job, job_id), job_done,
            check_timeout(wait))

    async def wait_for_workflow(self, workflow_id: str,
                                timeout: float | timedelta | None = None) -> Workflow:  # noqa: ASYNC109 (the sync method's signature)
        """``Hora.wait_for_workflow``, async."""
        return await self._app.workflows.await_workflow(workflow_id, timeout)

    async def workflow_result(self, workflow_id: str,
                              timeout: float | timedelta | None = None) -> Any:  # noqa: ASYNC109 (the sync method's signature)
        """``Hora.workflow_result``, async."""
        return await self._app.workflows.await_result(workflow_id, timeout)

    async def poll_workflow(self, workflow_id: str, wait: float | timedelta | None = 0.0,
                            ) -> tuple[Workflow, bool]:
        """``WorkflowService.poll``, async (what ``GET /v1/workflows/{id}?wait=`` awaits)."""
        return await self._app.workflows.await_poll(workflow_id, wait)

    migrate = _Async(Hora.migrate)
    close = _Async(Hora.close)

    create_schedule = _Async(ScheduleService.create_schedule, "schedules")
    get_schedule = _Async(ScheduleService.get_schedule, "schedules")
    list_schedules = _Async(ScheduleService.list_schedules, "schedules")
    update_schedule = _Async(ScheduleService.update_schedule, "schedules")
    pause_schedule = _Async(ScheduleService.pause_schedule, "schedules")
    resume_schedule = _Async(ScheduleService.resume_schedule, "schedules")
    delete_schedule = _Async(ScheduleService.delete_schedule, "schedules")
    trigger_schedule = _Async(ScheduleService.trigger_schedule, "schedules")
    schedule_ticks = _Async(ScheduleService.schedule_ticks, "schedules")
    preview_schedule = _Async(ScheduleService.preview_schedule, "schedules")
    preview = _Async(ScheduleService.preview, "schedules")
    next_schedule_fire = _Async(ScheduleService.next_schedule_fire, "schedules")
    ensure_schedule = _Async(ScheduleService.ensure, "schedules")
    get_schedule_by_name = _Async(ScheduleService.get_schedule_by_name, "schedules")

    start_workflow = _Async(WorkflowService.start_workflow, "workflows")
    get_workflow = _Async(WorkflowService.get_workflow, "workflows")
    list_workflows = _Async(WorkflowService.list_workflows, "workflows")
    workflow_history = _Async(WorkflowService.workflow_history, "workflows")
    workflow_signals = _Async(WorkflowService.workflow_signals, "workflows")
    signal_workflow = _Async(WorkflowService.signal_workflow, "workflows")
    cancel_workflow = _Async(WorkflowService.cancel_workflow, "workflows")
    terminate_workflow = _Async(WorkflowService.terminate_workflow, "workflows")
    approvals = _Async(WorkflowService.approvals, "workflows")
    get_approval = _Async(WorkflowService.get_approval, "workflows")
    approve = _Async(WorkflowService.approve, "workflows")
    reject = _Async(WorkflowService.reject, "workflows")
    decide_approval = _Async(WorkflowService.decide_approval, "workflows")

    registered_tasks = _Async(RegistryService.registered_tasks, "registry")
    register_tasks = _Async(RegistryService.register, "registry")

    try_lock = _Async(LockService.try_lock, "locks")
    get_lock = _Async(LockService.get_lock, "locks")
    renew_lease = _Async(LockService.renew_lease, "locks")
    release_lease = _Async(LockService.release_lease, "locks")

    workers = _Async(WorkerService.workers, "fleet")
    queues = _Async(WorkerService.queues, "fleet")
    pause_queue = _Async(WorkerService.pause_queue, "fleet")
    resume_queue = _Async(WorkerService.resume_queue, "fleet")

    set_rate_limit = _Async(RateLimitService.set, "rate_limits")
    get_rate_limit = _Async(RateLimitService.get, "rate_limits")
    list_rate_limits = _Async(RateLimitService.list, "rate_limits")
    delete_rate_limit = _Async(RateLimitService.delete, "rate_limits")

    upsert_recipient = _Async(RecipientService.upsert, "recipients")
    upsert_recipients = _Async(RecipientService.upsert_many, "recipients")
    get_recipient = _Async(RecipientService.get, "recipients")
    list_recipients = _Async(RecipientService.list, "recipients")
    delete_recipient = _Async(RecipientService.delete, "recipients")
    set_recipient_preferences = _Async(RecipientService.set_preferences, "recipients")
    recipient_unsubscribe_url = _Async(RecipientService.unsubscribe_url, "recipients")

    def lock(self, name: str, ttl: float | timedelta = 30.0, wait: float | timedelta = 10.0,
             owner: str | None = None) -> contextlib.AbstractAsyncContextManager[Lease]:
        """``async with app.aio.lock(name) as lease:`` (``app.alock``'s new spelling)."""
        return self._app.locks.alock(name, ttl, wait, owner)


# -- helpers ----------------------------------------------------------------------------------


_ENQUEUED: dict[tuple[str, str], Any] = {}


def _enqueued(task: str, queue: str) -> Any:
    """The counter child for (task, queue), looked up once per process."""
    child = _ENQUEUED.get((task, queue))
    if child is None:
        child = _ENQUEUED[(task, queue)] = JOBS_ENQUEUED.labels(task, queue)
    return child


def _flow_enqueue(job: NewJob, flow: FlowSpec | None, payload: Mapping[str, Any],
                  now: datetime) -> tuple[NewJob, FlowEnqueue | None]:
    """How the task's debounce or throttle treats this job (docs/flow.md): its key's value
    (a missing key field is an InvalidPayload now), and for a debounce the job's due time,
    ``window`` after the due time asked for (``max_wait`` after now at the latest)."""
    if flow is None or (flow.debounce is None and flow.throttle is None):
        return job, None
    if flow.debounce is not None:
        d = flow.debounce
        window = _seconds(d.window)
        max_wait = None if d.max_wait is None else _seconds(d.max_wait)
        key = key_value(d.key, payload, task=job.task, what="is debounced")
        due = job.due_at + timedelta(seconds=window)
        if max_wait is not None:
            due = max(job.due_at, min(due, now + timedelta(seconds=max_wait)))
        return (dataclasses.replace(job, due_at=due),
                FlowEnqueue("debounce", key, window, max_wait, not_before=job.due_at))
    t = flow.throttle
    assert t is not None
    key = key_value(t.key, payload, task=job.task, what="is throttled")
    return job, FlowEnqueue("throttle", key, _seconds(t.window))


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _job_from_new(nj: NewJob, now: datetime) -> Job:
    """The row we just inserted, without reading it back."""
    return Job(
        id=nj.id, task=nj.task, payload=json.loads(nj.payload_json), queue=nj.queue,
        priority=nj.priority, state=JobState.SCHEDULED, due_at=nj.due_at, attempt=0,
        max_attempts=nj.max_attempts,
        retry_policy=None if nj.retry_policy_json is None else json.loads(nj.retry_policy_json),
        timeout=nj.timeout, idempotency_key=nj.idempotency_key,
        correlation_id=nj.correlation_id, tenant_id=nj.tenant_id, lease_owner=None,
        lease_expires_at=None, created_at=now, updated_at=now, started_at=None,
        finished_at=None, result=None, last_error=None, cancel_requested=False,
        state_reason=None, replay_of=nj.replay_of, replayed_as=None,
        schedule_id=nj.schedule_id,
    )

