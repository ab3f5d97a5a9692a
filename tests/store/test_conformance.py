"""One suite, every store: what hora needs from a database, checked on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hora.errors import IdempotencyConflict, NotFound, TransitionConflict
from hora.ids import new_id
from hora.models import ErrorInfo, JobFilter, NewJob
from hora.states import JobState
from hora.store import Outcome, Store, open_store
from hora.store.queries import load_migrations

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def new_job(task: str = "t", *, payload: dict[str, Any] | None = None, due: datetime = T0,
            priority: int = 0, queue: str = "default", key: str | None = None,
            max_attempts: int = 3, tenant: str = "default", correlation: str | None = None,
            ) -> NewJob:
    text = json.dumps(payload or {}, sort_keys=True)
    return NewJob(id=new_id(), task=task, payload_json=text, fingerprint=f"{task}|{text}",
                  queue=queue, priority=priority, due_at=due, max_attempts=max_attempts,
                  retry_policy_json=None, timeout=None, idempotency_key=key,
                  correlation_id=correlation, tenant_id=tenant)


def insert(store: Store, *jobs: NewJob, now: datetime = T0) -> list[str]:
    return [job_id for job_id, _ in store.insert_jobs(list(jobs), now)]


def claim(store: Store, owner: str = "w1", *, now: datetime = T0, limit: int = 10,
          queues: tuple[str, ...] = ("default",), tasks: list[str] | None = None,
          horizon: datetime | None = None, reserve_limit: int = 0) -> Any:
    return store.claim_jobs(owner=owner, queues=queues, tasks=tasks, now=now,
                            lease_until=now + LEASE, limit=limit, horizon=horizon,
                            reserve_limit=reserve_limit)


def state_of(store: Store, job_id: str) -> JobState:
    return store.get_job(job_id, tenant_id="default", history=False).state


@contextmanager
def raw(database_url: str) -> Iterator[Any]:
    """A plain driver connection, to try what hora's own code never would."""
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url[len("sqlite:///"):], isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            yield conn


# -- schema -----------------------------------------------------------------------------------


def test_migrate_is_idempotent_and_recorded(store: Store) -> None:
    assert store.migrate() == []
    expected = [m.version for m in load_migrations(store.dialect)]
    assert expected == list(range(1, 21))  # 12: workers; 13: results; 14: task registry;
    # 15: retention; 16: flow control; 17: reservable index; 18: recipients;
    # 19: templates and inbox; 20: notifications
    assert store.applied_migrations() == expected  # type: ignore[attr-defined]


def open_store_dialect(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql") else "sqlite"


def test_concurrent_first_starts_migrate_exactly_once(database_url: str) -> None:
    """Several processes starting at once on an empty database: one applies, none fails."""
    results: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        try:
            s = open_store(database_url, migrate=False)
            barrier.wait()
            results.append(s.migrate())
            s.close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    every = [m.version for m in load_migrations(open_store_dialect(database_url))]
    assert sorted(results) == [[], [], [], [], [], every]


def test_check_constraints_reject_impossible_rows(store: Store, database_url: str) -> None:
    (job_id,) = insert(store, new_job())
    for bad in ("UPDATE hora_jobs SET state = 'bogus' WHERE id = '{id}'",
                "UPDATE hora_jobs SET state = 'running' WHERE id = '{id}'",  # no lease
                "UPDATE hora_jobs SET state = 'succeeded' WHERE id = '{id}'"):  # no finished_at
        with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)check"):
            conn.execute(bad.format(id=job_id))
    assert state_of(store, job_id) is JobState.SCHEDULED


# -- enqueue and read back --------------------------------------------------------------------


