"""The commands that run hora's processes: ``hora serve``, ``hora worker``, ``hora migrate``.

``serve`` and ``worker`` import the user's app (``--app module:attr``); ``serve`` also
imports the API server and uvicorn, which only these commands pay for.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from hora.cli._common import (
    BadInput,
    DatabaseUrl,
    JsonOut,
    LogFormat,
    LogLevel,
    check_database,
    handled,
    open_app,
    print_json,
    say,
)
from hora.errors import HoraError

if TYPE_CHECKING:
    from hora.app import Hora


def setup_logging(log_level: str, log_format: str) -> None:
    import logging

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
    from hora.app import Hora

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
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise BadInput(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Hora):
        raise BadInput(f"{ref} is a {type(obj).__name__}, not a hora.Hora app")
    return obj


def check_port(host: str, port: int) -> None:
    """Fail on a taken port before the store is opened (and created, and an admin key
    printed): bind and release it the way the server will (``hora.serve._listen``)."""
    import socket

    if port == 0:
        return
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise BadInput(f"cannot listen on {host}:{port}: {e.strerror}") from None
    finally:
        sock.close()


def check_app_database(app: Hora) -> None:
    """The app's database passes :func:`check_database` before a process starts on it."""
    from hora.app import database_url_from_env

    check_database(app.database_url or database_url_from_env())


# -- hora serve -------------------------------------------------------------------------------

@handled
def serve(
    host: Annotated[str, typer.Option(envvar="HORA_HOST", help="Address to listen on.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="HORA_PORT", help="Port (0: any free one).")
                    ] = 8000,
    role: Annotated[str, typer.Option(
        "--role", envvar="HORA_ROLE",
        help="Comma-separated roles of this process: api, scheduler, worker.")
    ] = "api,scheduler,worker",
    app_ref: Annotated[str | None, typer.Option(
        "--app", envvar="HORA_APP",
        help="Your Hora app as module:attr, so this process's worker runs your Python tasks "
             "(HTTP targets need none).")] = None,
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", envvar="HORA_QUEUES", help="Queue the worker takes (repeatable).")
    ] = None,
    concurrency: Annotated[int, typer.Option(envvar="HORA_CONCURRENCY",
                                             help="Jobs in flight.")] = 100,
    grace_period: Annotated[float, typer.Option(
        envvar="HORA_GRACE_PERIOD", help="Seconds requests and jobs get at shutdown.")] = 30.0,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Add the demo tasks and a schedule that greets every 10 seconds.")
    ] = False,
    retention: Annotated[str | None, typer.Option(
        "--retention", envvar="HORA_RETENTION",
        help="Retention ages over the defaults, e.g. jobs=14d,dead=30d,ticks=14d,"
             "workflows=30d,idempotency=1d (off: keep forever); pruned by the scheduler "
             "role.")] = None,
    prune: Annotated[bool, typer.Option(
        "--prune/--no-prune", help="Prune old finished records in the scheduler role.")
    ] = True,
    database_url: DatabaseUrl = None,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "text",
) -> None:
    """Serve the HTTP API and run the scheduler and a worker (all three by default).

    On a store without API keys the first start prints a new operator key, once; set
    HORA_ADMIN_KEY to choose it instead.
    """
    import asyncio

    from hora.app import Hora
    from hora.serve import ServeOptions, parse_roles, prepare
    from hora.serve import serve as run

    setup_logging(log_level, log_format)
    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port} must be between 0 and 65535")
    roles = parse_roles(role)
    from hora.retention import parse_policy

    policy = parse_policy(retention or "")
    if "api" in roles:
        check_port(host, port)
    app = load_app(app_ref) if app_ref else Hora()
    if database_url:
        app.use_database(database_url)
    check_app_database(app)
    options = ServeOptions(host=host, port=port, roles=roles,
                           queues=tuple(queue or ("default",)), concurrency=concurrency,
                           grace_period=grace_period,
                           admin_key=os.environ.get("HORA_ADMIN_KEY") or None, demo=demo,
                           log_level=log_level.lower(), retention=policy, prune=prune)

    def announce(line: str) -> None:
        typer.echo(line)

    def ready(bound: int) -> None:
        roles = ",".join(sorted(options.roles))
        if "api" in options.roles:
            typer.echo(f"hora is serving on http://{host}:{bound} (roles: {roles}); "
                       "OpenAPI at /docs", err=True)
        else:
            typer.echo(f"hora is running (roles: {roles})", err=True)
        sys.stdout.flush()

    options.on_ready = ready
    try:
        targets = prepare(app, options, announce)
        sys.stdout.flush()
        asyncio.run(run(app, options, targets))
    finally:
        app.close()


# -- hora worker ------------------------------------------------------------------------------


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
    json_out: Annotated[bool, typer.Option(
        "--json", help="On exit, print what the worker did as JSON ({\"worker\": id, "
                       "\"stats\": {\"started\": n, \"succeeded\": n, ...}}).")] = False,
    metrics_host: Annotated[str, typer.Option(
        envvar="HORA_METRICS_HOST", help="Address the metrics port listens on.")
    ] = "127.0.0.1",
) -> None:
    """Run a worker for the tasks of --app until SIGTERM/SIGINT (or idle, with --until-idle)."""
    import asyncio
    import logging

    setup_logging(log_level, log_format)
    if metrics_port is not None:
        serve_metrics(metrics_host, metrics_port)
    app = load_app(app_ref)
    if database_url:
        app.use_database(database_url)
    check_app_database(app)
    given = {"queues": queue or None, "concurrency": concurrency, "threads": threads,
             "lease": lease, "poll_interval": poll_interval, "grace_period": grace_period}
    w = app.worker(**{k: v for k, v in given.items() if v is not None})
    if not app.tasks:
        logging.getLogger("hora.cli").warning("%s registers no tasks: nothing to run", app_ref)
    try:
        asyncio.run(w.run(handle_signals=True, until_idle=until_idle))
    finally:
        app.close()
    if json_out:
        print_json({"worker": w.id, "stats": dict(w.stats)})


# -- hora migrate -----------------------------------------------------------------------------


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
