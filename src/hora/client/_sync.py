# Generated from _async.py by scripts/unasync_client.py: do not edit; edit _async.py
# and run the script again.
"""``Client``: every operation of the HTTP API, for synchronous code.

This file is generated from ``_async.py`` (``AsyncClient``, written by hand) by
``scripts/unasync_client.py``, as httpcore does with unasync, and a test fails when the two
drift. Change ``_async.py``, then run ``python scripts/unasync_client.py``. A method only builds a
``_Call`` (``_requests.py``) and sends it; what the answer means is ``_answers.py``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
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


class Client:
    """The HTTP API from synchronous code; see the package docstring. ``AsyncClient`` is the
    same API for asyncio, and this class is generated from it by ``scripts/unasync_client.py``.

    ``base_url`` defaults to ``HORA_URL`` (else http://127.0.0.1:8000), ``api_key`` to
    ``HORA_API_KEY``. ``transport`` is an ``httpx.BaseTransport`` (tests, proxies);
    ``sleep`` is how the client waits between retries.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 retries: int = 2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url, api_key = _settings(base_url, api_key, retries)
        self.retries = retries
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(api_key),
                                  timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"<hora.Client {self.base_url}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.send(_request(self._http, call))
            except httpx.TransportError as e:
                wait = _wait_after_error(call, e, attempt, self.retries)
                if wait is None:
                    raise _connection_failed(self.base_url, call, e) from e
            else:
                wait = _wait_after_answer(call, response, attempt, self.retries)
                if wait is None:
                    return _result(call, response)
            self._sleep(wait)
            attempt += 1

    # -- jobs ---------------------------------------------------------------------------------

    def enqueue(self, task: str, payload: Mapping[str, Any] | None = None,
                **options: Unpack[JobOptions]) -> Job:
        """Enqueue a job of ``task`` (a name workers know) with ``payload`` as its keyword
        arguments; options as ``Hora.enqueue`` (``at``, ``delay``, ``queue``, ``priority``,
        ``idempotency_key``, ``correlation_id``, ``retry``, ``timeout``, ``max_attempts``)."""
        return self._send(_Requests.enqueue(task, payload, options))

    def enqueue_http(self, url: str, *, method: str = "POST",
                     headers: Mapping[str, str] | None = None, body: Any = None,
                     request_timeout: Seconds = 30.0,
                     **options: Unpack[JobOptions]) -> Job:
        """Enqueue one HTTP call (signed per Standard Webhooks) instead of a Python task."""
        return self._send(_Requests.enqueue_http(url, method, headers, body,
                                                 request_timeout, options))

    def get_job(self, job_id: str) -> Job:
        """A job with its attempts and state history."""
        return self._send(_Requests.get_job(job_id))

    def wait_for_job(self, job_id: str,
                     timeout: float | timedelta | None = None) -> Job:  # noqa: ASYNC109, RUF100
        """The job once its run is over (succeeded, cancelled, dead, discarded, replayed),
        by long-polls of at most 55 s each (``GET /v1/jobs/{id}?wait=``); ``WaitTimeout``
        after ``timeout`` seconds (None: no bound)."""
        clock = WaitClock(timeout)
        while True:
            job = self._send(_Requests.poll_job(job_id, clock.next_wait()))
            if job_done(job):
                return job
            if clock.over:
                raise WaitTimeout("job", job_id, str(job.state), clock.timeout or 0.0)

    def list_jobs(self, *, state: JobState | str | Sequence[JobState | str] | None = None,
                  task: str | None = None, queue: str | None = None,
                  correlation_id: str | None = None, limit: int = 50,
                  cursor: str | None = None, include_internal: bool = False,
                  ) -> Page[Job]:
        """Newest first; pass ``next_cursor`` back for the next page. hora's own jobs
        (``hora.workflow:*``) only with ``include_internal``."""
        return self._send(_Requests.list_jobs(state, task, queue, correlation_id, limit,
                                              cursor, include_internal))

    def cancel_job(self, job_id: str, reason: str = "cancelled on request") -> Job:
        """Cancel a waiting job, or ask a running one to stop."""
        return self._send(_Requests.cancel_job(job_id, reason))

    def reschedule_job(self, job_id: str, *, at: datetime | None = None,
                       delay: float | timedelta | None = None) -> Job:
        """Move a waiting job to a new due time: ``at`` or ``delay`` (seconds from now)."""
        return self._send(_Requests.reschedule_job(job_id, at, delay))

    def run_job_now(self, job_id: str) -> Job:
        """Make a waiting job due now (flow-control limits still apply)."""
        return self._send(_Requests.run_job_now(job_id))

    def cancel_jobs(self, *, correlation_id: str | None = None,
                    task: str | None = None, queue: str | None = None,
                    schedule_id: str | None = None,
                    created_before: datetime | None = None,
                    include_running: bool = False, all: bool = False,
                    reason: str = "cancelled on request") -> int:
        """Cancel every waiting job matching all the filters given (at least one, or
        ``all=True``); with ``include_running`` ask matching running ones to stop. Returns
        how many it cancelled or asked to stop."""
        return self._send(_Requests.cancel_jobs({
      "correlation_id": correlation_id, "task": task, "queue": queue,
      "schedule_id": schedule_id, "created_before": created_before,
      "include_running": include_running or None, "all": all or None,
      "reason": reason}))

    def dead_jobs(self, *, task: str | None = None, queue: str | None = None,
                  limit: int = 50, cursor: str | None = None) -> Page[Job]:
        """The dead-letter queue, newest first."""
        return self._send(_Requests.dead_jobs(task, queue, limit, cursor))

    def replay(self, ids: str | Sequence[str]) -> list[Job]:
        """Replay dead jobs as new, linked jobs. One id (a ``str``) must be dead
        (``NotFound`` otherwise); with a list, all or none are replayed."""
        call = _Requests.replay(ids)
        return [] if call is None else self._send(call)

    def discard(self, ids: str | Sequence[str]) -> list[str]:
        """Take dead jobs out of the dead-letter queue for good; returns their ids."""
        call = _Requests.discard(ids)
        return [] if call is None else self._send(call)

    # -- schedules ----------------------------------------------------------------------------

    def create_schedule(self, task: str, payload: Mapping[str, Any] | None = None, *,
                        trigger: Trigger,
                        **options: Unpack[ScheduleOptions]) -> Schedule:
        """A schedule whose every occurrence of ``trigger`` (a spec, or a cron/iCalendar
        string) enqueues ``task``; options as ``Hora.create_schedule``."""
        return self._send(_Requests.create_schedule(task, payload, trigger, options))

    def create_http_schedule(self, url: str, *, trigger: Trigger, method: str = "POST",
                             headers: Mapping[str, str] | None = None, body: Any = None,
                             request_timeout: Seconds = 30.0,
                             **options: Unpack[ScheduleOptions]) -> Schedule:
        """A schedule that makes an HTTP call at every occurrence of ``trigger``."""
        return self._send(_Requests.create_http_schedule(
      url, trigger, method, headers, body, request_timeout, options))

    def ensure_schedule(self, task: str, payload: Mapping[str, Any] | None = None, *,
                        name: str, trigger: Trigger,
                        **options: Unpack[EnsureOptions]) -> Ensured:
        """Create or update the schedule named ``name`` (``PUT /v1/schedules/by-name/...``):
        ``(schedule, outcome)``, outcome ``created``, ``updated`` or ``unchanged`` (nothing
        written), as ``app.schedules.ensure``."""
        return self._send(_Requests.ensure_schedule(task, payload, name, trigger,
                                                    options))

    def get_schedule_by_name(self, name: str) -> Schedule:
        return self._send(_Requests.get_schedule_by_name(name))

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self._send(_Requests.get_schedule(schedule_id))

    def list_schedules(self, *, state: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> Page[Schedule]:
        return self._send(_Requests.list_schedules(state, limit, cursor))

    def update_schedule(self, schedule_id: str,
                        **changes: Unpack[ScheduleChanges]) -> Schedule:
        """Change the given fields; the schedule's future is recomputed from now."""
        return self._send(_Requests.update_schedule(schedule_id, changes))

    def pause_schedule(self, schedule_id: str) -> Schedule:
        return self._send(_Requests.pause_schedule(schedule_id))

    def resume_schedule(self, schedule_id: str) -> Schedule:
        """Resume from now; occurrences in the pause are recorded as skipped ticks."""
        return self._send(_Requests.resume_schedule(schedule_id))

    def trigger_schedule(self, schedule_id: str) -> Job:
        """Run the schedule's job now, outside its trigger."""
        return self._send(_Requests.trigger_schedule(schedule_id))

    def delete_schedule(self, schedule_id: str) -> None:
        self._send(_Requests.delete_schedule(schedule_id))

    def schedule_ticks(self, schedule_id: str, *, outcome: str | None = None,
                       limit: int = 100, cursor: str | None = None) -> Page[Tick]:
        """The tick ledger, newest first: every occurrence, fired or skipped and why."""
        return self._send(_Requests.schedule_ticks(schedule_id, outcome, limit, cursor))

    def preview_schedule(self, schedule_id: str, count: int = 10,
                         after: datetime | None = None) -> list[Json]:
        """The schedule's next ``count`` occurrences (at, local, nominal, skipped, notes)."""
        return self._send(_Requests.preview_schedule(schedule_id, count, after))

    def preview(self, trigger: Trigger, *, after: datetime | None = None,
                count: int = 10) -> list[Json]:
        """The next ``count`` occurrences of an unsaved trigger."""
        return self._send(_Requests.preview(trigger, after, count))

    # -- workflows ----------------------------------------------------------------------------

    def start_workflow(self, name: str, args: Mapping[str, Any] | None = None, *,
                       workflow_id: str | None = None,
                       correlation_id: str | None = None,
                       allow_unregistered: bool = False) -> Workflow:
        """Start the workflow registered as ``name`` with ``args`` (its keyword arguments).
        With ``workflow_id`` starting is idempotent: the same id returns the workflow already
        there, whatever its state. A name no worker registered raises ``UnknownTask`` (with
        suggestions) unless ``allow_unregistered`` (then it waits for a worker that knows
        it)."""
        return self._send(_Requests.start_workflow(name, args, workflow_id,
                                                   correlation_id, allow_unregistered))

    def get_workflow(self, workflow_id: str) -> Workflow:
        return self._send(_Requests.get_workflow(workflow_id))

    def wait_for_workflow(
      self, workflow_id: str,
      timeout: float | timedelta | None = None) -> Workflow:  # noqa: ASYNC109, RUF100
        """The workflow once it has ended (completed, failed, cancelled), by long-polls
        (``GET /v1/workflows/{id}?wait=``); ``WaitTimeout`` after ``timeout`` seconds."""
        clock = WaitClock(timeout)
        while True:
            wf = self._send(_Requests.poll_workflow(workflow_id, clock.next_wait()))
            if workflow_done(wf):
                return wf
            if clock.over:
                raise WaitTimeout("workflow", workflow_id, str(wf.state), clock.timeout or 0.0)

    def workflow_history(self, workflow_id: str) -> list[HistoryEntry]:
        """The journal: every step, timer, signal, child and compensation, in order."""
        return self._send(_Requests.workflow_history(workflow_id))

    def workflow_signals(self, workflow_id: str) -> list[Signal]:
        """Every signal sent to the workflow, consumed or not, in the order sent."""
        return self._send(_Requests.workflow_signals(workflow_id))

    def list_workflows(self, *, state: str | Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        """Newest first; pass ``next_cursor`` back for the next page."""
        return self._send(_Requests.list_workflows(state, name, correlation_id, limit,
                                                   cursor))

    def approvals(self, *, state: str | Sequence[str] | None = None,
                  workflow_id: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[ApprovalRequest]:
        """The inbox: approval requests (pending unless ``state``), newest first."""
        return self._send(_Requests.approvals(state, workflow_id, limit, cursor))

    def get_approval(self, approval_id: str) -> ApprovalRequest:
        return self._send(_Requests.get_approval(approval_id))

    def signal_workflow(self, workflow_id: str, name: str, payload: Any = None, *,
                        actor: str | None = None, comment: str | None = None) -> Signal:
        """Send signal ``name``; ``TransitionConflict`` when the workflow has finished."""
        return self._send(_Requests.signal_workflow(workflow_id, name, payload, actor,
                                                    comment))

    def approve(self, request: str, *, comment: str | None = None,
                name: str | None = None) -> ApprovalRequest:
        """Approve an approval request, as this client's API key (the server records the
        key's name as the actor). Approving again is the same decision; a reject after it is
        ``TransitionConflict``. ``request`` is the request's id, or a workflow id (then its
        single pending request, of ``name`` if given; tried when no request has that id)."""
        return self._decide(request, "approve", comment, name)

    def reject(self, request: str, *, comment: str | None = None,
               name: str | None = None) -> ApprovalRequest:
        """Reject an approval request (by id, or a workflow id as for ``approve``)."""
        return self._decide(request, "reject", comment, name)

    def _decide(self, request: str, decision: Literal["approve", "reject"],
                comment: str | None, name: str | None) -> ApprovalRequest:
        if name is None:
            try:
                return self._send(_Requests.decide(request, decision, comment))
            except NotFound:
                pass  # not a request's id: a workflow's, perhaps
        return self._send(_Requests.decide_workflow(request, decision, comment, name))

    def cancel_workflow(self, workflow_id: str, reason: str = "cancelled on request"
                        ) -> Workflow:
        """Ask the workflow to stop: its wait ends, its compensations run, it ends
        ``cancelled``. Until a worker gets to it, it shows ``cancel_requested``."""
        return self._send(_Requests.cancel_workflow(workflow_id, reason))

    def terminate_workflow(self, workflow_id: str, reason: str = "terminated on request"
                           ) -> Workflow:
        """End the workflow now: no compensation runs, its approval requests and timers
        are cancelled; it ends ``cancelled`` with error ``Terminated``. Works whether or not
        any worker knows its name."""
        return self._send(_Requests.terminate_workflow(workflow_id, reason))

    # -- tasks --------------------------------------------------------------------------------

    def registered_tasks(self, *, kind: Literal["task", "workflow"] | None = None
                         ) -> list[RegisteredTask]:
        """The tasks and workflows workers registered for this tenant (``GET /v1/tasks``),
        each with its defaults and payload schema."""
        return self._send(_Requests.registered_tasks(kind))

    # -- admin --------------------------------------------------------------------------------

    def create_tenant(self, tenant_id: str, *, name: str | None = None,
                      max_pending_jobs: int | None = None,
                      max_active_schedules: int | None = None,
                      rate_limit: float | None = None) -> Json:
        """A new tenant, with its ``webhook_secret`` (in this answer only)."""
        return self._send(_Requests.create_tenant(tenant_id, name, max_pending_jobs,
                                                  max_active_schedules, rate_limit))

    def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Json]:
        return self._send(_Requests.list_tenants(limit, cursor))

    def get_tenant(self, tenant_id: str) -> Json:
        return self._send(_Requests.get_tenant(tenant_id))

    def update_tenant(self, tenant_id: str, **changes: Unpack[TenantChanges]) -> Json:
        return self._send(_Requests.update_tenant(tenant_id, changes))

    def rotate_webhook_secret(self, tenant_id: str) -> Json:
        """A new webhook secret for the tenant, in ``["webhook_secret"]`` of this answer only."""
        return self._send(_Requests.rotate_webhook_secret(tenant_id))

    def create_key(self, tenant_id: str | None = None, *,
                   scopes: Sequence[str] = ("read", "write"), name: str | None = None,
                   expires_at: datetime | None = None) -> Json:
        """A new API key (default: of the caller's tenant); its secret is in ``["key"]`` of
        this answer only."""
        return self._send(_Requests.create_key(tenant_id, scopes, name, expires_at))

    def list_keys(self, tenant_id: str | None = None, *, limit: int = 50,
                  cursor: str | None = None) -> Page[Json]:
        return self._send(_Requests.list_keys(tenant_id, limit, cursor))

    def revoke_key(self, key_id: str) -> Json:
        return self._send(_Requests.revoke_key(key_id))

    # -- workers and queues -------------------------------------------------------------------

    def workers(self, *, all: bool = False) -> list[WorkerInfo]:
        """The live workers (``all=True``: lost and stopped ones too); needs the operator
        scope, since workers serve every tenant."""
        return self._send(_Requests.workers(all))

    def queues(self) -> list[QueueInfo]:
        """The tenant's queues: depth by state, oldest due job's age, live workers, paused."""
        return self._send(_Requests.queues())

    def pause_queue(self, name: str, *, reason: str | None = None) -> QueueState:
        """Stop claiming the tenant's jobs on queue ``name`` until ``resume_queue``."""
        return self._send(_Requests.pause_queue(name, reason))

    def resume_queue(self, name: str) -> QueueState:
        return self._send(_Requests.resume_queue(name))

    # -- rate limits set at run time ----------------------------------------------------------

    def list_rate_limits(self) -> list[RateLimitInfo]:
        """The tenant's rate limits: set at run time, and declared by tasks its workers
        registered, each with the rate in force and its source."""
        return self._send(_Requests.list_rate_limits())

    def get_rate_limit(self, name: str) -> RateLimitInfo:
        return self._send(_Requests.get_rate_limit(name))

    def set_rate_limit(self, name: str, rate: str, *, burst: int = 1) -> RateLimitInfo:
        """Limit ``name`` (``queue:<queue>`` for a queue) to ``rate`` ('20/s', '3/h') for
        every worker, over what the tasks declare (needs the admin scope)."""
        return self._send(_Requests.set_rate_limit(name, rate, burst))

    def delete_rate_limit(self, name: str) -> None:
        """Remove the override: the declared rate applies again."""
        self._send(_Requests.delete_rate_limit(name))

    # -- operations ---------------------------------------------------------------------------

    def healthz(self) -> Json:
        return self._send(_Requests.healthz())

    def readyz(self) -> Json:
        """``{"status": "ok"}``, or ``"unavailable"`` with a ``detail`` (a 503, not raised)."""
        return self._send(_Requests.readyz())
