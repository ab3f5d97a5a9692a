"""``hora enqueue`` and ``hora jobs``: enqueue a job by name; list, show and cancel jobs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hora.cli._common import (
    BadInput,
    Cursor,
    DatabaseUrl,
    JsonOut,
    Limit,
    QueueFilter,
    TaskFilter,
    console,
    group,
    handled,
    open_app,
    parse_duration,
    parse_instant,
    parse_payload,
    print_json,
    say,
    show_job,
)

jobs_cli = group("List, show, cancel and reschedule jobs.")


@handled
def enqueue(
    task: Annotated[str, typer.Argument(help="Task name, as registered (e.g. billing.charge).")],
    payload: Annotated[str, typer.Option("--payload", "-p", help="JSON object.")] = "{}",
    at: Annotated[str | None, typer.Option(
        "--at", help="When, ISO-8601 with an offset (2030-01-31T09:00:00+01:00).")] = None,
    in_: Annotated[str | None, typer.Option(
        "--in", help="Delay: seconds or 90s, 5m, 2h, 1d.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Idempotency key.")] = None,
    queue: Annotated[str | None, typer.Option(
        help="Queue [default: the registered task's, else default].")] = None,
    priority: Annotated[int | None, typer.Option(
        help="Lower runs first [default: the registered task's, else 0].")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="Correlation id.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Attempts before the DLQ.")] = None,
    allow_unregistered: Annotated[bool, typer.Option(
        "--allow-unregistered",
        help="Enqueue TASK although no worker registered it (hora tasks list).")] = False,
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Enqueue one job of TASK by name (your code is not imported). A name no worker
    registered, or a payload that does not fit the task's parameters, is refused."""
    from hora import render, wire
    from hora.app import check_public_task

    check_public_task(task)
    data = parse_payload(payload)
    if at is not None and in_ is not None:
        raise BadInput("give either --at or --in, not both")
    options: dict[str, Any] = {
        "at": None if at is None else parse_instant(at, "--at"),
        "delay": None if in_ is None else parse_duration(in_),
        "idempotency_key": key, "queue": queue, "priority": priority,
        "correlation_id": correlation_id, "max_attempts": max_attempts,
        "allow_unregistered": allow_unregistered or None,
    }
    with open_app(database_url) as app:
        job = app.enqueue(task, data, **{k: v for k, v in options.items() if v is not None})
    if json_out:
        print_json(wire.job_dict(job))
    else:
        # A debounced or throttled enqueue says so (it is no error: exit 0).
        reason = f" ({job.state_reason})" if job.state_reason else ""
        say(f"enqueued {job.id}: {job.task} in queue {job.queue}, "
            f"{job.state} for {render.when(job.due_at)}{reason}")


@jobs_cli.command("list")
@handled
def jobs_list(
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", help="Only jobs in this state (repeat for several).")] = None,
    task: TaskFilter = None,
    queue: QueueFilter = None,
    correlation_id: Annotated[str | None, typer.Option(help="Only this correlation id.")] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after (ISO-8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Created before (ISO-8601).")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    include_internal: Annotated[bool, typer.Option(
        "--include-internal", help="Also hora's own jobs (hora.workflow:*: workflow runs and "
        "timers), hidden by default.")] = False,
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List jobs, newest first."""
    from hora import render, wire

    created_after = None if since is None else parse_instant(since, "--since")
    created_before = None if until is None else parse_instant(until, "--until")
    with open_app(database_url, read_only=True) as app:
        page = app.list_jobs(state=state or None, task=task, queue=queue,
                             correlation_id=correlation_id, created_after=created_after,
                             created_before=created_before, limit=limit, cursor=cursor,
                             include_internal=include_internal)
    if json_out:
        print_json(wire.page_dict(page))
        return
    if page.items:
        c = console()
        c.print(render.jobs_table(page.items, width=c.width))
    render.print_page_footer(console(), page, "jobs")


@jobs_cli.command("show")
@handled
def jobs_show(job_id: Annotated[str, typer.Argument(help="Job id.")], json_out: JsonOut = False,
              database_url: DatabaseUrl = None) -> None:
    """One job: its fields, attempts (errors, tracebacks) and event history."""
    with open_app(database_url, read_only=True) as app:
        job = app.get_job(job_id)
    show_job(job, json_out)


#: ``hora jobs wait`` / ``hora workflows wait`` exit codes: 0 succeeded (completed), 1 ended
#: otherwise (dead, cancelled, discarded, replayed; failed), 2 bad input or an unknown id,
#: 3 still not ended when ``--timeout`` ran out.
EXIT_ENDED_BADLY = 1
EXIT_WAIT_TIMEOUT = 3


@jobs_cli.command("wait")
@handled
def jobs_wait(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    timeout: Annotated[float, typer.Option(
        "--timeout", "-t", help="Seconds to wait at most (0: just look).")] = 30.0,
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Wait until a job's run is over, then show it. Exit 0 if it succeeded, 1 if it ended
    otherwise (dead, cancelled, discarded, replayed), 2 on bad input, 3 if it had not ended
    after --timeout seconds (the job as it is then is shown)."""
    from hora import wire
    from hora.states import JobState
    from hora.waiting import MAX_WAIT

    if not 0 <= timeout <= MAX_WAIT:
        raise BadInput(f"--timeout must be between 0 and {MAX_WAIT:g} seconds")
    with open_app(database_url, read_only=True) as app:
        job, done = app.poll_job(job_id, timeout)
    if json_out:
        print_json({**wire.job_dict(job, history=True), "done": done})
    else:
        show_job(job, False)
        if not done:
            say(f"job {job.id} is still {job.state} after {timeout:g}s", "yellow")
    if not done:
        raise typer.Exit(EXIT_WAIT_TIMEOUT)
    if job.state is not JobState.SUCCEEDED:
        raise typer.Exit(EXIT_ENDED_BADLY)


