"""Jobs: enqueue a task or an HTTP call, list, read and cancel jobs; reschedule, run now,
cancel in bulk (docs/flow.md "Job control").
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from hora.api.deps import (
    Cursor,
    IdemKey,
    Limit,
    Reader,
    Writer,
    _check_quota,
    _ctx,
    _reply,
)
from hora.api.schemas import (
    DONE_HEADER,
    DONE_RESPONSE,
    CancelIn,
    CancelJobsIn,
    CancelJobsOut,
    JobIn,
    JobOut,
    JobPage,
    RescheduleIn,
    StrictWait,
    WaitSeconds,
    _Work,
)
from hora.app import JobRequest, check_public_task
from hora.errors import WaitTimeout
from hora.http_target import TASK_NAME as HTTP_TASK
from hora.http_target import AddressPolicy, check_target_address, parse_target
from hora.models import Job
from hora.retry import RetryPolicy
from hora.states import JobState
from hora.waiting import job_done
from hora.wire import (
    job_dict,
)

router = APIRouter(prefix="/v1")


# -- helpers shared by jobs and schedules ------------------------------------------------------


def _work(body: _Work, policy: AddressPolicy,
          ) -> tuple[str, dict[str, Any], RetryPolicy | None]:
    if body.target is not None:
        return HTTP_TASK, _target(body.target.model_dump(), policy), _retry(body)
    assert body.task is not None
    check_public_task(body.task)
    return body.task, body.payload, _retry(body)


def _target(obj: dict[str, Any], policy: AddressPolicy) -> dict[str, Any]:
    """A target checked as the worker will check it: fields, then the SSRF policy (a refused
    address is a 422 now, not a dead job at the due time)."""
    target = parse_target(obj)
    check_target_address(target["url"], policy)
    return target


def _retry(body: _Work) -> RetryPolicy | None:
    if body.retry is None:
        return None
    d = body.retry.model_dump()
    d["non_retryable"] = tuple(d["non_retryable"])
    return RetryPolicy(**d)



def _job_out(job: Job, history: bool = False) -> dict[str, Any]:
    return job_dict(job, history=history)


def _with_reason(d: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """The job's waiting reason (``WorkerService.waiting_reasons``), when it has one."""
    reason = reasons.get(d["id"])
    if reason is not None:
        d["waiting_reason"] = reason
    return d


@router.post("/jobs", status_code=201, response_model=JobOut, tags=["jobs"],
             summary="Enqueue a job (a Python task or an HTTP target)")
def create_job(body: JobIn, request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    ctx = _ctx(request)
    task, payload, retry = _work(body, ctx.http_policy)
    _check_quota(ctx, caller.tenant_id, "jobs")
    key = body.idempotency_key or (None if idem is None else f"http:{idem}")
    job = ctx.view(caller.tenant_id).enqueue_many([JobRequest(
        task=task, payload=payload, at=body.at, delay=body.delay, queue=body.queue,
        priority=body.priority, idempotency_key=key, correlation_id=body.correlation_id,
        retry=retry, timeout=body.timeout, max_attempts=body.max_attempts,
        allow_unregistered=body.allow_unregistered)])[0]
    return _reply(request, _job_out(job), 201)


@router.get("/jobs", response_model=JobPage, tags=["jobs"], summary="List jobs, newest first")
def list_jobs(request: Request, caller: Reader,
              state: Annotated[list[JobState] | None, Query()] = None,
              task: Annotated[str | None, Query(max_length=200)] = None,
              queue: Annotated[str | None, Query(max_length=200)] = None,
              correlation_id: Annotated[str | None, Query(max_length=255)] = None,
              limit: Limit = 50, cursor: Cursor = None,
              include_internal: Annotated[bool, Query(
                  description="Also hora's own jobs (task hora.workflow:*: workflow runs "
                              "and timers), hidden by default")] = False) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    page = view.list_jobs(
        state=state, task=task, queue=queue, correlation_id=correlation_id, limit=limit,
        cursor=cursor, include_internal=include_internal)
    reasons = view.fleet.waiting_reasons(page.items)
    return JSONResponse({"items": [_with_reason(_job_out(j), reasons) for j in page.items],
                         "next_cursor": page.next_cursor})


@router.post("/jobs/cancel", response_model=CancelJobsOut, tags=["jobs"],
             summary="Cancel every waiting job matching a filter (in bounded batches)")
def cancel_jobs(body: CancelJobsIn, request: Request, caller: Writer,
                idem: IdemKey) -> JSONResponse:
    n = _ctx(request).view(caller.tenant_id).cancel_jobs(
        correlation_id=body.correlation_id, task=body.task, queue=body.queue,
        schedule_id=body.schedule_id, created_before=body.created_before,
        include_running=body.include_running, all=body.all, reason=body.reason)
    return _reply(request, {"cancelled": n})


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=DONE_RESPONSE,
            summary="A job with its attempts (and their log lines) and state history; "
                    "with ?wait=, once it has ended or the wait is over (long-poll)")
async def get_job(job_id: str, request: Request, caller: Reader, wait: WaitSeconds = None,
                  strict: StrictWait = False) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    if wait:
        # Sleeps on an event (a worker of this process, PostgreSQL's NOTIFY or the poll):
        # no thread and no connection are held between the short reads.
        job, done = await view.aio.poll_job(job_id, wait)
        if not done and strict:
            raise WaitTimeout("job", job_id, str(job.state), wait)
    else:
        job = await asyncio.to_thread(view.get_job, job_id, history=True)
        done = job_done(job)
    reasons = {} if done else await asyncio.to_thread(view.fleet.waiting_reasons, [job])
    return JSONResponse(_with_reason(_job_out(job, history=True), reasons),
                        headers={DONE_HEADER: "true" if done else "false"})


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"],
             summary="Cancel a waiting job, or ask a running one to stop")
def cancel_job(job_id: str, request: Request, caller: Writer, idem: IdemKey,
               body: CancelIn | None = None) -> JSONResponse:
    reason = body.reason if body is not None else "cancelled on request"
    job = _ctx(request).view(caller.tenant_id).cancel_job(job_id, reason=reason)
    return _reply(request, _job_out(job))




@router.post("/jobs/{job_id}/reschedule", response_model=JobOut, tags=["jobs"],
             summary="Move a waiting job to a new due time")
def reschedule_job(job_id: str, body: RescheduleIn, request: Request, caller: Writer,
                   idem: IdemKey) -> JSONResponse:
    job = _ctx(request).view(caller.tenant_id).reschedule_job(job_id, at=body.at,
                                                              delay=body.delay)
    return _reply(request, _job_out(job))


@router.post("/jobs/{job_id}/run-now", response_model=JobOut, tags=["jobs"],
             summary="Make a waiting job due now (flow-control limits still apply)")
def run_job_now(job_id: str, request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    job = _ctx(request).view(caller.tenant_id).run_job_now(job_id)
    return _reply(request, _job_out(job))