def test_insert_and_get_round_trip(store: Store) -> None:
    nj = new_job("send", payload={"user": "u1", "n": [1, 2]}, priority=3, queue="mail",
                 correlation="corr-1", due=T0 + timedelta(minutes=5))
    insert(store, nj)
    job = store.get_job(nj.id, tenant_id="default")
    assert (job.task, job.payload, job.priority, job.queue) == ("send", {"user": "u1", "n": [1, 2]},
                                                                3, "mail")
    assert job.state is JobState.SCHEDULED and job.attempt == 0 and job.max_attempts == 3
    assert job.due_at == T0 + timedelta(minutes=5) and job.due_at.tzinfo is not None
    assert job.correlation_id == "corr-1" and job.created_at == T0
    assert [(e.from_state, e.to_state) for e in job.events] == [(None, JobState.SCHEDULED)]


def test_get_job_of_another_tenant_is_not_found(store: Store) -> None:
    (job_id,) = insert(store, new_job(tenant="acme"))
    assert store.get_job(job_id, tenant_id="acme").id == job_id
    with pytest.raises(NotFound):
        store.get_job(job_id, tenant_id="default")
    with pytest.raises(NotFound):
        store.get_job("no-such-id", tenant_id="acme")


# -- idempotency ------------------------------------------------------------------------------


def test_same_key_same_payload_returns_existing_job(store: Store) -> None:
    first = new_job(payload={"a": 1}, key="k1")
    again = new_job(payload={"a": 1}, key="k1")
    assert store.insert_jobs([first], T0) == [(first.id, True)]
    assert store.insert_jobs([again], T0) == [(first.id, False)]
    assert store.count_jobs(tenant_id="default") == {"scheduled": 1}


def test_same_key_different_payload_conflicts_and_writes_nothing(store: Store) -> None:
    insert(store, new_job(payload={"a": 1}, key="k1"))
    bystander = new_job(payload={"b": 2})
    with pytest.raises(IdempotencyConflict) as err:
        store.insert_jobs([bystander, new_job(payload={"a": 2}, key="k1")], T0)
    assert "k1" in str(err.value)
    # all or nothing: the job before the conflict in the same batch was not kept either
    with pytest.raises(NotFound):
        store.get_job(bystander.id, tenant_id="default")
    assert store.count_jobs(tenant_id="default") == {"scheduled": 1}


def test_keys_are_per_tenant(store: Store) -> None:
    a, b = new_job(key="k", tenant="a"), new_job(key="k", tenant="b", payload={"x": 1})
    assert [created for _, created in store.insert_jobs([a, b], T0)] == [True, True]


def test_twenty_threads_one_key_make_one_job(database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(20)]
    barrier = threading.Barrier(20)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def go(s: Store) -> None:
        try:
            barrier.wait()
            results.extend(s.insert_jobs([new_job(payload={"same": True}, key="once")], T0))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors
        assert len(results) == 20
        assert len({job_id for job_id, _ in results}) == 1
        assert sum(created for _, created in results) == 1
        assert stores[0].count_jobs(tenant_id="default") == {"scheduled": 1}
    finally:
        for s in stores:
            s.close()


# -- claiming ---------------------------------------------------------------------------------


def test_claim_orders_due_jobs_by_priority_then_due_time(store: Store) -> None:
    late_low = new_job(priority=5, due=T0 - timedelta(seconds=1))
    early_low = new_job(priority=5, due=T0 - timedelta(seconds=9))
    late_high = new_job(priority=0, due=T0 - timedelta(seconds=1))
    not_due = new_job(priority=-10, due=T0 + timedelta(seconds=1))
    insert(store, late_low, early_low, late_high, not_due, now=T0 - timedelta(seconds=10))
    started, reserved = claim(store, limit=2)
    assert [j.id for j in started] == [late_high.id, early_low.id]
    assert reserved == []
    started, _ = claim(store, limit=10)
    assert [j.id for j in started] == [late_low.id]
    assert state_of(store, not_due.id) is JobState.SCHEDULED


