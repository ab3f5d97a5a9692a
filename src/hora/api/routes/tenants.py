"""Tenants: an admin manages its own, an operator every tenant.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hora.api.auth import (
    Caller,
    default_tenant,
)
from hora.api.deps import (
    Admin,
    Cursor,
    IdemKey,
    Limit,
    _ctx,
    _reply,
)
from hora.api.problems import ApiProblem
from hora.api.schemas import (
    TenantIn,
    TenantOut,
    TenantPage,
    TenantPatch,
    TenantSecretOut,
)
from hora.app import check_text
from hora.errors import NotFound
from hora.http_target import new_secret
from hora.models import RETENTION_KINDS, Page, RetentionPolicy, Tenant
from hora.store.common import tenant_cursor
from hora.wire import (
    iso_z,
)

router = APIRouter(prefix="/v1")


def _tenant_out(t: Tenant, *, secret: bool,
                retention: RetentionPolicy | None = None) -> dict[str, Any]:
    """A tenant's JSON; ``secret`` only in the answers that create or rotate it."""
    policy = retention or RetentionPolicy()
    out: dict[str, Any] = {
        "id": t.id, "name": t.name, "max_pending_jobs": t.max_pending_jobs,
        "max_active_schedules": t.max_active_schedules, "rate_limit": t.rate_limit,
        "created_at": iso_z(t.created_at), "updated_at": iso_z(t.updated_at),
        "retention": {k: policy.age(k) for k in RETENTION_KINDS}}
    if secret:
        out["webhook_secret"] = t.webhook_secret
    return out


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
_OPERATOR_FIELDS = ("max_pending_jobs", "max_active_schedules", "rate_limit", "retention")


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
    overrides = store.retention_overrides() if page.items else {}
    return JSONResponse({"items": [_tenant_out(t, secret=False, retention=overrides.get(t.id))
                                   for t in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["admin"],
            summary="A tenant (without its webhook secret)")
def get_tenant(tenant_id: str, request: Request, caller: Admin) -> JSONResponse:
    _own(caller, tenant_id)
    store = _ctx(request).app.store
    return JSONResponse(_tenant_out(store.get_tenant(tenant_id), secret=False,
                                    retention=store.retention_overrides().get(tenant_id)))


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
    now = ctx.app.clock.now()
    if "retention" in changes:
        ages = changes.pop("retention") or {}
        ctx.app.store.set_retention(tenant_id, RetentionPolicy(**ages), now=now)
    t = ctx.app.store.update_tenant(replace(old, **changes, updated_at=now))
    ctx.keyring.forget()
    return JSONResponse(_tenant_out(t, secret=False,
                                    retention=ctx.app.store.retention_overrides().get(tenant_id)))


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


