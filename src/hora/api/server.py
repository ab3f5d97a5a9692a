"""The HTTP API (v1): the SDK's operations over JSON, one tenant per API key.

Routes are thin: each resolves the caller (key → tenant, scopes, rate limit), takes the
tenant's view of the SDK (``Hora.for_tenant``) and calls the same method a Python user
would, so the API cannot drift from the SDK. Routes are sync functions: the store is
synchronous and FastAPI runs them in its thread pool. Errors are raised, never built here:
``hora.api.problems`` maps every one to ``application/problem+json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

import hora
from hora.api import problems
from hora.api.auth import (
    Caller,
    Keyring,
    RateLimiter,
    check_expiry,
    default_tenant,
    grants_of,
    key_record,
    new_key,
    retry_after_header,
)
from hora.api.guard import RequestGuard
from hora.api.problems import ApiProblem
from hora.api.readiness import Readiness
from hora.api.schemas import (
    ApprovalIn,
    ApprovalOut,
    ApprovalPage,
    ApprovalState,
    CancelIn,
    DecisionIn,
    DiscardOut,
    Health,
    IdsIn,
    JobIn,
    JobOut,
    JobPage,
    KeyIn,
    KeyOut,
    KeyPage,
    LeaseIn,
    LeaseOut,
    LeaseRef,
    LockIn,
    LockOut,
    NewKeyOut,
    PreviewIn,
    PreviewOut,
    Problem,
    ReleasedOut,
    ReplayOut,
    ScheduleIn,
    ScheduleOut,
    SchedulePage,
    SchedulePatch,
    SignalIn,
    SignalOut,
    TenantIn,
    TenantOut,
    TenantPage,
    TenantPatch,
    TenantSecretOut,
    TickPage,
    WorkflowIn,
    WorkflowOut,
    WorkflowPage,
    WorkflowState,
    _Work,
)
from hora.app import Hora, JobRequest, check_public_task, check_text
from hora.errors import InvalidPayload, LockTimeout, NotFound
from hora.http_target import TASK_NAME as HTTP_TASK
from hora.http_target import new_secret, parse_target
from hora.limits import MAX_BODY_BYTES, check_instant
from hora.models import ApiKey, ApprovalRequest, Job, Page, Tenant, Workflow
from hora.observability import HTTP_DURATION, HTTP_REQUESTS, tracer
from hora.retry import RetryPolicy
from hora.schedules import _spec
from hora.states import JobState
from hora.store.common import OPERATOR, tenant_cursor
from hora.store.queries import load_migrations
from hora.triggers.spec import preview_to_json, trigger_from_spec
from hora.wire import (
    approval_dict,
    iso_z,
    job_dict,
    schedule_dict,
    signal_dict,
    tick_dict,
    workflow_dict,
)

log = logging.getLogger("hora.api")

MAX_BODY = MAX_BODY_BYTES  # 1 MiB: a payload is a message, not a file


@dataclass(frozen=True)
class ApiSettings:
    #: Requests per second per tenant when the tenant sets none; None: unlimited.
    default_rate_limit: float | None = None
    #: How long an Idempotency-Key's response is kept for replays.
    idempotency_ttl: timedelta = timedelta(hours=24)
    #: An Idempotency-Key in progress for longer than this is presumed dead and taken over.
    idempotency_stuck: timedelta = timedelta(seconds=60)


class _Replay(Exception):
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body


class ApiContext:
    """What every request shares: the app, the key cache, the rate limiter, tenant views."""

    def __init__(self, app: Hora, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings
        self.keyring = Keyring(app.store)
        self.limiter = RateLimiter()
        self._views: dict[str, Hora] = {}
        self._lock = threading.Lock()

    def view(self, tenant_id: str) -> Hora:
        view = self._views.get(tenant_id)
        if view is None:
            with self._lock:
                view = self._views.setdefault(tenant_id, self.app.for_tenant(tenant_id))
        return view

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self.keyring.tenant(tenant_id)


bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hora_...`")


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.hora
    return ctx


def _caller(request: Request,
            cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    if cred is None:
        raise ApiProblem(401, "unauthorized", "send an API key: Authorization: Bearer hora_...",
                         headers={"WWW-Authenticate": "Bearer"})
    ctx = _ctx(request)
    record = ctx.keyring.resolve(cred.credentials)
    if record is None or not record.live_at(ctx.app.clock.now()):
        raise ApiProblem(401, "unauthorized",
                         "this API key is unknown or revoked" if record is None
                         else "this API key was revoked" if record.revoked_at is not None
                         else "this API key expired",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    tenant = ctx.tenant(record.tenant_id)
    rate = tenant.rate_limit if tenant and tenant.rate_limit else ctx.settings.default_rate_limit
    if rate:
        wait = ctx.limiter.take(record.tenant_id, rate)
        if wait > 0:
            raise ApiProblem(429, "rate-limited",
                             f"tenant {record.tenant_id} is limited to {rate:g} requests per "
                             "second; retry after the Retry-After header's seconds",
                             headers={"Retry-After": retry_after_header(wait)})
    caller = Caller(record.id, record.tenant_id, grants_of(record.scopes))
    request.state.caller = caller
    return caller


def _need(scope: str) -> Callable[[Caller], Caller]:
    def check(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if not caller.can(scope):
            raise ApiProblem(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return caller

    return check


Reader = Annotated[Caller, Depends(_need("read"))]
Writer = Annotated[Caller, Depends(_need("write"))]
Admin = Annotated[Caller, Depends(_need("admin"))]


async def _idempotency(request: Request,
                       caller: Annotated[Caller, Depends(_caller)]) -> str | None:
    """Claim the request's ``Idempotency-Key`` (IETF httpapi draft semantics), or replay.

    A first request runs and its response is kept for ``idempotency_ttl``; a retry with the
    same key and body gets that response again (``Idempotent-Replayed: true``); the same key
    with another body is 422; a retry while the first is still running is 409. Any key may
    claim one: the route's own scope (declared before this) was checked already, so an
    approve-only key's decisions are retry-safe too.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise ApiProblem(400, "invalid-idempotency-key",
                         "Idempotency-Key must be 1-255 characters")
    raw = await request.body()
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the body will say
        canonical = raw
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + canonical
    ).hexdigest()
    ctx = _ctx(request)
    store, now = ctx.app.store, ctx.app.clock.now()
    record = await run_in_threadpool(
        store.begin_idempotent, caller.tenant_id, key, fingerprint, now=now,
        expired_before=now - ctx.settings.idempotency_ttl,
        stuck_before=now - ctx.settings.idempotency_stuck)
    if record is None:
        def release() -> None:
            store.abort_idempotent(caller.tenant_id, key)

        request.state.idempotency = (caller.tenant_id, key)
        request.state.release_idempotency = release
        return key
    if record.fingerprint != fingerprint:
        raise ApiProblem(422, "idempotency-key-reused",
                         f"Idempotency-Key {key!r} was used for a different request; use a "
                         "new key for a new request")
    if record.status is None:
        raise ApiProblem(409, "idempotency-key-in-flight",
                         f"a request with Idempotency-Key {key!r} is still in progress; "
                         "retry later", headers={"Retry-After": "1"})
    raise _Replay(record.status, record.body or "null")


