"""The application: ``create_api`` wires the routes, the middleware (request guard, metrics
and traces) and the error handlers together, and writes the OpenAPI document.

Routes live by resource in ``hora.api.routes``; what they depend on (caller, scopes,
idempotency) in ``hora.api.deps``; how errors become problem documents in
``hora.api.problems``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from opentelemetry.trace import SpanKind

import hora
from hora.api import docs_ui, problems
from hora.api.deps import (
    MAX_BODY,
    ApiContext,
    ApiSettings,
    _Replay,
)
from hora.api.guard import RequestGuard
from hora.api.routes import health, router
from hora.api.schemas import (
    Problem,
)
from hora.app import Hora
from hora.observability import HTTP_DURATION, HTTP_REQUESTS, tracer

# -- the application --------------------------------------------------------------------------

PROBLEM_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503)


def create_api(app: Hora, settings: ApiSettings | None = None) -> FastAPI:
    """The ASGI application for ``app`` (``hora serve`` runs it under uvicorn)."""
    api = FastAPI(title="hora", version=hora.__version__,
                  description="Durable scheduling and orchestration: jobs, schedules, "
                  "triggers, workflows, dead-letter queue, tenants and API keys. Errors are "
                  "RFC 9457 problem details; POSTs honour Idempotency-Key.",
                  docs_url=None, redoc_url=None)
    api.state.hora = ApiContext(app, settings or ApiSettings())
    problems.install(api)

    @api.exception_handler(_Replay)
    async def _replay(request: Request, exc: _Replay) -> Response:
        return Response(exc.body, status_code=exc.status, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})

    # Added before observe: observe is the outer middleware, so refused requests are counted.
    api.add_middleware(RequestGuard, max_body=MAX_BODY)

    @api.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Any]) -> Any:
        """A server span and the request metrics, labelled by route template (not path: ids
        would make series without bound)."""
        began = time.perf_counter()
        with tracer.start_as_current_span(
                f"HTTP {request.method}", kind=SpanKind.SERVER,
                attributes={"http.request.method": request.method,
                            "url.path": request.url.path}) as span:
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
            finally:
                route = getattr(request.scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{request.method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
                HTTP_DURATION.labels(request.method, route).observe(
                    time.perf_counter() - began)
        return response

    docs_ui.install(api)
    api.include_router(health.router_for(app))
    api.include_router(router)
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    return api


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every error response declared as problem+json."""
    if api.openapi_schema:
        return api.openapi_schema
    schema = get_openapi(title=api.title, version=api.version, description=api.description,
                         routes=api.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, sub in Problem.model_json_schema(ref_template="#/components/schemas/{model}"
                                               ).get("$defs", {}).items():
        components[name] = sub
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem_schema.pop("$defs", None)
    components["Problem"] = problem_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            public = path in ("/healthz", "/readyz")
            for status in PROBLEM_STATUSES:
                if public and status != 500:
                    continue
                if path == "/readyz" and status == 503:
                    continue
                responses[str(status)] = {"description": problems.TITLES[status],
                                          "content": {problems.PROBLEM_JSON: {"schema": ref}}}
            if method in ("post",) and not public:
                op.setdefault("parameters", []).append({
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "Retry-safe POST: the same key and body replay the first "
                                   "response; another body with the key is 422.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
    api.openapi_schema = schema
    return schema

