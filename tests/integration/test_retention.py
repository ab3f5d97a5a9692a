"""Retention end to end, on both stores: the policy and its overrides, the scheduler role's
pass, the metric, and pruning while a worker runs jobs on the same store."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from hora import FakeClock, Hora
from hora.models import RetentionPolicy
from hora.observability import PRUNED_ROWS
from hora.retention import DEFAULT_POLICY, Retention, parse_policy
from hora.scheduler import Scheduler
from hora.testing import await_condition, run_until_idle

DAY = timedelta(days=1)


def ran(app: Hora, n: int, *, task: str = "job") -> list[str]:
    jobs = [app.enqueue(task, {"i": i}) for i in range(n)]
    run_until_idle(app)
    return [j.id for j in jobs]


def job_ids(app: Hora) -> set[str]:
    return {j.id for j in app.list_jobs(limit=1000, include_internal=True).items}


@pytest.fixture
def tasks(app: Hora) -> Hora:
    @app.task(name="job")
    def job(i: int) -> int:
        return i

    @app.task(name="boom", retry=None)
    def boom(i: int) -> None:
        raise ValueError("no")

    for tenant in ("a", "b"):
        view = app.for_tenant(tenant)
        assert "job" in view.tasks
    return app


def test_the_default_policy_keeps_two_weeks_of_jobs_and_a_month_of_dead_letters(
        tasks: Hora, clock: FakeClock) -> None:
    app = tasks
    old = ran(app, 3)
    from hora import RetryPolicy

    dead = app.enqueue("boom", {"i": 1}, retry=RetryPolicy(max_attempts=1))
    run_until_idle(app)
    assert app.get_job(dead.id).state == "dead"
    clock.advance(timedelta(days=10))
    young = ran(app, 2)
    waiting = app.enqueue("job", {"i": 9}, delay=timedelta(days=100))
    clock.advance(timedelta(days=5))  # old: 15 days, young: 5 days, dead: 15 days
    retention = Retention(app.store, clock, pause=0)
    assert retention.count().counts["jobs"] == 3
    report = retention.prune()
    assert report.counts["jobs"] == 3 and report.counts["dead"] == 0
    assert job_ids(app) == {*young, waiting.id, dead.id}
    clock.advance(timedelta(days=16))  # dead: 31 days
    report = retention.prune()
    assert report.counts == {"jobs": 2, "dead": 1, "ticks": 0, "workflows": 0,
                             "idempotency": 0}
    assert job_ids(app) == {waiting.id}
    assert set(old).isdisjoint(job_ids(app))


def test_a_tenants_override_applies_to_it_alone(tasks: Hora, clock: FakeClock) -> None:
    a, b = tasks.for_tenant("a"), tasks.for_tenant("b")
    a_ids, b_ids = ran(a, 2), ran(b, 2)
    tasks.store.set_retention("a", RetentionPolicy(jobs=DAY.total_seconds()),
                              now=clock.now())
    clock.advance(2 * DAY)
    retention = Retention(tasks.store, clock, pause=0)
    assert retention.count().counts["jobs"] == 2
    assert retention.count(tenant_id="b").counts["jobs"] == 0
    assert retention.prune().counts["jobs"] == 2
    assert job_ids(a) == set() and job_ids(b) == set(b_ids)
    assert a_ids
    # a longer override keeps a tenant's jobs past the global age
    tasks.store.set_retention("b", RetentionPolicy(jobs=60 * DAY.total_seconds()),
                              now=clock.now())
    clock.advance(20 * DAY)
    assert retention.prune().counts["jobs"] == 0
    assert job_ids(b) == set(b_ids)


def test_a_dry_run_writes_nothing(tasks: Hora, clock: FakeClock) -> None:
    ids = ran(tasks, 4)
    clock.advance(30 * DAY)
    retention = Retention(tasks.store, clock, pause=0)
    assert retention.count(["jobs"]).counts == {"jobs": 4}
    assert retention.count(["jobs"], older_than=60 * DAY.total_seconds()).counts == {
        "jobs": 0}
    assert job_ids(tasks) == set(ids)


def test_prune_goes_in_batches_of_its_size(tasks: Hora, clock: FakeClock) -> None:
    ran(tasks, 7)
    clock.advance(30 * DAY)
    seen: list[tuple[str, int]] = []
    report = Retention(tasks.store, clock, batch_size=3, pause=0).prune(
        ["jobs"], on_batch=lambda kind, n: seen.append((kind, n)))
    assert seen == [("jobs", 3), ("jobs", 3), ("jobs", 1)]
    assert report.batches == 3 and report.total == 7


def test_a_pass_is_bounded_and_the_next_is_due_at_once_while_more_is_left(
        tasks: Hora, clock: FakeClock) -> None:
    ran(tasks, 5)
    clock.advance(30 * DAY)
    before = PRUNED_ROWS.labels("jobs")._value.get()
    retention = Retention(tasks.store, clock, pause=0, interval=60, batch_size=2,
                          max_batches=2)
    first = retention.pass_if_due()
    assert first is not None and first.counts["jobs"] == 4 and first.more
    assert len(job_ids(tasks)) == 1
    second = retention.pass_if_due()  # more was left: due at once
    assert second is not None and second.counts["jobs"] == 1 and not second.more
    assert retention.pass_if_due() is None  # all done: not again before the interval
    clock.advance(timedelta(seconds=60))
    third = retention.pass_if_due()
    assert third is not None and third.total == 0
    assert PRUNED_ROWS.labels("jobs")._value.get() - before == 5


def test_the_scheduler_loop_prunes_beside_its_schedule_passes(
        tasks: Hora, clock: FakeClock) -> None:
    ran(tasks, 5)
    clock.advance(30 * DAY)
    retention = Retention(tasks.store, clock, pause=0, batch_size=2, max_batches=2)
    scheduler = Scheduler(tasks, retention=retention, interval=0.01)

    async def until_pruned() -> None:
        run = asyncio.create_task(scheduler.run())
        await await_condition(lambda: not job_ids(tasks), timeout=20, message="pruned")
        scheduler.stop()
        while not run.done():  # the loops sleep on the fake clock: wake them
            clock.advance(timedelta(seconds=0.01))
            await asyncio.sleep(0.01)
        await run

    asyncio.run(until_pruned())
    assert job_ids(tasks) == set()


def test_policy_parsing() -> None:
    p = parse_policy("jobs=7d, dead=off,ticks=12h")
    assert p.jobs == 7 * 86400 and p.dead is None and p.ticks == 12 * 3600
    assert p.workflows == DEFAULT_POLICY.workflows
    for bad in ("jobs", "nope=1d", "jobs=0", "jobs=soon"):
        with pytest.raises(Exception, match="retention"):
            parse_policy(bad)


def test_internal_jobs_are_hidden_unless_asked_for(tasks: Hora) -> None:
    user = tasks.enqueue("job", {"i": 1})
    internal = tasks.enqueue("hora.workflow:order", {"workflow_id": "w"})
    assert [j.id for j in tasks.list_jobs().items] == [user.id]
    assert {j.id for j in tasks.list_jobs(include_internal=True).items} == {
        user.id, internal.id}
    assert tasks.count_jobs() == {"scheduled": 1}
    assert tasks.count_jobs(include_internal=True) == {"scheduled": 2}


# -- under load ---------------------------------------------------------------------------


def test_pruning_while_a_worker_runs_never_takes_a_waiting_or_running_job(
        database_url: str) -> None:
    """A worker runs jobs (slowly enough to be caught running) while another thread prunes
    everything finished as soon as it finishes: every job runs exactly once and is pruned
    only after it finished; nothing is lost."""
    app = Hora(database_url)  # the system clock: the worker and the pruner race for real
    runs: dict[int, int] = {}
    lock = threading.Lock()

    @app.task(name="slow")
    async def slow(i: int) -> None:
        with lock:
            runs[i] = runs.get(i, 0) + 1
        await asyncio.sleep(0.002)

    n = 300
    try:
        jobs = app.enqueue_many([slow.request(i=i) for i in range(n)])
        # and some due in an hour: waiting all along, never to be pruned
        waiting = app.enqueue_many([replace(slow.request(i=n + i), delay=3600)
                                    for i in range(20)])
        retention = Retention(app.store, app.clock, batch_size=20, pause=0)
        pruned = 0
        done = threading.Event()

        def worker() -> None:
            try:
                run_until_idle(app, concurrency=8)
            finally:
                done.set()

        t = threading.Thread(target=worker)
        t.start()
        batches = 0
        while not done.is_set():
            report = retention.prune(["jobs"], older_than=1e-6)
            pruned += report.total
            batches += report.batches
        t.join()
        pruned += retention.prune(["jobs"], older_than=1e-6).total
        assert batches > 1
        assert runs == {i: 1 for i in range(n)}  # every job ran, once
        left = app.list_jobs(limit=1000).items
        assert {j.id for j in left} == {j.id for j in waiting}
        assert all(j.state == "scheduled" for j in left)
        assert pruned == len(jobs)  # nothing lost, nothing pruned twice
    finally:
        app.close()


def test_serve_runs_retention_in_the_scheduler_role_only(app: Hora) -> None:
    from hora.serve import ServeOptions, _retention

    policy = parse_policy("jobs=1d")
    every = _retention(app, ServeOptions(retention=policy))
    assert every is not None and every.policy == policy and every.duty == 0.1
    assert _retention(app, ServeOptions(roles=frozenset({"api", "worker"}))) is None
    assert _retention(app, ServeOptions(prune=False)) is None
