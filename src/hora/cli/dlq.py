"""``hora dlq``: the dead-letter queue: list, show, replay, discard (one by one or ``--all``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

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
    print_json,
    say,
    show_job,
)
from hora.errors import NotFound, TransitionConflict
from hora.states import JobState

if TYPE_CHECKING:
    from hora.app import Hora

T = TypeVar("T")

BULK_CHUNK = 500
DLQ_STATES = (JobState.DEAD, JobState.REPLAYED, JobState.DISCARDED)

dlq_cli = group("The dead-letter queue: list, show, replay, discard.")


@dlq_cli.command("list")
@handled
def dlq_list(task: TaskFilter = None, queue: QueueFilter = None, limit: Limit = 50,
             cursor: Cursor = None, json_out: JsonOut = False,
             database_url: DatabaseUrl = None) -> None:
    """Dead jobs, newest first, with their last error."""
    from hora import render, wire

    with open_app(database_url, read_only=True) as app:
        page = app.dead_jobs(task=task, queue=queue, limit=limit, cursor=cursor)
    if json_out:
        print_json(wire.page_dict(page))
        return
    if page.items:
        c = console()
        c.print(render.jobs_table(page.items, width=c.width, errors=True))
    render.print_page_footer(console(), page, "dead jobs")


@dlq_cli.command("show")
@handled
def dlq_show(job_id: Annotated[str, typer.Argument(help="Job id.")], json_out: JsonOut = False,
             database_url: DatabaseUrl = None) -> None:
    """One dead (or replayed, discarded) job with its errors and history."""
    with open_app(database_url, read_only=True) as app:
        job = app.get_job(job_id)
    if job.state not in DLQ_STATES:
        raise NotFound(f"job {job_id} is {job.state}, not in the dead-letter queue; "
                       f"see hora jobs show {job_id}")
    show_job(job, json_out)


def dead_ids(app: Hora, task: str | None, queue: str | None) -> list[str]:
    """Every dead job's id, collected page by page before anything changes."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = app.dead_jobs(task=task, queue=queue, limit=1000, cursor=cursor)
        ids.extend(j.id for j in page.items)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def in_chunks(ids: list[str], action: Callable[[list[str]], list[T]]) -> tuple[list[T], int]:
    """Apply ``action`` chunk by chunk; a chunk with a job that left the DLQ meanwhile is
    redone one job at a time, skipping those. Returns (results, skipped)."""
    done: list[T] = []
    skipped = 0
    for i in range(0, len(ids), BULK_CHUNK):
        chunk = ids[i:i + BULK_CHUNK]
        try:
            done.extend(action(chunk))
        except (TransitionConflict, NotFound):
            for job_id in chunk:
                try:
                    done.extend(action([job_id]))
                except (TransitionConflict, NotFound):
                    skipped += 1
    return done, skipped


def select_ids(app: Hora, ids: list[str] | None, all_: bool, task: str | None,
               queue: str | None) -> list[str]:
    if all_ and ids:
        raise BadInput("give job ids or --all, not both")
    if not all_ and not ids:
        raise BadInput("give one or more job ids, or --all")
    if not all_ and (task or queue):
        raise BadInput("--task and --queue select jobs only with --all")
    return dead_ids(app, task, queue) if all_ else list(ids or ())


JobIds = Annotated[list[str] | None, typer.Argument(help="Dead job ids.", show_default=False)]
AllDead = Annotated[bool, typer.Option("--all", help="Every dead job (narrow with --task).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before acting on --all.")]


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def confirm_all(action: str, count: int, yes: bool) -> None:
    """``--all`` acts on every dead job: ask first (abort: exit 1), unless ``--yes``. With
    no terminal to ask on, refuse (exit 2) rather than act unasked."""
    if yes or count == 0:
        return
    if not stdin_is_terminal():
        raise BadInput(f"{action} --all would act on {count} dead job(s); add --yes to "
                       "confirm (stdin is not a terminal, so hora cannot ask)")
    if not typer.confirm(f"{action} {count} dead job(s)?", default=False):
        typer.echo("aborted", err=True)
        raise typer.Exit(1)


def act_on_dead(database_url: str | None, job_ids: list[str] | None, all_: bool,
                task: str | None, queue: str | None, yes: bool, action: str,
                act: Callable[[Hora, list[str]], list[T]]) -> tuple[list[T], int]:
    """The selection replay and discard share: the ids given, or every dead job matching
    the filters (confirmed first, acted on in chunks; jobs no longer dead are skipped)."""
    with open_app(database_url) as app:
        ids = select_ids(app, job_ids, all_, task, queue)
        if not all_:
            return act(app, ids), 0
        confirm_all(action, len(ids), yes)
        return in_chunks(ids, lambda chunk: act(app, chunk))


@dlq_cli.command("replay")
@handled
def dlq_replay(job_ids: JobIds = None, all_: AllDead = False, task: TaskFilter = None,
               queue: QueueFilter = None, yes: Yes = False, json_out: JsonOut = False,
               database_url: DatabaseUrl = None) -> None:
    """Give dead jobs a new run: one new job each, linked to the dead one.

    With --all it asks first; --yes skips the question (required without a terminal)."""
    jobs, skipped = act_on_dead(database_url, job_ids, all_, task, queue, yes, "replay",
                                lambda app, ids: app.replay(ids))
    if json_out:
        print_json({"replayed": len(jobs), "skipped": skipped,
                    "ids": [j.replay_of for j in jobs], "new_ids": [j.id for j in jobs]})
        return
    if len(jobs) <= 20:
        for j in jobs:
            say(f"{j.replay_of} -> {j.id}")
    say(f"replayed {len(jobs)} job(s)" + (f", skipped {skipped} no longer dead" if skipped
                                          else ""))


@dlq_cli.command("discard")
@handled
def dlq_discard(job_ids: JobIds = None, all_: AllDead = False, task: TaskFilter = None,
                queue: QueueFilter = None, yes: Yes = False, json_out: JsonOut = False,
                database_url: DatabaseUrl = None) -> None:
    """Take dead jobs out of the DLQ for good (their history stays).

    With --all it asks first; --yes skips the question (required without a terminal)."""
    discarded, skipped = act_on_dead(database_url, job_ids, all_, task, queue, yes,
                                     "discard", lambda app, ids: app.discard(ids))
    if json_out:
        print_json({"discarded": len(discarded), "skipped": skipped, "ids": discarded})
        return
    say(f"discarded {len(discarded)} job(s)" + (f", skipped {skipped} no longer dead"
                                                if skipped else ""))
