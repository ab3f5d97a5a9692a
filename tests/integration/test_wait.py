"""Waiting for results (issue #11 item 3): ``app.wait_for_job`` / ``app.wait``, the async face,
workflows; woken in-process by the worker, across processes by PostgreSQL's NOTIFY, else by
bounded polling. Both stores; real time (a wait's timeout is monotonic, not the app clock)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from hora import FakeClock, Hora, JobState
from hora.errors import InvalidPayload, NotFound, WaitTimeout, WorkflowFailed
from hora.testing import wait_for_condition
from hora.waiting import LISTEN_POLL, POLL_MAX
from hora.worker import Worker


@pytest.fixture
def real_app(database_url: str) -> Iterator[Hora]:
    a = Hora(database_url)
    try:
        yield a
    finally:
        a.close()


@contextmanager
def worker_thread(app: Hora, **options: Any) -> Iterator[Worker]:
    w = app.worker(poll_interval=0.05, **options)
    t = threading.Thread(target=w.run_sync, daemon=True)
    t.start()
    wait_for_condition(lambda: w._loop is not None and w in app._workers,
                       message="worker started")
    try:
        yield w
    finally:
        w.stop()
        t.join(20)


def _gated(app: Hora) -> tuple[threading.Event, Any]:
    gate = threading.Event()

    @app.task(name="gated")
    def gated(x: int) -> int:
        assert gate.wait(20)
        return x * 2

    return gate, gated


def test_wait_returns_when_a_worker_in_this_process_ends_the_job(real_app: Hora) -> None:
    gate, gated = _gated(real_app)
    with worker_thread(real_app):
        job = gated.enqueue(x=21)
        assert job.state is JobState.SCHEDULED  # enqueue still returns the Job
        timer = threading.Timer(0.3, gate.set)
        timer.start()
        began = time.monotonic()
        final = real_app.wait(job, timeout=20)
        took = time.monotonic() - began
    assert final.state is JobState.SUCCEEDED and final.result == 42
    assert final.attempts and final.attempts[-1].outcome == "succeeded"
    assert took < 10
    # The worker's announcement woke it: far fewer reads than 50 ms polling would make.
    assert real_app._results.announcements >= 1


def test_a_wait_that_runs_out_raises_with_the_state_last_seen(app: Hora,
                                                              clock: FakeClock) -> None:
    job = app.enqueue("nobody.runs.this", {})
    began = time.monotonic()
    with pytest.raises(WaitTimeout) as err:
        app.wait_for_job(job.id, timeout=0.3)
    took = time.monotonic() - began
    assert err.value.kind == "job" and err.value.record_id == job.id
    assert err.value.state == "scheduled" and err.value.waited == 0.3
    # Real, monotonic time: the FakeClock (never advanced) neither stalls nor spins it.
    assert 0.3 <= took < 3
    reads = app._results.reads
    assert reads <= 10, reads  # 50 ms doubling: a handful of reads, not a spin
    job_now, done = app.poll_job(job.id, 0.1)
    assert not done and job_now.state is JobState.SCHEDULED
    job_now, done = app.poll_job(job.id)  # wait 0: just the state
    assert not done


def test_wait_validates_its_bound_and_the_id(app: Hora) -> None:
    job = app.enqueue("nobody.runs.this", {})
    for bad in (-1, float("nan"), "soon", 10**9):
        with pytest.raises(InvalidPayload):
            app.wait_for_job(job.id, timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        app.wait_for_job("no-such-job", timeout=0.1)


def test_an_ended_job_returns_at_once_dead_and_cancelled_count(app: Hora) -> None:
    job = app.enqueue("nobody.runs.this", {})
    app.cancel_job(job.id)
    began = time.monotonic()
    assert app.wait_for_job(job.id, timeout=5).state is JobState.CANCELLED
    assert time.monotonic() - began < 1


def test_cancel_in_this_process_wakes_a_waiter(real_app: Hora) -> None:
    job = real_app.enqueue("nobody.runs.this", {})
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(real_app.wait_for_job(job.id, timeout=20)))
    t.start()
    wait_for_condition(lambda: real_app._results.reads >= 1, message="waiter started")
    real_app.cancel_job(job.id)
    t.join(10)
    assert got and got[0].state is JobState.CANCELLED


def test_async_wait_holds_no_thread(real_app: Hora) -> None:
    gate, _gated_task = _gated(real_app)

    async def main() -> list[Any]:
        jobs = [await real_app.aio.enqueue("gated", {"x": i}) for i in range(20)]
        waits = [asyncio.ensure_future(real_app.aio.wait(j, timeout=20)) for j in jobs]
        await asyncio.sleep(0.2)
        # 20 waiters sleep on events: no thread each (to_thread's pool is only for reads).
        assert threading.active_count() < 40
        gate.set()
        return list(await asyncio.gather(*waits))

    with worker_thread(real_app):
        finals = asyncio.run(main())
    assert sorted(j.result for j in finals) == [2 * i for i in range(20)]


def test_another_process_sqlite_polls_with_a_bound(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    runner, waiter = Hora(url), Hora(url)  # two apps: no in-process announcement crosses
    try:
        gate, gated = _gated(runner)
        with worker_thread(runner):
            job = gated.enqueue(x=1)
            threading.Timer(0.2, gate.set).start()
            final = waiter.wait_for_job(job.id, timeout=20)
        assert final.state is JobState.SUCCEEDED
        assert not waiter._results.listening.is_set()  # no channel: it polled
        assert waiter._results.reads >= 2
    finally:
        runner.close()
        waiter.close()


def test_postgres_wakes_a_waiter_in_another_app_by_notify(pg_schema_url: str) -> None:
    runner, waiter = Hora(pg_schema_url), Hora(pg_schema_url)
    try:
        gate, gated = _gated(runner)
        with worker_thread(runner):
            job = gated.enqueue(x=5)
            got: list[Any] = []
            t = threading.Thread(target=lambda: got.append(
                waiter.wait_for_job(job.id, timeout=60)))
            t.start()
            wait_for_condition(waiter._results.listening.is_set, message="LISTEN up")
            wait_for_condition(lambda: waiter._results.reads >= 1, message="first read")
            reads_before = waiter._results.reads
            released = time.monotonic()
            gate.set()
            t.join(30)
            took = time.monotonic() - released
        assert got and got[0].state is JobState.SUCCEEDED and got[0].result == 10
        # While listening, the safety poll is LISTEN_POLL (10 s) apart: an answer well
        # before it, after a single extra read, can only have come from the NOTIFY.
        assert took < LISTEN_POLL / 2, took
        assert waiter._results.reads - reads_before <= 2
        assert waiter._results.announcements >= 1
    finally:
        runner.close()
        waiter.close()


def test_one_listener_serves_every_waiter(pg_schema_url: str) -> None:
    waiter = Hora(pg_schema_url)
    try:
        jobs = [waiter.enqueue("nobody.runs.this", {}) for _ in range(5)]
        threads = [threading.Thread(target=waiter.poll_job, args=(j.id, 1.0)) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        listeners = [t for t in threading.enumerate() if t.name == "hora-results"]
        assert listeners == [waiter._results._listener]  # one, for all five waiters
    finally:
        waiter.close()
    assert not [t for t in threading.enumerate() if t.name == "hora-results"]


def _workflows(app: Hora) -> None:
    @app.workflow(name="adds")
    async def adds(ctx: Any, a: int, b: int) -> int:
        return a + b

    @app.workflow(name="breaks")
    async def breaks(ctx: Any) -> None:
        raise ValueError("no good")


def test_workflow_wait_and_result(real_app: Hora) -> None:
    _workflows(real_app)
    with worker_thread(real_app):
        wf = real_app.start_workflow("adds", {"a": 2, "b": 3})
        assert real_app.workflows.result(wf.id, timeout=20) == 5
        assert real_app.wait_for_workflow(wf.id, timeout=1).state == "completed"
        bad = real_app.start_workflow("breaks", {})
        with pytest.raises(WorkflowFailed) as err:
            real_app.workflow_result(bad.id, timeout=20)
        assert err.value.state == "failed" and err.value.error_type
        ok = real_app.start_workflow("adds", {"a": 1, "b": 1})

        async def main() -> Any:
            return await real_app.aio.workflow_result(ok.id, timeout=20)

        assert asyncio.run(main()) == 2


def test_workflow_wait_runs_out(app: Hora) -> None:
    _workflows(app)
    wf = app.start_workflow("adds", {"a": 2, "b": 3})
    with pytest.raises(WaitTimeout) as err:
        app.workflows.wait(wf.id, timeout=0.2)
    assert err.value.kind == "workflow" and err.value.state == "running"
    wf_now, done = app.workflows.poll(wf.id, 0)
    assert not done and wf_now.id == wf.id


def test_polling_bound_is_documented() -> None:
    assert POLL_MAX == 1.0
