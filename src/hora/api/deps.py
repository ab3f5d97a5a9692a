"""What routes depend on: the caller (API key -> tenant, scopes, rate limit), the shared
context (the app, the key cache, tenant views), Idempotency-Key claims and the one way a
route answers (``_reply``, which keeps the response for a replay).

Each is a FastAPI dependency or a helper over one; routes declare them by type
(``Reader``, ``Writer``, ``Admin``, ``IdemKey``) so the scope is checked before anything
else runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from hora.api.auth import (
    Caller,
    Keyring,
    RateLimiter,
    grants_of,
    retry_after_header,
)
from hora.api.problems import ApiProblem
from hora.app import Hora
from hora.http_target import AddressPolicy
from hora.limits import MAX_BODY_BYTES
from hora.models import Tenant

log = logging.getLogger("hora.api")

MAX_BODY = MAX_BODY_BYTES  # 1 MiB: a payload is a message, not a file


@dataclass(frozen=True)
class ApiSettings:
    #: Requests per second per tenant when the tenant sets none; None: unlimited.
    default_rate_limit: float | None = None
    #: How long an Idempotency-Key's response is kept for replays.
    idempotency_ttl: timedelta = timedelta(hours=24)
    #: An Idempotency-Key in progress for longer than this is presumed dead and taken over.
    idempotency_stuck: timedelta = timedelta(seconds=60)
    #: Which HTTP target addresses enqueue accepts; None: ``HORA_HTTP_ALLOW``, read at start
    #: (the workers read the same variable, and check again at each call).
    http_policy: AddressPolicy | None = None


class _Replay(Exception):
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body


class ApiContext:
    """What every request shares: the app, the key cache, the rate limiter, tenant views."""

    def __init__(self, app: Hora, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings
        self.keyring = Keyring(app.store)
        self.limiter = RateLimiter(app.store, app.clock)
        self.http_policy = (settings.http_policy if settings.http_policy is not None
                            else AddressPolicy.from_env())
        self._views: dict[str, Hora] = {}
        self._lock = threading.Lock()

    def view(self, tenant_id: str) -> Hora:
        view = self._views.get(tenant_id)
        if view is None:
            with self._lock:
                view = self._views.setdefault(tenant_id, self.app.for_tenant(tenant_id))
        return view

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self.keyring.tenant(tenant_id)


bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hora_...`")


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.hora
    return ctx


def _caller(request: Request,
            cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    if cred is None:
        raise ApiProblem(401, "unauthorized", "send an API key: Authorization: Bearer hora_...",
                         headers={"WWW-Authenticate": "Bearer"})
    ctx = _ctx(request)
    record = ctx.keyring.resolve(cred.credentials)
    if record is None or not record.live_at(ctx.app.clock.now()):
        raise ApiProblem(401, "unauthorized",
                         "this API key is unknown or revoked" if record is None
                         else "this API key was revoked" if record.revoked_at is not None
                         else "this API key expired",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    tenant = ctx.tenant(record.tenant_id)
    rate = tenant.rate_limit if tenant and tenant.rate_limit else ctx.settings.default_rate_limit
    if rate:
        wait = ctx.limiter.take(record.tenant_id, rate)
        if wait > 0:
            raise ApiProblem(429, "rate-limited",
                             f"tenant {record.tenant_id} is limited to {rate:g} requests per "
                             "second; retry after the Retry-After header's seconds",
                             headers={"Retry-After": retry_after_header(wait)})
    caller = Caller(record.id, record.tenant_id, grants_of(record.scopes))
    request.state.caller = caller
    return caller


def _need(scope: str) -> Callable[[Caller], Caller]:
    def check(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if not caller.can(scope):
            raise ApiProblem(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return caller

    return check


Reader = Annotated[Caller, Depends(_need("read"))]
Writer = Annotated[Caller, Depends(_need("write"))]
Admin = Annotated[Caller, Depends(_need("admin"))]


async def _idempotency(request: Request,
                       caller: Annotated[Caller, Depends(_caller)]) -> str | None:
    """Claim the request's ``Idempotency-Key`` (IETF httpapi draft semantics), or replay.

    A first request runs and its response is kept for ``idempotency_ttl``; a retry with the
    same key and body gets that response again (``Idempotent-Replayed: true``); the same key
    with another body is 422; a retry while the first is still running is 409. Any key may
    claim one: the route's own scope (declared before this) was checked already, so an
    approve-only key's decisions are retry-safe too.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise ApiProblem(400, "invalid-idempotency-key",
                         "Idempotency-Key must be 1-255 characters")
    raw = await request.body()
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the body will say
        canonical = raw
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + canonical
    ).hexdigest()
    ctx = _ctx(request)
    store, now = ctx.app.store, ctx.app.clock.now()
    record = await run_in_threadpool(
        store.begin_idempotent, caller.tenant_id, key, fingerprint, now=now,
        expired_before=now - ctx.settings.idempotency_ttl,
        stuck_before=now - ctx.settings.idempotency_stuck)
    if record is None:
        def release() -> None:
            store.abort_idempotent(caller.tenant_id, key)

        request.state.idempotency = (caller.tenant_id, key)
        request.state.release_idempotency = release
        return key
    if record.fingerprint != fingerprint:
        raise ApiProblem(422, "idempotency-key-reused",
                         f"Idempotency-Key {key!r} was used for a different request; use a "
                         "new key for a new request")
    if record.status is None:
        raise ApiProblem(409, "idempotency-key-in-flight",
                         f"a request with Idempotency-Key {key!r} is still in progress; "
                         "retry later", headers={"Retry-After": "1"})
    raise _Replay(record.status, record.body or "null")


