"""Job control on every store: a waiting job's new due time, and bulk cancels by filter in
bounded batches (docs/flow.md "Job control")."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest

from hora.errors import NotFound, TransitionConflict
from hora.models import Job
from hora.states import JobState
from hora.store import JobSelection, Store, open_store
from tests.store.test_conformance import LEASE, T0, claim, insert, new_job, state_of


def _reschedule(store: Store, job_id: str, due: timedelta, *, tenant: str = "default",
                reason: str = "moved") -> Job:
    return store.reschedule_job(job_id, tenant_id=tenant, due_at=T0 + due,
                                now=T0 + timedelta(seconds=1), reason=reason)


def test_reschedule_moves_the_due_time_and_records_it(store: Store) -> None:
    nj = new_job(due=T0 + timedelta(seconds=10))
    insert(store, nj)
    job = store.reschedule_job(nj.id, tenant_id="default", due_at=T0 + timedelta(hours=1),
                               now=T0 + timedelta(seconds=1), reason="rescheduled by test")
    assert job.state is JobState.SCHEDULED and job.due_at == T0 + timedelta(hours=1)
    assert job.state_reason == "rescheduled by test"
    events = store.get_job(nj.id, tenant_id="default").events
    last = events[-1]
    assert (last.from_state, last.to_state, last.reason, last.at) == (
        JobState.SCHEDULED, JobState.SCHEDULED, "rescheduled by test",
        T0 + timedelta(seconds=1))
    # not claimable at its old time, claimable at its new one
    assert claim(store, now=T0 + timedelta(seconds=10))[0] == []
    started, _ = claim(store, now=T0 + timedelta(hours=1))
    assert [j.id for j in started] == [nj.id]


def test_reschedule_earlier_makes_it_due_and_drops_a_reservation(store: Store) -> None:
    nj = new_job(due=T0 + timedelta(seconds=3))
    insert(store, nj)
    _, reserved = claim(store, "w1", horizon=T0 + timedelta(seconds=5), reserve_limit=5)
    assert [j.id for j in reserved] == [nj.id]
    job = _reschedule(store, nj.id, timedelta(0))
    assert job.lease_owner is None
    # the old holder cannot start it; any worker can claim it now
    at = T0 + timedelta(seconds=3)
    assert store.start_reserved([nj.id], owner="w1", now=at, lease_until=at + LEASE) == []
    started, _ = claim(store, "w2", now=T0 + timedelta(seconds=1))
    assert [j.id for j in started] == [nj.id]


def test_a_retrying_job_stays_retrying(store: Store) -> None:
    (job_id,) = insert(store, new_job(max_attempts=3))
    claim(store, "gone")
    later = T0 + LEASE + timedelta(seconds=1)
    store.rescue_expired(later)
    assert state_of(store, job_id) is JobState.RETRYING
    job = _reschedule(store, job_id, timedelta(days=1))
    assert job.state is JobState.RETRYING
    assert job.due_at == T0 + timedelta(days=1)
    last = store.get_job(job_id, tenant_id="default").events[-1]
    assert (last.from_state, last.to_state, last.attempt) == (
        JobState.RETRYING, JobState.RETRYING, 1)


def test_reschedule_refuses_running_finished_unknown_and_other_tenants(store: Store) -> None:
    running, done, theirs = new_job(), new_job(), new_job(tenant="b")
    insert(store, running, done, theirs)
    claim(store, limit=1)  # the first by id: running
    assert state_of(store, running.id) is JobState.RUNNING
    store.cancel_job(done.id, tenant_id="default", now=T0, reason="x")
    for job_id, state in ((running.id, "running"), (done.id, "cancelled")):
        with pytest.raises(TransitionConflict) as e:
            _reschedule(store, job_id, timedelta(hours=1))
        assert e.value.actual == state
    with pytest.raises(NotFound):
        _reschedule(store, "nope", timedelta(hours=1))
    with pytest.raises(NotFound):
        _reschedule(store, theirs.id, timedelta(hours=1))  # tenant default asks
    assert store.get_job(theirs.id, tenant_id="b").due_at == T0
    # nothing was recorded for the refused ones
    assert all(e.reason != "moved"
               for e in store.get_job(running.id, tenant_id="default").events)


# -- bulk cancel ------------------------------------------------------------------------------


def _cancel_all(store: Store, sel: JobSelection, limit: int = 500) -> tuple[int, int, int]:
    """(cancelled, asked to stop, batches) of a loop of batches, as the SDK runs it."""
    cancelled = requested = batches = 0
    after = None
    while True:
        b = store.cancel_jobs_batch(sel, now=T0 + timedelta(seconds=5), reason="opted out",
                                    after=after, limit=limit)
        batches += 1
        cancelled += len(b.cancelled)
        requested += len(b.requested)
        if b.last_id is None:
            return cancelled, requested, batches
        after = b.last_id


def test_bulk_cancel_by_correlation_id_touches_only_matching_waiting_jobs(store: Store) -> None:
    mine = [new_job(correlation="onboarding-u42", due=T0 + timedelta(days=d))
            for d in range(3)]
    other = new_job(correlation="onboarding-u43")
    theirs = new_job(correlation="onboarding-u42", tenant="b")
    running = new_job(correlation="onboarding-u42", queue="fast")
    insert(store, *mine, other, theirs, running)
    claim(store, queues=("fast",))
    sel = JobSelection(tenant_id="default", correlation_id="onboarding-u42")
    assert _cancel_all(store, sel) == (3, 0, 1)
    for nj in mine:
        job = store.get_job(nj.id, tenant_id="default")
        assert job.state is JobState.CANCELLED and job.state_reason == "opted out"
        assert job.events[-1].to_state is JobState.CANCELLED
        assert job.finished_at == T0 + timedelta(seconds=5)
    assert state_of(store, other.id) is JobState.SCHEDULED
    assert store.get_job(theirs.id, tenant_id="b").state is JobState.SCHEDULED
    still = store.get_job(running.id, tenant_id="default")
    assert still.state is JobState.RUNNING and not still.cancel_requested
    # again: nothing left to do
    assert _cancel_all(store, sel) == (0, 0, 1)


def test_bulk_cancel_asks_running_jobs_to_stop_once(store: Store) -> None:
    waiting = new_job(correlation="c", due=T0 + timedelta(hours=1))
    running = new_job(correlation="c")
    insert(store, waiting, running)
    claim(store)
    sel = JobSelection(tenant_id="default", correlation_id="c", include_running=True)
    assert _cancel_all(store, sel) == (1, 1, 1)
    job = store.get_job(running.id, tenant_id="default")
    assert job.state is JobState.RUNNING and job.cancel_requested
    assert job.state_reason == "opted out"
    status = store.extend_leases(owner="w1", now=T0, lease_until=T0 + LEASE)
    assert status.cancel_requested == {running.id}
    assert _cancel_all(store, sel) == (0, 0, 1)  # asked already: not counted again


@pytest.mark.parametrize("field,value,expected", [
    ("task", "send", {"a"}),
    ("queue", "mail", {"b"}),
    ("schedule_id", "sch_1", {"c"}),
    ("created_before", T0 + timedelta(seconds=1), {"a", "b", "c"}),
])
def test_bulk_cancel_filters(store: Store, field: str, value: object,
                             expected: set[str]) -> None:
    jobs = {
        "a": new_job("send"),
        "b": new_job("other", queue="mail"),
        "c": dataclasses.replace(new_job("other"), schedule_id="sch_1"),
    }
    insert(store, *jobs.values())
    late = new_job("send", queue="mail")
    insert(store, late, now=T0 + timedelta(seconds=2))
    jobs["late"] = late
    sel = JobSelection(tenant_id="default", **{field: value})  # type: ignore[arg-type]
    if field != "created_before":
        expected = expected | ({"late"} if field in ("task", "queue") else set())
    cancelled, _, _ = _cancel_all(store, sel)
    assert cancelled == len(expected)
    got = {name for name, nj in jobs.items() if state_of(store, nj.id) is JobState.CANCELLED}
    assert got == expected


def test_bulk_cancel_leaves_workflow_runs_alone_unless_named(store: Store) -> None:
    user = new_job("send", queue="q")
    internal = new_job("hora.workflow:signup", queue="q")
    insert(store, user, internal)
    assert _cancel_all(store, JobSelection(tenant_id="default", queue="q"))[0] == 1
    assert state_of(store, internal.id) is JobState.SCHEDULED
    sel = JobSelection(tenant_id="default", task="hora.workflow:signup")
    assert _cancel_all(store, sel)[0] == 1


def test_bulk_cancel_works_in_bounded_batches(store: Store) -> None:
    n = 2_500
    matching = [new_job(correlation="bulk", due=T0 + timedelta(seconds=i % 7))
                for i in range(n)]
    noise = [new_job(correlation="keep") for _ in range(300)]
    for i in range(0, n, 500):
        insert(store, *matching[i:i + 500])
    insert(store, *noise)
    sel = JobSelection(tenant_id="default", correlation_id="bulk")
    first = store.cancel_jobs_batch(sel, now=T0, reason="r", after=None, limit=500)
    assert len(first.cancelled) == 500 and first.last_id == max(first.cancelled)
    cancelled, requested, batches = _cancel_all(store, sel)
    assert (cancelled + len(first.cancelled), requested) == (n, 0)
    assert batches == 5  # 4 full batches of 500, then an empty one says it is over
    assert store.count_jobs(tenant_id="default") == {"cancelled": n, "scheduled": 300}


def test_bulk_cancel_races_claims_without_losing_or_double_counting(database_url: str) -> None:
    """Workers claim while a bulk cancel runs: every job ends up either cancelled (counted
    once) or running, never both, never neither."""
    n = 600
    stores = [open_store(database_url) for _ in range(3)]
    try:
        jobs = [new_job(correlation="race") for _ in range(n)]
        insert(stores[0], *jobs)
        claimed: list[str] = []
        counted: list[int] = []
        errors: list[BaseException] = []

        def work(s: Store, owner: str) -> None:
            try:
                while True:
                    started, _ = claim(s, owner, limit=20)
                    if not started:
                        return
                    claimed.extend(j.id for j in started)
            except BaseException as e:  # reported below
                errors.append(e)

        def cancel() -> None:
            try:
                counted.append(_cancel_all(stores[2], JobSelection(
                    tenant_id="default", correlation_id="race"), limit=50)[0])
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(stores[0], "w1")),
                   threading.Thread(target=work, args=(stores[1], "w2")),
                   threading.Thread(target=cancel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads) and errors == []
        counts = stores[0].count_jobs(tenant_id="default")
        assert counts.get("running", 0) == len(claimed) == len(set(claimed))
        assert counts.get("cancelled", 0) == counted[0]
        assert len(claimed) + counted[0] == n
    finally:
        for s in stores:
            s.close()
