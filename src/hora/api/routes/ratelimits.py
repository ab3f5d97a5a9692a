"""Rate limits set at run time by name: list, read, set (PUT) and remove (DELETE).

Every operation is the caller's tenant's. Reading needs ``read``; changing a limit is
tenant configuration (it slows or speeds every worker's claims of the tenant's jobs), so
it needs ``admin``, like the tenant's other settings.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from hora.api.deps import Admin, IdemKey, Reader, _ctx, _reply
from hora.api.schemas import RateLimitIn, RateLimitList, RateLimitOut
from hora.errors import NotFound
from hora.wire import rate_limit_dict

router = APIRouter(prefix="/v1")

LimitName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/]+$",
                                description="The limit's name; queue:<queue> for a queue.")]


@router.get("/rate-limits", response_model=RateLimitList, tags=["rate limits"],
            summary="The tenant's rate limits: set at run time, and declared by its tasks")
def list_rate_limits(request: Request, caller: Reader) -> JSONResponse:
    limits = _ctx(request).view(caller.tenant_id).rate_limits.list()
    return JSONResponse({"items": [rate_limit_dict(r) for r in limits]})


@router.get("/rate-limits/{name}", response_model=RateLimitOut, tags=["rate limits"],
            summary="One rate limit as in force (404: neither set nor declared)")
def get_rate_limit(name: LimitName, request: Request, caller: Reader) -> JSONResponse:
    return JSONResponse(rate_limit_dict(_ctx(request).view(caller.tenant_id)
                                        .rate_limits.get(name)))


@router.put("/rate-limits/{name}", response_model=RateLimitOut, tags=["rate limits"],
            summary="Set a rate limit by name, over what the tasks declare (admin)")
def set_rate_limit(name: LimitName, body: RateLimitIn, request: Request, caller: Admin,
                   idem: IdemKey) -> JSONResponse:
    info = _ctx(request).view(caller.tenant_id).rate_limits.set(name, body.rate,
                                                                 burst=body.burst)
    return _reply(request, rate_limit_dict(info))


@router.delete("/rate-limits/{name}", status_code=204, tags=["rate limits"],
               summary="Remove a rate limit set at run time: the declared rate applies again "
                       "(admin; 404 when none was set)")
def delete_rate_limit(name: LimitName, request: Request, caller: Admin) -> Response:
    if not _ctx(request).view(caller.tenant_id).rate_limits.delete(name):
        raise NotFound(f"no rate limit named {name!r} was set at run time")
    return Response(status_code=204)
