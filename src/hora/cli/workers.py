"""``hora workers`` and ``hora queues``: which workers are alive, how deep each queue is,
pause and resume a queue."""

from __future__ import annotations

from typing import Annotated

import typer

from hora.cli._common import (
    DatabaseUrl,
    JsonOut,
    console,
    group,
    handled,
    open_app,
    print_json,
    say,
)

workers_cli = group("Workers: which are alive, what they run.")
queues_cli = group("Queues: depth by state, oldest due job, workers; pause and resume.")

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant whose queues these are.")]


@workers_cli.command("list")
@handled
def workers_list(
    all_: Annotated[bool, typer.Option(
        "--all", help="Also lost and stopped workers (until they age out after 24 h).")] = False,
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Live workers (every tenant's jobs run on them): host, pid, queues, jobs running."""
    from rich import box
    from rich.table import Table

    from hora import render, wire

    with open_app(database_url, read_only=True) as app:
        workers = app.workers(all=all_)
    if json_out:
        print_json({"items": [wire.worker_dict(w) for w in workers]})
        return
    if not workers:
        say("no live workers" if not all_ else "no workers")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("id", "status", "host", "pid", "queues", "tasks", "running", "last seen",
                   "started"):
        table.add_column(header, overflow="fold")
    for w in workers:
        tasks = "any" if w.tasks is None else str(len(w.tasks))
        table.add_row(w.id, w.status, w.host, str(w.pid), ",".join(w.queues), tasks,
                      f"{w.running}/{w.concurrency}", render.when(w.last_seen_at),
                      render.when(w.started_at))
    console().print(table)


@queues_cli.command("list")
@handled
def queues_list(tenant: Tenant = "default", json_out: JsonOut = False,
                database_url: DatabaseUrl = None) -> None:
    """The tenant's queues: waiting (due now), scheduled, retrying, running, dead, the age
    of the oldest due job, live workers serving it, paused or not."""
    from rich import box
    from rich.table import Table

    from hora import wire

    with open_app(database_url, read_only=True, tenant_id=tenant) as app:
        queues = app.queues()
    if json_out:
        print_json({"items": [wire.queue_dict(q) for q in queues]})
        return
    if not queues:
        say("no queues")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("queue", "due", "scheduled", "retrying", "running", "dead", "oldest due",
                   "workers", "paused"):
        table.add_column(header, overflow="fold")
    for q in queues:
        age = "-" if q.oldest_due_age is None else f"{q.oldest_due_age:.0f}s"
        paused = "no" if not q.paused else f"yes{f' ({q.reason})' if q.reason else ''}"
        table.add_row(q.name, str(q.due), str(q.scheduled), str(q.retrying), str(q.running),
                      str(q.dead), age, str(q.workers), paused)
    console().print(table)


@queues_cli.command("pause")
@handled
def queues_pause(
    name: Annotated[str, typer.Argument(help="Queue name.")],
    reason: Annotated[str | None, typer.Option(help="Why, shown with the queue.")] = None,
    tenant: Tenant = "default",
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Stop claiming the tenant's jobs on queue NAME (running jobs finish) until resumed."""
    from hora import wire

    with open_app(database_url, tenant_id=tenant) as app:
        state = app.pause_queue(name, reason=reason)
    if json_out:
        print_json(wire.queue_state_dict(state))
    else:
        say(f"paused queue {state.name} of tenant {state.tenant_id}")


@queues_cli.command("resume")
@handled
def queues_resume(
    name: Annotated[str, typer.Argument(help="Queue name.")],
    tenant: Tenant = "default",
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Claim the tenant's jobs on queue NAME again."""
    from hora import wire

    with open_app(database_url, tenant_id=tenant) as app:
        state = app.resume_queue(name)
    if json_out:
        print_json(wire.queue_state_dict(state))
    else:
        say(f"resumed queue {state.name} of tenant {state.tenant_id}")
