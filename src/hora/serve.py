"""``hora serve``: the API, the scheduler and a worker in one asyncio loop, or any subset.

One process by default (zero set-up on SQLite); ``roles`` splits them across processes and
machines on PostgreSQL: API nodes behind a balancer, worker nodes scaled by load, and any
number of schedulers (their passes are idempotent and skip each other's locked schedules).
Shutdown on SIGTERM/SIGINT: stop accepting requests, let in-flight HTTP requests and jobs
finish within the grace period, release what is left, close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hora.app import Hora
from hora.errors import ConfigError, Conflict

if TYPE_CHECKING:
    from hora.http_target import HttpTargets
    from hora.models import RetentionPolicy
    from hora.retention import Retention

log = logging.getLogger("hora.serve")

ROLES = ("api", "scheduler", "worker")


def parse_roles(text: str) -> frozenset[str]:
    roles = frozenset(r.strip() for r in text.split(",") if r.strip())
    unknown = roles - set(ROLES)
    if unknown or not roles:
        raise ConfigError(f"--role {text!r}: give a comma-separated subset of "
                          f"{', '.join(ROLES)}")
    return roles


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    roles: frozenset[str] = frozenset(ROLES)
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 100
    grace_period: float = 30.0
    admin_key: str | None = None
    demo: bool = False
    log_level: str = "info"
    worker_options: dict[str, Any] = field(default_factory=dict)
    #: The global retention policy, applied by the scheduler role (None: ``HORA_RETENTION``
    #: over the documented defaults); ``prune=False`` turns pruning off in this process.
    retention: RetentionPolicy | None = None
    prune: bool = True
    #: Called once the API listens, with the bound port (tests bind port 0); without the
    #: api role, with 0 once the process handles its signals.
    on_ready: Callable[[int], None] | None = None


def prepare(app: Hora, options: ServeOptions, say: Callable[[str], None],
            ) -> HttpTargets | None:
    """Everything before the loop: migrations, HTTP targets, the first operator key, the demo.
    Returns the HTTP targets' handle (its client is closed when the loop ends)."""
    from hora.api.auth import bootstrap_admin
    from hora.http_target import register_http_task

    app.migrate()
    targets = None
    if "hora.http" not in app.tasks:
        targets = register_http_task(app)
    key = bootstrap_admin(app.store, app.clock.now(), preset=options.admin_key)
    if key is not None:
        say("created the first API key, an operator key (shown once; keep it somewhere safe):")
        say(f"  {key}")
        say("  use it as: Authorization: Bearer <key>  (or HORA_API_KEY for hora.Client)")
    if options.demo:
        install_demo(app, say)
    return targets


def install_demo(app: Hora, say: Callable[[str], None]) -> None:
    """Demo tasks in this process and a schedule that runs one every 10 seconds."""
    from hora import demo as demo_tasks

    demo_tasks.register(app)
    try:
        every = {"every": "PT10S", "start": app.clock.now().isoformat()}
        s = app.create_schedule("demo.greet", {"name": "hora"}, trigger=every,
                                name="demo-greeting")
        say(f"demo: schedule {s.name} ({s.id}) runs demo.greet every 10 s")
    except Conflict:
        say("demo: schedule demo-greeting exists already")


