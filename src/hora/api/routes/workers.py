"""Workers and queues: who is running, how deep each queue is, pause and resume.

Workers claim the jobs of every tenant, so a worker's row (host, pid, tasks) is the
installation's, not a tenant's: ``GET /v1/workers`` needs the operator scope. A tenant sees
its own queues (``GET /v1/queues``), with the number of live workers serving each, and pauses
or resumes them for itself only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from hora.api.deps import IdemKey, Reader, Writer, _ctx, _reply
from hora.api.problems import ApiProblem
from hora.api.schemas import QueueList, QueuePauseIn, QueueStateOut, WorkerList
from hora.wire import queue_dict, queue_state_dict, worker_dict

router = APIRouter(prefix="/v1")

QueueName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/]+$")]


@router.get("/workers", response_model=WorkerList, tags=["workers"],
            summary="Workers: live ones, or all=true for lost and stopped ones too (operator)")
def list_workers(request: Request, caller: Reader,
                 all: Annotated[bool, Query(description="Include lost and stopped workers "
                                                        "until they age out (24 h).")] = False,
                 ) -> JSONResponse:
    if not caller.operator:
        raise ApiProblem(403, "forbidden", "listing workers needs the 'operator' scope: "
                         "workers serve every tenant (GET /v1/queues shows a tenant how many "
                         "serve each of its queues)")
    workers = _ctx(request).view(caller.tenant_id).workers(all=all)
    return JSONResponse({"items": [worker_dict(w) for w in workers]})


@router.get("/queues", response_model=QueueList, tags=["workers"],
            summary="The tenant's queues: depth by state, oldest due job's age, workers, paused")
def list_queues(request: Request, caller: Reader) -> JSONResponse:
    queues = _ctx(request).view(caller.tenant_id).queues()
    return JSONResponse({"items": [queue_dict(q) for q in queues]})


@router.post("/queues/{name}/pause", response_model=QueueStateOut, tags=["workers"],
             summary="Stop claiming the tenant's jobs on this queue until resumed")
def pause_queue(name: QueueName, request: Request, caller: Writer, idem: IdemKey,
                body: QueuePauseIn | None = None) -> JSONResponse:
    reason = body.reason if body is not None else None
    state = _ctx(request).view(caller.tenant_id).pause_queue(name, reason=reason)
    return _reply(request, queue_state_dict(state))


@router.post("/queues/{name}/resume", response_model=QueueStateOut, tags=["workers"],
             summary="Claim the tenant's jobs on this queue again")
def resume_queue(name: QueueName, request: Request, caller: Writer,
                 idem: IdemKey) -> JSONResponse:
    state = _ctx(request).view(caller.tenant_id).resume_queue(name)
    return _reply(request, queue_state_dict(state))
