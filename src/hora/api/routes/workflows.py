"""Workflows: start, list, read, signal, decide and cancel.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from hora.api.deps import (
    IdemKey,
    Limit,
    Reader,
    WorkflowCursor,
    Writer,
    _ctx,
    _reply,
)
from hora.api.routes.approvals import Approver, Decider, _decide
from hora.api.schemas import (
    DONE_HEADER,
    DONE_RESPONSE,
    ApprovalIn,
    ApprovalOut,
    CancelIn,
    SignalIn,
    SignalOut,
    StrictWait,
    TerminateIn,
    WaitSeconds,
    WorkflowIn,
    WorkflowOut,
    WorkflowPage,
    WorkflowState,
)
from hora.errors import WaitTimeout
from hora.models import Page, Workflow
from hora.wire import (
    signal_dict,
    workflow_dict,
)

router = APIRouter(prefix="/v1")


WorkflowId = Annotated[str, Path(min_length=1, max_length=200, description="Workflow id.")]
SignalName = Annotated[str, Path(min_length=1, max_length=200, description="Signal name.")]


def _with_reason(d: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """The workflow's waiting reason (``WorkerService.workflow_waiting_reasons``), if any."""
    reason = reasons.get(d["id"])
    if reason is not None:
        d["waiting_reason"] = reason
    return d


def _workflow_page(page: Page[Workflow], reasons: dict[str, str]) -> dict[str, Any]:
    return {"items": [_with_reason(workflow_dict(w), reasons) for w in page.items],
            "next_cursor": page.next_cursor}


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
        correlation_id=body.correlation_id, allow_unregistered=body.allow_unregistered)
    return _reply(request, workflow_dict(wf), 201)


@router.get("/workflows", response_model=WorkflowPage, tags=["workflows"],
            summary="List workflows, newest first")
def list_workflows(request: Request, caller: Reader,
                   state: Annotated[list[WorkflowState] | None, Query()] = None,
                   name: Annotated[str | None, Query(max_length=200)] = None,
                   correlation_id: Annotated[str | None, Query(max_length=255)] = None,
                   limit: Limit = 50, cursor: WorkflowCursor = None) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    page = view.list_workflows(
        state=state, name=name, correlation_id=correlation_id, limit=limit, cursor=cursor)
    return JSONResponse(_workflow_page(page, view.fleet.workflow_waiting_reasons(page.items)))


@router.get("/workflows/{workflow_id}", response_model=WorkflowOut, tags=["workflows"],
            responses=DONE_RESPONSE,
            summary="A workflow with its full history (steps, timers, signals, errors) and "
                    "every signal sent to it")
async def get_workflow(workflow_id: WorkflowId, request: Request, caller: Reader,
                       wait: WaitSeconds = None, strict: StrictWait = False) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    if wait:
        # A long-poll: sleeps on an event, no thread or connection held (hora.waiting).
        wf, done = await view.aio.poll_workflow(workflow_id, wait)
        if not done and strict:
            raise WaitTimeout("workflow", workflow_id, str(wf.state), wait)

    def read() -> JSONResponse:
        wf = view.get_workflow(workflow_id)
        history = view.workflow_history(workflow_id)
        signals = view.workflow_signals(workflow_id)
        reasons = view.fleet.workflow_waiting_reasons([wf])
        return JSONResponse(_with_reason(workflow_dict(wf, history=history, signals=signals),
                                         reasons),
                            headers={DONE_HEADER: "true" if wf.is_final else "false"})

    return await asyncio.to_thread(read)


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


@router.post("/workflows/{workflow_id}/terminate", response_model=WorkflowOut,
             tags=["workflows"],
             summary="End a workflow now: no compensation, its approvals and timers cancelled "
                     "(works when no worker knows its name)")
def terminate_workflow(workflow_id: WorkflowId, request: Request, caller: Writer,
                       idem: IdemKey, body: TerminateIn | None = None) -> JSONResponse:
    reason = body.reason if body is not None else "terminated on request"
    wf = _ctx(request).view(caller.tenant_id).terminate_workflow(workflow_id, reason)
    return _reply(request, workflow_dict(wf))
