"""Batching (``@app.task(batch=Batch(...))``) on both stores, time driven by the FakeClock."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typing_extensions import TypedDict  # pydantic reads typing's only from 3.12

from hora import (
    Batch,
    Fail,
    FakeClock,
    Hora,
    InvalidPayload,
    JobState,
    Retry,
    RetryPolicy,
    current_batch,
    current_job,
)
from hora.testing import await_condition, run_until_idle

T0 = datetime(2030, 1, 1, tzinfo=UTC)
log = logging.getLogger("tests.batching")


def test_batches_by_size_then_the_rest_after_max_wait(app: Hora, clock: FakeClock) -> None:
    calls: list[tuple[int, datetime]] = []

    @app.task(batch=Batch(max_size=100, max_wait=timedelta(seconds=5)))
    def send(items: list[dict[str, Any]]) -> None:
        calls.append((len(items), clock.now()))

    jobs = app.enqueue_many([send.request(n=i) for i in range(250)])
    stats = run_until_idle(app)
    assert sorted(calls) == [(50, T0 + timedelta(seconds=5)), (100, T0), (100, T0)]
    assert stats["succeeded"] == 250 and stats["started"] == 250
    assert app.count_jobs() == {"succeeded": 250}
    one = app.get_job(jobs[-1].id)
    assert [a.outcome for a in one.attempts] == ["succeeded"]


def test_one_batch_exactly_at_max_wait_and_waiting_shows_why(app: Hora,
                                                             clock: FakeClock) -> None:
    seen: list[tuple[list[str], datetime]] = []

    @app.task(batch=Batch(max_size=10, max_wait=timedelta(seconds=5), key="provider"))
    async def send(items: list[dict[str, Any]]) -> None:
        seen.append(([i["to"] for i in items], clock.now()))

    jobs = [send.enqueue(provider="ses", to=f"u{i}") for i in range(3)]

    async def main() -> None:
        worker = app.worker(poll_interval=0.05)
        task = asyncio.create_task(worker.run())
        try:
            await await_condition(lambda: all(
                app.get_job(j.id, history=False).state_reason == "batching: provider=ses"
                for j in jobs), timeout=30, message="jobs waiting for their batch")
            clock.advance(4.999)
            # A negative check needs a window: the worker runs its passes on the advanced
            # clock (its poll waits are fake-clock sleeps, woken by the advance) meanwhile.
            await asyncio.sleep(0.05)
            assert seen == []  # not a moment early
            clock.advance(0.001)
            await await_condition(lambda: app.count_jobs() == {"succeeded": 3}, timeout=30)
        finally:
            worker.stop()
            await task

    asyncio.run(main())
    assert seen == [(["u0", "u1", "u2"], T0 + timedelta(seconds=5))]


def test_jobs_are_grouped_per_key(app: Hora) -> None:
    batches: list[list[str]] = []

    @app.task(batch=Batch(max_size=4, max_wait=1, key="provider"))
    def send(items: list[dict[str, Any]]) -> list[str]:
        batches.append([i["provider"] for i in items])
        return [f"sent {i['n']}" for i in items]

    jobs = app.enqueue_many([send.request(provider=("ses", "sendgrid", "postmark")[i % 3], n=i)
                             for i in range(12)])
    run_until_idle(app)
    assert sorted(batches) == sorted([["ses"] * 4, ["sendgrid"] * 4, ["postmark"] * 4])
    assert [app.get_job(j.id).result for j in jobs] == [f"sent {i}" for i in range(12)]


def test_per_item_outcomes_each_job_by_its_own_policy(app: Hora, clock: FakeClock) -> None:
    calls: list[list[int]] = []

    @app.task(batch=Batch(max_size=5, max_wait=0), retry=RetryPolicy(max_attempts=3))
    def send(items: list[dict[str, Any]]) -> list[object]:
        calls.append([i["n"] for i in items])
        out: list[object] = []
        for i in items:
            if i["n"] == 1 and len(calls) == 1:
                out.append(RuntimeError("provider hiccup"))
            elif i["n"] == 2:
                out.append(Retry(delay=10))
            elif i["n"] == 3:
                out.append(Fail("no such address"))
            else:
                out.append({"ok": i["n"]})
        return out

    jobs = app.enqueue_many([send.request(n=i) for i in range(4)])
    run_until_idle(app)
    # The first batch holds all four; only the failed ones come back, each on its own time.
    assert calls[0] == [0, 1, 2, 3]
    assert sorted(n for c in calls[1:] for n in c) == [1, 2, 2]
    j0, j1, j2, j3 = (app.get_job(j.id) for j in jobs)
    assert j0.state is JobState.SUCCEEDED and j0.result == {"ok": 0}
    assert [a.outcome for a in j0.attempts] == ["succeeded"]
    assert j1.state is JobState.SUCCEEDED and [a.outcome for a in j1.attempts] == [
        "failed", "succeeded"]
    assert j1.attempts[0].error is not None and "provider hiccup" in j1.attempts[0].error.message
    assert j2.state is JobState.DEAD and [a.outcome for a in j2.attempts] == ["retry"] * 3
    assert j2.attempts[1].started_at - j2.attempts[0].started_at == timedelta(seconds=10)
    assert j3.state is JobState.DEAD and [a.outcome for a in j3.attempts] == ["failed"]


def test_a_raising_handler_retries_every_job_then_dead_letters(app: Hora,
                                                               clock: FakeClock) -> None:
    calls: list[int] = []

    @app.task(batch=Batch(max_size=10, max_wait=0),
              retry=RetryPolicy(max_attempts=3, backoff="fixed", base=30, jitter="none"))
    def send(items: list[dict[str, Any]]) -> None:
        calls.append(len(items))
        raise ConnectionError("provider down")

    jobs = app.enqueue_many([send.request(n=i) for i in range(5)])
    stats = run_until_idle(app)
    assert calls == [5, 5, 5] and stats["dead"] == 5
    for j in jobs:
        job = app.get_job(j.id)
        assert job.state is JobState.DEAD
        assert [a.number for a in job.attempts] == [1, 2, 3]
        assert [a.started_at for a in job.attempts] == [
            T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)]
        assert all(a.error is not None and a.error.type == "ConnectionError"
                   for a in job.attempts)
        assert [e.to_state for e in job.events].count(JobState.RETRYING) == 2


def test_a_dead_workers_buffered_jobs_come_back_after_their_lease(app: Hora,
                                                                  clock: FakeClock) -> None:
    ran: list[int] = []

    @app.task(batch=Batch(max_size=100, max_wait=5))
    def send(items: list[dict[str, Any]]) -> None:
        ran.extend(i["n"] for i in items)

    app.enqueue_many([send.request(n=i) for i in range(30)])
    # A worker reserved them and died (no release): its lease holds them for 30 s.
    held = app.store.reserve_due(owner="dead-worker", queues=["default"], tasks=[send.name],
                                 now=T0, lease_until=T0 + timedelta(seconds=30), limit=20)
    assert len(held) == 20
    run_until_idle(app, until=T0 + timedelta(seconds=20))
    assert sorted(ran) == sorted(set(range(30)) - {j.payload["n"] for j in held})
    clock.set(T0 + timedelta(seconds=30))
    run_until_idle(app)
    assert sorted(ran) == list(range(30))  # none lost, none twice
    assert app.count_jobs() == {"succeeded": 30}


def test_the_handler_sees_its_batch_and_logs_per_job(app: Hora) -> None:
    @app.task(batch=Batch(max_size=3, max_wait=0))
    def send(items: list[dict[str, Any]]) -> None:
        batch = current_batch()
        assert len(batch) == len(items) == 3
        log.warning("sending %d", len(items))
        for i, item in enumerate(items):
            with batch.job(i) as job:
                assert current_job().job_id == job.job_id
                log.warning("sent to %s", item["to"])
        with pytest.raises(RuntimeError, match="current_batch"):
            current_job()

    jobs = app.enqueue_many([send.request(to=f"u{i}") for i in range(3)])
    run_until_idle(app)
    for i, j in enumerate(jobs):
        lines = [ln.message for ln in app.get_job(j.id).attempts[0].logs]
        assert lines == ["sending 3", f"sent to u{i}"]


def test_bad_batch_declarations_and_payloads_are_clear_errors(app: Hora) -> None:
    with pytest.raises(InvalidPayload) as e:
        Batch(max_size=0)
    assert e.value.field == "batch.max_size"

    @app.task(batch=Batch(max_size=2, key="provider"))
    def send(items: list[dict[str, Any]]) -> None: ...

    with pytest.raises(InvalidPayload) as e:
        send.enqueue(to="u1")
    assert e.value.field == "payload.provider"
    with pytest.raises(TypeError, match="one argument"):
        @app.task(batch=Batch())
        def no_list() -> None: ...


def test_a_job_cancelled_while_buffered_leaves_its_batch(app: Hora, clock: FakeClock) -> None:
    seen: list[list[int]] = []

    @app.task(batch=Batch(max_size=10, max_wait=5))
    async def send(items: list[dict[str, Any]]) -> None:
        seen.append([i["n"] for i in items])

    jobs = app.enqueue_many([send.request(n=i) for i in range(3)])

    async def main() -> None:
        worker = app.worker(poll_interval=0.05)
        task = asyncio.create_task(worker.run())
        try:
            await await_condition(lambda: all(
                (app.get_job(j.id, history=False).state_reason or "").startswith("batching")
                for j in jobs), timeout=30, message="jobs buffered")
            app.cancel_job(jobs[1].id, reason="user opted out")
            clock.advance(5)
            await await_condition(lambda: app.count_jobs() == {"succeeded": 2, "cancelled": 1},
                                  timeout=30)
        finally:
            worker.stop()
            await task

    asyncio.run(main())
    assert seen == [[0, 2]]
    assert app.get_job(jobs[1].id).state is JobState.CANCELLED


def test_the_timeout_applies_to_the_batch(app: Hora) -> None:
    @app.task(batch=Batch(max_size=5, max_wait=0), timeout=0.05,
              retry=RetryPolicy(max_attempts=1))
    async def slow(items: list[dict[str, Any]]) -> None:
        await asyncio.Event().wait()  # never ends by itself: only the timeout ends it

    jobs = app.enqueue_many([slow.request(n=i) for i in range(2)])
    run_until_idle(app)
    for j in jobs:
        job = app.get_job(j.id)
        assert job.state is JobState.DEAD
        assert [a.outcome for a in job.attempts] == ["timeout"]


class Email(TypedDict):
    provider: str
    to: str


def test_the_payload_schema_is_the_item_type(app: Hora) -> None:
    @app.task(batch=Batch(max_size=5, key="provider"))
    def send(items: list[Email]) -> None: ...

    send.enqueue(provider="ses", to="u1")
    with pytest.raises(InvalidPayload) as e:
        send.enqueue(provider="ses", to=42)
    assert e.value.field is not None and "to" in e.value.field


def test_heartbeats_keep_a_long_wait_buffered_by_one_worker(app: Hora, clock: FakeClock) -> None:
    """max_wait beyond the lease: the heartbeat extends the buffered jobs' leases, so the
    other worker never takes them and the batch runs once, whole, on time."""
    batches: list[tuple[str, int, datetime]] = []

    @app.task(batch=Batch(max_size=50, max_wait=60))
    async def send(items: list[dict[str, Any]]) -> None:
        batches.append((current_batch().jobs[0].worker_id, len(items), clock.now()))

    jobs = app.enqueue_many([send.request(n=i) for i in range(5)])

    async def main() -> None:
        a = app.worker(worker_id="a", lease=30, poll_interval=0.05)
        ta = asyncio.create_task(a.run())
        await await_condition(lambda: all(
            (app.get_job(j.id, history=False).state_reason or "").startswith("batching")
            for j in jobs), timeout=30, message="jobs buffered by a")
        b = app.worker(worker_id="b", lease=30, poll_interval=0.05)
        tb = asyncio.create_task(b.run())
        try:
            for _ in range(6):  # 10 s at a time: every heartbeat runs on its beat
                clock.advance(10)
                # Heartbeats beat on the fake clock but not on exact multiples of it: give
                # each beat a moment of real time to run (a window, not a wait for work).
                await asyncio.sleep(0.2)
                assert b.stats["started"] == 0
            await await_condition(lambda: app.count_jobs() == {"succeeded": 5}, timeout=30)
        finally:
            a.stop()
            b.stop()
            await asyncio.gather(ta, tb)

    asyncio.run(main())
    assert batches == [("a", 5, T0 + timedelta(seconds=60))]


def test_a_process_without_the_code_checks_the_key_and_item_schema(
        app: Hora, database_url: str, clock: FakeClock) -> None:
    """What HTTP and the CLI do: enqueue by name, against the registry a worker wrote."""

    @app.task(name="send", batch=Batch(max_size=5, key="provider"))
    def send(items: list[Email]) -> None: ...

    app.registry.register()
    remote = Hora(database_url, clock=clock)
    try:
        job = remote.enqueue("send", {"provider": "ses", "to": "u1"})
        assert job.state is JobState.SCHEDULED
        with pytest.raises(InvalidPayload) as e:
            remote.enqueue("send", {"to": "u1"})
        assert e.value.field is not None and "provider" in e.value.field
    finally:
        remote.close()
    run_until_idle(app)
    assert app.get_job(job.id).state is JobState.SUCCEEDED


def test_a_start_whose_acknowledgement_was_lost_runs_its_jobs_once(app: Hora) -> None:
    from hora.errors import StoreUnavailable

    calls: list[list[int]] = []

    @app.task(batch=Batch(max_size=4, max_wait=0))
    def send(items: list[dict[str, Any]]) -> None:
        calls.append(sorted(i["n"] for i in items))

    jobs = app.enqueue_many([send.request(n=i) for i in range(4)])
    real = app.store.start_batch
    failures = [1]

    def committed_then_lost(*args: Any, **kwargs: Any) -> list[str]:
        started = real(*args, **kwargs)
        if failures:
            failures.pop()
            raise StoreUnavailable("connection lost after commit")
        return started

    app.store.start_batch = committed_then_lost  # type: ignore[method-assign]
    run_until_idle(app)
    assert failures == [] and calls == [[0, 1, 2, 3]]
    for j in jobs:
        job = app.get_job(j.id)
        assert job.state is JobState.SUCCEEDED and [a.number for a in job.attempts] == [1]


def test_two_workers_share_the_batches_without_running_a_job_twice(app: Hora) -> None:
    seen: list[int] = []

    @app.task(batch=Batch(max_size=25, max_wait=0, key="provider"))
    async def send(items: list[dict[str, Any]]) -> None:
        assert len({i["provider"] for i in items}) == 1
        seen.extend(i["n"] for i in items)
        await asyncio.sleep(0)

    app.enqueue_many([send.request(n=i, provider=f"p{i % 4}") for i in range(400)])

    async def main() -> None:
        workers = [app.worker(worker_id=w, poll_interval=0.02, max_held=60) for w in "ab"]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            await await_condition(lambda: app.count_jobs() == {"succeeded": 400}, timeout=60)
        finally:
            for w in workers:
                w.stop()
            await asyncio.gather(*tasks)

    asyncio.run(main())
    assert sorted(seen) == list(range(400))  # every job once


def test_until_idle_on_the_real_clock_waits_for_a_partial_batch(database_url: str) -> None:
    real = Hora(database_url)
    try:
        calls: list[int] = []

        @real.task(batch=Batch(max_size=10, max_wait=0.3))
        def send(items: list[dict[str, Any]]) -> None:
            calls.append(len(items))

        real.enqueue_many([send.request(n=i) for i in range(3)])
        run_until_idle(real, lookahead=0.05)  # `hora worker --until-idle`; max_wait > lookahead
        assert calls == [3] and real.count_jobs() == {"succeeded": 3}
    finally:
        real.close()
