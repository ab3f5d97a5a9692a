"""How the CLI shows records: JSON for machines, rich tables for people.

JSON is plain data, written by ``hora.wire`` (datetimes as ISO-8601 in UTC, states as their
names), one document per command on stdout, so ``hora jobs list --json | jq`` works.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hora.models import Job, Page

# The JSON documents live in wire.py (shared with the API and the client); the CLI's
# ``render.job_dict(...)`` and friends keep working through these names.
from hora.wire import (
    approval_dict,
    attempt_dict,
    dumps,
    error_dict,
    event_dict,
    history_dict,
    iso,
    iso_z,
    job_dict,
    page_dict,
    schedule_dict,
    signal_dict,
    tick_dict,
    workflow_dict,
)

__all__ = [
    "STATE_STYLES",
    "approval_dict",
    "attempt_dict",
    "dumps",
    "error_dict",
    "event_dict",
    "history_dict",
    "iso",
    "iso_z",
    "job_detail",
    "job_dict",
    "jobs_table",
    "page_dict",
    "print_page_footer",
    "schedule_dict",
    "signal_dict",
    "state_text",
    "tick_dict",
    "when",
    "workflow_dict",
]

STATE_STYLES = {
    "scheduled": "cyan", "running": "blue", "retrying": "yellow", "succeeded": "green",
    "cancelled": "dim", "dead": "bold red", "discarded": "dim red", "replayed": "magenta",
    # workflows (running and cancelled as above)
    "sleeping": "cyan", "waiting": "yellow", "compensating": "magenta",
    "completed": "green", "failed": "bold red",
    # approval requests (cancelled as above)
    "pending": "yellow", "approved": "green", "rejected": "red", "expired": "dim",
}


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
            if a.logs:
                parts.append(Text(f"log of attempt {a.number}:", style="bold"))
                parts.append(Text("\n".join(
                    f"{line.at.strftime('%H:%M:%S.%f')[:-3]} {line.level:<8} {line.message}"
                    for line in a.logs)))
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
