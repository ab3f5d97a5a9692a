"""The ``hora`` command: run workers, migrate, enqueue, inspect and steer jobs and the DLQ.

Every command takes ``--database-url`` (default: ``$HORA_DATABASE_URL``, else
``sqlite:///hora.db``). People get rich tables; ``--json`` prints one JSON document on stdout
for scripts. Any hora error or bad input is one line ``error: ...`` on stderr and exit
code 2, like a usage error, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from hora import render
from hora.app import Hora, check_public_task, database_url_from_env
from hora.errors import HoraError, NotFound, TransitionConflict
from hora.limits import MAX_JSON_DEPTH, check_instant
from hora.models import Job
from hora.states import JobState

P = ParamSpec("P")
T = TypeVar("T")

DEMO_DATABASE_URL = "sqlite:///hora-demo.db"
BULK_CHUNK = 500
PIPED_WIDTH = 160
DLQ_STATES = (JobState.DEAD, JobState.REPLAYED, JobState.DISCARDED)

cli = typer.Typer(name="hora", help="Durable jobs, retries and dead letters on SQLite or "
                  "PostgreSQL.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
jobs_cli = typer.Typer(help="List, show and cancel jobs.", no_args_is_help=True,
                       rich_markup_mode=None)
dlq_cli = typer.Typer(help="The dead-letter queue: list, show, replay, discard.",
                      no_args_is_help=True, rich_markup_mode=None)
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(dlq_cli, name="dlq")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", show_default=False,
    help="sqlite:///path.db or postgresql://... [default: $HORA_DATABASE_URL, else "
         "sqlite:///hora.db]")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]
Limit = Annotated[int, typer.Option("--limit", help="Page size (1-1000).")]
Cursor = Annotated[str | None, typer.Option("--cursor", help="next_cursor of the previous page.")]
TaskFilter = Annotated[str | None, typer.Option("--task", help="Only jobs of this task.")]
QueueFilter = Annotated[str | None, typer.Option("--queue", help="Only jobs in this queue.")]


# -- errors and input -------------------------------------------------------------------------


class BadInput(Exception):
    """Input the CLI refuses before it touches the database."""


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(2)


def handled(fn: Callable[P, None]) -> Callable[P, None]:
    """Turn hora errors and bad input into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def command(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except (HoraError, BadInput, ValueError) as e:
            fail(str(e) or type(e).__name__)

    return command


def parse_instant(value: str, option: str) -> datetime:
    """An ISO-8601 instant with an offset (``Z`` or ``+01:00``); naive times are refused."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"{option} {value!r} is not an ISO-8601 datetime "
                       "(e.g. 2030-01-31T09:00:00+01:00)") from None
    if dt.tzinfo is None:
        raise BadInput(f"{option} {value!r} has no time zone offset; add one, "
                       "e.g. 2030-01-31T09:00:00Z or 2030-01-31T09:00:00+01:00")
    return check_instant(dt, option)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")


def parse_duration(value: str) -> float:
    """Seconds from ``90``, ``1.5``, ``90s``, ``5m``, ``2h``, ``1d`` or ``1h30m``."""
    text = value.strip().lower()
    with contextlib.suppress(ValueError):
        seconds = float(text)
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        raise BadInput(f"duration {value!r} must be a finite number of seconds >= 0")
    if not _DURATION.fullmatch(text):
        raise BadInput(f"duration {value!r} is not seconds or a form like 90s, 5m, 2h, 1d")
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", text))


def parse_payload(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"--payload is not valid JSON: {e}") from None
    except RecursionError:
        raise BadInput(f"--payload: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(payload, dict):
        raise BadInput("--payload must be a JSON object, e.g. '{\"user_id\": \"u1\"}'")
    return payload


@contextlib.contextmanager
def open_app(database_url: str | None, **options: Any) -> Iterator[Hora]:
    app = Hora(database_url or database_url_from_env(), **options)
    try:
        yield app
    finally:
        app.close()


def console() -> Console:
    """Rich output on stdout; piped output is not squeezed into 80 columns."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def print_json(value: Any) -> None:
    typer.echo(render.dumps(value))


def say(message: str, style: str = "") -> None:
    console().print(Text(message, style=style), soft_wrap=True)


# -- hora worker ------------------------------------------------------------------------------


LogLevel = Annotated[str, typer.Option(envvar="HORA_LOG_LEVEL",
                                       help="DEBUG, INFO, WARNING or ERROR.")]
LogFormat = Annotated[str, typer.Option(
    envvar="HORA_LOG_FORMAT",
    help="text, or json: one object per line with the job id, task, correlation id and "
         "trace ids of the job being run.")]


def setup_logging(log_level: str, log_format: str) -> None:
    from hora.observability import configure_logging, log_format_from_env

    level = logging.getLevelNamesMapping().get(log_level.upper())
    if level is None:
        raise BadInput(f"unknown --log-level {log_level!r}; use DEBUG, INFO, WARNING or ERROR")
    try:
        json_format = log_format_from_env(log_format)
    except HoraError:
        raise BadInput(f"unknown --log-format {log_format!r}; use text or json") from None
    configure_logging(level, json_format=json_format)


def serve_metrics(host: str, port: int) -> None:
    """Prometheus metrics on their own port, for processes without the API."""
    from prometheus_client import start_http_server

    if not 0 < port <= 65535:
        raise BadInput(f"--metrics-port {port} must be between 1 and 65535")
    try:
        start_http_server(port, addr=host)
    except OSError as e:
        raise BadInput(f"cannot serve metrics on {host}:{port}: {e.strerror}") from None


def load_app(ref: str) -> Hora:
    """Import ``module:attr`` (the current directory first on sys.path, as uvicorn does)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise BadInput(f"--app {ref!r} must look like module:attr, e.g. myproject.jobs:app")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise BadInput(f"cannot import module {module_name!r}: {e}") from None
        raise
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise BadInput(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Hora):
        raise BadInput(f"{ref} is a {type(obj).__name__}, not a hora.Hora app")
    return obj


@cli.command()
@handled
def worker(
    app_ref: Annotated[str, typer.Option("--app", envvar="HORA_APP",
                                         help="Your Hora app as module:attr.")],
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", metavar="QUEUE", envvar="HORA_QUEUES",
        help="Queue to work (repeat for several; the env var takes a space-separated list) "
             "[default: default].")] = None,
    concurrency: Annotated[int | None, typer.Option(
        envvar="HORA_CONCURRENCY", help="Jobs in flight [default: 100].")] = None,
    threads: Annotated[int | None, typer.Option(
        envvar="HORA_THREADS", help="Threads for sync handlers [default: 16].")] = None,
    lease: Annotated[float | None, typer.Option(
        envvar="HORA_LEASE", help="Lease seconds [default: 30].")] = None,
    poll_interval: Annotated[float | None, typer.Option(
        envvar="HORA_POLL_INTERVAL",
        help="Seconds between polls when idle [default: 0.5].")] = None,
    grace_period: Annotated[float | None, typer.Option(
        envvar="HORA_GRACE_PERIOD",
        help="Seconds in-flight jobs get at shutdown [default: 30].")] = None,
    until_idle: Annotated[bool, typer.Option(
        "--until-idle", help="Exit once nothing is due, running or held.")] = False,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="Override the app's database (else the app's own, or "
        "$HORA_DATABASE_URL, or sqlite:///hora.db).")] = None,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "text",
    metrics_port: Annotated[int | None, typer.Option(
        envvar="HORA_METRICS_PORT",
        help="Serve Prometheus metrics on this port (GET /metrics).")] = None,
    metrics_host: Annotated[str, typer.Option(
        envvar="HORA_METRICS_HOST", help="Address the metrics port listens on.")
    ] = "127.0.0.1",
) -> None:
    """Run a worker for the tasks of --app until SIGTERM/SIGINT (or idle, with --until-idle)."""
    setup_logging(log_level, log_format)
    if metrics_port is not None:
        serve_metrics(metrics_host, metrics_port)
    app = load_app(app_ref)
    if database_url:
        app.use_database(database_url)
    given = {"queues": queue or None, "concurrency": concurrency, "threads": threads,
             "lease": lease, "poll_interval": poll_interval, "grace_period": grace_period}
    w = app.worker(**{k: v for k, v in given.items() if v is not None})
    if not app.tasks:
        logging.getLogger("hora.cli").warning("%s registers no tasks: nothing to run", app_ref)
    try:
        asyncio.run(w.run(handle_signals=True, until_idle=until_idle))
    finally:
        app.close()


# -- hora migrate -----------------------------------------------------------------------------


@cli.command()
@handled
def migrate(database_url: DatabaseUrl = None, json_out: JsonOut = False) -> None:
    """Apply pending schema migrations."""
    with open_app(database_url, store_options={"migrate": False}) as app:
        applied = app.migrate()
    if json_out:
        print_json({"applied": applied})
    elif applied:
        say(f"applied migration(s): {', '.join(f'{v:04d}' for v in applied)}")
    else:
        say("database is up to date")


# -- hora enqueue -----------------------------------------------------------------------------


@cli.command()
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
        help="Queue [default: default; the CLI does not load your task's own default].")] = None,
    priority: Annotated[int | None, typer.Option(help="Lower runs first [default: 0].")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="Correlation id.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Attempts before the DLQ.")] = None,
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Enqueue one job of TASK by name (your code is not imported)."""
    check_public_task(task)
    data = parse_payload(payload)
    if at is not None and in_ is not None:
        raise BadInput("give either --at or --in, not both")
    options: dict[str, Any] = {
        "at": None if at is None else parse_instant(at, "--at"),
        "delay": None if in_ is None else parse_duration(in_),
        "idempotency_key": key, "queue": queue, "priority": priority,
        "correlation_id": correlation_id, "max_attempts": max_attempts,
    }
    with open_app(database_url) as app:
        job = app.enqueue(task, data, **{k: v for k, v in options.items() if v is not None})
    if json_out:
        print_json(render.job_dict(job))
    else:
        say(f"enqueued {job.id}: {job.task} in queue {job.queue}, "
            f"{job.state} for {render.when(job.due_at)}")


# -- hora jobs --------------------------------------------------------------------------------


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
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List jobs, newest first."""
    created_after = None if since is None else parse_instant(since, "--since")
    created_before = None if until is None else parse_instant(until, "--until")
    with open_app(database_url) as app:
        page = app.list_jobs(state=state or None, task=task, queue=queue,
                             correlation_id=correlation_id, created_after=created_after,
                             created_before=created_before, limit=limit, cursor=cursor)
    if json_out:
        print_json(render.page_dict(page))
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
    with open_app(database_url) as app:
        job = app.get_job(job_id)
    show_job(job, json_out)


def show_job(job: Job, json_out: bool) -> None:
    if json_out:
        print_json(render.job_dict(job, history=True))
    else:
        console().print(render.job_detail(job))


@jobs_cli.command("cancel")
@handled
def jobs_cancel(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    reason: Annotated[str, typer.Option(help="Why, kept on the job.")] = "cancelled on request",
    json_out: JsonOut = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Cancel a waiting job, or ask a running one to stop."""
    with open_app(database_url) as app:
        job = app.cancel_job(job_id, reason)
    if json_out:
        print_json(render.job_dict(job))
    elif job.state is JobState.RUNNING:
        say(f"job {job.id} is running: cancellation requested (its handler stops "
            "cooperatively)")
    else:
        say(f"cancelled job {job.id}")


# -- hora dlq ---------------------------------------------------------------------------------


@dlq_cli.command("list")
@handled
def dlq_list(task: TaskFilter = None, queue: QueueFilter = None, limit: Limit = 50,
             cursor: Cursor = None, json_out: JsonOut = False,
             database_url: DatabaseUrl = None) -> None:
    """Dead jobs, newest first, with their last error."""
    with open_app(database_url) as app:
        page = app.dead_jobs(task=task, queue=queue, limit=limit, cursor=cursor)
    if json_out:
        print_json(render.page_dict(page))
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
    with open_app(database_url) as app:
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


@dlq_cli.command("replay")
@handled
def dlq_replay(job_ids: JobIds = None, all_: AllDead = False, task: TaskFilter = None,
               queue: QueueFilter = None, json_out: JsonOut = False,
               database_url: DatabaseUrl = None) -> None:
    """Give dead jobs a new run: one new job each, linked to the dead one."""
    with open_app(database_url) as app:
        ids = select_ids(app, job_ids, all_, task, queue)
        if all_:
            jobs, skipped = in_chunks(ids, app.replay)
        else:
            jobs, skipped = app.replay(ids), 0
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
                queue: QueueFilter = None, json_out: JsonOut = False,
                database_url: DatabaseUrl = None) -> None:
    """Take dead jobs out of the DLQ for good (their history stays)."""
    with open_app(database_url) as app:
        ids = select_ids(app, job_ids, all_, task, queue)
        if all_:
            discarded, skipped = in_chunks(ids, app.discard)
        else:
            discarded, skipped = app.discard(ids), 0
    if json_out:
        print_json({"discarded": len(discarded), "skipped": skipped, "ids": discarded})
        return
    say(f"discarded {len(discarded)} job(s)" + (f", skipped {skipped} no longer dead"
                                                if skipped else ""))