IdemKey = Annotated[str | None, Depends(_idempotency)]


def _reply(request: Request, content: Any, status: int = 200, *,
           withhold: str | None = None) -> JSONResponse:
    """The one way a route answers: keeps the response for an Idempotency-Key replay.

    ``withhold`` names a secret field (a new API key, a webhook secret) kept out of the stored
    copy: a secret is shown once and never stored in clear, so a replay shows it as null.
    """
    claim = getattr(request.state, "idempotency", None)
    if claim is not None:
        tenant_id, key = claim
        body = json.dumps(content, separators=(",", ":"))
        kept = body if withhold is None else json.dumps({**content, withhold: None},
                                                        separators=(",", ":"))
        _ctx(request).app.store.finish_idempotent(tenant_id, key, status=status, body=kept)
        request.state.idempotency = None
        request.state.release_idempotency = None
        return Response(body, status_code=status, media_type="application/json")  # type: ignore[return-value]
    return JSONResponse(content, status_code=status)


# -- helpers shared by jobs and schedules ------------------------------------------------------


def _work(body: _Work) -> tuple[str, dict[str, Any], RetryPolicy | None]:
    if body.target is not None:
        return HTTP_TASK, parse_target(body.target.model_dump()), _retry(body)
    assert body.task is not None
    check_public_task(body.task)
    return body.task, body.payload, _retry(body)


def _retry(body: _Work) -> RetryPolicy | None:
    if body.retry is None:
        return None
    d = body.retry.model_dump()
    d["non_retryable"] = tuple(d["non_retryable"])
    return RetryPolicy(**d)


def _check_quota(ctx: ApiContext, tenant_id: str, what: str) -> None:
    tenant = ctx.tenant(tenant_id)
    if tenant is None:
        return
    store = ctx.app.store
    if what == "jobs" and tenant.max_pending_jobs:
        limit = tenant.max_pending_jobs
        if store.count_pending_jobs(tenant_id, limit=limit) >= limit:
            raise ApiProblem(403, "quota-exceeded",
                             f"tenant {tenant_id} has {limit} unfinished jobs, its quota "
                             "(max_pending_jobs); wait for some to finish or raise the quota")
    if what == "schedules" and tenant.max_active_schedules:
        limit = tenant.max_active_schedules
        if store.count_active_schedules(tenant_id, limit=limit) >= limit:
            raise ApiProblem(403, "quota-exceeded",
                             f"tenant {tenant_id} has {limit} active schedules, its quota "
                             "(max_active_schedules); pause or delete one, or raise the quota")


def _job_out(job: Job, history: bool = False) -> dict[str, Any]:
    return job_dict(job, history=history)


def _tenant_out(t: Tenant, *, secret: bool) -> dict[str, Any]:
    """A tenant's JSON; ``secret`` only in the answers that create or rotate it."""
    out: dict[str, Any] = {
        "id": t.id, "name": t.name, "max_pending_jobs": t.max_pending_jobs,
        "max_active_schedules": t.max_active_schedules, "rate_limit": t.rate_limit,
        "created_at": iso_z(t.created_at), "updated_at": iso_z(t.updated_at)}
    if secret:
        out["webhook_secret"] = t.webhook_secret
    return out


def _key_out(k: ApiKey) -> dict[str, Any]:
    return {"id": k.id, "tenant_id": k.tenant_id, "name": k.name, "prefix": k.prefix,
            "scopes": list(k.scopes), "created_at": iso_z(k.created_at),
            "revoked_at": iso_z(k.revoked_at), "expires_at": iso_z(k.expires_at)}


Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200,
                                     description="next_cursor of the previous page.")]


