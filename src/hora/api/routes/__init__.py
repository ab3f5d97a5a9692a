"""The v1 routes, one module per resource; ``router`` holds them all, in the order the
OpenAPI document lists them.

Each resource's router carries the ``/v1`` prefix itself and ``router`` lists their routes
directly (not ``include_router``, which nests them), so ``router.routes`` are the
``APIRoute`` objects themselves, for tests and tools that inspect them."""

from __future__ import annotations

from fastapi import APIRouter

from hora.api.routes import (
    approvals,
    dlq,
    inbox,
    jobs,
    keys,
    locks,
    notifications,
    ratelimits,
    recipients,
    schedules,
    tasks,
    templates,
    tenants,
    triggers,
    workers,
    workflows,
)

router = APIRouter()
for _resource in (jobs, dlq, schedules, triggers, workflows, approvals, tasks, tenants, keys,
                  locks, workers, ratelimits, notifications, templates, inbox, recipients):
    router.routes.extend(_resource.router.routes)

__all__ = ["router"]
