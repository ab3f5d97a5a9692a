"""Rows of the registry aggregate, and the parameters that end a workflow's waiting jobs,
the same for both dialects."""

from __future__ import annotations

import json
from typing import Any

from hora.models import RegisteredTask, Workflow

#: Runs of workflow ``name`` are jobs of task ``hora.workflow:<name>`` whose idempotency key
#: starts with ``wf:<workflow id>:`` (``hora.workflows.service.WorkflowService.workflow_job``).
_RUNNER_TASK = "hora.workflow:{name}"
_RUN_KEY_PREFIX = "wf:{id}:"


def workflow_jobs_params(wf: Workflow, now: Any, reason: str) -> dict[str, Any]:
    """What ``cancel_workflow_jobs`` needs to cancel ``wf``'s waiting runs."""
    prefix = _RUN_KEY_PREFIX.format(id=wf.id)
    return {"tenant_id": wf.tenant_id, "correlation_id": wf.correlation_id or wf.id,
            "task": _RUNNER_TASK.format(name=wf.name), "prefix": prefix,
            "prefix_length": len(prefix), "reason": reason, "now": now}

def registry_params(e: RegisteredTask, now: Any) -> dict[str, Any]:
    """A registry row's parameters (both dialects; ``now`` already in the dialect's form)."""
    return {"tenant_id": e.tenant_id, "kind": e.kind, "name": e.name, "queue": e.queue,
            "priority": e.priority, "max_attempts": e.max_attempts,
            "retry_policy": None if e.retry is None else json.dumps(e.retry, sort_keys=True),
            "timeout": e.timeout,
            "payload_schema": json.dumps(e.payload_schema, sort_keys=True), "now": now,
            "flow": None if e.flow is None else json.dumps(e.flow, sort_keys=True)}


def registered_from_row(row: dict[str, Any], instant: Any) -> RegisteredTask:
    """A registry row as a record (``instant`` decodes the dialect's timestamps)."""
    retry = row["retry_policy"]
    return RegisteredTask(
        tenant_id=row["tenant_id"], kind=row["kind"], name=row["name"], queue=row["queue"],
        priority=int(row["priority"]), max_attempts=int(row["max_attempts"]),
        retry=None if retry is None else json.loads(retry),
        timeout=None if row["timeout"] is None else float(row["timeout"]),
        payload_schema=json.loads(row["payload_schema"]),
        registered_at=instant(row["registered_at"]), updated_at=instant(row["updated_at"]),
        flow=_json_or_none(row.get("flow")))


def _json_or_none(value: Any) -> Any:
    """A JSON column as Python: SQLite hands back text, PostgreSQL's jsonb a value."""
    return json.loads(value) if isinstance(value, str) else value


def probe_result(row: dict[str, Any] | None, instant: Any) -> tuple[RegisteredTask | None, bool]:
    """(the entry asked for or None, whether the tenant has any entry of that kind)."""
    if row is None:
        return None, False
    if not row["hit"]:
        return None, True
    return registered_from_row(row, instant), True
