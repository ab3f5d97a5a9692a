"""The worker in-process, on both stores, with time driven by the FakeClock."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hora import (
    Cancel,
    FakeClock,
    Hora,
    IdempotencyConflict,
    InvalidPayload,
    JobState,
    Retry,
    RetryPolicy,
    current_job,
)
from hora.store import Outcome
from hora.testing import arun_until_idle, await_condition, run_until_idle

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_three_days_and_four_retries_reach_the_dlq_without_waiting(
        app: Hora, clock: FakeClock) -> None:
    policy = RetryPolicy(max_attempts=5, backoff="exponential", base=60, factor=2,
                         max_delay=3600, jitter="full")

    @app.task(retry=policy)
    def always_fails(order: str) -> None:
        raise ConnectionError(f"gateway down for {order}")

    job = always_fails.enqueue(order="o-1", delay=timedelta(days=3))
    stats = run_until_idle(app)
    done = app.get_job(job.id)
    assert done.state is JobState.DEAD and stats["dead"] == 1
    starts = [a.started_at for a in done.attempts]
    assert len(starts) == 5 and starts[0] == T0 + timedelta(days=3)
    for n, (a, b) in enumerate(itertools.pairwise(starts), start=1):
        assert timedelta(0) <= b - a <= timedelta(seconds=policy.cap(n))  # full jitter
    assert all(a.outcome == "failed" and a.error is not None
               and a.error.type == "ConnectionError" and "o-1" in a.error.message
               and a.error.traceback and "gateway down" in a.error.traceback
               for a in done.attempts)
    assert [e.to_state for e in done.events].count(JobState.RETRYING) == 4
    assert app.dead_jobs().items[0].id == job.id


def test_async_and_sync_handlers_see_their_job(app: Hora) -> None:
    seen: dict[str, Any] = {}

    @app.task
    async def in_loop(x: int) -> int:
        seen["async"] = (current_job().job_id, current_job().correlation_id)
        return x * 2

    @app.task
    def in_thread(x: int) -> dict[str, int]:
        seen["sync"] = (current_job().job_id, threading.current_thread().name)
        return {"y": x + 1}

    a = in_loop.enqueue(x=21, correlation_id="c-1")
    b = in_thread.enqueue(4)  # positional arguments bind to parameter names
    assert b.payload == {"x": 4}
    run_until_idle(app)
    assert app.get_job(a.id).result == 42 and app.get_job(b.id).result == {"y": 5}
    assert seen["async"] == (a.id, "c-1")
    assert seen["sync"][0] == b.id and seen["sync"][1].startswith("hora-job")


def test_retry_with_explicit_delay_then_success(app: Hora, clock: FakeClock) -> None:
    calls: list[datetime] = []

    @app.task
    def flaky() -> str:
        calls.append(clock.now())
        if len(calls) < 3:
            raise Retry(delay=timedelta(minutes=10), reason="not yet")
        return "done"

    job = flaky.enqueue()
    run_until_idle(app)
    assert calls == [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)]
    done = app.get_job(job.id)
    assert done.state is JobState.SUCCEEDED and done.result == "done"
    assert [a.outcome for a in done.attempts] == ["retry", "retry", "succeeded"]


def test_cancel_raised_by_handler_ends_cancelled_not_dead(app: Hora) -> None:
    @app.task
    def refuses() -> None:
        raise Cancel("customer closed the account")

    job = refuses.enqueue()
    run_until_idle(app)
    done = app.get_job(job.id)
    assert done.state is JobState.CANCELLED
    assert done.state_reason == "customer closed the account"
    assert app.dead_jobs().items == []


def test_non_retryable_error_goes_straight_to_the_dlq(app: Hora) -> None:
    @app.task(retry=RetryPolicy(max_attempts=10, non_retryable=(KeyError,)))
    def lookup() -> None:
        raise KeyError("missing")

    job = lookup.enqueue()
    run_until_idle(app)
    done = app.get_job(job.id)
    assert done.state is JobState.DEAD and done.attempt == 1
    assert done.state_reason is not None and "non-retryable" in done.state_reason


def test_per_job_retry_override_beats_the_task_policy(app: Hora) -> None:
    @app.task(retry=RetryPolicy(max_attempts=10, base=1))
    def fails() -> None:
        raise RuntimeError("x")

    job = fails.enqueue(retry=RetryPolicy(max_attempts=2, base=5, jitter="none"))
    assert job.max_attempts == 2
    run_until_idle(app)
    done = app.get_job(job.id)
    assert done.attempt == 2 and done.state is JobState.DEAD
    assert done.attempts[1].started_at - done.attempts[0].started_at == timedelta(seconds=5)


def test_timeout_counts_as_a_failed_attempt(app: Hora) -> None:
    @app.task(timeout=0.05, retry=RetryPolicy(max_attempts=2, base=1, jitter="none"))
    async def hangs() -> None:
        await asyncio.Event().wait()

    job = hangs.enqueue()
    run_until_idle(app)
    done = app.get_job(job.id)
    assert [a.outcome for a in done.attempts] == ["timeout", "timeout"]
    assert done.state is JobState.DEAD and done.last_error is not None
    assert done.last_error.type == "hora.Timeout"


def test_unknown_task_is_not_claimed_by_a_worker_that_lacks_it(app: Hora) -> None:
    job = app.enqueue("somebody.elses.task", {"a": 1})
    run_until_idle(app)
    assert app.get_job(job.id).state is JobState.SCHEDULED


def test_upcoming_job_starts_exactly_on_its_instant(app: Hora) -> None:
    started: list[datetime] = []

    @app.task
    async def tick() -> None:
        started.append(app.clock.now())

    job = tick.enqueue(at=T0 + timedelta(seconds=2, milliseconds=500))
    run_until_idle(app)
    assert started == [T0 + timedelta(seconds=2, milliseconds=500)]
    assert app.get_job(job.id).attempts[0].started_at == job.due_at


def test_priority_decides_among_due_jobs(app: Hora) -> None:
    order: list[str] = []

    @app.task
    def mark(name: str) -> None:
        order.append(name)

    mark.enqueue(name="low", priority=10)
    mark.enqueue(name="high", priority=-5)
    mark.enqueue(name="normal")
    run_until_idle(app, concurrency=1, threads=1)
    assert order == ["high", "normal", "low"]


def test_replay_gives_a_dead_job_a_new_cycle(app: Hora) -> None:
    attempts = {"n": 0}

    @app.task(retry=RetryPolicy(max_attempts=1))
    def once_broken() -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("first cycle fails")
        return "fixed"

    job = once_broken.enqueue(correlation_id="c-9")
    run_until_idle(app)
    (replayed,) = app.replay(job.id)
    run_until_idle(app)
    assert app.get_job(job.id).state is JobState.REPLAYED
    again = app.get_job(replayed.id)
    assert again.state is JobState.SUCCEEDED and again.replay_of == job.id
    assert again.correlation_id == "c-9" and again.result == "fixed"


def test_discard_in_bulk(app: Hora) -> None:
    @app.task(retry=RetryPolicy(max_attempts=1))
    def broken(i: int) -> None:
        raise RuntimeError(str(i))

    ids = [broken.enqueue(i=i).id for i in range(3)]
    run_until_idle(app)
    assert sorted(app.discard(ids)) == sorted(ids)
    assert app.dead_jobs().items == []
    assert {app.get_job(i).state for i in ids} == {JobState.DISCARDED}


# -- cancellation of running jobs, lost leases, shutdown: the worker runs as a task ----------


async def _start_worker(app: Hora, **options: Any) -> tuple[Any, asyncio.Task[None]]:
    worker = app.worker(**options)
    task = asyncio.create_task(worker.run())
    return worker, task


def _state(app: Hora, job_id: str) -> JobState:
    return app.get_job(job_id, history=False).state


def test_cancel_interrupts_a_running_async_job(app: Hora) -> None:
    @app.task
    async def forever() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        job = await forever.aenqueue()
        worker, task = await _start_worker(app)
        await await_condition(lambda: _state(app, job.id) is JobState.RUNNING)
        await app.aio.cancel_job(job.id, "operator said stop")
        await await_condition(lambda: _state(app, job.id) is JobState.CANCELLED)
        worker.stop()
        await task

    asyncio.run(main())


def test_cancel_is_cooperative_for_sync_jobs(app: Hora) -> None:
    checked = threading.Event()

    @app.task
    def polite() -> None:
        while True:
            current_job().raise_if_cancelled()
            checked.wait(0.005)

    async def main() -> None:
        job = await polite.aenqueue()
        worker, task = await _start_worker(app)
        await await_condition(lambda: _state(app, job.id) is JobState.RUNNING)
        app.cancel_job(job.id)
        await await_condition(lambda: _state(app, job.id) is JobState.CANCELLED)
        worker.stop()
        await task

    asyncio.run(main())


def test_a_job_whose_lease_was_lost_is_not_completed_twice(app: Hora, clock: FakeClock) -> None:
    release = threading.Event()

    @app.task
    def slow() -> str:
        release.wait(30)
        return "from the first worker"

    async def main() -> None:
        job = await slow.aenqueue()
        worker, task = await _start_worker(app, lease=30, heartbeat=1000, rescue_interval=1000)
        await await_condition(lambda: _state(app, job.id) is JobState.RUNNING)
        # The first worker stalls past its lease; another worker rescues and finishes the job.
        later = clock.now() + timedelta(seconds=31)
        assert app.store.rescue_expired(later) == [job.id]
        (taken,), _ = app.store.claim_jobs(owner="w2", queues=["default"], tasks=None, now=later,
                                           lease_until=later + timedelta(seconds=30), limit=1)
        assert app.store.finish_jobs([Outcome(job.id, taken.attempt, "w2", "succeeded",
                                              "succeeded", later, '"from w2"')], later) == [job.id]
        release.set()
        await await_condition(lambda: worker.stats["lost"] == 1)
        worker.stop()
        await task

    asyncio.run(main())
    done = app.get_job(job_id := app.list_jobs().items[0].id)
    assert done.id == job_id and done.result == "from w2"
    assert [(a.number, a.outcome) for a in done.attempts] == [(1, "lost"), (2, "succeeded")]


def test_stop_lets_in_flight_jobs_finish(app: Hora) -> None:
    gate = asyncio.Event()

    @app.task
    async def finishing() -> str:
        await gate.wait()
        return "finished"

    async def main() -> str:
        job = await finishing.aenqueue()
        worker, task = await _start_worker(app, grace_period=30)
        await await_condition(lambda: _state(app, job.id) is JobState.RUNNING)
        worker.stop()
        gate.set()
        await task
        return job.id

    job_id = asyncio.run(main())
    assert app.get_job(job_id).state is JobState.SUCCEEDED


def test_stop_releases_what_does_not_finish_in_the_grace_period(app: Hora) -> None:
    @app.task
    async def stuck() -> None:
        await asyncio.Event().wait()

    async def main() -> str:
        job = await stuck.aenqueue()
        worker, task = await _start_worker(app, grace_period=0.05)
        await await_condition(lambda: _state(app, job.id) is JobState.RUNNING)
        worker.stop()
        await task
        return job.id

    job_id = asyncio.run(main())
    job = app.get_job(job_id)
    assert job.state is JobState.SCHEDULED and job.lease_owner is None
    assert [a.outcome for a in job.attempts] == ["released"]


# -- the SDK's enqueue contract --------------------------------------------------------------


def test_idempotency_through_the_sdk(app: Hora) -> None:
    @app.task
    def send_push(user_id: str, title: str) -> None: ...

    a = send_push.enqueue(user_id="u1", title="Hi", idempotency_key="push-u1-42")
    b = send_push.enqueue(user_id="u1", title="Hi", idempotency_key="push-u1-42")
    assert a.id == b.id
    with pytest.raises(IdempotencyConflict, match="push-u1-42"):
        send_push.enqueue(user_id="u1", title="Bye", idempotency_key="push-u1-42")
    assert app.count_jobs() == {"scheduled": 1}


def test_bad_enqueues_are_rejected_before_anything_is_written(app: Hora) -> None:
    @app.task
    def t(when: Any = None) -> None: ...

    with pytest.raises(InvalidPayload, match="'when' is not JSON-serialisable"):
        t.enqueue(when=datetime.now(UTC))
    with pytest.raises(InvalidPayload, match="naive"):
        t.enqueue(at=datetime(2030, 1, 1))
    with pytest.raises(InvalidPayload, match="either at= or delay="):
        t.enqueue(at=T0, delay=5)
    with pytest.raises(InvalidPayload, match="unexpected keyword"):
        t.enqueue(nope=1)
    good = t.request(when="ok")
    with pytest.raises(InvalidPayload):
        app.enqueue_many([good, t.request(when=float("nan"))])
    assert app.count_jobs() == {}


def test_task_parameters_may_not_shadow_enqueue_options(app: Hora) -> None:
    with pytest.raises(TypeError, match="collides"):
        @app.task
        def remind(delay: int) -> None: ...


def test_enqueue_many_and_async_enqueue(app: Hora) -> None:
    @app.task
    async def add(a: int, b: int) -> int:
        return a + b

    jobs = app.enqueue_many([add.request(a=i, b=i, queue="math") for i in range(50)])
    assert len({j.id for j in jobs}) == 50 and {j.queue for j in jobs} == {"math"}

    async def main() -> None:
        job = await add.aenqueue(a=1, b=2)
        assert (await app.aio.get_job(job.id)).state is JobState.SCHEDULED
        await arun_until_idle(app, queues=["default", "math"])

    asyncio.run(main())
    assert app.count_jobs() == {"succeeded": 51}
    assert app.list_jobs(queue="math", limit=100).items[-1].result == 0


class _SlowWrites:
    """A real store whose outcome writes take a while, as under a loaded database."""

    def __init__(self, inner: Any, delay_per_job: float) -> None:
        self._inner = inner
        self._delay = delay_per_job

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def finish_jobs(self, outcomes: Any, now: Any) -> Any:
        # the database being slow (per row written), not the test waiting
        threading.Event().wait(self._delay * len(outcomes))
        return self._inner.finish_jobs(outcomes, now)


def test_slow_outcome_writes_push_back_instead_of_losing_leases(database_url: str) -> None:
    from hora.store import open_store

    store = open_store(database_url)
    app = Hora(store=_SlowWrites(store, 0.004))  # type: ignore[arg-type]

    @app.task
    async def quick(i: int) -> int:
        return i

    app.enqueue_many([quick.request(i=i) for i in range(600)])
    stats = run_until_idle(app, concurrency=50, lease=0.6, heartbeat=0.15, rescue_interval=0.1)
    assert stats["lost"] == 0 and stats["started"] == 600
    assert app.count_jobs() == {"succeeded": 600}
    store.close()


def test_enqueue_from_another_process_wakes_an_idle_worker(pg_schema_url: str) -> None:
    """PostgreSQL NOTIFY: with a 60 s poll interval, only the notification can start the job
    within the deadline."""
    worker_app = Hora(pg_schema_url)
    producer = Hora(pg_schema_url)  # another pool and no local workers: like another process
    ran: list[str] = []

    @worker_app.task(name="ping")
    async def ping(n: int) -> None:
        ran.append(current_job().job_id)

    async def main() -> str:
        worker, task = await _start_worker(worker_app, poll_interval=60, lookahead=0)
        await await_condition(lambda: worker.listening)
        job = await producer.aenqueue("ping", {"n": 1})
        await await_condition(lambda: ran == [job.id], timeout=5)
        worker.stop()
        await task
        return job.id

    job_id = asyncio.run(main())
    assert worker_app.get_job(job_id).state is JobState.SUCCEEDED
    worker_app.close()
    producer.close()


def test_a_job_claimed_while_a_heartbeat_is_in_flight_is_not_judged_lost(
        pg_schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL: several DB threads, so a claim can commit while a heartbeat's query runs.
    # The heartbeat's answer predates the claim; the worker must not take the new job's
    # absence from it for a lost lease.
    app = Hora(pg_schema_url)
    second_started = threading.Event()
    release = threading.Event()

    @app.task(name="hold")
    async def hold(n: int) -> int:
        if n == 2:
            second_started.set()
        await asyncio.to_thread(release.wait, 10)
        return n

    real = app.store.extend_leases
    answered: list[frozenset[str]] = []

    def extend_leases(**kwargs: Any) -> Any:
        status = real(**kwargs)
        if not answered:  # the first heartbeat: a job is claimed and started meanwhile
            app.enqueue("hold", {"n": 2})
            second_started.wait(10)
        answered.append(status.held)
        return status

    monkeypatch.setattr(app.store, "extend_leases", extend_leases)
    app.enqueue("hold", {"n": 1})
    worker = app.worker(heartbeat=0.05, lease=5, poll_interval=0.02)

    async def main() -> None:
        task = asyncio.create_task(worker.run())
        await await_condition(lambda: len(answered) >= 3, timeout=10)
        release.set()
        await await_condition(lambda: worker.stats["succeeded"] == 2, timeout=10)
        worker.stop()
        await task

    try:
        asyncio.run(main())
    finally:
        release.set()
        app.close()
    assert second_started.is_set() and len(answered[0]) == 1  # the race did happen
    assert worker.stats["lost"] == 0 and worker.stats["succeeded"] == 2
