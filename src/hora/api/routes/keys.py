"""API keys: mint, list and revoke (a secret is shown once, never stored).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from hora.api.auth import (
    check_expiry,
    key_record,
    new_key,
)
from hora.api.deps import (
    Admin,
    Cursor,
    IdemKey,
    Limit,
    _ctx,
    _reply,
)
from hora.api.routes.tenants import _operator_only, _own
from hora.api.schemas import (
    KeyIn,
    KeyOut,
    KeyPage,
    NewKeyOut,
)
from hora.app import check_text
from hora.errors import InvalidPayload, NotFound
from hora.models import ApiKey
from hora.store.common import OPERATOR
from hora.wire import (
    iso_z,
)

router = APIRouter(prefix="/v1")


def _key_out(k: ApiKey) -> dict[str, Any]:
    return {"id": k.id, "tenant_id": k.tenant_id, "name": k.name, "prefix": k.prefix,
            "scopes": list(k.scopes), "created_at": iso_z(k.created_at),
            "revoked_at": iso_z(k.revoked_at), "expires_at": iso_z(k.expires_at)}


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


