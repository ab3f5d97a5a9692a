"""Every error the API returns, as RFC 9457 ``application/problem+json``, mapped here only.

The SDK raises its ``HoraError`` tree; each class names its problem type and status
(``hora.errors``), and this module is the one place that turns an error into a response, so
a route never builds an error response itself. An error's typed fields (``field``,
``job_id``, ``retry_after``...) go out as extension members, from the exception's attributes,
never from its message, and ``hora.Client`` rebuilds the same exception from them. Anything
unexpected becomes a 500 whose body says nothing about the internals (the log has the
traceback, under the same request id the client sees).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hora.api.auth import retry_after_header
from hora.errors import HoraError, InvalidTrigger, LockTimeout, StoreUnavailable
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
            headers: dict[str, str] | None = None,
            members: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": TITLES.get(status, "Error"),
                            "status": status, "detail": detail, "instance": instance}
    if members:
        body.update(members)
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


@dataclass(frozen=True)
class HoraProblem:
    """What the API answers for an SDK error: read from the error's class and attributes."""

    status: int
    slug: str
    detail: str
    errors: list[dict[str, str]] | None
    members: dict[str, Any]
    retry_after: float | None


def trigger_field(field: str | None) -> str:
    """A trigger error's field as the request names it: inside ``trigger``."""
    if not field:
        return "trigger"
    return field if field == "trigger" or field.startswith("trigger.") else f"trigger.{field}"


def from_hora_error(err: HoraError) -> HoraProblem:
    """The problem an SDK error stands for (status and type from its class)."""
    status, slug = err.http_status, err.problem_type
    members = err.problem_members()
    if status >= 500:
        retry_after = getattr(err, "retry_after", None)
        if status == 503:
            what = "cannot be reached" if isinstance(err, StoreUnavailable) else "is unavailable"
            return HoraProblem(503, slug, f"the database {what}; try again shortly", None,
                               members, _positive(retry_after) or 1.0)
        return HoraProblem(status, "internal", "internal error; the server log has the details",
                           None, {}, None)
    field = err.field
    if isinstance(err, InvalidTrigger):
        field = trigger_field(field)
        members["field"] = field
    detail = f"{field}: {err.reason}" if field and field != err.field else str(err)
    errors = None
    if field is not None:
        errors = [{"field": field, "message": err.reason}]
    elif status == 422:
        errors = [{"field": "request", "message": str(err)}]
    retry_after = _positive(err.retry_after) if isinstance(err, LockTimeout) else None
    return HoraProblem(status, slug, detail, errors, members, retry_after)


def _positive(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value > 0 else None


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
        error = e.get("ctx", {}).get("error")
        if isinstance(error, HoraError) and error.field:
            # A whole-document check raised with the field it is about.
            out.append({"field": error.field, "message": error.reason})
            continue
        out.append({"field": where, "message": msg})
    return out


async def malformed_json_detail(request: Request, error: Mapping[str, Any]) -> str:
    """Where and why a body is not JSON, in words (``line 3, column 7``): pydantic reports a
    character offset, which the body is parsed again to turn into a line and a column."""
    try:
        text = (await request.body()).decode("utf-8")
        json.loads(text)
    except UnicodeDecodeError as e:
        return f"the body is not valid JSON: not UTF-8 (byte {e.start + 1})"
    except json.JSONDecodeError as e:
        # json's messages end in " at" where they meant the offset: the place comes first.
        why = e.msg.removesuffix(" at").removesuffix(" starting")
        return f"the body is not valid JSON at line {e.lineno}, column {e.colno}: {why}"
    except Exception:  # the body cannot be read again: say what pydantic said
        pass
    reason = str(error.get("ctx", {}).get("error", "")) or "cannot be parsed"
    return f"the body is not valid JSON: {reason}"


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
        found = from_hora_error(exc)
        if isinstance(exc, StoreUnavailable):
            # The store logs the outage once; a line per refused request would bury it.
            log.debug("request %s %s: %s", request.method, request.url.path, exc)
        elif found.status >= 500:
            log.error("request %s %s failed: %r", request.method, request.url.path, exc,
                      exc_info=exc)
        headers = None
        if found.retry_after is not None:
            headers = {"Retry-After": retry_after_header(found.retry_after)}
        return problem(found.status, found.slug, found.detail, instance=request.url.path,
                       errors=found.errors, headers=headers, members=found.members)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        await after_error(request)
        malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if malformed is not None:
            detail = await malformed_json_detail(request, malformed)
            return problem(400, "malformed-json", detail, instance=request.url.path,
                           errors=[{"field": "body", "message": detail}])
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
        if status == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer when json.loads fails other than by JSONDecodeError (bytes
            # that are no Unicode encoding): the same problem as any malformed body.
            why = await malformed_json_detail(request, {})
            return problem(400, "malformed-json", why, instance=request.url.path,
                           errors=[{"field": "body", "message": why}])
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
