"""``Hora`` as services: ``app.schedules``, ``app.workflows`` and ``app.locks`` behind the
methods users call, the one typed async face ``app.aio``, and a worker that fast-forwards
any clock declaring the skip capability (not only ``FakeClock``). On both stores."""

from __future__ import annotations

import asyncio
import inspect
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hora import FakeClock, Hora, JobState, Retry
from hora.clock import SkippingClock
from hora.locks import LockService
from hora.models import Job
from hora.schedules import ScheduleService
from hora.testing import run_until_idle
from hora.workflows import WorkflowContext, WorkflowService

T0 = datetime(2030, 1, 1, tzinfo=UTC)


# -- the services -----------------------------------------------------------------------------


def test_the_app_holds_its_services_and_delegates_to_them(app: Hora) -> None:
    assert isinstance(app.schedules, ScheduleService)
    assert isinstance(app.workflows, WorkflowService)
    assert isinstance(app.locks, LockService)

    @app.task(name="report")
    def report() -> None: ...

    made = app.create_schedule("report", trigger="0 * * * *")
    assert app.schedules.get_schedule(made.id) == made  # one store, one service
    assert Hora.create_schedule.__doc__ == ScheduleService.create_schedule.__doc__
    lease = app.try_lock("export")
    assert lease is not None and app.locks.get_lock("export") is not None
    assert app.locks.try_lock("export") is None  # the same lock, whichever face asks
    assert lease.release()


def test_a_tenants_view_has_services_bound_to_that_tenant(app: Hora) -> None:
    @app.workflow(name="hello")
    async def hello(ctx: WorkflowContext) -> str:
        return "hi"

    acme = app.for_tenant("acme")
    assert acme.schedules is not app.schedules and acme.schedules.tenant_id == "acme"
    assert acme.workflows.tenant_id == "acme" and acme.locks.tenant_id == "acme"
    assert "hello" in acme.workflows.definitions  # the registry is the app's, shared
    wf = acme.start_workflow("hello", workflow_id="w-1")
    assert wf.tenant_id == "acme"
    run_until_idle(app)
    assert acme.get_workflow("w-1").result == "hi"
    assert app.list_workflows().items == []  # not the default tenant's


def test_process_due_is_the_public_scheduler_pass(app: Hora, clock: FakeClock) -> None:
    @app.task(name="tick")
    def tick() -> None: ...

    app.create_schedule("tick", trigger="* * * * *")
    clock.advance(60)
    fired, processed = app.schedules.process_due(limit=100)
    assert (fired, processed) == (1, 1)
    assert app.schedules.process_due() == (0, 0)  # nothing due any more


# -- the async face -----------------------------------------------------------------------


def test_the_async_face_has_the_sync_signatures(app: Hora) -> None:
    for name in ("enqueue", "get_job", "list_jobs", "create_schedule", "start_workflow",
                 "try_lock", "approve"):
        assert inspect.signature(getattr(app.aio, name)) == inspect.signature(
            getattr(app, name)), name
    assert inspect.iscoroutinefunction(app.aio.get_job)


def test_await_enqueue_and_get_job_through_app_aio(app: Hora) -> None:
    @app.task(name="add")
    async def add(a: int, b: int) -> int:
        return a + b

    async def main() -> tuple[Job, Job, Job]:
        job = await app.aio.enqueue("add", {"a": 1, "b": 2})
        same = await app.aio.get_job(job.id)
        older = await app.aenqueue("add", {"a": 2, "b": 3})  # the older spelling stays
        return job, same, older

    job, same, older = asyncio.run(main())
    assert same.id == job.id and same.state is JobState.SCHEDULED and same.payload == {
        "a": 1, "b": 2}
    run_until_idle(app)
    assert asyncio.run(app.aio.get_job(older.id)).result == 5


def test_async_lock_through_app_aio(app: Hora) -> None:
    async def main() -> tuple[int, bool]:
        async with app.aio.lock("export", ttl=30) as lease:
            taken = await app.aio.try_lock("export")
            return lease.token, taken is None

    token, refused = asyncio.run(main())
    assert token == 1 and refused
    assert app.get_lock("export") is not None and app.try_lock("export") is not None


# -- the skip capability --------------------------------------------------------------------


class SteppingClock:
    """Not a FakeClock: the least clock that declares ``skip_to`` (and so can be skipped)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, instant: datetime) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if instant <= self._now:
                return
            self._sleepers.append((instant, fut))
        await fut

    def skip_to(self, instant: datetime) -> None:
        with self._lock:
            self._now = max(self._now, instant)
            due = [f for at, f in self._sleepers if at <= self._now]
            self._sleepers = [(at, f) for at, f in self._sleepers if at > self._now]
        for fut in due:
            if not fut.done() and not fut.get_loop().is_closed():
                fut.get_loop().call_soon_threadsafe(
                    lambda f=fut: None if f.done() else f.set_result(None))


class WallLikeClock(SteppingClock):
    """The same clock without the capability: a worker must not skip it."""

    skip_to = None  # type: ignore[assignment]


def _app_on(database_url: str, clock: object, tmp_path: Path) -> Hora:
    return Hora(database_url, clock=clock)  # type: ignore[arg-type]


def test_the_worker_skips_any_clock_that_declares_the_capability(
        database_url: str, tmp_path: Path) -> None:
    clock = SteppingClock(T0)
    assert isinstance(clock, SkippingClock) and not isinstance(clock, FakeClock)
    app = _app_on(database_url, clock, tmp_path)
    tries: list[datetime] = []

    @app.task(name="flaky")
    def flaky() -> str:
        tries.append(clock.now())
        if len(tries) == 1:
            raise Retry(delay=3600)
        return "done"

    try:
        job = app.enqueue("flaky", delay=timedelta(days=3))
        run_until_idle(app)
        assert app.get_job(job.id).state is JobState.SUCCEEDED
        assert tries == [T0 + timedelta(days=3), T0 + timedelta(days=3, hours=1)]
    finally:
        app.close()


def test_a_clock_without_the_capability_is_not_skipped(database_url: str,
                                                        tmp_path: Path) -> None:
    clock = WallLikeClock(T0)
    assert not isinstance(clock, SkippingClock)
    app = _app_on(database_url, clock, tmp_path)

    @app.task(name="later")
    def later() -> None: ...

    try:
        job = app.enqueue("later", delay=timedelta(days=3))
        run_until_idle(app)  # real-time semantics: nothing is due now, so it returns
        assert app.get_job(job.id).state is JobState.SCHEDULED and clock.now() == T0
    finally:
        app.close()


@pytest.mark.parametrize("until_days", [2])
def test_until_bounds_the_skip_of_any_skipping_clock(database_url: str, tmp_path: Path,
                                                     until_days: int) -> None:
    clock = SteppingClock(T0)
    app = _app_on(database_url, clock, tmp_path)

    @app.task(name="later")
    def later() -> None: ...

    try:
        job = app.enqueue("later", delay=timedelta(days=3))
        run_until_idle(app, until=T0 + timedelta(days=until_days))
        assert clock.now() == T0 + timedelta(days=until_days)
        assert app.get_job(job.id).state is JobState.SCHEDULED
    finally:
        app.close()
