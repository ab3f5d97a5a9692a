"""Every error the API returns, as RFC 9457 ``application/problem+json``, mapped here only.

The SDK raises its ``HoraError`` tree; this module is the one place that decides which
status each error is, so a route never builds an error response itself. Anything unexpected
becomes a 500 whose body says nothing about the internals (the log has the traceback, under
the same request id the client sees).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hora.errors import (
    Conflict,
    HoraError,
    IdempotencyConflict,
    InvalidPayload,
    InvalidTrigger,
    NotAllowed,
    NotFound,
    StaleRecord,
    StoreError,
    StoreUnavailable,
    TransitionConflict,
    UnknownTask,
)
from hora.limits import MAX_JSON_DEPTH

log = logging.getLogger("hora.api")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:hora:problem:"

TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict",
    413: "Request too large", 415: "Unsupported media type", 422: "Invalid request",
    429: "Too many requests", 500: "Internal error", 503: "Service unavailable",
}


class ApiProblem(Exception):
    """Raised by the API layer itself (auth, quotas, idempotency) for a given status."""

    def __init__(self, status: int, slug: str, detail: str, *,
                 headers: dict[str, str] | None = None,
                 errors: Sequence[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.errors = list(errors) if errors else None


def problem(status: int, slug: str, detail: str, *, instance: str | None = None,
            errors: Sequence[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": TITLES.get(status, "Error"),
                            "status": status, "detail": detail, "instance": instance}
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", re.DOTALL)


def _field_of(message: str, prefix: str) -> dict[str, str]:
    """Split "cron: day-of-month 32 is out of range" into its field and reason."""
    m = _FIELD.match(message)
    if m is None:
        return {"field": prefix, "message": message}
    name = m.group(1)
    if prefix and not name.startswith(prefix):
        name = f"{prefix}.{name}"
    return {"field": name, "message": m.group(2)}


def from_hora_error(err: HoraError) -> tuple[int, str, str, list[dict[str, str]] | None]:
    """(status, slug, detail, field errors) for an SDK error."""
    message = str(err)
    if isinstance(err, InvalidTrigger):
        fe = _field_of(message, "trigger")
        return 422, "invalid-trigger", f"{fe['field']}: {fe['message']}", [fe]
    if isinstance(err, InvalidPayload):
        fe = _field_of(message, "")
        return 422, "invalid-request", message, [fe]
    if isinstance(err, NotFound):
        return 404, "not-found", message, None
    if isinstance(err, NotAllowed):
        return 403, "forbidden", message, None
    if isinstance(err, IdempotencyConflict):
        return 409, "idempotency-conflict", message, None
    if isinstance(err, TransitionConflict):
        return 409, "state-conflict", message, None
    if isinstance(err, StaleRecord):
        return 409, "stale-record", message, None
    if isinstance(err, Conflict):
        return 409, "conflict", message, None
    if isinstance(err, UnknownTask):
        return 422, "unknown-task", message, None
    if isinstance(err, StoreUnavailable):
        return 503, "store-unavailable", "the database cannot be reached; try again shortly", None
    if isinstance(err, StoreError):
        return 503, "store-unavailable", "the database is unavailable; try again shortly", None
    return 500, "internal", "internal error; the server log has the details", None


def _location(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
    else:
        where = ""
    name = ""
    for p in parts:
        if p.isdigit():
            name += f"[{p}]"
        elif not p.startswith(("function-", "constrained-")):
            name = f"{name}.{p}" if name else p
    return name or where or "request"


def from_validation(err: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for e in err.errors():
        msg = str(e.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif e.get("type") == "json_invalid":
            msg = f"not valid JSON: {e.get('ctx', {}).get('error', msg)}"
        where = _location(e.get("loc", ()))
        if where in ("body", "query", "request") and _FIELD.match(msg):
            # A whole-document check names its field in the message ("task: give ...").
            out.append(_field_of(msg, ""))
            continue
        out.append({"field": where, "message": msg})
    return out


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path (for ``Allow``). Starlette's
    own 405 names the methods of the first route that matched the path only, while FastAPI
    makes one route per method: each method is asked of the routes instead."""
    routes = request.app.router.routes
    return [m for m in _METHODS
            if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]


def install(api: FastAPI) -> None:
    """Register the handlers; the only place statuses are chosen for errors."""

    async def after_error(request: Request) -> None:
        # An Idempotency-Key claimed by this request is released, so a corrected retry
        # (or the same one, after a 503) can run.
        release = getattr(request.state, "release_idempotency", None)
        if release is not None:
            request.state.release_idempotency = None
            try:
                await run_in_threadpool(release)
            except Exception:
                log.exception("could not release an idempotency key")

    @api.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        await after_error(request)
        return problem(exc.status, exc.slug, exc.detail, instance=request.url.path,
                       errors=exc.errors, headers=exc.headers)

    @api.exception_handler(HoraError)
    async def _hora_error(request: Request, exc: HoraError) -> JSONResponse:
        await after_error(request)
        status, slug, detail, errors = from_hora_error(exc)
        if isinstance(exc, StoreUnavailable):
            # The store logs the outage once; a line per refused request would bury it.
            log.debug("request %s %s: %s", request.method, request.url.path, exc)
        elif status >= 500:
            log.error("request %s %s failed: %r", request.method, request.url.path, exc,
                      exc_info=exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        return problem(status, slug, detail, instance=request.url.path, errors=errors,
                       headers=headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        await after_error(request)
        errors = from_validation(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "invalid-request", detail or "invalid request",
                       instance=request.url.path, errors=errors)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        await after_error(request)
        status = exc.status_code
        if status == 400 and isinstance(exc.__cause__, RecursionError):
            # FastAPI's "error parsing the body": json.loads met a nesting bomb.
            return problem(422, "invalid-request", f"body: JSON nested deeper than "
                           f"{MAX_JSON_DEPTH} levels", instance=request.url.path,
                           errors=[{"field": "body", "message": "JSON nested deeper than "
                                    f"{MAX_JSON_DEPTH} levels"}])
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(status, "error")
        if status == 404 and detail == "Not Found":
            detail = f"no such resource: {request.method} {request.url.path}"
        slug = {404: "not-found", 405: "method-not-allowed"}.get(status, "http-error")
        headers = getattr(exc, "headers", None)
        if status == 405:
            allowed = allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            detail = f"{request.method} is not allowed on {request.url.path}; it answers " \
                     f"{', '.join(allowed)}"
        return problem(status, slug, detail, instance=request.url.path, headers=headers)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        await after_error(request)
        log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal", "internal error; the server log has the details",
                       instance=request.url.path)