# -- routes -----------------------------------------------------------------------------------

router = APIRouter(prefix="/v1")


@router.post("/jobs", status_code=201, response_model=JobOut, tags=["jobs"],
             summary="Enqueue a job (a Python task or an HTTP target)")
def create_job(body: JobIn, request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    ctx = _ctx(request)
    task, payload, retry = _work(body)
    _check_quota(ctx, caller.tenant_id, "jobs")
    key = body.idempotency_key or (None if idem is None else f"http:{idem}")
    job = ctx.view(caller.tenant_id).enqueue_many([JobRequest(
        task=task, payload=payload, at=body.at, delay=body.delay, queue=body.queue,
        priority=body.priority, idempotency_key=key, correlation_id=body.correlation_id,
        retry=retry, timeout=body.timeout, max_attempts=body.max_attempts)])[0]
    return _reply(request, _job_out(job), 201)


@router.get("/jobs", response_model=JobPage, tags=["jobs"], summary="List jobs, newest first")
def list_jobs(request: Request, caller: Reader,
              state: Annotated[list[JobState] | None, Query()] = None,
              task: Annotated[str | None, Query(max_length=200)] = None,
              queue: Annotated[str | None, Query(max_length=200)] = None,
              correlation_id: Annotated[str | None, Query(max_length=255)] = None,
              limit: Limit = 50, cursor: Cursor = None) -> JSONResponse:
    page = _ctx(request).view(caller.tenant_id).list_jobs(
        state=state, task=task, queue=queue, correlation_id=correlation_id, limit=limit,
        cursor=cursor)
    return JSONResponse({"items": [_job_out(j) for j in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"],
            summary="A job with its attempts and state history")
def get_job(job_id: str, request: Request, caller: Reader) -> JSONResponse:
    job = _ctx(request).view(caller.tenant_id).get_job(job_id, history=True)
    return JSONResponse(_job_out(job, history=True))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"],
             summary="Cancel a waiting job, or ask a running one to stop")
def cancel_job(job_id: str, request: Request, caller: Writer, idem: IdemKey,
               body: CancelIn | None = None) -> JSONResponse:
    reason = body.reason if body is not None else "cancelled on request"
    job = _ctx(request).view(caller.tenant_id).cancel_job(job_id, reason=reason)
    return _reply(request, _job_out(job))


@router.get("/dlq", response_model=JobPage, tags=["dead-letter queue"],
            summary="Dead jobs, newest first")
def list_dead(request: Request, caller: Reader,
              task: Annotated[str | None, Query(max_length=200)] = None,
              queue: Annotated[str | None, Query(max_length=200)] = None,
              limit: Limit = 50, cursor: Cursor = None) -> JSONResponse:
    page = _ctx(request).view(caller.tenant_id).dead_jobs(task=task, queue=queue, limit=limit,
                                                          cursor=cursor)
    return JSONResponse({"items": [_job_out(j) for j in page.items],
                         "next_cursor": page.next_cursor})


def _dead(view: Hora, job_id: str) -> Job:
    job = view.get_job(job_id, history=True)
    if job.state is not JobState.DEAD:
        raise NotFound(f"job {job_id} is not in the dead-letter queue (it is {job.state})")
    return job


@router.get("/dlq/{job_id}", response_model=JobOut, tags=["dead-letter queue"],
            summary="A dead job with its attempts")
def get_dead(job_id: str, request: Request, caller: Reader) -> JSONResponse:
    return JSONResponse(_job_out(_dead(_ctx(request).view(caller.tenant_id), job_id), True))


@router.post("/dlq/{job_id}/replay", status_code=201, response_model=JobOut,
             tags=["dead-letter queue"], summary="Replay a dead job as a new, linked job")
def replay_dead(job_id: str, request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    return _reply(request, _job_out(view.replay(job_id)[0]), 201)


@router.post("/dlq/{job_id}/discard", response_model=DiscardOut, tags=["dead-letter queue"],
             summary="Take a dead job out of the queue for good")
def discard_dead(job_id: str, request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    discarded = view.discard(job_id)
    if not discarded:
        raise NotFound(f"no job {job_id}")
    return _reply(request, {"discarded": discarded})


@router.post("/dlq/replay", status_code=201, response_model=ReplayOut,
             tags=["dead-letter queue"], summary="Replay several dead jobs")
def replay_many(body: IdsIn, request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    jobs = _ctx(request).view(caller.tenant_id).replay(body.ids)
    return _reply(request, {"items": [_job_out(j) for j in jobs]}, 201)


@router.post("/dlq/discard", response_model=DiscardOut, tags=["dead-letter queue"],
             summary="Discard several dead jobs")
def discard_many(body: IdsIn, request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    return _reply(request, {"discarded": _ctx(request).view(caller.tenant_id).discard(body.ids)})


# schedules


@router.post("/schedules", status_code=201, response_model=ScheduleOut, tags=["schedules"],
             summary="Create a schedule: each occurrence of its trigger becomes a job")
def create_schedule(body: ScheduleIn, request: Request, caller: Writer,
                    idem: IdemKey) -> JSONResponse:
    ctx = _ctx(request)
    task, payload, retry = _work(body)
    if not body.paused:
        _check_quota(ctx, caller.tenant_id, "schedules")
    s = ctx.view(caller.tenant_id).create_schedule(
        task, payload, trigger=body.trigger, name=body.name, queue=body.queue,
        priority=body.priority, retry=retry, max_attempts=body.max_attempts,
        timeout=body.timeout, correlation_id=body.correlation_id, misfire=body.misfire,
        misfire_grace=body.misfire_grace, catchup_limit=body.catchup_limit,
        overlap=body.overlap, paused=body.paused)
    return _reply(request, schedule_dict(s), 201)


@router.get("/schedules", response_model=SchedulePage, tags=["schedules"],
            summary="List schedules")
def list_schedules(request: Request, caller: Reader,
                   state: Annotated[str | None, Query(pattern="^(active|paused)$")] = None,
                   limit: Limit = 50, cursor: Cursor = None) -> JSONResponse:
    page = _ctx(request).view(caller.tenant_id).list_schedules(state=state, limit=limit,
                                                               cursor=cursor)
    return JSONResponse({"items": [schedule_dict(s) for s in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, tags=["schedules"],
            summary="A schedule")
def get_schedule(schedule_id: str, request: Request, caller: Reader) -> JSONResponse:
    return JSONResponse(schedule_dict(_ctx(request).view(caller.tenant_id)
                                      .get_schedule(schedule_id)))


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut, tags=["schedules"],
              summary="Change a schedule; its future is recomputed from now")
def update_schedule(schedule_id: str, body: SchedulePatch, request: Request,
                    caller: Writer) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    changes = body.model_dump(exclude_unset=True)
    target = changes.pop("target", None)
    if target is not None or "payload" in changes:
        current = view.get_schedule(schedule_id)
        if target is not None:
            if current.task != HTTP_TASK:
                raise InvalidPayload("this schedule runs a task; change its payload",
                                     field="target")
            changes["payload"] = parse_target(target)
        elif current.task == HTTP_TASK:
            raise InvalidPayload("this schedule calls an HTTP target; change target",
                                 field="payload")
    changes = {k: v for k, v in changes.items() if v is not None or k in ("name",
                                                                           "correlation_id")}
    s = view.update_schedule(schedule_id, **changes)
    return JSONResponse(schedule_dict(s))


@router.delete("/schedules/{schedule_id}", status_code=204, tags=["schedules"],
               summary="Delete a schedule and its tick ledger", response_class=Response)
def delete_schedule(schedule_id: str, request: Request, caller: Writer) -> Response:
    _ctx(request).view(caller.tenant_id).delete_schedule(schedule_id)
    return Response(status_code=204)


@router.post("/schedules/{schedule_id}/pause", response_model=ScheduleOut, tags=["schedules"],
             summary="Pause a schedule")
def pause_schedule(schedule_id: str, request: Request, caller: Writer,
                   idem: IdemKey) -> JSONResponse:
    s = _ctx(request).view(caller.tenant_id).pause_schedule(schedule_id)
    return _reply(request, schedule_dict(s))


@router.post("/schedules/{schedule_id}/resume", response_model=ScheduleOut,
             tags=["schedules"], summary="Resume a schedule from now")
def resume_schedule(schedule_id: str, request: Request, caller: Writer,
                    idem: IdemKey) -> JSONResponse:
    ctx = _ctx(request)
    view = ctx.view(caller.tenant_id)
    if view.get_schedule(schedule_id).state == "paused":
        _check_quota(ctx, caller.tenant_id, "schedules")
    return _reply(request, schedule_dict(view.resume_schedule(schedule_id)))


@router.post("/schedules/{schedule_id}/trigger", status_code=201, response_model=JobOut,
             tags=["schedules"], summary="Run a schedule's job now, outside its trigger")
def trigger_schedule(schedule_id: str, request: Request, caller: Writer,
                     idem: IdemKey) -> JSONResponse:
    ctx = _ctx(request)
    _check_quota(ctx, caller.tenant_id, "jobs")
    job = ctx.view(caller.tenant_id).trigger_schedule(schedule_id)
    return _reply(request, _job_out(job), 201)


@router.get("/schedules/{schedule_id}/occurrences", response_model=PreviewOut,
            tags=["schedules"], summary="Preview a schedule's next occurrences")
def schedule_occurrences(schedule_id: str, request: Request, caller: Reader,
                         count: Annotated[int, Query(ge=1, le=1000)] = 10,
                         after: Annotated[datetime | None, Query()] = None) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    s = view.get_schedule(schedule_id)
    start = view.clock.now() if after is None else check_instant(after, "after")
    return JSONResponse(preview_to_json(view._trigger(s.trigger, s.id), start, count))


@router.get("/schedules/{schedule_id}/ticks", response_model=TickPage, tags=["schedules"],
            summary="The tick ledger: every occurrence, fired or skipped and why")
def schedule_ticks(schedule_id: str, request: Request, caller: Reader,
                   outcome: Annotated[str | None, Query(pattern="^(fired|skipped)$")] = None,
                   limit: Limit = 100, cursor: Cursor = None) -> JSONResponse:
    page = _ctx(request).view(caller.tenant_id).schedule_ticks(
        schedule_id, outcome=outcome, limit=limit, cursor=cursor)
    return JSONResponse({"items": [tick_dict(t) for t in page.items],
                         "next_cursor": page.next_cursor})


@router.post("/triggers/preview", response_model=PreviewOut, tags=["triggers"],
             summary="Preview a trigger without saving it")
def preview_trigger(body: PreviewIn, request: Request, caller: Reader) -> JSONResponse:
    clock = _ctx(request).app.clock
    trigger = trigger_from_spec(_spec(body.trigger))
    return JSONResponse(preview_to_json(trigger, body.after or clock.now(), body.count))


# workflows

#: A workflow cursor holds the last id (up to 200 characters) after its creation instant.
WorkflowCursor = Annotated[str | None, Query(max_length=300,
                                             description="next_cursor of the previous page.")]
WorkflowId = Annotated[str, Path(min_length=1, max_length=200, description="Workflow id.")]
SignalName = Annotated[str, Path(min_length=1, max_length=200, description="Signal name.")]


def _workflow_page(page: Page[Workflow]) -> dict[str, Any]:
    return {"items": [workflow_dict(w) for w in page.items], "next_cursor": page.next_cursor}


@router.post("/workflows", status_code=201, response_model=WorkflowOut, tags=["workflows"],
             summary="Start a workflow (idempotently, with workflow_id)")
def start_workflow(body: WorkflowIn, request: Request, caller: Writer,
                   idem: IdemKey) -> JSONResponse:
    # Without an id, an Idempotency-Key names the workflow: a retry after a crash between
    # the write and the stored response then finds the same workflow instead of a second.
    workflow_id = body.workflow_id or (
        None if idem is None else "http-" + hashlib.sha256(idem.encode()).hexdigest()[:32])
    wf = _ctx(request).view(caller.tenant_id).start_workflow(
        body.workflow, body.args, workflow_id=workflow_id,
        correlation_id=body.correlation_id)
    return _reply(request, workflow_dict(wf), 201)


@router.get("/workflows", response_model=WorkflowPage, tags=["workflows"],
            summary="List workflows, newest first")
def list_workflows(request: Request, caller: Reader,
                   state: Annotated[list[WorkflowState] | None, Query()] = None,
                   name: Annotated[str | None, Query(max_length=200)] = None,
                   correlation_id: Annotated[str | None, Query(max_length=255)] = None,
                   limit: Limit = 50, cursor: WorkflowCursor = None) -> JSONResponse:
    page = _ctx(request).view(caller.tenant_id).list_workflows(
        state=state, name=name, correlation_id=correlation_id, limit=limit, cursor=cursor)
    return JSONResponse(_workflow_page(page))


@router.get("/workflows/{workflow_id}", response_model=WorkflowOut, tags=["workflows"],
            summary="A workflow with its full history (steps, timers, signals, errors) and "
                    "every signal sent to it")
def get_workflow(workflow_id: WorkflowId, request: Request, caller: Reader) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    wf = view.get_workflow(workflow_id)
    history = view.workflow_history(workflow_id)
    signals = view.workflow_signals(workflow_id)
    return JSONResponse(workflow_dict(wf, history=history, signals=signals))


@router.post("/workflows/{workflow_id}/signals/{name}", status_code=201,
             response_model=SignalOut, tags=["workflows"],
             summary="Send a signal; it waits, in order, until the workflow asks for it")
def signal_workflow(workflow_id: WorkflowId, name: SignalName, request: Request,
                    caller: Writer, idem: IdemKey, body: SignalIn | None = None,
                    ) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    if body is None:
        signal = view.signal_workflow(workflow_id, name)
    else:
        signal = view.signal_workflow(workflow_id, name, body.payload, actor=body.actor,
                                      comment=body.comment)
    return _reply(request, signal_dict(signal), 201)


@dataclass(frozen=True)
class _Decider:
    """A caller with the approve scope, and the actor its decisions are recorded under: the
    key's name (its id when it has none) -- never a field of the request."""

    tenant_id: str
    key_id: str
    actor: str


def _decider(request: Request, caller: Annotated[Caller, Depends(_caller)],
             cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
             ) -> _Decider:
    # _caller resolved this key a moment ago: the keyring answers from its cache.
    record = _ctx(request).keyring.resolve(cred.credentials) if cred is not None else None
    if record is None or record.id != caller.key_id:  # pragma: no cover - revoked meanwhile
        raise ApiProblem(401, "unauthorized", "this API key is unknown or revoked",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return _Decider(caller.tenant_id, record.id, record.name or f"key:{record.id}")


#: A route taking a Decider declares ``Approver`` first: the scope is checked before
#: anything else (the Idempotency-Key claim included).
Approver = Annotated[Caller, Depends(_need("approve"))]
Decider = Annotated[_Decider, Depends(_decider)]
ApprovalId = Annotated[str, Path(min_length=1, max_length=200,
                                 description="Approval request id.")]


def _decide(request: Request, who: _Decider, approved: bool, *, approval_id: str | None = None,
            workflow_id: str | None = None, comment: str | None = None,
            name: str | None = None) -> JSONResponse:
    found = _ctx(request).view(who.tenant_id).decide_approval(
        approval_id, approved, workflow_id=workflow_id, name=name, comment=comment,
        actor=who.actor, actor_key=who.key_id)
    return _reply(request, approval_dict(found))


@router.post("/workflows/{workflow_id}/approve", response_model=ApprovalOut,
             tags=["approvals"],
             summary="Approve the workflow's single pending approval request (of name); "
                     "naming the request (/v1/approvals/{id}/approve) is safer")
def approve_workflow(workflow_id: WorkflowId, body: ApprovalIn, request: Request,
                     caller: Approver, idem: IdemKey, who: Decider) -> JSONResponse:
    return _decide(request, who, True, workflow_id=workflow_id, comment=body.comment,
                   name=body.name)


@router.post("/workflows/{workflow_id}/reject", response_model=ApprovalOut,
             tags=["approvals"],
             summary="Reject the workflow's single pending approval request (of name)")
def reject_workflow(workflow_id: WorkflowId, body: ApprovalIn, request: Request,
                    caller: Approver, idem: IdemKey, who: Decider) -> JSONResponse:
    return _decide(request, who, False, workflow_id=workflow_id, comment=body.comment,
                   name=body.name)


@router.post("/workflows/{workflow_id}/cancel", response_model=WorkflowOut,
             tags=["workflows"],
             summary="Ask a workflow to stop: its wait ends, its compensations run")
def cancel_workflow(workflow_id: WorkflowId, request: Request, caller: Writer, idem: IdemKey,
                    body: CancelIn | None = None) -> JSONResponse:
    reason = body.reason if body is not None else "cancelled on request"
    wf = _ctx(request).view(caller.tenant_id).cancel_workflow(workflow_id, reason)
    return _reply(request, workflow_dict(wf))


def _approval_page(page: Page[ApprovalRequest]) -> dict[str, Any]:
    return {"items": [approval_dict(a) for a in page.items], "next_cursor": page.next_cursor}


@router.get("/approvals", response_model=ApprovalPage, tags=["approvals"],
            summary="The approvals inbox: approval requests (default: pending), newest first")
def list_approvals(request: Request, caller: Reader,
                   state: Annotated[list[ApprovalState] | None, Query()] = None,
                   workflow_id: Annotated[str | None, Query(min_length=1,
                                                            max_length=200)] = None,
                   limit: Limit = 50, cursor: WorkflowCursor = None) -> JSONResponse:
    page = _ctx(request).view(caller.tenant_id).approvals(
        state=state or "pending", workflow_id=workflow_id, limit=limit, cursor=cursor)
    return JSONResponse(_approval_page(page))


@router.get("/approvals/{approval_id}", response_model=ApprovalOut, tags=["approvals"],
            summary="One approval request: its workflow, context, deadline and decision")
def get_approval(approval_id: ApprovalId, request: Request, caller: Reader) -> JSONResponse:
    found = _ctx(request).view(caller.tenant_id).get_approval(approval_id)
    return JSONResponse(approval_dict(found))


@router.post("/approvals/{approval_id}/approve", response_model=ApprovalOut,
             tags=["approvals"],
             summary="Approve the request, once: the same decision again answers the same "
                     "record; a reject after it is 409")
def approve_request(approval_id: ApprovalId, request: Request, caller: Approver,
                    idem: IdemKey, who: Decider, body: DecisionIn | None = None
                    ) -> JSONResponse:
    return _decide(request, who, True, approval_id=approval_id,
                   comment=None if body is None else body.comment)


@router.post("/approvals/{approval_id}/reject", response_model=ApprovalOut,
             tags=["approvals"],
             summary="Reject the request, once: the same decision again answers the same "
                     "record; an approve after it is 409")
def reject_request(approval_id: ApprovalId, request: Request, caller: Approver,
                   idem: IdemKey, who: Decider, body: DecisionIn | None = None
                   ) -> JSONResponse:
    return _decide(request, who, False, approval_id=approval_id,
                   comment=None if body is None else body.comment)


# tenants and keys: an admin manages its own tenant, an operator every tenant. A tenant
# named by id (path or query) that is not the caller's is 404, as if it did not exist; a
# request for a power the key lacks (create a tenant, set quotas, mint a key for another
# tenant or with the operator scope) is 403, whatever exists.


def _own(caller: Caller, tenant_id: str) -> None:
    if tenant_id != caller.tenant_id and not caller.operator:
        raise NotFound(f"tenant {tenant_id!r} not found")


def _operator_only(caller: Caller, what: str) -> None:
    if not caller.operator:
        raise ApiProblem(403, "forbidden", f"{what} needs the 'operator' scope (an admin "
                         "key manages its own tenant's keys and name only)")


#: Set by the operator; a tenant's own admin may rename its tenant and manage its keys.
_OPERATOR_FIELDS = ("max_pending_jobs", "max_active_schedules", "rate_limit")


@router.post("/tenants", status_code=201, response_model=TenantSecretOut, tags=["admin"],
             summary="Create a tenant (operator); its webhook secret is in this answer only")
def create_tenant(body: TenantIn, request: Request, caller: Admin,
                  idem: IdemKey) -> JSONResponse:
    _operator_only(caller, "creating a tenant")
    ctx = _ctx(request)
    check_text(name=body.name)
    now = ctx.app.clock.now()
    t = replace(default_tenant(body.id, now), name=body.name or body.id,
                max_pending_jobs=body.max_pending_jobs,
                max_active_schedules=body.max_active_schedules, rate_limit=body.rate_limit)
    t = ctx.app.store.insert_tenant(t)
    ctx.keyring.forget()
    return _reply(request, _tenant_out(t, secret=True), 201, withhold="webhook_secret")


@router.get("/tenants", response_model=TenantPage, tags=["admin"],
            summary="List tenants (an admin sees its own only)")
def list_tenants(request: Request, caller: Admin, limit: Limit = 50,
                 cursor: Cursor = None) -> JSONResponse:
    store = _ctx(request).app.store
    if caller.operator:
        page = store.list_tenants(limit=limit, cursor=cursor)
    else:
        tenant_cursor(cursor)
        try:
            own = [] if cursor is not None and cursor >= caller.tenant_id else [
                store.get_tenant(caller.tenant_id)]
        except NotFound:  # a key whose tenant row was never made (the CLI's default)
            own = []
        page = Page(own, None)
    return JSONResponse({"items": [_tenant_out(t, secret=False) for t in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["admin"],
            summary="A tenant (without its webhook secret)")
def get_tenant(tenant_id: str, request: Request, caller: Admin) -> JSONResponse:
    _own(caller, tenant_id)
    return JSONResponse(_tenant_out(_ctx(request).app.store.get_tenant(tenant_id),
                                    secret=False))


@router.patch("/tenants/{tenant_id}", response_model=TenantOut, tags=["admin"],
              summary="Rename a tenant; quotas and rate limit: operator only")
def update_tenant(tenant_id: str, body: TenantPatch, request: Request,
                  caller: Admin) -> JSONResponse:
    _own(caller, tenant_id)
    ctx = _ctx(request)
    changes = body.model_dump(exclude_unset=True)
    asked = [f for f in _OPERATOR_FIELDS if f in changes]
    if asked:
        _operator_only(caller, f"changing {', '.join(asked)}")
    old = ctx.app.store.get_tenant(tenant_id)
    check_text(name=changes.get("name"))
    if changes.get("name") is None:
        changes.pop("name", None)
    t = ctx.app.store.update_tenant(replace(old, **changes, updated_at=ctx.app.clock.now()))
    ctx.keyring.forget()
    return JSONResponse(_tenant_out(t, secret=False))


@router.post("/tenants/{tenant_id}/rotate-webhook-secret", response_model=TenantSecretOut,
             tags=["admin"],
             summary="Replace the tenant's webhook secret; the new one is in this answer only")
def rotate_webhook_secret(tenant_id: str, request: Request, caller: Admin,
                          idem: IdemKey) -> JSONResponse:
    _own(caller, tenant_id)
    ctx = _ctx(request)
    t = ctx.app.store.set_webhook_secret(tenant_id, new_secret(), now=ctx.app.clock.now())
    ctx.keyring.forget()
    return _reply(request, _tenant_out(t, secret=True), withhold="webhook_secret")


@router.post("/keys", status_code=201, response_model=NewKeyOut, tags=["admin"],
             summary="Create an API key; the key is in this response only")
def create_key(body: KeyIn, request: Request, caller: Admin, idem: IdemKey) -> JSONResponse:
    ctx = _ctx(request)
    store = ctx.app.store
    tenant_id = body.tenant_id or caller.tenant_id
    if tenant_id != caller.tenant_id:
        _operator_only(caller, f"a key for tenant {tenant_id!r} (not this key's own)")
    scopes = tuple(dict.fromkeys(body.scopes))
    if OPERATOR in scopes:
        _operator_only(caller, "a key with the operator scope")
    check_text(name=body.name)
    now = ctx.app.clock.now()
    expires_at = check_expiry(body.expires_at, now, "expires_at")
    try:
        store.get_tenant(tenant_id)
    except NotFound:
        raise InvalidPayload(f"no tenant {tenant_id!r}; create it first",
                             field="tenant_id") from None
    key = new_key()
    record = store.insert_api_key(key_record(key, tenant_id=tenant_id, name=body.name,
                                             scopes=scopes, now=now, expires_at=expires_at))
    return _reply(request, {**_key_out(record), "key": key}, 201, withhold="key")


@router.get("/keys", response_model=KeyPage, tags=["admin"],
            summary="List API keys (an admin: its own tenant's)")
def list_keys(request: Request, caller: Admin,
              tenant_id: Annotated[str | None, Query(max_length=63)] = None,
              limit: Limit = 50, cursor: Cursor = None) -> JSONResponse:
    if not caller.operator:
        _own(caller, tenant_id or caller.tenant_id)
        tenant_id = caller.tenant_id
    page = _ctx(request).app.store.list_api_keys(tenant_id=tenant_id, limit=limit,
                                                 cursor=cursor)
    return JSONResponse({"items": [_key_out(k) for k in page.items],
                         "next_cursor": page.next_cursor})


@router.delete("/keys/{key_id}", response_model=KeyOut, tags=["admin"],
               summary="Revoke an API key (effective within seconds on every node); never "
                       "the last operator key")
def revoke_key(key_id: str, request: Request, caller: Admin) -> JSONResponse:
    ctx = _ctx(request)
    store = ctx.app.store
    if not caller.operator:
        k = store.get_api_key(key_id)
        if k.tenant_id != caller.tenant_id:
            raise NotFound(f"API key {key_id} not found")
        if OPERATOR in k.scopes:
            _operator_only(caller, "revoking an operator key")
    k = store.revoke_api_key(key_id, now=ctx.app.clock.now())
    ctx.keyring.forget()
    return JSONResponse(_key_out(k))


# locks


LockName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/]+$")]


def _lock_out(view: Hora, record: Any) -> dict[str, Any]:
    return {"name": record.name, "owner": record.owner, "token": record.token,
            "acquired_at": iso_z(record.acquired_at), "expires_at": iso_z(record.expires_at),
            "held": record.held_at(view.clock.now())}


@router.post("/locks/{name}/acquire", status_code=201, response_model=LeaseOut,
             tags=["locks"], summary="Take a distributed lock if free (409 while held)")
def acquire_lock(name: LockName, request: Request, caller: Writer, idem: IdemKey,
                 body: LockIn | None = None) -> JSONResponse:
    body = body or LockIn.model_validate({})
    view = _ctx(request).view(caller.tenant_id)
    lease = view.try_lock(name, ttl=body.ttl, owner=body.owner)
    if lease is None:
        held = view.get_lock(name)
        wait = 1.0
        if held is not None:
            wait = max(1.0, (held.expires_at - view.clock.now()).total_seconds())
        raise LockTimeout(name, 0.0, retry_after=wait)
    return _reply(request, {"name": lease.name, "owner": lease.owner, "token": lease.token,
                            "expires_at": iso_z(lease.expires_at)}, 201)


@router.post("/locks/{name}/renew", response_model=LeaseOut, tags=["locks"],
             summary="Extend a grant (409 when it expired or the lock moved on)")
def renew_lock(name: LockName, body: LeaseIn, request: Request, caller: Writer,
               idem: IdemKey) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    until = view.renew_lease(name, owner=body.owner, token=body.token, ttl=body.ttl)
    if until is None:
        raise ApiProblem(409, "lease-lost", f"token {body.token} of lock {name!r} no longer "
                         "holds it (it expired, or another owner took it)")
    return _reply(request, {"name": name, "owner": body.owner, "token": body.token,
                            "expires_at": iso_z(until)})


@router.post("/locks/{name}/release", response_model=ReleasedOut, tags=["locks"],
             summary="Free a grant; released is false when it no longer held the lock")
def release_lock(name: LockName, body: LeaseRef, request: Request, caller: Writer,
                 idem: IdemKey) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    return _reply(request, {"released": view.release_lease(name, owner=body.owner,
                                                           token=body.token)})


@router.get("/locks/{name}", response_model=LockOut, tags=["locks"],
            summary="Who holds a lock, and its latest fencing token")
def get_lock(name: LockName, request: Request, caller: Reader) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    record = view.get_lock(name)
    if record is None:
        raise NotFound(f"lock {name!r} was never taken")
    return JSONResponse(_lock_out(view, record))


# -- the application --------------------------------------------------------------------------

PROBLEM_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503)


def create_api(app: Hora, settings: ApiSettings | None = None) -> FastAPI:
    """The ASGI application for ``app`` (``hora serve`` runs it under uvicorn)."""
    api = FastAPI(title="hora", version=hora.__version__,
                  description="Durable scheduling and orchestration: jobs, schedules, "
                  "triggers, workflows, dead-letter queue, tenants and API keys. Errors are "
                  "RFC 9457 problem details; POSTs honour Idempotency-Key.")
    api.state.hora = ApiContext(app, settings or ApiSettings())
    problems.install(api)

    @api.exception_handler(_Replay)
    async def _replay(request: Request, exc: _Replay) -> Response:
        return Response(exc.body, status_code=exc.status, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})

    # Added before observe: observe is the outer middleware, so refused requests are counted.
    api.add_middleware(RequestGuard, max_body=MAX_BODY)

    @api.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Any]) -> Any:
        """A server span and the request metrics, labelled by route template (not path: ids
        would make series without bound)."""
        began = time.perf_counter()
        with tracer.start_as_current_span(
                f"HTTP {request.method}", kind=SpanKind.SERVER,
                attributes={"http.request.method": request.method,
                            "url.path": request.url.path}) as span:
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
            finally:
                route = getattr(request.scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{request.method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
                HTTP_DURATION.labels(request.method, route).observe(
                    time.perf_counter() - began)
        return response

    @api.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics of this process (hora's and any the app registers)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # async and free of I/O: answered on the event loop, never queued behind routes that
    # wait for the database in the thread pool.
    @api.get("/healthz", response_model=Health, tags=["operations"],
             summary="Alive: the process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    def store_not_ready() -> str | None:
        applied = app.store.applied_migrations()  # type: ignore[attr-defined]
        expected = [m.version for m in load_migrations(app.store.dialect)]
        missing = sorted(set(expected) - set(applied))
        return f"migrations not applied: {missing}" if missing else None

    readiness = Readiness(store_not_ready)

    @api.get("/readyz", response_model=Health, tags=["operations"],
             summary="Ready: the store answers and its migrations are applied",
             responses={503: {"model": Health}})
    async def readyz() -> JSONResponse:
        why = await readiness.why_not_ready()
        if why is not None:
            return JSONResponse({"status": "unavailable", "detail": why}, status_code=503)
        return JSONResponse({"status": "ok"})

    api.include_router(router)
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    return api


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every error response declared as problem+json."""
    if api.openapi_schema:
        return api.openapi_schema
    schema = get_openapi(title=api.title, version=api.version, description=api.description,
                         routes=api.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, sub in Problem.model_json_schema(ref_template="#/components/schemas/{model}"
                                               ).get("$defs", {}).items():
        components[name] = sub
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem_schema.pop("$defs", None)
    components["Problem"] = problem_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            public = path in ("/healthz", "/readyz")
            for status in PROBLEM_STATUSES:
                if public and status != 500:
                    continue
                if path == "/readyz" and status == 503:
                    continue
                responses[str(status)] = {"description": problems.TITLES[status],
                                          "content": {problems.PROBLEM_JSON: {"schema": ref}}}
            if method in ("post",) and not public:
                op.setdefault("parameters", []).append({
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "Retry-safe POST: the same key and body replay the first "
                                   "response; another body with the key is 422.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
    api.openapi_schema = schema
    return schema
