"""Approval requests: the inbox, and deciding them as the calling key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from hora.api.auth import (
    Caller,
)
from hora.api.deps import (
    IdemKey,
    Limit,
    Reader,
    WorkflowCursor,
    _caller,
    _ctx,
    _need,
    _reply,
    bearer,
)
from hora.api.problems import ApiProblem
from hora.api.schemas import (
    ApprovalOut,
    ApprovalPage,
    ApprovalState,
    DecisionIn,
)
from hora.models import ApprovalRequest, Page
from hora.wire import (
    approval_dict,
)

router = APIRouter(prefix="/v1")


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