# -- hora demo --------------------------------------------------------------------------------


@cli.command()
@handled
def demo(
    database_url: Annotated[str, typer.Option(
        "--database-url", help="Where the demo writes (it ignores $HORA_DATABASE_URL, so it "
        "never touches your real database).")] = DEMO_DATABASE_URL,
    jobs: Annotated[int, typer.Option(help="How many succeeding greet jobs.")] = 3,
) -> None:
    """Enqueue a few demo jobs, run a worker until idle, and show what happened."""
    from hora import demo as demo_tasks

    if not 0 <= jobs <= 100:
        raise BadInput("--jobs must be between 0 and 100")
    app = demo_tasks.create_app(database_url)
    try:
        run = demo_tasks.enqueue_demo_jobs(app, jobs)
        say(f"enqueued {len(run.job_ids)} jobs (correlation id {run.correlation_id}) in "
            f"{database_url}; running a worker until idle...")
        worker = app.worker(poll_interval=0.05, concurrency=8, threads=4)
        asyncio.run(worker.run(until_idle=True))
        page = app.list_jobs(correlation_id=run.correlation_id, limit=1000)
        dead = [j for j in page.items if j.state is JobState.DEAD]
    finally:
        app.close()
    c = console()
    c.print(render.jobs_table(sorted(page.items, key=lambda j: j.id), width=c.width,
                              title="jobs"))
    c.print(render.jobs_table(dead, width=c.width, title="dead-letter queue", errors=True))
    url = f"--database-url {database_url}"
    say("next, try:", style="bold")
    hints = [f"hora jobs list {url} --correlation-id {run.correlation_id}",
             f"hora dlq list {url}"]
    if dead:
        hints += [f"hora dlq show {dead[0].id} {url}", f"hora dlq replay {dead[0].id} {url}"]
    hints.append(f"hora worker --app hora.demo:app {url} --until-idle")
    for hint in hints:
        say(f"  {hint}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()


# Subcommands defined in their own modules register themselves on ``cli`` when imported.
from hora import cli_schedules as _cli_schedules  # noqa: E402,F401
from hora import cli_serve as _cli_serve  # noqa: E402,F401
from hora import cli_workflows as _cli_workflows  # noqa: E402,F401