async def serve(app: Hora, options: ServeOptions,
                targets: HttpTargets | None = None) -> None:
    """Run the configured roles until a signal ends them."""
    from hora.scheduler import Scheduler

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    server: Any = None
    worker = None
    scheduler = None
    tasks: list[asyncio.Task[Any]] = []

    if "api" in options.roles:
        sock = _listen(options)  # before anything starts: a taken port fails the start
        server = _uvicorn_server(app, options)
        tasks.append(asyncio.create_task(_serve_api(server, sock, options), name="hora-api"))
    if "worker" not in options.roles:
        # The app's tasks and workflows (``--app``) are registered at start-up, so the API
        # checks names and payloads against them; a worker role does it as it starts.
        await asyncio.to_thread(app.registry.register)
    if "worker" not in options.roles and app.schedules.declared:
        # Schedules declared in code (``@app.schedule``) are ensured at start-up; a worker
        # role does it itself as it starts.
        report = await asyncio.to_thread(app.schedules.apply_declared)
        log.info("%s", report)
    retention = _retention(app, options)
    pruner: asyncio.Task[Any] | None = None
    if "worker" in options.roles:
        worker = app.worker(queues=options.queues, concurrency=options.concurrency,
                            grace_period=options.grace_period,
                            schedules="scheduler" in options.roles, **options.worker_options)
        tasks.append(asyncio.create_task(worker.run(), name="hora-worker"))
        if retention is not None:  # the worker fires the schedules; retention runs beside it
            pruner = asyncio.create_task(retention.run(), name="hora-retention")
            tasks.append(pruner)
    elif "scheduler" in options.roles:
        scheduler = Scheduler(app, retention=retention)
        tasks.append(asyncio.create_task(scheduler.run(), name="hora-scheduler"))

    def begin_stop(signame: str) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signame)
            os._exit(1)
        log.info("%s: shutting down (grace period %.0fs)", signame, options.grace_period)
        stop.set()

    with _signals(loop, begin_stop):
        if "api" not in options.roles and options.on_ready is not None:
            options.on_ready(0)  # signals are ours from here on: safe to be told to stop
        done_task = asyncio.create_task(stop.wait())
        finished, _ = await asyncio.wait([*tasks, done_task],
                                         return_when=asyncio.FIRST_COMPLETED)
        failure: BaseException | None = None
        for t in finished:
            if t is not done_task and t.exception() is not None:
                failure = failure or t.exception()
                log.error("%s failed; shutting down", t.get_name(), exc_info=t.exception())
        if server is not None:
            server.should_exit = True
        if worker is not None:
            worker.stop()
        if scheduler is not None:
            scheduler.stop()
        if retention is not None:
            retention.stop()  # between two batches
        if pruner is not None:
            pruner.cancel()  # not its sleep
        done_task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if targets is not None:
            await targets.aclose()
    if failure is not None:
        raise failure


def _retention(app: Hora, options: ServeOptions) -> Retention | None:
    """The scheduler role's pruner (None without that role or with pruning off)."""
    if "scheduler" not in options.roles or not options.prune:
        return None
    from hora.retention import Retention, policy_from_env

    policy = options.retention or policy_from_env(os.environ)
    return Retention(app.store, app.clock, policy=policy)


def _uvicorn_server(app: Hora, options: ServeOptions) -> Any:
    import uvicorn

    from hora.api import create_api

    class Server(uvicorn.Server):
        listening = asyncio.Event()

        # hora owns the signals (it also stops the worker); uvicorn's own capture would
        # re-raise them after serving, killing the process before jobs are released.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            self.listening.set()

    config = uvicorn.Config(create_api(app), host=options.host, port=options.port,
                            log_level=options.log_level, lifespan="off",
                            # uvicorn's records go to hora's handler (text or JSON); request
                            # logs are left to the metrics (hora_http_requests).
                            log_config=None, access_log=False,
                            timeout_graceful_shutdown=int(options.grace_period),
                            server_header=False)
    return Server(config)


def _listen(options: ServeOptions) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it every keep-alive answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET6 if ":" in options.host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((options.host, options.port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {options.host}:{options.port}: {e.strerror}"
                          ) from None
    return sock


async def _serve_api(server: Any, sock: socket.socket, options: ServeOptions) -> None:
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    if server.started:
        log.info("API listening on http://%s:%d", options.host, port)
        if options.on_ready is not None:
            options.on_ready(port)
    await task


@contextlib.contextmanager
def _signals(loop: asyncio.AbstractEventLoop,
             handler: Callable[[str], None]) -> Iterator[None]:
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, handler, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