IdemKey = Annotated[str | None, Depends(_idempotency)]


def _reply(request: Request, content: Any, status: int = 200, *,
           withhold: str | None = None) -> JSONResponse:
    """The one way a route answers: keeps the response for an Idempotency-Key replay.

    ``withhold`` names a secret field (a new API key, a webhook secret) kept out of the stored
    copy: a secret is shown once and never stored in clear, so a replay shows it as null.
    """
    claim = getattr(request.state, "idempotency", None)
    if claim is not None:
        tenant_id, key = claim
        body = json.dumps(content, separators=(",", ":"))
        kept = body if withhold is None else json.dumps({**content, withhold: None},
                                                        separators=(",", ":"))
        _ctx(request).app.store.finish_idempotent(tenant_id, key, status=status, body=kept)
        request.state.idempotency = None
        request.state.release_idempotency = None
        return Response(body, status_code=status, media_type="application/json")  # type: ignore[return-value]
    return JSONResponse(content, status_code=status)



def _check_quota(ctx: ApiContext, tenant_id: str, what: str) -> None:
    tenant = ctx.tenant(tenant_id)
    if tenant is None:
        return
    store = ctx.app.store
    if what == "jobs" and tenant.max_pending_jobs:
        limit = tenant.max_pending_jobs
        if store.count_pending_jobs(tenant_id, limit=limit) >= limit:
            raise ApiProblem(403, "quota-exceeded",
                             f"tenant {tenant_id} has {limit} unfinished jobs, its quota "
                             "(max_pending_jobs); wait for some to finish or raise the quota")
    if what == "schedules" and tenant.max_active_schedules:
        limit = tenant.max_active_schedules
        if store.count_active_schedules(tenant_id, limit=limit) >= limit:
            raise ApiProblem(403, "quota-exceeded",
                             f"tenant {tenant_id} has {limit} active schedules, its quota "
                             "(max_active_schedules); pause or delete one, or raise the quota")



Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200,
                                     description="next_cursor of the previous page.")]

#: A workflow cursor holds the last id (up to 200 characters) after its creation instant.
WorkflowCursor = Annotated[str | None, Query(max_length=300,
                                             description="next_cursor of the previous page.")]
