"""Schedules: create, change, pause, resume, trigger, delete; their ticks and occurrences.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

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
from hora.api.routes.jobs import _job_out, _target, _work
from hora.api.schemas import (
    JobOut,
    PreviewOut,
    ScheduleEnsureIn,
    ScheduleEnsureOut,
    ScheduleIn,
    ScheduleOut,
    SchedulePage,
    SchedulePatch,
    TickPage,
)
from hora.errors import InvalidPayload, NotFound
from hora.http_target import TASK_NAME as HTTP_TASK
from hora.limits import check_instant
from hora.triggers.spec import preview_to_json
from hora.wire import (
    schedule_dict,
    tick_dict,
)

router = APIRouter(prefix="/v1")

#: A schedule's name in a path, as ``ScheduleIn.name`` bounds it.
ScheduleName = Annotated[str, Path(min_length=1, max_length=200)]


@router.post("/schedules", status_code=201, response_model=ScheduleOut, tags=["schedules"],
             summary="Create a schedule: each occurrence of its trigger becomes a job")
def create_schedule(body: ScheduleIn, request: Request, caller: Writer,
                    idem: IdemKey) -> JSONResponse:
    ctx = _ctx(request)
    task, payload, retry = _work(body, ctx.http_policy)
    if not body.paused:
        _check_quota(ctx, caller.tenant_id, "schedules")
    s = ctx.view(caller.tenant_id).create_schedule(
        task, payload, trigger=body.trigger, name=body.name, queue=body.queue,
        priority=body.priority, retry=retry, max_attempts=body.max_attempts,
        timeout=body.timeout, correlation_id=body.correlation_id, misfire=body.misfire,
        misfire_grace=body.misfire_grace, catchup_limit=body.catchup_limit,
        overlap=body.overlap, paused=body.paused, allow_unregistered=body.allow_unregistered)
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


# The by-name routes come before /schedules/{schedule_id}/...: "/schedules/by-name/ticks" must
# never reach a route as schedule "by-name".


@router.put("/schedules/by-name/{name}", response_model=ScheduleEnsureOut, tags=["schedules"],
            summary="Create or update the schedule with this name (schedules declared in code)",
            responses={201: {"model": ScheduleEnsureOut,
                             "description": "Created: no schedule had this name"}})
def ensure_schedule(name: ScheduleName, body: ScheduleEnsureIn, request: Request, caller: Writer,
                    idem: IdemKey) -> JSONResponse:
    """Same body and checks as ``POST /v1/schedules``. 201 when created; 200 when a schedule
    of that name existed, ``outcome`` saying whether it was updated (its spec or options
    differed; its future is recomputed from now, its paused/active state kept) or left
    unchanged (nothing written)."""
    if body.name is not None and body.name != name:
        raise InvalidPayload(f"the body names {body.name!r} but the path {name!r}",
                             field="name")
    ctx = _ctx(request)
    view = ctx.view(caller.tenant_id)
    task, payload, retry = _work(body, ctx.http_policy)
    if not body.paused:
        try:
            view.get_schedule_by_name(name)
        except NotFound:
            _check_quota(ctx, caller.tenant_id, "schedules")
    s, outcome = view.ensure_schedule(
        task, payload, trigger=body.trigger, name=name, queue=body.queue,
        priority=body.priority, retry=retry, max_attempts=body.max_attempts,
        timeout=body.timeout, correlation_id=body.correlation_id, misfire=body.misfire,
        misfire_grace=body.misfire_grace, catchup_limit=body.catchup_limit,
        overlap=body.overlap, paused=body.paused, allow_unregistered=body.allow_unregistered)
    return _reply(request, {**schedule_dict(s), "outcome": outcome},
                  201 if outcome == "created" else 200)


@router.get("/schedules/by-name/{name}", response_model=ScheduleOut, tags=["schedules"],
            summary="The schedule with this name")
def get_schedule_by_name(name: ScheduleName, request: Request, caller: Reader) -> JSONResponse:
    return JSONResponse(schedule_dict(_ctx(request).view(caller.tenant_id)
                                      .get_schedule_by_name(name)))


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
            changes["payload"] = _target(target, _ctx(request).http_policy)
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