def test_claim_starts_an_attempt_under_a_lease(store: Store) -> None:
    (job_id,) = insert(store, new_job())
    (started,), _ = claim(store, "w1")
    assert started.id == job_id and started.attempt == 1
    job = store.get_job(job_id, tenant_id="default")
    assert job.state is JobState.RUNNING and job.lease_owner == "w1"
    assert job.lease_expires_at == T0 + LEASE and job.started_at == T0
    assert [a.number for a in job.attempts] == [1] and job.attempts[0].ended_at is None
    assert job.events[-1].from_state is JobState.SCHEDULED
    assert job.events[-1].to_state is JobState.RUNNING
    # a running job is not claimed again
    assert claim(store, "w2") == ([], [])


def test_claim_respects_queues_and_tasks(store: Store) -> None:
    a = new_job("a", queue="q1")
    b = new_job("b", queue="q2")
    c = new_job("c", queue="q1")
    insert(store, a, b, c)
    started, _ = claim(store, queues=("q1",), tasks=["a", "b"])
    assert [j.id for j in started] == [a.id]
    started, _ = claim(store, queues=("q1", "q2"))
    assert sorted(j.id for j in started) == sorted([b.id, c.id])


def test_reservations_hold_upcoming_jobs_until_their_lease_expires(store: Store) -> None:
    soon = new_job(due=T0 + timedelta(seconds=2))
    later = new_job(due=T0 + timedelta(seconds=1))
    far = new_job(due=T0 + timedelta(seconds=60))
    insert(store, soon, later, far)
    started, reserved = claim(store, "w1", horizon=T0 + timedelta(seconds=5), reserve_limit=10)
    assert started == [] and [j.id for j in reserved] == [later.id, soon.id]
    job = store.get_job(soon.id, tenant_id="default")
    assert job.state is JobState.SCHEDULED and job.lease_owner == "w1"
    # another worker cannot take a live reservation, even once the job is due ...
    assert claim(store, "w2", now=T0 + timedelta(seconds=3)) == ([], [])
    # ... but can once the reservation's lease has expired
    started, _ = claim(store, "w2", now=T0 + LEASE + timedelta(seconds=1))
    assert sorted(j.id for j in started) == sorted([soon.id, later.id])


def test_start_reserved_only_for_the_holder_and_only_once(store: Store) -> None:
    nj = new_job(due=T0 + timedelta(seconds=1))
    insert(store, nj)
    claim(store, "w1", horizon=T0 + timedelta(seconds=5), reserve_limit=10)
    at = T0 + timedelta(seconds=1)
    assert store.start_reserved([nj.id], owner="w2", now=at, lease_until=at + LEASE) == []
    assert store.start_reserved([nj.id], owner="w1", now=at, lease_until=at + LEASE) == [nj.id]
    assert store.start_reserved([nj.id], owner="w1", now=at, lease_until=at + LEASE) == []
    job = store.get_job(nj.id, tenant_id="default")
    assert job.state is JobState.RUNNING and job.attempt == 1 and job.started_at == at


def test_next_due_at_ignores_leased_and_other_queues(store: Store) -> None:
    insert(store, new_job(due=T0 + timedelta(seconds=30), queue="other"),
           new_job(due=T0 + timedelta(seconds=20)))
    assert store.next_due_at(queues=["default"], tasks=None, now=T0) == T0 + timedelta(
        seconds=20)
    claim(store, horizon=T0 + timedelta(seconds=25), reserve_limit=5)
    assert store.next_due_at(queues=["default"], tasks=None, now=T0) is None


# -- finishing: every move out of running ----------------------------------------------------


def _run_one(store: Store, owner: str = "w1", now: datetime = T0) -> tuple[str, int]:
    (job_id,) = insert(store, new_job(), now=now)
    (started,), _ = claim(store, owner, now=now)
    return job_id, started.attempt


