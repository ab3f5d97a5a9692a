"""The dead-letter queue: dead jobs, replayed as new jobs or discarded.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from hora.api.deps import (
    Cursor,
    IdemKey,
    Limit,
    Reader,
    Writer,
    _ctx,
    _reply,
)
from hora.api.routes.jobs import _job_out
from hora.api.schemas import (
    DiscardOut,
    IdsIn,
    JobOut,
    JobPage,
    ReplayOut,
)
from hora.app import Hora
from hora.errors import NotFound
from hora.models import Job
from hora.states import JobState

router = APIRouter(prefix="/v1")


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


