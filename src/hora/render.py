"""How the CLI shows records: JSON for machines, rich tables for people.

JSON is plain data (datetimes as ISO-8601 in UTC, states as their names), one document per
command on stdout, so ``hora jobs list --json | jq`` works.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hora.models import (
    ApprovalRequest,
    Attempt,
    ErrorInfo,
    HistoryEntry,
    Job,
    JobEvent,
    Page,
    Schedule,
    Signal,
    Tick,
    Workflow,
)

STATE_STYLES = {
    "scheduled": "cyan", "running": "blue", "retrying": "yellow", "succeeded": "green",
    "cancelled": "dim", "dead": "bold red", "discarded": "dim red", "replayed": "magenta",
    # workflows (running and cancelled as above)
    "sleeping": "cyan", "waiting": "yellow", "compensating": "magenta",
    "completed": "green", "failed": "bold red",
    # approval requests (cancelled as above)
    "pending": "yellow", "approved": "green", "rejected": "red", "expired": "dim",
}


# -- JSON -------------------------------------------------------------------------------------


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def error_dict(err: ErrorInfo | None) -> dict[str, Any] | None:
    return None if err is None else err.to_dict()


def attempt_dict(a: Attempt) -> dict[str, Any]:
    return {"number": a.number, "worker_id": a.worker_id, "started_at": iso(a.started_at),
            "ended_at": iso(a.ended_at), "outcome": a.outcome, "error": error_dict(a.error)}


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


def page_dict(page: Page[Job]) -> dict[str, Any]:
    return {"items": [job_dict(j) for j in page.items], "next_cursor": page.next_cursor}


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# -- tables -----------------------------------------------------------------------------------


def when(dt: datetime | None) -> str:
    """Short UTC display form: seconds precision, with the zone spelled out."""
    return "" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def jobs_table(jobs: list[Job], *, width: int, title: str | None = None,
               errors: bool = False) -> Table:
    """One row per job; below ~110 columns the queue and due columns make way. With
    ``errors`` (the DLQ, where every job is dead) the last error replaces the state."""
    wide = width >= 110
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("task", overflow="fold", min_width=10)
    if not errors:
        table.add_column("state", no_wrap=True, min_width=9)
    table.add_column("attempts", justify="right", no_wrap=True)
    if wide:
        table.add_column("queue", overflow="fold")
        table.add_column("due (UTC)", no_wrap=True, min_width=20)
    if errors:
        table.add_column("last error", overflow="fold", min_width=12)
    for j in jobs:
        row = [Text(j.id), Text(j.task)]
        if not errors:
            row.append(state_text(str(j.state)))
        row.append(Text(f"{j.attempt}/{j.max_attempts}"))
        if wide:
            row += [Text(j.queue), Text(when(j.due_at))]
        if errors:
            err = j.last_error
            row.append(Text("" if err is None else f"{err.type}: {err.message}"))
        table.add_row(*row)
    return table


def job_detail(job: Job) -> Group:
    """Every field of one job, then its attempts (with tracebacks) and its event history."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", job.id), ("task", job.task), ("state", state_text(str(job.state))),
        ("reason", job.state_reason or ""), ("queue", job.queue),
        ("priority", str(job.priority)), ("attempts", f"{job.attempt}/{job.max_attempts}"),
        ("due", when(job.due_at)), ("created", when(job.created_at)),
        ("started", when(job.started_at)), ("finished", when(job.finished_at)),
        ("payload", json.dumps(job.payload, ensure_ascii=False)),
        ("result", "" if job.result is None else json.dumps(job.result, ensure_ascii=False)),
        ("idempotency key", job.idempotency_key or ""),
        ("correlation id", job.correlation_id or ""),
        ("lease", "" if job.lease_owner is None
         else f"{job.lease_owner} until {when(job.lease_expires_at)}"),
        ("replay of", job.replay_of or ""), ("replayed as", job.replayed_as or ""),
    ]
    for name, value in rows:
        if value:
            fields.add_row(name, value if isinstance(value, Text) else Text(value))
    parts: list[Any] = [fields]
    if job.attempts:
        attempts = Table(title="attempts", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("#", "outcome", "started (UTC)", "ended (UTC)"):
            attempts.add_column(col, no_wrap=True)
        attempts.add_column("worker", overflow="fold")
        attempts.add_column("error", overflow="fold")
        for a in job.attempts:
            err = "" if a.error is None else f"{a.error.type}: {a.error.message}"
            attempts.add_row(str(a.number), a.outcome or "running", when(a.started_at),
                             when(a.ended_at), Text(a.worker_id or ""), Text(err))
        parts.append(attempts)
        for a in job.attempts:
            if a.error is not None and a.error.traceback:
                parts.append(Text(f"traceback of attempt {a.number}:", style="bold"))
                parts.append(Text(a.error.traceback.rstrip()))
    if job.events:
        events = Table(title="history", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("at (UTC)", "move", "attempt"):
            events.add_column(col, no_wrap=True)
        events.add_column("reason", overflow="fold")
        for e in job.events:
            move = f"{e.from_state or '(new)'} -> {e.to_state}"
            events.add_row(when(e.at), move, str(e.attempt), Text(e.reason or ""))
        parts.append(events)
    return Group(*parts)


def print_page_footer(console: Console, page: Page[Job], what: str) -> None:
    if not page.items:
        console.print(f"no {what}")
    elif page.next_cursor:
        console.print(f"more: pass --cursor {page.next_cursor}")