@pytest.mark.parametrize("state,outcome", [
    ("succeeded", "succeeded"), ("retrying", "failed"), ("dead", "failed"),
    ("cancelled", "cancelled"), ("scheduled", "released"),
])
def test_finish_moves_out_of_running(store: Store, state: str, outcome: str) -> None:
    job_id, attempt = _run_one(store)
    err = None if state == "succeeded" else ErrorInfo("ValueError", "bad", "Traceback...")
    due = T0 + timedelta(seconds=10) if state == "retrying" else None
    later = T0 + timedelta(seconds=1)
    applied = store.finish_jobs([Outcome(job_id, attempt, "w1", state, outcome, T0,
                                         result_json='{"ok":1}' if state == "succeeded" else None,
                                         error=err, due_at=due, reason="why")], later)
    assert applied == [job_id]
    job = store.get_job(job_id, tenant_id="default")
    assert job.state == state and job.lease_owner is None and job.state_reason == "why"
    assert job.events[-1].from_state is JobState.RUNNING and job.events[-1].to_state == state
    (att,) = job.attempts
    assert (att.number, att.outcome, att.worker_id) == (1, outcome, "w1")
    assert att.started_at == T0 and att.ended_at == later
    if state == "succeeded":
        assert job.result == {"ok": 1} and job.finished_at == later
    elif err is not None:
        assert att.error == err and job.last_error == err
    if state == "retrying":
        assert job.due_at == due and job.finished_at is None
    if state in ("dead", "cancelled"):
        assert job.finished_at == later


def test_lost_lease_or_stale_attempt_cannot_finish(store: Store) -> None:
    job_id, attempt = _run_one(store, "w1")
    stale = [Outcome(job_id, attempt, "w2", "succeeded", "succeeded", T0),  # not the owner
             Outcome(job_id, attempt + 1, "w1", "succeeded", "succeeded", T0)]  # not this attempt
    assert store.finish_jobs(stale, T0) == []
    assert state_of(store, job_id) is JobState.RUNNING
    ok = Outcome(job_id, attempt, "w1", "succeeded", "succeeded", T0)
    assert store.finish_jobs([ok], T0) == [job_id]
    assert store.finish_jobs([ok], T0) == []  # never twice
    assert len(store.get_job(job_id, tenant_id="default").attempts) == 1


def test_finish_applies_a_batch_and_skips_only_the_stale(store: Store) -> None:
    ids = insert(store, *(new_job() for _ in range(5)))
    started, _ = claim(store, "w1")
    outcomes = [Outcome(j.id, j.attempt, "w1", "succeeded", "succeeded", T0) for j in started]
    outcomes[2] = Outcome(started[2].id, 7, "w1", "succeeded", "succeeded", T0)
    applied = store.finish_jobs(outcomes, T0)
    assert sorted(applied) == sorted(set(ids) - {started[2].id})


# -- leases -----------------------------------------------------------------------------------


def test_heartbeat_extends_leases_and_reports_cancel_requests(store: Store) -> None:
    a, _ = _run_one(store, "w1")
    b, _ = _run_one(store, "w1")
    _run_one(store, "w2")
    store.cancel_job(b, tenant_id="default", now=T0, reason="stop")
    status = store.extend_leases(owner="w1", now=T0, lease_until=T0 + timedelta(minutes=5))
    assert status.held == {a, b} and status.cancel_requested == {b}
    assert store.get_job(a, tenant_id="default").lease_expires_at == T0 + timedelta(minutes=5)


def test_rescue_returns_expired_jobs_and_buries_on_last_attempt(store: Store) -> None:
    (retry_id, dead_id, alive_id) = insert(store, new_job(max_attempts=2),
                                           new_job(max_attempts=1), new_job(max_attempts=2))
    claim(store, "dead-worker")
    store.extend_leases(owner="dead-worker", now=T0, lease_until=T0 + LEASE)
    # only the third job's lease is renewed by a live worker
    with_live = store.get_job(alive_id, tenant_id="default")
    assert with_live.state is JobState.RUNNING
    later = T0 + LEASE + timedelta(seconds=1)
    assert store.rescue_expired(T0 + LEASE - timedelta(seconds=1)) == []
    rescued = store.rescue_expired(later)
    assert sorted(rescued) == sorted([retry_id, dead_id, alive_id])
    retried = store.get_job(retry_id, tenant_id="default")
    assert retried.state is JobState.RETRYING and retried.due_at == later
    assert retried.attempts[0].outcome == "lost" and retried.lease_owner is None
    assert retried.last_error is not None and "dead-worker" in retried.last_error.message
    assert state_of(store, dead_id) is JobState.DEAD
    # the rescued job runs again on another worker, as attempt 2
    started, _ = claim(store, "w2", now=later)
    assert {j.id: j.attempt for j in started}[retry_id] == 2


