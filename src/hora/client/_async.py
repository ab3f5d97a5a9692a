"""``AsyncClient``: every operation of the HTTP API, written once, for asyncio.

This is the hand-written implementation; ``_sync.py`` (``Client``) is generated from it by
``scripts/unasync_client.py``, as httpcore does with unasync, and a test fails when the two
drift. Change ``_async.py``, then run ``python scripts/unasync_client.py``. A method only builds a
``_Call`` (``_requests.py``) and sends it; what the answer means is ``_answers.py``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Unpack

import httpx

from hora.client._answers import (
    _connection_failed,
    _headers,
    _request,
    _result,
    _settings,
    _wait_after_answer,
    _wait_after_error,
)
from hora.client._requests import (
    EnsureOptions,
    JobOptions,
    Json,
    ScheduleChanges,
    ScheduleOptions,
    Seconds,
    T,
    TenantChanges,
    Trigger,
    WaitClock,
    _Call,
    _Requests,
)
from hora.errors import (
    NotFound,
    WaitTimeout,
)
from hora.models import (
    ApprovalRequest,
    HistoryEntry,
    Job,
    Page,
    QueueInfo,
    QueueState,
    RateLimitInfo,
    RegisteredTask,
    Schedule,
    Signal,
    Tick,
    WorkerInfo,
    Workflow,
)
from hora.schedules import Ensured
from hora.states import JobState
from hora.waiting import job_done, workflow_done


class AsyncClient:
    """The HTTP API from asyncio code; see the package docstring. ``Client`` is the same
    API from synchronous code, generated from this class by ``scripts/unasync_client.py``.

    ``base_url`` defaults to ``HORA_URL`` (else http://127.0.0.1:8000), ``api_key`` to
    ``HORA_API_KEY``. ``transport`` is an ``httpx.AsyncBaseTransport`` (tests, proxies);
    ``sleep`` is how the client waits between retries.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None,
                 retries: int = 2,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.base_url, api_key = _settings(base_url, api_key, retries)
        self.retries = retries
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(api_key),
                                       timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"<hora.AsyncClient {self.base_url}>"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close  # unasync: remove

    async def _send(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.send(_request(self._http, call))
            except httpx.TransportError as e:
                wait = _wait_after_error(call, e, attempt, self.retries)
                if wait is None:
                    raise _connection_failed(self.base_url, call, e) from e
            else:
                wait = _wait_after_answer(call, response, attempt, self.retries)
                if wait is None:
                    return _result(call, response)
            await self._sleep(wait)
            attempt += 1

    # -- jobs ---------------------------------------------------------------------------------

    async def enqueue(self, task: str, payload: Mapping[str, Any] | None = None,
                      **options: Unpack[JobOptions]) -> Job:
        """Enqueue a job of ``task`` (a name workers know) with ``payload`` as its keyword
        arguments; options as ``Hora.enqueue`` (``at``, ``delay``, ``queue``, ``priority``,
        ``idempotency_key``, ``correlation_id``, ``retry``, ``timeout``, ``max_attempts``)."""
        return await self._send(_Requests.enqueue(task, payload, options))

    async def enqueue_http(self, url: str, *, method: str = "POST",
                           headers: Mapping[str, str] | None = None, body: Any = None,
                           request_timeout: Seconds = 30.0,
                           **options: Unpack[JobOptions]) -> Job:
        """Enqueue one HTTP call (signed per Standard Webhooks) instead of a Python task."""
        return await self._send(_Requests.enqueue_http(url, method, headers, body,
                                                       request_timeout, options))

    async def get_job(self, job_id: str) -> Job:
        """A job with its attempts and state history."""
        return await self._send(_Requests.get_job(job_id))

    async def wait_for_job(self, job_id: str,
                           timeout: float | timedelta | None = None) -> Job:  # noqa: ASYNC109, RUF100
        """The job once its run is over (succeeded, cancelled, dead, discarded, replayed),
        by long-polls of at most 55 s each (``GET /v1/jobs/{id}?wait=``); ``WaitTimeout``
        after ``timeout`` seconds (None: no bound)."""
        clock = WaitClock(timeout)
        while True:
            job = await self._send(_Requests.poll_job(job_id, clock.next_wait()))
            if job_done(job):
                return job
            if clock.over:
                raise WaitTimeout("job", job_id, str(job.state), clock.timeout or 0.0)

    async def list_jobs(self, *, state: JobState | str | Sequence[JobState | str] | None = None,
                        task: str | None = None, queue: str | None = None,
                        correlation_id: str | None = None, limit: int = 50,
                        cursor: str | None = None, include_internal: bool = False,
                        ) -> Page[Job]:
        """Newest first; pass ``next_cursor`` back for the next page. hora's own jobs
        (``hora.workflow:*``) only with ``include_internal``."""
        return await self._send(_Requests.list_jobs(state, task, queue, correlation_id, limit,
                                                    cursor, include_internal))

    async def cancel_job(self, job_id: str, reason: str = "cancelled on request") -> Job:
        """Cancel a waiting job, or ask a running one to stop."""
        return await self._send(_Requests.cancel_job(job_id, reason))

    async def reschedule_job(self, job_id: str, *, at: datetime | None = None,
                             delay: float | timedelta | None = None) -> Job:
        """Move a waiting job to a new due time: ``at`` or ``delay`` (seconds from now)."""
        return await self._send(_Requests.reschedule_job(job_id, at, delay))

    async def run_job_now(self, job_id: str) -> Job:
        """Make a waiting job due now (flow-control limits still apply)."""
        return await self._send(_Requests.run_job_now(job_id))

    async def cancel_jobs(self, *, correlation_id: str | None = None,
                          task: str | None = None, queue: str | None = None,
                          schedule_id: str | None = None,
                          created_before: datetime | None = None,
                          include_running: bool = False, all: bool = False,
                          reason: str = "cancelled on request") -> int:
        """Cancel every waiting job matching all the filters given (at least one, or
        ``all=True``); with ``include_running`` ask matching running ones to stop. Returns
        how many it cancelled or asked to stop."""
        return await self._send(_Requests.cancel_jobs({
            "correlation_id": correlation_id, "task": task, "queue": queue,
            "schedule_id": schedule_id, "created_before": created_before,
            "include_running": include_running or None, "all": all or None,
            "reason": reason}))

    async def dead_jobs(self, *, task: str | None = None, queue: str | None = None,
                        limit: int = 50, cursor: str | None = None) -> Page[Job]:
        """The dead-letter queue, newest first."""
        return await self._send(_Requests.dead_jobs(task, queue, limit, cursor))

    async def replay(self, ids: str | Sequence[str]) -> list[Job]:
        """Replay dead jobs as new, linked jobs. One id (a ``str``) must be dead
        (``NotFound`` otherwise); with a list, all or none are replayed."""
        call = _Requests.replay(ids)
        return [] if call is None else await self._send(call)

    async def discard(self, ids: str | Sequence[str]) -> list[str]:
        """Take dead jobs out of the dead-letter queue for good; returns their ids."""
        call = _Requests.discard(ids)
        return [] if call is None else await self._send(call)

    # -- schedules ----------------------------------------------------------------------------

    async def create_schedule(self, task: str, payload: Mapping[str, Any] | None = None, *,
                              trigger: Trigger,
                              **options: Unpack[ScheduleOptions]) -> Schedule:
        """A schedule whose every occurrence of ``trigger`` (a spec, or a cron/iCalendar
        string) enqueues ``task``; options as ``Hora.create_schedule``."""
        return await self._send(_Requests.create_schedule(task, payload, trigger, options))

    async def create_http_schedule(self, url: str, *, trigger: Trigger, method: str = "POST",
                                   headers: Mapping[str, str] | None = None, body: Any = None,
                                   request_timeout: Seconds = 30.0,
                                   **options: Unpack[ScheduleOptions]) -> Schedule:
        """A schedule that makes an HTTP call at every occurrence of ``trigger``."""
        return await self._send(_Requests.create_http_schedule(
            url, trigger, method, headers, body, request_timeout, options))

    async def ensure_schedule(self, task: str, payload: Mapping[str, Any] | None = None, *,
                              name: str, trigger: Trigger,
                              **options: Unpack[EnsureOptions]) -> Ensured:
        """Create or update the schedule named ``name`` (``PUT /v1/schedules/by-name/...``):
        ``(schedule, outcome)``, outcome ``created``, ``updated`` or ``unchanged`` (nothing
        written), as ``app.schedules.ensure``."""
        return await self._send(_Requests.ensure_schedule(task, payload, name, trigger,
                                                          options))

    async def get_schedule_by_name(self, name: str) -> Schedule:
        return await self._send(_Requests.get_schedule_by_name(name))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._send(_Requests.get_schedule(schedule_id))

    async def list_schedules(self, *, state: str | None = None, limit: int = 50,
                             cursor: str | None = None) -> Page[Schedule]:
        return await self._send(_Requests.list_schedules(state, limit, cursor))

    async def update_schedule(self, schedule_id: str,
                              **changes: Unpack[ScheduleChanges]) -> Schedule:
        """Change the given fields; the schedule's future is recomputed from now."""
        return await self._send(_Requests.update_schedule(schedule_id, changes))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self._send(_Requests.pause_schedule(schedule_id))

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        """Resume from now; occurrences in the pause are recorded as skipped ticks."""
        return await self._send(_Requests.resume_schedule(schedule_id))

    async def trigger_schedule(self, schedule_id: str) -> Job:
        """Run the schedule's job now, outside its trigger."""
        return await self._send(_Requests.trigger_schedule(schedule_id))

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._send(_Requests.delete_schedule(schedule_id))

    async def schedule_ticks(self, schedule_id: str, *, outcome: str | None = None,
                             limit: int = 100, cursor: str | None = None) -> Page[Tick]:
        """The tick ledger, newest first: every occurrence, fired or skipped and why."""
        return await self._send(_Requests.schedule_ticks(schedule_id, outcome, limit, cursor))

    async def preview_schedule(self, schedule_id: str, count: int = 10,
                               after: datetime | None = None) -> list[Json]:
        """The schedule's next ``count`` occurrences (at, local, nominal, skipped, notes)."""
        return await self._send(_Requests.preview_schedule(schedule_id, count, after))

    async def preview(self, trigger: Trigger, *, after: datetime | None = None,
                      count: int = 10) -> list[Json]:
        """The next ``count`` occurrences of an unsaved trigger."""
        return await self._send(_Requests.preview(trigger, after, count))

    # -- workflows ----------------------------------------------------------------------------

    async def start_workflow(self, name: str, args: Mapping[str, Any] | None = None, *,
                             workflow_id: str | None = None,
                             correlation_id: str | None = None,
                             allow_unregistered: bool = False) -> Workflow:
        """Start the workflow registered as ``name`` with ``args`` (its keyword arguments).
        With ``workflow_id`` starting is idempotent: the same id returns the workflow already
        there, whatever its state. A name no worker registered raises ``UnknownTask`` (with
        suggestions) unless ``allow_unregistered`` (then it waits for a worker that knows
        it)."""
        return await self._send(_Requests.start_workflow(name, args, workflow_id,
                                                         correlation_id, allow_unregistered))

    async def get_workflow(self, workflow_id: str) -> Workflow:
        return await self._send(_Requests.get_workflow(workflow_id))

    async def wait_for_workflow(
            self, workflow_id: str,
            timeout: float | timedelta | None = None) -> Workflow:  # noqa: ASYNC109, RUF100
        """The workflow once it has ended (completed, failed, cancelled), by long-polls
        (``GET /v1/workflows/{id}?wait=``); ``WaitTimeout`` after ``timeout`` seconds."""
        clock = WaitClock(timeout)
        while True:
            wf = await self._send(_Requests.poll_workflow(workflow_id, clock.next_wait()))
            if workflow_done(wf):
                return wf
            if clock.over:
                raise WaitTimeout("workflow", workflow_id, str(wf.state), clock.timeout or 0.0)

    async def workflow_history(self, workflow_id: str) -> list[HistoryEntry]:
        """The journal: every step, timer, signal, child and compensation, in order."""
        return await self._send(_Requests.workflow_history(workflow_id))

    async def workflow_signals(self, workflow_id: str) -> list[Signal]:
        """Every signal sent to the workflow, consumed or not, in the order sent."""
        return await self._send(_Requests.workflow_signals(workflow_id))

    async def list_workflows(self, *, state: str | Sequence[str] | None = None,
                             name: str | None = None, correlation_id: str | None = None,
                             limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        """Newest first; pass ``next_cursor`` back for the next page."""
        return await self._send(_Requests.list_workflows(state, name, correlation_id, limit,
                                                         cursor))

    async def approvals(self, *, state: str | Sequence[str] | None = None,
                        workflow_id: str | None = None, limit: int = 50,
                        cursor: str | None = None) -> Page[ApprovalRequest]:
        """The inbox: approval requests (pending unless ``state``), newest first."""
        return await self._send(_Requests.approvals(state, workflow_id, limit, cursor))

    async def get_approval(self, approval_id: str) -> ApprovalRequest:
        return await self._send(_Requests.get_approval(approval_id))

    async def signal_workflow(self, workflow_id: str, name: str, payload: Any = None, *,
                              actor: str | None = None, comment: str | None = None) -> Signal:
        """Send signal ``name``; ``TransitionConflict`` when the workflow has finished."""
        return await self._send(_Requests.signal_workflow(workflow_id, name, payload, actor,
                                                          comment))

    async def approve(self, request: str, *, comment: str | None = None,
                      name: str | None = None) -> ApprovalRequest:
        """Approve an approval request, as this client's API key (the server records the
        key's name as the actor). Approving again is the same decision; a reject after it is
        ``TransitionConflict``. ``request`` is the request's id, or a workflow id (then its
        single pending request, of ``name`` if given; tried when no request has that id)."""
        return await self._decide(request, "approve", comment, name)

    async def reject(self, request: str, *, comment: str | None = None,
                     name: str | None = None) -> ApprovalRequest:
        """Reject an approval request (by id, or a workflow id as for ``approve``)."""
        return await self._decide(request, "reject", comment, name)

    async def _decide(self, request: str, decision: Literal["approve", "reject"],
                      comment: str | None, name: str | None) -> ApprovalRequest:
        if name is None:
            try:
                return await self._send(_Requests.decide(request, decision, comment))
            except NotFound:
                pass  # not a request's id: a workflow's, perhaps
        return await self._send(_Requests.decide_workflow(request, decision, comment, name))

    async def cancel_workflow(self, workflow_id: str, reason: str = "cancelled on request"
                              ) -> Workflow:
        """Ask the workflow to stop: its wait ends, its compensations run, it ends
        ``cancelled``. Until a worker gets to it, it shows ``cancel_requested``."""
        return await self._send(_Requests.cancel_workflow(workflow_id, reason))

    async def terminate_workflow(self, workflow_id: str, reason: str = "terminated on request"
                                 ) -> Workflow:
        """End the workflow now: no compensation runs, its approval requests and timers
        are cancelled; it ends ``cancelled`` with error ``Terminated``. Works whether or not
        any worker knows its name."""
        return await self._send(_Requests.terminate_workflow(workflow_id, reason))

    # -- tasks --------------------------------------------------------------------------------

    async def registered_tasks(self, *, kind: Literal["task", "workflow"] | None = None
                               ) -> list[RegisteredTask]:
        """The tasks and workflows workers registered for this tenant (``GET /v1/tasks``),
        each with its defaults and payload schema."""
        return await self._send(_Requests.registered_tasks(kind))

    # -- admin --------------------------------------------------------------------------------

    async def create_tenant(self, tenant_id: str, *, name: str | None = None,
                            max_pending_jobs: int | None = None,
                            max_active_schedules: int | None = None,
                            rate_limit: float | None = None) -> Json:
        """A new tenant, with its ``webhook_secret`` (in this answer only)."""
        return await self._send(_Requests.create_tenant(tenant_id, name, max_pending_jobs,
                                                        max_active_schedules, rate_limit))

    async def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Json]:
        return await self._send(_Requests.list_tenants(limit, cursor))

    async def get_tenant(self, tenant_id: str) -> Json:
        return await self._send(_Requests.get_tenant(tenant_id))

    async def update_tenant(self, tenant_id: str, **changes: Unpack[TenantChanges]) -> Json:
        return await self._send(_Requests.update_tenant(tenant_id, changes))

    async def rotate_webhook_secret(self, tenant_id: str) -> Json:
        """A new webhook secret for the tenant, in ``["webhook_secret"]`` of this answer only."""
        return await self._send(_Requests.rotate_webhook_secret(tenant_id))

    async def create_key(self, tenant_id: str | None = None, *,
                         scopes: Sequence[str] = ("read", "write"), name: str | None = None,
                         expires_at: datetime | None = None) -> Json:
        """A new API key (default: of the caller's tenant); its secret is in ``["key"]`` of
        this answer only."""
        return await self._send(_Requests.create_key(tenant_id, scopes, name, expires_at))

    async def list_keys(self, tenant_id: str | None = None, *, limit: int = 50,
                        cursor: str | None = None) -> Page[Json]:
        return await self._send(_Requests.list_keys(tenant_id, limit, cursor))

    async def revoke_key(self, key_id: str) -> Json:
        return await self._send(_Requests.revoke_key(key_id))

    # -- workers and queues -------------------------------------------------------------------

    async def workers(self, *, all: bool = False) -> list[WorkerInfo]:
        """The live workers (``all=True``: lost and stopped ones too); needs the operator
        scope, since workers serve every tenant."""
        return await self._send(_Requests.workers(all))

    async def queues(self) -> list[QueueInfo]:
        """The tenant's queues: depth by state, oldest due job's age, live workers, paused."""
        return await self._send(_Requests.queues())

    async def pause_queue(self, name: str, *, reason: str | None = None) -> QueueState:
        """Stop claiming the tenant's jobs on queue ``name`` until ``resume_queue``."""
        return await self._send(_Requests.pause_queue(name, reason))

    async def resume_queue(self, name: str) -> QueueState:
        return await self._send(_Requests.resume_queue(name))

    # -- rate limits set at run time ----------------------------------------------------------

    async def list_rate_limits(self) -> list[RateLimitInfo]:
        """The tenant's rate limits: set at run time, and declared by tasks its workers
        registered, each with the rate in force and its source."""
        return await self._send(_Requests.list_rate_limits())

    async def get_rate_limit(self, name: str) -> RateLimitInfo:
        return await self._send(_Requests.get_rate_limit(name))

    async def set_rate_limit(self, name: str, rate: str, *, burst: int = 1) -> RateLimitInfo:
        """Limit ``name`` (``queue:<queue>`` for a queue) to ``rate`` ('20/s', '3/h') for
        every worker, over what the tasks declare (needs the admin scope)."""
        return await self._send(_Requests.set_rate_limit(name, rate, burst))

    async def delete_rate_limit(self, name: str) -> None:
        """Remove the override: the declared rate applies again."""
        await self._send(_Requests.delete_rate_limit(name))

    # -- operations ---------------------------------------------------------------------------

    async def healthz(self) -> Json:
        return await self._send(_Requests.healthz())

    async def readyz(self) -> Json:
        """``{"status": "ok"}``, or ``"unavailable"`` with a ``detail`` (a 503, not raised)."""
        return await self._send(_Requests.readyz())
