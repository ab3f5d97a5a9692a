"""Operations: ``/healthz`` (alive), ``/readyz`` (the store answers, migrations applied) and
``/metrics`` (Prometheus), outside ``/v1`` and without an API key."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hora.api.readiness import Readiness
from hora.api.schemas import Health
from hora.app import Hora
from hora.errors import HoraError
from hora.store.queries import load_migrations


def router_for(app: Hora) -> APIRouter:
    """The operations routes of ``app`` (readiness asks its store)."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics of this process (hora's and any the app registers), with
        ``hora_jobs_unrunnable`` and ``hora_jobs_waiting`` counted from the store now (a
        few small grouped reads)."""
        with contextlib.suppress(HoraError):  # the store down must not hide the rest
            app.fleet.refresh_unrunnable_metric()
            app.rate_limits.refresh_waiting_metric()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # async and free of I/O: answered on the event loop, never queued behind routes that
    # wait for the database in the thread pool.
    @router.get("/healthz", response_model=Health, tags=["operations"],
                summary="Alive: the process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    def store_not_ready() -> str | None:
        applied = app.store.applied_migrations()  # type: ignore[attr-defined]
        expected = [m.version for m in load_migrations(app.store.dialect)]
        missing = sorted(set(expected) - set(applied))
        return f"migrations not applied: {missing}" if missing else None

    readiness = Readiness(store_not_ready)

    @router.get("/readyz", response_model=Health, tags=["operations"],
                summary="Ready: the store answers and its migrations are applied",
                responses={503: {"model": Health}})
    async def readyz() -> JSONResponse:
        why = await readiness.why_not_ready()
        if why is not None:
            return JSONResponse({"status": "unavailable", "detail": why}, status_code=503)
        return JSONResponse({"status": "ok"})

    return router