@jobs_cli.command("cancel")
@handled
def jobs_cancel(
    job_id: Annotated[str | None, typer.Argument(
        help="Job id (or give filters instead).")] = None,
    correlation_id: Annotated[str | None, typer.Option(
        help="Every waiting job with this correlation id.")] = None,
    task: Annotated[str | None, typer.Option(help="Every waiting job of this task.")] = None,
    queue: Annotated[str | None, typer.Option(help="Every waiting job in this queue.")] = None,
    schedule: Annotated[str | None, typer.Option(
        help="Every waiting job fired by this schedule (id).")] = None,
    created_before: Annotated[str | None, typer.Option(
        help="Every waiting job created before this instant (ISO-8601).")] = None,
    include_running: Annotated[bool, typer.Option(
        "--include-running", help="With filters: also ask matching running jobs to stop.",
    )] = False,
    all_: Annotated[bool, typer.Option(
        "--all", help="Without filters: every waiting job (asks first).")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask before --all without filters.")] = False,
    reason: Annotated[str, typer.Option(help="Why, kept on the job.")] = "cancelled on request",
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Cancel a waiting job, or ask a running one to stop; or, with filters instead of an
    id, every waiting job matching all of them (in batches of 500)."""
    from hora import wire
    from hora.states import JobState

    before = None if created_before is None else parse_instant(created_before,
                                                               "--created-before")
    bulk = all_ or any(v is not None for v in (correlation_id, task, queue, schedule, before))
    if job_id is not None and (bulk or include_running):
        raise BadInput("give a job id or filters (--correlation-id, --task, --queue, "
                       "--schedule, --created-before, --all), not both")
    if job_id is None and not bulk:
        raise BadInput("give a job id, or filters (--correlation-id, --task, --queue, "
                       "--schedule, --created-before), or --all")
    if job_id is None:
        filtered = any(v is not None for v in (correlation_id, task, queue, schedule, before))
        with open_app(database_url) as app:
            if not filtered:
                counts = app.count_jobs()
                _confirm_cancel_all(counts.get("scheduled", 0) + counts.get("retrying", 0),
                                    yes)
            n = app.cancel_jobs(correlation_id=correlation_id, task=task, queue=queue,
                                schedule_id=schedule, created_before=before,
                                include_running=include_running, all=all_, reason=reason)
        if json_out:
            print_json({"cancelled": n})
        else:
            say(f"cancelled {n} job{'' if n == 1 else 's'}")
        return
    with open_app(database_url) as app:
        job = app.cancel_job(job_id, reason)
    if json_out:
        print_json(wire.job_dict(job))
    elif job.state is JobState.RUNNING:
        say(f"job {job.id} is running: cancellation requested (its handler stops "
            "cooperatively)")
    else:
        say(f"cancelled job {job.id}")


def _confirm_cancel_all(waiting: int, yes: bool) -> None:
    """``--all`` without filters cancels every waiting job: ask first (abort: exit 1) unless
    ``--yes``; with no terminal to ask on, refuse (exit 2) rather than act unasked."""
    import sys

    if yes or waiting == 0:
        return
    if not sys.stdin.isatty():
        raise BadInput(f"cancel --all would cancel {waiting} waiting job(s); add --yes to "
                       "confirm (stdin is not a terminal, so hora cannot ask)")
    if not typer.confirm(f"cancel {waiting} waiting job(s)?", default=False):
        typer.echo("aborted", err=True)
        raise typer.Exit(1)


@jobs_cli.command("reschedule")
@handled
def jobs_reschedule(
    job_id: Annotated[str, typer.Argument(help="Job id (scheduled or retrying).")],
    at: Annotated[str | None, typer.Option(
        "--at", help="When, ISO-8601 with an offset (2030-01-31T09:00:00+01:00).")] = None,
    in_: Annotated[str | None, typer.Option(
        "--in", "--delay", help="Delay from now: seconds or 90s, 5m, 2h, 1d.")] = None,
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Move a waiting job to a new due time (--at or --in)."""
    from hora import render, wire

    if (at is None) == (in_ is None):
        raise BadInput("give either --at or --in")
    when = None if at is None else parse_instant(at, "--at")
    delay = None if in_ is None else parse_duration(in_)
    with open_app(database_url) as app:
        job = app.reschedule_job(job_id, at=when, delay=delay)
    if json_out:
        print_json(wire.job_dict(job))
    else:
        say(f"rescheduled job {job.id}: {job.state} for {render.when(job.due_at)}")


@jobs_cli.command("run-now")
@handled
def jobs_run_now(
    job_id: Annotated[str, typer.Argument(help="Job id (scheduled or retrying).")],
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Make a waiting job due now (a paused queue or a flow-control limit still hold it)."""
    from hora import wire

    with open_app(database_url) as app:
        job = app.run_job_now(job_id)
    if json_out:
        print_json(wire.job_dict(job))
    else:
        say(f"job {job.id} is due now")
