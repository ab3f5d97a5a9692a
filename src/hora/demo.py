"""A demo app for the quick start: ``hora demo``, or ``hora worker --app hora.demo:app``.

Four tasks show the life of a job: ``demo.greet`` succeeds, ``demo.flaky`` fails its first
attempt and succeeds on the retry, ``demo.always_fails`` runs out of attempts and lands in
the dead-letter queue, and ``demo.remind`` is enqueued a second ahead and starts on time.
Backoffs are a fraction of a second so the whole demo runs in about two seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hora.app import Hora
from hora.context import current_job
from hora.ids import new_id
from hora.retry import RetryPolicy

#: Short, fixed backoffs: a demo should show retries without making anybody wait.
QUICK_RETRY = RetryPolicy(max_attempts=3, backoff="fixed", base=0.2, jitter="none")
DEMO_DELAY = 1.0


def greet(name: str) -> str:
    return f"hello, {name}"


def flaky(order_id: str) -> str:
    """Fails its first attempt, as a flaky network call would; the retry succeeds."""
    job = current_job()
    if job.attempt == 1:
        raise ConnectionError(f"payment gateway timed out for order {order_id}")
    return f"order {order_id} charged on attempt {job.attempt}"


def always_fails(report: str) -> None:
    raise ValueError(f"report {report!r} has an invalid template")


async def remind(user: str) -> str:
    await asyncio.sleep(0)
    return f"reminded {user}"


def create_app(database_url: str | None = None) -> Hora:
    """A fresh app with the demo tasks registered (one per call, so tests stay isolated)."""
    return register(Hora(database_url))


def register(app: Hora) -> Hora:
    """Register the demo tasks on ``app`` (``hora serve --demo`` adds them to its own)."""
    app.task(greet, name="demo.greet")
    app.task(flaky, name="demo.flaky", retry=QUICK_RETRY)
    app.task(always_fails, name="demo.always_fails", retry=QUICK_RETRY)
    app.task(remind, name="demo.remind")
    return app


app = create_app()


@dataclass(frozen=True)
class DemoRun:
    correlation_id: str
    job_ids: list[str]


def enqueue_demo_jobs(app: Hora, greetings: int = 3) -> DemoRun:
    """Enqueue one job of every kind (and ``greetings`` greetings) under one correlation id."""
    cid = f"demo-{new_id()[-12:]}"
    ids = [app.enqueue("demo.greet", {"name": f"user-{i}"}, correlation_id=cid).id
           for i in range(1, greetings + 1)]
    ids.append(app.enqueue("demo.flaky", {"order_id": "A-1001"}, correlation_id=cid).id)
    ids.append(app.enqueue("demo.always_fails", {"report": "weekly"}, max_attempts=2,
                           correlation_id=cid).id)
    ids.append(app.enqueue("demo.remind", {"user": "ada"}, delay=DEMO_DELAY,
                           correlation_id=cid).id)
    return DemoRun(cid, ids)

