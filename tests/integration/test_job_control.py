"""Job control through the SDK, on both stores: reschedule, run now, bulk cancel by filter
(docs/flow.md "Job control")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import hora.app
from hora import FakeClock, Hora
from hora.errors import InvalidPayload, NotFound, TransitionConflict
from hora.states import JobState
from hora.testing import run_until_idle


def test_reschedule_by_at_and_by_delay(app: Hora, clock: FakeClock) -> None:
    job = app.enqueue("t.later", {}, delay=60)
    at = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
    moved = app.reschedule_job(job.id, at=at.astimezone(UTC))
    assert moved.due_at == at and moved.state is JobState.SCHEDULED
    assert moved.state_reason == "rescheduled to 2030-01-02T09:30:00.000Z by request"
    again = app.reschedule_job(job.id, delay=timedelta(minutes=5))
    assert again.due_at == clock.now() + timedelta(minutes=5)
    history = [(e.from_state, e.to_state, e.reason) for e in app.get_job(job.id).events]
    assert history[1:] == [
        (JobState.SCHEDULED, JobState.SCHEDULED,
         "rescheduled to 2030-01-02T09:30:00.000Z by request"),
        (JobState.SCHEDULED, JobState.SCHEDULED,
         f"rescheduled to {again.due_at:%Y-%m-%dT%H:%M:%S}.000Z by request")]


@pytest.mark.parametrize("kwargs,field", [
    ({}, "at"),
    ({"at": datetime(2030, 1, 2, tzinfo=UTC), "delay": 5}, "at"),
    ({"at": datetime(2030, 1, 2)}, "at"),  # naive
    ({"at": datetime(1, 1, 1, tzinfo=UTC)}, "at"),
    ({"delay": -1}, "delay"),
    ({"delay": float("nan")}, "delay"),
    ({"delay": 10**12}, "delay"),
    ({"delay": "soon"}, "delay"),
])
def test_reschedule_refuses_bad_times(app: Hora, kwargs: dict[str, Any], field: str) -> None:
    job = app.enqueue("t.later", {}, delay=60)
    with pytest.raises(InvalidPayload) as e:
        app.reschedule_job(job.id, **kwargs)
    assert e.value.field == field
    assert app.get_job(job.id).due_at == job.due_at


def test_run_now_runs_a_later_job_now_unless_its_queue_is_paused(
        app: Hora, clock: FakeClock) -> None:
    ran: list[str] = []

    @app.task(name="t.remind")
    def remind(who: str) -> None:
        ran.append(who)

    start = clock.now()
    job = remind.enqueue(who="u1", delay=timedelta(days=3))
    app.pause_queue("default")
    assert app.run_job_now(job.id).due_at == start
    run_until_idle(app, until=start)
    assert ran == [] and app.get_job(job.id).state is JobState.SCHEDULED
    app.resume_queue("default")
    run_until_idle(app, until=start)
    assert ran == ["u1"] and clock.now() == start
    final = app.get_job(job.id)
    assert final.state is JobState.SUCCEEDED
    assert "run now by request" in [e.reason for e in final.events]
    with pytest.raises(TransitionConflict):
        app.run_job_now(job.id)


def test_control_of_another_tenants_job_is_not_found(app: Hora) -> None:
    job = app.enqueue("t.x", {}, delay=60, correlation_id="c")
    other = app.for_tenant("other")
    with pytest.raises(NotFound):
        other.reschedule_job(job.id, delay=1)
    with pytest.raises(NotFound):
        other.run_job_now(job.id)
    assert other.cancel_jobs(correlation_id="c") == 0
    assert other.cancel_jobs(all=True) == 0
    assert app.get_job(job.id).state is JobState.SCHEDULED
    assert app.get_job(job.id).due_at == job.due_at
    with pytest.raises(NotFound):
        app.reschedule_job("job_nope", delay=1)


def test_bulk_cancel_when_the_user_opts_out(app: Hora) -> None:
    steps = [app.enqueue("t.onboarding", {"step": i}, delay=timedelta(days=i),
                         correlation_id="onboarding-u42") for i in range(1, 4)]
    other = app.enqueue("t.onboarding", {"step": 1}, correlation_id="onboarding-u43")
    running = app.enqueue("t.onboarding", {"step": 0}, correlation_id="onboarding-u42",
                          queue="fast")
    app.store.claim_jobs(owner="elsewhere", queues=["fast"], tasks=None, now=app.clock.now(),
                         lease_until=app.clock.now() + timedelta(minutes=1), limit=5)
    assert app.cancel_jobs(correlation_id="onboarding-u42", reason="user opted out") == 3
    for j in steps:
        got = app.get_job(j.id)
        assert got.state is JobState.CANCELLED and got.state_reason == "user opted out"
    assert app.get_job(other.id).state is JobState.SCHEDULED
    assert not app.get_job(running.id).cancel_requested
    assert app.cancel_jobs(correlation_id="onboarding-u42", include_running=True) == 1
    assert app.get_job(running.id).cancel_requested


def test_bulk_cancel_needs_a_filter_or_all(app: Hora) -> None:
    job = app.enqueue("t.x", {})
    with pytest.raises(InvalidPayload) as e:
        app.cancel_jobs()
    assert e.value.field == "filter" and "all=True" in str(e.value)
    with pytest.raises(InvalidPayload) as e:
        app.cancel_jobs(include_running=True)
    assert app.get_job(job.id).state is JobState.SCHEDULED
    for bad, field in (({"correlation_id": ""}, "correlation_id"),
                       ({"task": "x" * 256}, "task"),
                       ({"queue": 3}, "queue"),
                       ({"queue": "a\x00b"}, "queue"),
                       ({"created_before": datetime(2030, 1, 1)}, "created_before"),
                       ({"task": "t.x", "reason": ""}, "reason")):
        with pytest.raises(InvalidPayload) as e:
            app.cancel_jobs(**bad)
        assert e.value.field == field, bad
    assert app.get_job(job.id).state is JobState.SCHEDULED
    assert app.cancel_jobs(all=True) == 1


def test_bulk_cancel_of_many_jobs_runs_in_batches(app: Hora,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(5):
        app.enqueue_many([hora.app.JobRequest(task="t.bulk", payload={}, queue="bulk",
                                              delay=60) for _ in range(500)])
    app.enqueue("t.keep", {}, queue="bulk")
    calls: list[int] = []
    real = app.store.cancel_jobs_batch

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(app.store, "cancel_jobs_batch", spy)
    assert app.cancel_jobs(task="t.bulk") == 2_500
    assert calls == [hora.app.CANCEL_BATCH] * 6 and hora.app.CANCEL_BATCH == 500
    assert app.count_jobs() == {"cancelled": 2_500, "scheduled": 1}


def test_the_async_facade(app: Hora) -> None:
    job = app.enqueue("t.x", {}, delay=60, correlation_id="a")

    async def main() -> None:
        moved = await app.aio.reschedule_job(job.id, delay=120)
        assert moved.due_at == app.clock.now() + timedelta(seconds=120)
        assert (await app.aio.run_job_now(job.id)).due_at == app.clock.now()
        assert await app.aio.cancel_jobs(correlation_id="a") == 1

    asyncio.run(main())
    assert app.get_job(job.id).state is JobState.CANCELLED
