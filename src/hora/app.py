"""The in-process SDK: ``Hora`` holds the store, the clock and the task registry.

Its methods are synchronous so a Django view or a script can call them without an event
loop; async code uses the ``a``-prefixed twins (``aenqueue``) or ``app.aio``, a thin layer
that runs the same sync call in a thread. There is one implementation of every operation.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import json
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from opentelemetry.trace import SpanKind

from hora.clock import Clock, SystemClock
from hora.errors import ConfigError, InvalidPayload
from hora.ids import new_id
from hora.limits import (
    MAX_ATTEMPTS,
    MAX_DELAY,
    MAX_PAYLOAD_BYTES,
    MAX_PRIORITY,
    MAX_TIMEOUT,
    check_instant,
    check_int,
    check_json_shape,
    check_json_size,
    check_seconds,
)
from hora.locks import LockMixin
from hora.models import DEFAULT_QUEUE, DEFAULT_TENANT, Job, JobFilter, NewJob, Page
from hora.observability import JOBS_ENQUEUED, tracer
from hora.retry import DEFAULT_RETRY, RetryPolicy
from hora.schedules import ScheduleMixin
from hora.states import JobState
from hora.store import Store, open_store
from hora.workflows import WorkflowDef, WorkflowMixin

if TYPE_CHECKING:
    from hora.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_DATABASE_URL = "sqlite:///hora.db"

#: Keyword arguments of ``Task.enqueue`` that are options, not payload fields.
ENQUEUE_OPTIONS = frozenset({
    "at", "delay", "queue", "priority", "idempotency_key", "correlation_id", "retry",
    "timeout", "max_attempts",
})


def database_url_from_env() -> str:
    return os.environ.get("HORA_DATABASE_URL") or DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class JobRequest:
    """One job to enqueue, for ``enqueue_many``; build it with ``Task.request(...)``."""

    task: str
    payload: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    delay: timedelta | float | None = None
    queue: str | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    retry: RetryPolicy | None = None
    timeout: float | timedelta | None = None
    max_attempts: int | None = None
    schedule_id: str | None = None  # set when a schedule fires or is triggered by hand


class Task(Generic[P, R]):
    """A registered handler. Calling it runs the function; ``enqueue`` schedules a job."""

    def __init__(self, app: Hora, fn: Callable[P, R], *, name: str, queue: str,
                 priority: int, retry: RetryPolicy | None, timeout: float | None) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.priority = priority
        self.retry = retry
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
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
        """Bind call arguments to parameter names, so a job can be replayed as ``fn(**p)``."""
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


class Hora(ScheduleMixin, WorkflowMixin, LockMixin):
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
        self.workflows: dict[str, WorkflowDef] = {}
        self._store = store
        self._store_options = store_options or {}
        self._store_lock = threading.Lock()
        self._workers: set[Worker] = set()
        self.aio = AsyncHora(self)

    # -- set-up -------------------------------------------------------------------------------

    def for_tenant(self, tenant_id: str) -> Hora:
        """The same app (store, clock, tasks, workers) acting for another tenant: what the
        HTTP API hands each request, so every SDK method is tenant-scoped for free."""
        store = self.store  # open it once, on the shared app, before sharing it
        view = copy.copy(self)
        view.tenant_id = tenant_id
        view._store = store
        view.aio = AsyncHora(view)
        return view

    @property
    def store(self) -> Store:
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
             ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    @overload
    def task(self, fn: Callable[P, R], /, *, name: str | None = None,
             queue: str = DEFAULT_QUEUE, priority: int = 0, retry: RetryPolicy | None = None,
             timeout: float | timedelta | None = None) -> Task[P, R]: ...

    def task(self, fn: Callable[P, R] | None = None, /, *, name: str | None = None,
             queue: str = DEFAULT_QUEUE, priority: int = 0, retry: RetryPolicy | None = None,
             timeout: float | timedelta | None = None,
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
            t = Task(self, f, name=task_name, queue=queue, priority=priority, retry=retry,
                     timeout=None if timeout is None else check_seconds(
                         timeout, "timeout", most=MAX_TIMEOUT, zero=False))
            self.tasks[task_name] = t
            return t

        return register(fn) if fn is not None else register

    def worker(self, **options: Any) -> Worker:
        from hora.worker import Worker

        return Worker(self, **options)

    # -- enqueue ------------------------------------------------------------------------------

    def enqueue(self, task: str | Task[Any, Any], payload: dict[str, Any] | None = None,
                **options: Any) -> Job:
        """Enqueue by task name (or Task) with an explicit payload dict."""
        name = task if isinstance(task, str) else task.name
        unknown = set(options) - ENQUEUE_OPTIONS
        if unknown:
            raise InvalidPayload(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")
        return self.enqueue_many([JobRequest(task=name, payload=payload or {}, **options)])[0]

    async def aenqueue(self, task: str | Task[Any, Any], payload: dict[str, Any] | None = None,
                       **options: Any) -> Job:
        return await asyncio.to_thread(self.enqueue, task, payload, **options)

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[Job]:
        """Enqueue all in one transaction: all are stored, or none (on any error)."""
        now = self.clock.now()
        new_jobs = [self._prepare(r, now) for r in requests]
        if not new_jobs:
            return []
        with tracer.start_as_current_span(
                "hora.enqueue", kind=SpanKind.PRODUCER,
                attributes={"hora.jobs": len(new_jobs), "hora.task": new_jobs[0].task,
                            "hora.correlation_id": new_jobs[0].correlation_id or ""}):
            results = self.store.insert_jobs(new_jobs, now)
        jobs: list[Job] = []
        for nj, (job_id, created) in zip(new_jobs, results, strict=True):
            if created:
                _enqueued(nj.task, nj.queue).inc()
                jobs.append(_job_from_new(nj, now))
            else:
                jobs.append(self.store.get_job(job_id, tenant_id=nj.tenant_id, history=False))
        self._notify_workers(min(nj.due_at for nj in new_jobs))
        return jobs

    async def aenqueue_many(self, requests: Iterable[JobRequest]) -> list[Job]:
        return await asyncio.to_thread(self.enqueue_many, list(requests))

    def _prepare(self, r: JobRequest, now: datetime) -> NewJob:
        task = self.tasks.get(r.task)
        if not r.task or len(r.task) > 200:
            raise InvalidPayload("task name must be 1-200 characters")
        if not isinstance(r.payload, dict):
            raise InvalidPayload(f"payload: for task {r.task} must be a JSON object (a dict), "
                                 f"not {type(r.payload).__name__}")
        payload_json = _payload_json(r.task, r.payload)
        if r.at is not None and r.delay is not None:
            raise InvalidPayload("give either at= or delay=, not both")
        if r.at is not None:
            due = check_instant(r.at, "at")
        elif r.delay is not None:
            due = now + timedelta(seconds=check_seconds(r.delay, "delay", most=MAX_DELAY))
        else:
            due = now
        retry = r.retry
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidPayload("retry= must be a hora.RetryPolicy")
        policy = retry or (task.retry_policy if task else DEFAULT_RETRY)
        max_attempts = r.max_attempts if r.max_attempts is not None else policy.max_attempts
        check_int(max_attempts, "max_attempts", least=1, most=MAX_ATTEMPTS)
        timeout = None if r.timeout is None else check_seconds(r.timeout, "timeout",
                                                               most=MAX_TIMEOUT, zero=False)
        key = r.idempotency_key
        if key is not None and not (1 <= len(key) <= 255):
            raise InvalidPayload("idempotency_key must be 1-255 characters")
        check_text(task=r.task, queue=r.queue, idempotency_key=key,
                   correlation_id=r.correlation_id)
        queue = r.queue or (task.queue if task else DEFAULT_QUEUE)
        priority = r.priority if r.priority is not None else (task.priority if task else 0)
        check_int(priority, "priority", least=-MAX_PRIORITY, most=MAX_PRIORITY)
        return NewJob(
            id=new_id(), task=r.task, payload_json=payload_json,
            fingerprint=_fingerprint(r.task, payload_json), queue=queue, priority=priority,
            due_at=due, max_attempts=max_attempts,
            retry_policy_json=None if retry is None else retry.to_json(), timeout=timeout,
            idempotency_key=key, correlation_id=r.correlation_id, tenant_id=self.tenant_id,
            schedule_id=r.schedule_id,
        )

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
                  cursor: str | None = None) -> Page[Job]:
        """Newest first; pass the page's ``next_cursor`` back for the next page."""
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
                        else check_instant(created_before, "created_before"))
        return self.store.list_jobs(flt, limit=limit, cursor=cursor)

    def cancel_job(self, job_id: str, reason: str = "cancelled on request") -> Job:
        """Cancel a waiting job now, or ask a running one to stop (cooperatively)."""
        job = self.store.cancel_job(job_id, tenant_id=self.tenant_id, now=self.clock.now(),
                                    reason=reason)
        if job.state is JobState.RUNNING:
            for w in list(self._workers):
                w.notify_cancel(job_id, reason)
        return job

    def dead_jobs(self, *, task: str | None = None, queue: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[Job]:
        """The dead-letter queue: jobs whose attempts ran out or hit a non-retryable error."""
        return self.list_jobs(state=JobState.DEAD, task=task, queue=queue, limit=limit,
                              cursor=cursor)

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

    def count_jobs(self) -> dict[str, int]:
        return self.store.count_jobs(tenant_id=self.tenant_id)


class AsyncHora:
    """``app.aio``: every public ``Hora`` method as a coroutine, run in a worker thread."""

    def __init__(self, app: Hora) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        fn = getattr(self._app, name)
        if not callable(fn):
            raise AttributeError(f"Hora.{name} is not a method")

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(fn, *args, **kwargs)

        call.__name__ = name
        return call


# -- helpers ----------------------------------------------------------------------------------


#: What neither store can keep in text: NUL, and halves of UTF-16 surrogate pairs.
_UNSTORABLE = ("contains a NUL character (\\u0000) or an unpaired surrogate, which cannot "
               "be stored; remove it or encode the value (e.g. base64)")
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def check_text(**fields: str | None) -> None:
    """Refuse NUL and unpaired surrogates in names and keys (PostgreSQL cannot store them,
    and SQLite must refuse what PostgreSQL refuses: one behaviour on both stores)."""
    for name, value in fields.items():
        if value is not None and _BAD_TEXT.search(value):
            raise InvalidPayload(f"{name}: {_UNSTORABLE}")


#: hora's own tasks (``hora.http``, ``hora.workflow:<name>``) are named under this prefix.
#: The SDK enqueues them itself; the HTTP API and the CLI refuse them by name, so a tenant
#: cannot run a workflow's code outside its workflow, nor an HTTP call without its checks.
RESERVED_TASK_PREFIX = "hora."


def check_public_task(task: str) -> None:
    """Refuse a task name reserved for hora's own tasks (for the API and the CLI)."""
    if task.startswith(RESERVED_TASK_PREFIX):
        hint = "; to call a URL, give a target" if task == "hora.http" else ""
        raise InvalidPayload(f"task: {task[:200]!r} is reserved: names starting with "
                             f"{RESERVED_TASK_PREFIX!r} are hora's own tasks{hint}")


def _payload_json(task: str, payload: dict[str, Any]) -> str:
    """The payload as canonical JSON text, if it is JSON of at most MAX_PAYLOAD_BYTES."""
    check_json_shape(payload, "payload", max_bytes=MAX_PAYLOAD_BYTES)
    try:
        # Sorted keys: the stored text is canonical, so it doubles as the fingerprint input.
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          sort_keys=True)
    except UnicodeEncodeError:
        raise InvalidPayload(f"payload: {_UNSTORABLE} (task {task})") from None
    except (TypeError, ValueError) as e:
        for key, value in payload.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as inner:
                raise InvalidPayload(
                    f"payload: field {key!r} is not JSON-serialisable ({inner}) (task "
                    f"{task}); pass str/int/float/bool/None, lists and dicts of them") from None
        raise InvalidPayload(f"payload: not JSON-serialisable (task {task}): {e}") from None
    if _NUL_ESCAPE.search(text) or _SURROGATE.search(text):
        raise InvalidPayload(f"payload: {_UNSTORABLE} (task {task})")
    return check_json_size(text, "payload", max_bytes=MAX_PAYLOAD_BYTES)


_ENQUEUED: dict[tuple[str, str], Any] = {}


def _enqueued(task: str, queue: str) -> Any:
    """The counter child for (task, queue), looked up once per process."""
    child = _ENQUEUED.get((task, queue))
    if child is None:
        child = _ENQUEUED[(task, queue)] = JOBS_ENQUEUED.labels(task, queue)
    return child


def _fingerprint(task: str, payload_json: str) -> str:
    """What makes two enqueues "the same request" for idempotency: task and payload."""
    return hashlib.sha256(f"{task}\n{payload_json}".encode()).hexdigest()


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

