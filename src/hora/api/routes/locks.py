"""Distributed locks with fencing tokens: acquire, renew, release, inspect.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from hora.api.deps import (
    IdemKey,
    Reader,
    Writer,
    _ctx,
    _reply,
)
from hora.api.problems import ApiProblem
from hora.api.schemas import (
    LeaseIn,
    LeaseOut,
    LeaseRef,
    LockIn,
    LockOut,
    ReleasedOut,
)
from hora.app import Hora
from hora.errors import LockTimeout, NotFound
from hora.wire import (
    iso_z,
)

router = APIRouter(prefix="/v1")


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