def test_release_puts_running_and_reserved_jobs_back(store: Store) -> None:
    job_id, attempt = _run_one(store, "w1")
    (upcoming,) = insert(store, new_job(due=T0 + timedelta(seconds=2)))
    claim(store, "w1", horizon=T0 + timedelta(seconds=5), reserve_limit=5)
    n = store.release_jobs([Outcome(job_id, attempt, "w1", "scheduled", "released", T0,
                                    reason="shutdown")], owner="w1", now=T0)
    assert n == 2
    job = store.get_job(job_id, tenant_id="default")
    assert job.state is JobState.SCHEDULED and job.attempts[0].outcome == "released"
    assert store.get_job(upcoming, tenant_id="default").lease_owner is None
    started, _ = claim(store, "w2")
    assert [j.id for j in started] == [job_id]


# -- control: cancel, replay, discard ---------------------------------------------------------


def test_cancel_waiting_job(store: Store) -> None:
    (job_id,) = insert(store, new_job(due=T0 + timedelta(hours=1)))
    job = store.cancel_job(job_id, tenant_id="default", now=T0, reason="no longer needed")
    assert job.state is JobState.CANCELLED and job.state_reason == "no longer needed"
    with pytest.raises(TransitionConflict):
        store.cancel_job(job_id, tenant_id="default", now=T0, reason="again")
    assert claim(store, now=T0 + timedelta(hours=2)) == ([], [])


def test_cancel_retrying_job(store: Store) -> None:
    job_id, attempt = _run_one(store)
    store.finish_jobs([Outcome(job_id, attempt, "w1", "retrying", "failed", T0,
                               due_at=T0 + timedelta(minutes=1))], T0)
    assert store.cancel_job(job_id, tenant_id="default", now=T0,
                            reason="x").state is JobState.CANCELLED


def test_cancel_running_job_requests_it(store: Store) -> None:
    job_id, _ = _run_one(store)
    job = store.cancel_job(job_id, tenant_id="default", now=T0, reason="user asked")
    assert job.state is JobState.RUNNING and job.cancel_requested


def test_cancel_finished_job_conflicts(store: Store) -> None:
    job_id, attempt = _run_one(store)
    store.finish_jobs([Outcome(job_id, attempt, "w1", "succeeded", "succeeded", T0)], T0)
    with pytest.raises(TransitionConflict) as err:
        store.cancel_job(job_id, tenant_id="default", now=T0, reason="late")
    assert err.value.actual == "succeeded"


def _bury(store: Store) -> str:
    job_id, attempt = _run_one(store)
    store.finish_jobs([Outcome(job_id, attempt, "w1", "dead", "failed", T0,
                               error=ErrorInfo("E", "m"))], T0)
    return job_id


def test_replay_links_a_new_job_to_the_dead_one(store: Store) -> None:
    dead_id = _bury(store)
    later = T0 + timedelta(minutes=1)
    (new,) = store.replay_jobs([dead_id], tenant_id="default", now=later)
    assert new.replay_of == dead_id and new.state is JobState.SCHEDULED and new.attempt == 0
    assert new.due_at == later and new.idempotency_key is None
    old = store.get_job(dead_id, tenant_id="default")
    assert old.state is JobState.REPLAYED and old.replayed_as == new.id
    with pytest.raises(TransitionConflict):
        store.replay_jobs([dead_id], tenant_id="default", now=later)


def test_discard_dead_only(store: Store) -> None:
    dead_id = _bury(store)
    (live,) = insert(store, new_job())
    with pytest.raises(TransitionConflict):
        store.discard_jobs([dead_id, live], tenant_id="default", now=T0)
    assert state_of(store, dead_id) is JobState.DEAD  # the batch was not half-applied
    assert store.discard_jobs([dead_id], tenant_id="default", now=T0) == [dead_id]
    assert state_of(store, dead_id) is JobState.DISCARDED


