"""Helpers for testing code that uses hora, shipped for users as httpx ships MockTransport.

    clock = FakeClock()
    app = Hora("sqlite:///" + str(tmp_path / "t.db"), clock=clock)
    my_task.enqueue(user_id="u1", delay=timedelta(days=3))
    run_until_idle(app)          # runs every job, skipping the fake clock ahead as needed
    assert app.list_jobs(state="succeeded").items
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hora.app import Hora

__all__ = ["ServeProcess", "arun_until_idle", "await_condition", "run_until_idle",
           "serve_process", "wait_for_condition"]


async def arun_until_idle(app: Hora, *, until: datetime | None = None,
                          **worker_options: Any) -> dict[str, int]:
    """Run a worker until nothing is due, held or running; returns its counters.

    With a clock that can skip (``FakeClock``, or any ``hora.clock.SkippingClock``) the clock
    jumps to each next due job, so retries and delays of days run in milliseconds. With the
    system clock it stops once nothing is due now.
    """
    worker = app.worker(**worker_options)
    await worker.run(until_idle=True, until=until)
    return dict(worker.stats)


def run_until_idle(app: Hora, *, until: datetime | None = None,
                   **worker_options: Any) -> dict[str, int]:
    """``arun_until_idle`` for sync tests; ``until`` bounds a fake clock's skipping (needed
    when recurring schedules never run out)."""
    return asyncio.run(arun_until_idle(app, until=until, **worker_options))


async def await_condition(
    predicate: Callable[[], bool | Awaitable[bool]], *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    interval: float = 0.01, message: str = "condition",
) -> None:
    """Poll ``predicate`` until true; raise TimeoutError after ``timeout`` wall seconds.

    For waiting on real concurrency (another task, thread or process) without a bare sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout}s")
        await asyncio.sleep(interval)


def wait_for_condition(predicate: Callable[[], bool], *, timeout: float = 10.0,
                       interval: float = 0.05, message: str = "condition") -> None:
    """``await_condition`` for sync code (e.g. polling a database another process writes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout}s")
        time.sleep(interval)


# -- a real ``hora serve`` for integration tests and benchmarks ---------------------------------


@dataclass
class ServeProcess:
    """A ``hora serve`` subprocess: its URL (empty without the api role), and its output."""

    url: str
    admin_key: str
    proc: subprocess.Popen[str]
    database_url: str
    log: list[str] = field(default_factory=list)

    def stop(self) -> int:
        """SIGTERM, then the exit code (killed after 30 s if it does not stop)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode


def serve_process(database_url: str, cwd: str | os.PathLike[str], *, admin_key: str,
                  args: Sequence[str] = (), extra_env: Mapping[str, str] | None = None,
                  startup_timeout: float = 60.0) -> ServeProcess:
    """Start ``hora serve --port 0`` (the console script beside this Python) and return once
    it answers: the bound port is read from its "serving on" line (or, without the api
    role, once it announces its roles). Loopback HTTP targets are allowed."""
    hora = str(Path(sys.executable).with_name("hora"))
    env = {**os.environ, "HORA_ADMIN_KEY": admin_key, "HORA_HTTP_ALLOW": "127.0.0.1",
           "HORA_LOG_LEVEL": "WARNING", **(extra_env or {})}
    env.pop("HORA_DATABASE_URL", None)
    proc = subprocess.Popen([hora, "serve", "--port", "0", "--database-url", database_url,
                             "--grace-period", "5", *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def pump(stream: Any) -> None:
        for line in stream:
            log.append(line)
            lines.put(line)

    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=pump, args=(stream,), daemon=True).start()
    deadline = time.monotonic() + startup_timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            ServeProcess("", admin_key, proc, database_url, log).stop()
            raise RuntimeError("hora serve did not start:\n" + "".join(log))
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if "hora is serving on http://" in line:
            url = line.split("serving on ", 1)[1].split()[0]
            return ServeProcess(url, admin_key, proc, database_url, log)
        if "hora is running (roles:" in line:  # no api role: nothing to connect to
            return ServeProcess("", admin_key, proc, database_url, log)
