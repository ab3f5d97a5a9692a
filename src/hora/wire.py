"""The JSON form of every record, both ways, in one place.

The API writes records with the ``*_dict`` functions, the HTTP client reads them back with
the ``*_from_dict`` ones, and the CLI's ``--json`` prints the same documents: one module, so
the wire format cannot drift between the three. Instants go out as ISO-8601 in UTC (``iso``;
``iso_z`` spells UTC ``Z``, as schedules, ticks and workflows always have) and come back
aware. This module imports nothing but the models, the states and the standard library, so
the API does not pull in the CLI's rich and the client does not pull in FastAPI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hora.models import (
    ApprovalRequest,
    Attempt,
    ErrorInfo,
    HistoryEntry,
    Job,
    JobEvent,
    LogLine,
    Page,
    QueueInfo,
    QueueState,
    RateLimitInfo,
    RegisteredTask,
    Schedule,
    Signal,
    Tick,
    WorkerInfo,
    Workflow,
)
from hora.states import JobState

Json = dict[str, Any]


# -- records to JSON ------------------------------------------------------------------------


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def error_dict(err: ErrorInfo | None) -> dict[str, Any] | None:
    return None if err is None else err.to_dict()


def attempt_dict(a: Attempt) -> dict[str, Any]:
    return {"number": a.number, "worker_id": a.worker_id, "started_at": iso(a.started_at),
            "ended_at": iso(a.ended_at), "outcome": a.outcome, "error": error_dict(a.error),
            "logs": [log_line_dict(line) for line in a.logs]}


def log_line_dict(line: LogLine) -> dict[str, Any]:
    return {"at": iso(line.at), "level": line.level, "message": line.message}


def event_dict(e: JobEvent) -> dict[str, Any]:
    return {"id": e.id, "at": iso(e.at),
            "from_state": None if e.from_state is None else str(e.from_state),
            "to_state": str(e.to_state), "attempt": e.attempt, "reason": e.reason}


def job_dict(job: Job, *, history: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": job.id, "task": job.task, "state": str(job.state), "payload": job.payload,
        "queue": job.queue, "priority": job.priority, "due_at": iso(job.due_at),
        "attempt": job.attempt, "max_attempts": job.max_attempts,
        "retry_policy": job.retry_policy, "timeout": job.timeout,
        "idempotency_key": job.idempotency_key, "correlation_id": job.correlation_id,
        "tenant_id": job.tenant_id, "lease_owner": job.lease_owner,
        "lease_expires_at": iso(job.lease_expires_at), "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at), "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at), "result": job.result,
        "last_error": error_dict(job.last_error), "cancel_requested": job.cancel_requested,
        "state_reason": job.state_reason, "replay_of": job.replay_of,
        "replayed_as": job.replayed_as, "schedule_id": job.schedule_id,
    }
    if history:
        d["attempts"] = [attempt_dict(a) for a in job.attempts]
        d["events"] = [event_dict(e) for e in job.events]
    return d


def iso_z(dt: datetime | None) -> str | None:
    """UTC with a ``Z``, as the trigger preview JSON writes instants."""
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def schedule_dict(s: Schedule) -> dict[str, Any]:
    return {
        "id": s.id, "tenant_id": s.tenant_id, "name": s.name, "task": s.task,
        "payload": s.payload,
        "trigger": s.trigger, "queue": s.queue, "priority": s.priority,
        "max_attempts": s.max_attempts, "retry_policy": s.retry_policy, "timeout": s.timeout,
        "correlation_id": s.correlation_id,
        "misfire_policy": s.misfire_policy, "misfire_grace": s.misfire_grace,
        "catchup_limit": s.catchup_limit, "overlap_policy": s.overlap_policy,
        "state": s.state, "next_fire_at": iso_z(s.next_fire_at), "cursor": iso_z(s.cursor),
        "created_at": iso_z(s.created_at), "updated_at": iso_z(s.updated_at),
        "version": s.version, "error": s.error,
    }


def tick_dict(t: Tick) -> dict[str, Any]:
    return {"schedule_id": t.schedule_id, "nominal": iso_z(t.nominal),
            "fire_at": iso_z(t.fire_at), "outcome": t.outcome, "reason": t.reason,
            "job_id": t.job_id, "recorded_at": iso_z(t.recorded_at)}


def workflow_dict(w: Workflow, *, history: list[HistoryEntry] | None = None,
                  signals: list[Signal] | None = None) -> dict[str, Any]:
    """A workflow; with ``history`` and ``signals`` (``GET /v1/workflows/{id}``) its journal
    and every signal sent to it."""
    d: dict[str, Any] = {
        "id": w.id, "tenant_id": w.tenant_id, "name": w.name, "args": w.args,
        "state": w.state, "result": w.result, "error": error_dict(w.error),
        "correlation_id": w.correlation_id, "parent_id": w.parent_id,
        "wait_kind": w.wait_kind, "wait_name": w.wait_name, "wait_until": iso_z(w.wait_until),
        "cancel_requested": w.cancel_requested, "cancel_reason": w.cancel_reason,
        "compensation": w.compensation, "run_owner": w.run_owner,
        "run_until": iso_z(w.run_until), "created_at": iso_z(w.created_at),
        "updated_at": iso_z(w.updated_at), "finished_at": iso_z(w.finished_at),
        "version": w.version,
    }
    if history is not None:
        d["history"] = [history_dict(h) for h in history]
    if signals is not None:
        d["signals"] = [signal_dict(s) for s in signals]
    return d


def approval_dict(a: ApprovalRequest) -> dict[str, Any]:
    """An approval request (``GET /v1/approvals/{id}``, the inbox, a decision's answer)."""
    return {
        "id": a.id, "tenant_id": a.tenant_id, "workflow_id": a.workflow_id,
        "workflow_name": a.workflow_name, "seq": a.seq, "name": a.name,
        "approvers": None if a.approvers is None else list(a.approvers),
        "context": a.context, "state": a.state, "deadline": iso_z(a.deadline),
        "created_at": iso_z(a.created_at), "decided_by": a.decided_by,
        "decided_by_key": a.decided_by_key, "comment": a.comment,
        "decided_at": iso_z(a.decided_at),
    }


def history_dict(h: HistoryEntry) -> dict[str, Any]:
    return {"seq": h.seq, "kind": h.kind, "name": h.name, "status": h.status,
            "attempts": h.attempts, "input": h.input, "output": h.output,
            "error": error_dict(h.error), "started_at": iso_z(h.started_at),
            "finished_at": iso_z(h.finished_at), "deadline": iso_z(h.deadline)}


def signal_dict(s: Signal) -> dict[str, Any]:
    return {"id": s.id, "tenant_id": s.tenant_id, "workflow_id": s.workflow_id,
            "name": s.name, "payload": s.payload, "actor": s.actor, "comment": s.comment,
            "sent_at": iso_z(s.sent_at), "consumed_seq": s.consumed_seq}


def worker_dict(w: WorkerInfo) -> dict[str, Any]:
    return {"id": w.id, "status": w.status, "host": w.host, "pid": w.pid,
            "version": w.version, "queues": list(w.queues),
            "tasks": None if w.tasks is None else list(w.tasks),
            "workflows": list(w.workflows), "concurrency": w.concurrency,
            "heartbeat": w.heartbeat, "running": w.running, "started_at": iso(w.started_at),
            "last_seen_at": iso(w.last_seen_at), "stopped_at": iso(w.stopped_at)}


def queue_dict(q: QueueInfo) -> dict[str, Any]:
    return {"name": q.name, "paused": q.paused, "paused_at": iso(q.paused_at),
            "reason": q.reason, "scheduled": q.scheduled, "retrying": q.retrying,
            "running": q.running, "dead": q.dead, "due": q.due,
            "oldest_due_age": q.oldest_due_age, "workers": q.workers}


def queue_state_dict(q: QueueState) -> dict[str, Any]:
    return {"tenant_id": q.tenant_id, "name": q.name, "paused": q.paused,
            "paused_at": iso(q.paused_at), "reason": q.reason}
def rate_limit_dict(r: RateLimitInfo) -> dict[str, Any]:
    return {"name": r.name, "rate": r.rate, "burst": r.burst, "source": r.source,
            "count": r.count, "period": r.period, "declared_rate": r.declared_rate,
            "declared_burst": r.declared_burst, "tasks": list(r.tasks),
            "updated_at": iso(r.updated_at)}


def registered_task_dict(t: RegisteredTask) -> dict[str, Any]:
    return {"tenant_id": t.tenant_id, "kind": t.kind, "name": t.name, "queue": t.queue,
            "priority": t.priority, "max_attempts": t.max_attempts, "retry": t.retry,
            "timeout": t.timeout, "payload_schema": t.payload_schema,
            "registered_at": iso_z(t.registered_at), "updated_at": iso_z(t.updated_at)}


def page_dict(page: Page[Job]) -> dict[str, Any]:
    return {"items": [job_dict(j) for j in page.items], "next_cursor": page.next_cursor}


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# -- JSON to records --------------------------------------------------------------------------


def instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 instant, got {value!r}")
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def instant_or_none(value: Any) -> datetime | None:
    return None if value is None else instant(value)


def _state_or_none(value: Any) -> JobState | None:
    return None if value is None else JobState(value)


def attempt_from_dict(job_id: str, d: Mapping[str, Any]) -> Attempt:
    return Attempt(job_id=job_id, number=d["number"], worker_id=d.get("worker_id"),
                   started_at=instant(d["started_at"]), ended_at=instant_or_none(d.get("ended_at")),
                   outcome=d.get("outcome"), error=ErrorInfo.from_dict(d.get("error")),
                   logs=log_lines_from_json(d.get("logs")))


def log_lines_from_json(value: Any) -> tuple[LogLine, ...]:
    """Log lines from their JSON form (a list of {"at", "level", "message"}, or its text as
    the store keeps it); None is no lines."""
    if value is None:
        return ()
    items = json.loads(value) if isinstance(value, str | bytes) else value
    return tuple(LogLine(at=_log_instant(i["at"]), level=str(i["level"]),
                         message=str(i["message"])) for i in items)


def _log_instant(value: Any) -> datetime:
    """A log line's time: ISO-8601 on the wire, epoch seconds as the store keeps it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return instant(value)


def event_from_dict(job_id: str, d: Mapping[str, Any]) -> JobEvent:
    return JobEvent(id=d["id"], job_id=job_id, at=instant(d["at"]),
                    from_state=_state_or_none(d.get("from_state")),
                    to_state=JobState(d["to_state"]), attempt=d["attempt"],
                    reason=d.get("reason"))


def job_from_dict(d: Mapping[str, Any]) -> Job:
    job_id: str = d["id"]
    return Job(
        id=job_id, task=d["task"], payload=d.get("payload") or {}, queue=d["queue"],
        priority=d["priority"], state=JobState(d["state"]), due_at=instant(d["due_at"]),
        attempt=d["attempt"], max_attempts=d["max_attempts"],
        retry_policy=d.get("retry_policy"), timeout=d.get("timeout"),
        idempotency_key=d.get("idempotency_key"), correlation_id=d.get("correlation_id"),
        tenant_id=d["tenant_id"], lease_owner=d.get("lease_owner"),
        lease_expires_at=instant_or_none(d.get("lease_expires_at")),
        created_at=instant(d["created_at"]), updated_at=instant(d["updated_at"]),
        started_at=instant_or_none(d.get("started_at")),
        finished_at=instant_or_none(d.get("finished_at")), result=d.get("result"),
        last_error=ErrorInfo.from_dict(d.get("last_error")),
        cancel_requested=bool(d.get("cancel_requested")), state_reason=d.get("state_reason"),
        replay_of=d.get("replay_of"), replayed_as=d.get("replayed_as"),
        attempts=tuple(attempt_from_dict(job_id, a) for a in d.get("attempts") or ()),
        events=tuple(event_from_dict(job_id, e) for e in d.get("events") or ()),
        schedule_id=d.get("schedule_id"),
    )


def schedule_from_dict(d: Mapping[str, Any]) -> Schedule:
    return Schedule(
        id=d["id"], tenant_id=d.get("tenant_id") or "", name=d.get("name"), task=d["task"],
        payload=d.get("payload") or {}, trigger=d["trigger"], queue=d["queue"],
        priority=d["priority"], max_attempts=d["max_attempts"],
        retry_policy=d.get("retry_policy"), timeout=d.get("timeout"),
        correlation_id=d.get("correlation_id"), misfire_policy=d["misfire_policy"],
        misfire_grace=d["misfire_grace"], catchup_limit=d["catchup_limit"],
        overlap_policy=d["overlap_policy"], state=d["state"],
        next_fire_at=instant_or_none(d.get("next_fire_at")), cursor=instant(d["cursor"]),
        created_at=instant(d["created_at"]), updated_at=instant(d["updated_at"]),
        version=d.get("version", 0), error=d.get("error"),
    )


def tick_from_dict(schedule_id: str, d: Mapping[str, Any]) -> Tick:
    return Tick(schedule_id=schedule_id, nominal=instant(d["nominal"]),
                fire_at=instant(d["fire_at"]), outcome=d["outcome"], reason=d.get("reason"),
                job_id=d.get("job_id"),
                recorded_at=instant(d["recorded_at"]))


def workflow_from_dict(d: Mapping[str, Any]) -> Workflow:
    return Workflow(
        tenant_id=d["tenant_id"], id=d["id"], name=d["name"], args=d.get("args") or {},
        state=d["state"], result=d.get("result"), error=ErrorInfo.from_dict(d.get("error")),
        correlation_id=d.get("correlation_id"), parent_id=d.get("parent_id"),
        wait_kind=d.get("wait_kind"), wait_name=d.get("wait_name"),
        wait_until=instant_or_none(d.get("wait_until")),
        cancel_requested=bool(d.get("cancel_requested")),
        cancel_reason=d.get("cancel_reason"), compensation=d.get("compensation"),
        run_owner=d.get("run_owner"), run_until=instant_or_none(d.get("run_until")),
        created_at=instant(d["created_at"]), updated_at=instant(d["updated_at"]),
        finished_at=instant_or_none(d.get("finished_at")), version=d.get("version", 0),
    )


def history_from_dict(tenant_id: str, workflow_id: str, d: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        tenant_id=tenant_id, workflow_id=workflow_id, seq=d["seq"], kind=d["kind"],
        name=d["name"], input=d.get("input"), output=d.get("output"),
        error=ErrorInfo.from_dict(d.get("error")), status=d["status"],
        attempts=d["attempts"], started_at=instant(d["started_at"]),
        finished_at=instant_or_none(d.get("finished_at")),
        deadline=instant_or_none(d.get("deadline")),
    )


def signal_from_dict(d: Mapping[str, Any]) -> Signal:
    return Signal(id=d["id"], tenant_id=d["tenant_id"], workflow_id=d["workflow_id"],
                  name=d["name"], payload=d.get("payload"), actor=d.get("actor"),
                  comment=d.get("comment"), sent_at=instant(d["sent_at"]),
                  consumed_seq=d.get("consumed_seq"))


def approval_from_dict(d: Mapping[str, Any]) -> ApprovalRequest:
    approvers = d.get("approvers")
    return ApprovalRequest(
        id=d["id"], tenant_id=d["tenant_id"], workflow_id=d["workflow_id"],
        workflow_name=d["workflow_name"], seq=d["seq"], name=d["name"],
        approvers=None if approvers is None else tuple(approvers), context=d.get("context"),
        state=d["state"], deadline=instant_or_none(d.get("deadline")),
        created_at=instant(d["created_at"]), decided_by=d.get("decided_by"),
        decided_by_key=d.get("decided_by_key"), comment=d.get("comment"),
        decided_at=instant_or_none(d.get("decided_at")))


def worker_from_dict(d: Mapping[str, Any]) -> WorkerInfo:
    tasks = d.get("tasks")
    return WorkerInfo(
        id=d["id"], host=d["host"], pid=d["pid"], version=d["version"],
        queues=tuple(d["queues"]), tasks=None if tasks is None else tuple(tasks),
        workflows=tuple(d.get("workflows") or ()), concurrency=d["concurrency"],
        heartbeat=d["heartbeat"], started_at=instant(d["started_at"]),
        last_seen_at=instant(d["last_seen_at"]), running=d.get("running", 0),
        stopped_at=instant_or_none(d.get("stopped_at")), status=d.get("status", "live"))


def queue_from_dict(d: Mapping[str, Any]) -> QueueInfo:
    return QueueInfo(
        name=d["name"], scheduled=d["scheduled"], retrying=d["retrying"],
        running=d["running"], dead=d["dead"], due=d["due"],
        oldest_due_age=d.get("oldest_due_age"), workers=d["workers"], paused=d["paused"],
        paused_at=instant_or_none(d.get("paused_at")), reason=d.get("reason"))


def queue_state_from_dict(d: Mapping[str, Any]) -> QueueState:
    return QueueState(tenant_id=d["tenant_id"], name=d["name"], paused=d["paused"],
                      paused_at=instant_or_none(d.get("paused_at")), reason=d.get("reason"))
def rate_limit_from_dict(d: Mapping[str, Any]) -> RateLimitInfo:
    declared_burst = d.get("declared_burst")
    return RateLimitInfo(
        name=d["name"], rate=d["rate"], burst=int(d["burst"]), source=d["source"],
        count=int(d["count"]), period=float(d["period"]), declared_rate=d.get("declared_rate"),
        declared_burst=None if declared_burst is None else int(declared_burst),
        tasks=tuple(d.get("tasks") or ()), updated_at=instant_or_none(d.get("updated_at")))


def registered_task_from_dict(d: Mapping[str, Any]) -> RegisteredTask:
    timeout = d.get("timeout")
    return RegisteredTask(
        tenant_id=d["tenant_id"], kind=d["kind"], name=d["name"], queue=d["queue"],
        priority=int(d["priority"]), max_attempts=int(d["max_attempts"]),
        retry=d.get("retry"), timeout=None if timeout is None else float(timeout),
        payload_schema=dict(d.get("payload_schema") or {}),
        registered_at=instant(d["registered_at"]), updated_at=instant(d["updated_at"]))