def test_control_of_another_tenants_job_is_not_found(store: Store) -> None:
    (job_id,) = insert(store, new_job(tenant="acme"))
    with pytest.raises(NotFound):
        store.cancel_job(job_id, tenant_id="default", now=T0, reason="x")
    assert store.get_job(job_id, tenant_id="acme").state is JobState.SCHEDULED


# -- listing ----------------------------------------------------------------------------------


def test_list_filters_and_keyset_pagination(store: Store) -> None:
    ids = insert(store, *(new_job("a" if i % 2 else "b", correlation="c1" if i < 4 else None)
                          for i in range(10)))
    insert(store, new_job(tenant="other"))
    page = store.list_jobs(JobFilter(), limit=4)
    seen = [j.id for j in page.items]
    while page.next_cursor:
        page = store.list_jobs(JobFilter(), limit=4, cursor=page.next_cursor)
        seen += [j.id for j in page.items]
    assert seen == list(reversed(ids))  # newest first, nothing twice, nothing missing
    only_a = store.list_jobs(JobFilter(task="a"), limit=100).items
    assert {j.task for j in only_a} == {"a"} and len(only_a) == 5
    corr = store.list_jobs(JobFilter(correlation_id="c1"), limit=100).items
    assert sorted(j.id for j in corr) == sorted(ids[:4])
    claim(store, limit=3)
    running = store.list_jobs(JobFilter(states=(JobState.RUNNING,)), limit=100).items
    assert len(running) == 3
    both = store.list_jobs(JobFilter(states=(JobState.RUNNING, JobState.SCHEDULED)), limit=100)
    assert len(both.items) == 10


def test_list_by_time_range(store: Store) -> None:
    early = insert(store, new_job(), now=T0)
    late = insert(store, new_job(), now=T0 + timedelta(hours=1))
    got = store.list_jobs(JobFilter(created_after=T0 + timedelta(minutes=30)), limit=10).items
    assert [j.id for j in got] == late
    got = store.list_jobs(JobFilter(created_before=T0 + timedelta(minutes=30)), limit=10).items
    assert [j.id for j in got] == early


def test_rescue_honours_a_cancel_requested_before_the_worker_died(store: Store) -> None:
    job_id, _ = _run_one(store, "w1")
    store.cancel_job(job_id, tenant_id="default", now=T0, reason="stop it")
    later = T0 + LEASE + timedelta(seconds=1)
    assert store.rescue_expired(later) == [job_id]
    job = store.get_job(job_id, tenant_id="default")
    assert job.state is JobState.CANCELLED and job.finished_at == later
    assert not job.cancel_requested and job.attempts[0].outcome == "lost"


def test_a_schedule_write_from_a_stale_read_is_refused(store: Store) -> None:
    from dataclasses import replace

    from hora.errors import StaleRecord
    from hora.models import Schedule

    s = store.insert_schedule(Schedule(
        id=new_id(), tenant_id="default", name=None, task="t", payload={},
        trigger={"cron": "* * * * *"}, queue="default", priority=0, max_attempts=3,
        retry_policy=None, timeout=None, correlation_id=None, misfire_policy="skip",
        misfire_grace=60, catchup_limit=10, overlap_policy="allow", state="active",
        next_fire_at=T0, cursor=T0, created_at=T0, updated_at=T0))
    assert s.version == 0
    first = store.update_schedule(replace(s, state="paused"))
    assert first.version == 1
    with pytest.raises(StaleRecord):  # written from the version-0 read
        store.update_schedule(replace(s, priority=5), skipped=[(T0, T0, "paused")])
    current = store.get_schedule(s.id, tenant_id="default")
    assert current.state == "paused" and current.priority == 0 and current.version == 1
    assert store.list_ticks(s.id, tenant_id="default").items == []  # nothing half-written
