"""Workers you can see, on both stores, time driven by the FakeClock: a worker's row from
start to clean stop, lost after missed heartbeats, aged out; queue depth and pause through
the SDK; a due job that no live worker serves says so, until a worker for it starts."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from hora import FakeClock, Hora, JobState
from hora.models import WorkerInfo
from hora.testing import await_condition, run_until_idle
from hora.workers import LOST_AFTER


async def _start(app: Hora, **options: Any) -> tuple[Any, asyncio.Task[None]]:
    worker = app.worker(**options)
    task = asyncio.create_task(worker.run())
    await await_condition(lambda: any(w.id == worker.id for w in app.workers()),
                          message="worker registered")
    return worker, task


def _row(app: Hora, worker_id: str) -> WorkerInfo:
    return next(w for w in app.workers(all=True) if w.id == worker_id)


def test_a_worker_registers_heartbeats_and_stops(app: Hora, clock: FakeClock) -> None:
    @app.task(name="t.mail")
    def mail() -> None: ...

    async def main() -> None:
        worker, task = await _start(app, queues=["default", "mail"], concurrency=7,
                                    heartbeat=5, worker_id="w-1")
        w = _row(app, "w-1")
        assert (w.status, w.queues, w.concurrency, w.heartbeat) == (
            "live", ("default", "mail"), 7, 5.0)
        assert w.tasks is not None and "t.mail" in w.tasks  # only its own tasks
        assert w.started_at == clock.now() and w.version
        start = clock.now()
        clock.advance(5)
        await await_condition(lambda: _row(app, "w-1").last_seen_at > start,
                              message="heartbeat refreshed the row")
        worker.stop()
        await task
        w = _row(app, "w-1")
        assert w.status == "stopped" and w.stopped_at is not None
        assert app.workers() == []  # live only by default

    asyncio.run(main())


def test_any_task_worker_records_no_filter(app: Hora) -> None:
    async def main() -> None:
        worker, task = await _start(app, only_known_tasks=False, worker_id="any")
        assert _row(app, "any").tasks is None
        worker.stop()
        await task

    asyncio.run(main())


def test_a_worker_that_stops_heartbeating_is_lost_then_aged_out(
        app: Hora, clock: FakeClock) -> None:
    dead = app.worker(worker_id="dead", heartbeat=10)
    app.store.register_worker(dead.info())
    assert _row(app, "dead").status == "live"
    clock.advance(LOST_AFTER - 1)
    assert _row(app, "dead").status == "live"
    clock.advance(2)
    assert _row(app, "dead").status == "lost"
    assert app.workers() == [] and [w.id for w in app.workers(all=True)] == ["dead"]
    # a day later, any worker's heartbeat deletes the row
    clock.advance(timedelta(days=1))

    async def main() -> None:
        worker, task = await _start(app, heartbeat=10, worker_id="alive")
        clock.advance(10)
        await await_condition(lambda: [w.id for w in app.workers(all=True)] == ["alive"],
                              message="the old row aged out")
        worker.stop()
        await task

    asyncio.run(main())


def test_a_worker_whose_row_went_missing_writes_it_again(app: Hora, clock: FakeClock) -> None:
    async def main() -> None:
        worker, task = await _start(app, heartbeat=10, worker_id="again")
        app.store.touch_worker("other", now=clock.now() + timedelta(days=2), running=0,
                               forget_before=clock.now() + timedelta(days=1))
        assert app.workers(all=True) == []  # aged out during a (pretend) long outage
        clock.advance(10)
        await await_condition(lambda: [w.id for w in app.workers()] == ["again"],
                              message="the heartbeat registered it again")
        worker.stop()
        await task

    asyncio.run(main())


def test_queues_show_depth_oldest_age_workers_and_pause(app: Hora, clock: FakeClock) -> None:
    app.enqueue("t.x", {}, queue="mail")
    clock.advance(30)
    app.enqueue("t.x", {}, queue="mail")
    app.enqueue("t.x", {}, queue="mail", delay=3600)
    [q] = app.queues()
    assert (q.name, q.scheduled, q.due, q.running, q.dead, q.paused, q.workers) == (
        "mail", 3, 2, 0, 0, False, 0)
    assert q.oldest_due_age == 30.0
    app.store.register_worker(app.worker(queues=["mail", "bulk"], worker_id="w").info())
    qs = {q.name: q for q in app.queues()}
    assert qs["mail"].workers == 1 and qs["bulk"].workers == 1 and qs["bulk"].scheduled == 0
    state = app.pause_queue("mail", reason="maintenance")
    assert state.paused and state.reason == "maintenance"
    qs = {q.name: q for q in app.queues()}
    assert qs["mail"].paused and qs["mail"].reason == "maintenance"
    other = app.for_tenant("other")
    assert all(not q.paused for q in other.queues())  # a pause is the tenant's own
    assert not app.resume_queue("mail").paused


def test_a_paused_queue_is_not_run_until_resumed(app: Hora) -> None:
    ran: list[int] = []

    @app.task(name="t.count")
    def count(n: int) -> None:
        ran.append(n)

    app.pause_queue("default")
    job = count.enqueue(n=1)
    run_until_idle(app)
    assert ran == [] and app.get_job(job.id).state is JobState.SCHEDULED
    app.resume_queue("default")
    run_until_idle(app)
    assert ran == [1] and app.get_job(job.id).state is JobState.SUCCEEDED


def test_unrunnable_jobs_are_named_until_a_worker_for_them_starts(
        app: Hora, clock: FakeClock) -> None:
    job = app.enqueue("t.missing", {}, queue="mail")
    later = app.enqueue("t.missing", {}, queue="mail", delay=60)
    reasons = app.fleet.waiting_reasons([job, later])
    assert reasons == {job.id: "no live worker serves task t.missing on queue mail"}
    assert app.fleet.unrunnable() == [("mail", "t.missing", 1)]
    # a worker on the queue, but without the task: still unrunnable
    app.store.register_worker(app.worker(queues=["mail"], worker_id="w1").info())
    assert job.id in app.fleet.waiting_reasons([job])
    # one that runs any task on it: runnable
    app.store.register_worker(app.worker(queues=["mail"], worker_id="w2",
                                         only_known_tasks=False).info())
    assert app.fleet.waiting_reasons([job]) == {}
    assert app.fleet.unrunnable() == []
    app.pause_queue("mail")
    assert app.fleet.waiting_reasons([job]) == {job.id: "queue mail is paused"}
    app.resume_queue("mail")
    # once that worker is lost, the job is unrunnable again
    clock.advance(LOST_AFTER + 1)
    assert app.fleet.waiting_reasons([app.get_job(job.id)]) != {}


def test_until_idle_warns_of_due_jobs_it_has_no_handler_for(
        app: Hora, caplog: pytest.LogCaptureFixture) -> None:
    @app.task(name="t.known")
    def known() -> None: ...

    app.enqueue("t.unknown", {})
    app.enqueue("t.unknown", {})
    known.enqueue()
    with caplog.at_level(logging.WARNING, logger="hora.worker"):
        stats = run_until_idle(app)
    assert stats["succeeded"] == 1
    [line] = [r.getMessage() for r in caplog.records if "no handler for" in r.getMessage()]
    assert "2 due job(s)" in line and "t.unknown (queue default: 2)" in line
