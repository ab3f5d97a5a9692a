"""Tasks: the tasks and workflows workers registered for the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from hora.api.deps import Reader, _ctx
from hora.api.schemas import RegisteredTaskList
from hora.wire import registered_task_dict

router = APIRouter(prefix="/v1")


@router.get("/tasks", response_model=RegisteredTaskList, tags=["tasks"],
            summary="The registered tasks and workflows (name, defaults, payload schema)")
def list_tasks(request: Request, caller: Reader,
               kind: Annotated[Literal["task", "workflow"] | None, Query()] = None,
               ) -> JSONResponse:
    """What workers (and ``hora serve --app``) registered for the caller's tenant as they
    started, by kind then name: each with its queue, priority, max attempts, retry policy,
    timeout and the JSON Schema its payload (a workflow's args) is checked against."""
    items = _ctx(request).view(caller.tenant_id).registered_tasks(kind=kind)
    return JSONResponse({"items": [registered_task_dict(t) for t in items]})
