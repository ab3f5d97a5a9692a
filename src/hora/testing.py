"""Helpers for testing code that uses hora, shipped for users as httpx ships MockTransport.

    clock = FakeClock()
    app = Hora("sqlite:///" + str(tmp_path / "t.db"), clock=clock)
    my_task.enqueue(user_id="u1", delay=timedelta(days=3))
    run_until_idle(app)          # runs every job, skipping the fake clock ahead as needed
    assert app.list_jobs(state="succeeded").items
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from hora.app import Hora

__all__ = ["arun_until_idle", "await_condition", "run_until_idle", "wait_for_condition"]


async def arun_until_idle(app: Hora, *, until: datetime | None = None,
                          **worker_options: Any) -> dict[str, int]:
    """Run a worker until nothing is due, held or running; returns its counters.

    With a ``FakeClock`` the clock jumps to each next due job, so retries and delays of days
    run in milliseconds. With the system clock it stops once nothing is due now.
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
