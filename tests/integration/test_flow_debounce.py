"""Debounce and throttle on enqueue, by key (issue #12 item 3), through the SDK on both
stores with a FakeClock: debounced enqueues fold into one waiting job (the last payload,
due ``window`` after the last enqueue, capped by ``max_wait``); throttled ones are recorded
as cancelled with the reason; idempotency keys keep working; racing enqueues of one key on
PostgreSQL leave exactly one waiting job (debounce) or one admitted job (throttle)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from hora import FakeClock, Hora
from hora.app import JobRequest
from hora.errors import IdempotencyConflict, InvalidPayload
from hora.flow import Debounce, Throttle
from hora.states import JobState
from hora.store.flowkeys import FLOW_KEY_GRACE
from hora.testing import run_until_idle
from tests.conftest import fresh_pg_schema

S = timedelta(seconds=1)


def _tasks(app: Hora, ran: list[tuple[str, dict[str, Any]]]) -> None:
    @app.task(name="notify", debounce=Debounce(timedelta(seconds=30), key="user_id"))
    def notify(user_id: str, n: int) -> None:
        ran.append(("notify", {"user_id": user_id, "n": n}))

    @app.task(name="digest", debounce=Debounce(30, key="user_id", max_wait=60))
    def digest(user_id: str, n: int) -> None:
        ran.append(("digest", {"user_id": user_id, "n": n}))

    @app.task(name="push", throttle=Throttle(timedelta(seconds=30), key="user_id"))
    def push(user_id: str, n: int) -> None:
        ran.append(("push", {"user_id": user_id, "n": n}))

    @app.task(name="refresh", debounce=timedelta(seconds=10))
    def refresh(n: int) -> None:
        ran.append(("refresh", {"n": n}))


@pytest.fixture
def ran(app: Hora) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    _tasks(app, out)
    return out


def _jobs(app: Hora, task: str) -> list[Any]:
    return list(reversed(app.list_jobs(task=task, limit=1000).items))


def test_debounce_folds_enqueues_into_one_job_with_the_last_payload(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    t0 = clock.now()
    first = app.enqueue("notify", {"user_id": "u1", "n": 1})
    assert first.state is JobState.SCHEDULED and first.due_at == t0 + 30 * S
    clock.advance(10)
    second = app.enqueue("notify", {"user_id": "u1", "n": 2})
    clock.advance(10)
    third = app.enqueue("notify", {"user_id": "u1", "n": 3})
    assert first.id == second.id == third.id
    assert third.payload == {"user_id": "u1", "n": 3}
    assert third.due_at == t0 + 50 * S  # 30 s after the last enqueue
    assert third.state_reason is not None and third.state_reason.startswith(
        "debounced: 3 enqueues")
    history = app.get_job(first.id)
    folds = [e for e in history.events if (e.reason or "").startswith("debounced:")]
    assert len(folds) == 2
    assert len(_jobs(app, "notify")) == 1
    run_until_idle(app)
    assert ran == [("notify", {"user_id": "u1", "n": 3})]
    assert app.get_job(first.id).state is JobState.SUCCEEDED


def test_debounce_max_wait_caps_how_far_a_stream_pushes_the_job(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    t0 = clock.now()
    ids = set()
    dues = []
    for n in range(4):  # t = 0, 20, 40, 60: each within 30 s of the previous
        job = app.enqueue("digest", {"user_id": "u1", "n": n})
        ids.add(job.id)
        dues.append(job.due_at)
        clock.advance(20)
    assert len(ids) == 1
    assert dues == [t0 + 30 * S, t0 + 50 * S, t0 + 60 * S, t0 + 60 * S]  # first + max_wait
    run_until_idle(app)
    assert ran == [("digest", {"user_id": "u1", "n": 3})]


def test_debounce_starts_a_new_job_once_the_waiting_one_started(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    first = app.enqueue("notify", {"user_id": "u1", "n": 1})
    run_until_idle(app)
    assert app.get_job(first.id).state is JobState.SUCCEEDED
    now = clock.now()
    second = app.enqueue("notify", {"user_id": "u1", "n": 2})
    assert second.id != first.id and second.state is JobState.SCHEDULED
    assert second.due_at == now + 30 * S and second.state_reason is None
    third = app.enqueue("notify", {"user_id": "u1", "n": 3})
    assert third.id == second.id
    run_until_idle(app)
    assert [p["n"] for _, p in ran] == [1, 3]


def test_debounce_without_a_key_folds_every_enqueue_of_the_task(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    a = app.enqueue("refresh", {"n": 1})
    b = app.enqueue("refresh", {"n": 2})
    assert a.id == b.id and b.payload == {"n": 2}


def test_debounce_and_throttle_keys_are_independent(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    u1 = app.enqueue("notify", {"user_id": "u1", "n": 1})
    u2 = app.enqueue("notify", {"user_id": "u2", "n": 1})
    assert u1.id != u2.id
    assert app.enqueue("notify", {"user_id": "u2", "n": 2}).id == u2.id
    p1 = app.enqueue("push", {"user_id": "u1", "n": 1})
    p2 = app.enqueue("push", {"user_id": "u2", "n": 1})
    assert p1.state is JobState.SCHEDULED and p2.state is JobState.SCHEDULED
    # one task's key is not another's: push u1 is throttled, notify u1 still folds
    assert app.enqueue("push", {"user_id": "u1", "n": 2}).state is JobState.CANCELLED
    assert app.enqueue("notify", {"user_id": "u1", "n": 2}).id == u1.id
    run_until_idle(app)
    assert sorted((t, p["user_id"], p["n"]) for t, p in ran) == [
        ("notify", "u1", 2), ("notify", "u2", 2), ("push", "u1", 1), ("push", "u2", 1)]


def test_throttle_runs_the_first_and_records_the_rest_as_cancelled(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    t0 = clock.now()
    first = app.enqueue("push", {"user_id": "u1", "n": 1})
    assert first.state is JobState.SCHEDULED and first.due_at == t0
    clock.advance(10)
    second = app.enqueue("push", {"user_id": "u1", "n": 2})
    clock.advance(19)
    third = app.enqueue("push", {"user_id": "u1", "n": 3})
    for job in (second, third):
        assert job.id != first.id
        assert job.state is JobState.CANCELLED
        assert job.state_reason == f"throttled: within 30s of job {first.id}"
        assert job.finished_at == job.created_at
    history = app.get_job(second.id)
    assert [(e.from_state, e.to_state) for e in history.events][-1] == (
        JobState.SCHEDULED, JobState.CANCELLED)
    clock.advance(1)  # 30 s after the first: the window is over
    fourth = app.enqueue("push", {"user_id": "u1", "n": 4})
    assert fourth.state is JobState.SCHEDULED
    fifth = app.enqueue("push", {"user_id": "u1", "n": 5})
    assert fifth.state_reason == f"throttled: within 30s of job {fourth.id}"
    run_until_idle(app)
    assert [p["n"] for _, p in ran] == [1, 4]
    states = [j.state for j in _jobs(app, "push")]
    assert states.count(JobState.SUCCEEDED) == 2 and states.count(JobState.CANCELLED) == 3


def test_idempotency_keys_keep_working_alongside(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    t0 = clock.now()
    a = app.enqueue("notify", {"user_id": "u1", "n": 1}, idempotency_key="k1")
    clock.advance(10)
    again = app.enqueue("notify", {"user_id": "u1", "n": 1}, idempotency_key="k1")
    assert again.id == a.id and again.due_at == t0 + 30 * S  # no re-debounce
    with pytest.raises(IdempotencyConflict):
        app.enqueue("notify", {"user_id": "u1", "n": 9}, idempotency_key="k1")
    b = app.enqueue("notify", {"user_id": "u1", "n": 2}, idempotency_key="k2")
    assert b.id == a.id and b.payload["n"] == 2 and b.due_at == t0 + 40 * S
    clock.advance(5)
    b_again = app.enqueue("notify", {"user_id": "u1", "n": 2}, idempotency_key="k2")
    assert b_again.id == a.id and b_again.due_at == t0 + 40 * S
    # a fold without a key keeps the job's key: its retry still finds the job
    app.enqueue("notify", {"user_id": "u1", "n": 3})
    assert app.enqueue("notify", {"user_id": "u1", "n": 2}, idempotency_key="k2").id == a.id
    # throttle: a retry of a throttled enqueue gets the same cancelled job back
    app.enqueue("push", {"user_id": "u1", "n": 1})
    dropped = app.enqueue("push", {"user_id": "u1", "n": 2}, idempotency_key="p2")
    retried = app.enqueue("push", {"user_id": "u1", "n": 2}, idempotency_key="p2")
    assert dropped.state is JobState.CANCELLED and retried.id == dropped.id
    assert len(_jobs(app, "push")) == 2


def test_a_batch_is_all_or_nothing_and_folds_within_itself(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    app.enqueue("plain_taken", {}, idempotency_key="taken", allow_unregistered=True)
    with pytest.raises(IdempotencyConflict):
        app.enqueue_many([
            JobRequest("notify", {"user_id": "u1", "n": 1}),
            JobRequest("push", {"user_id": "u1", "n": 1}),
            JobRequest("plain_taken", {"other": 1}, idempotency_key="taken",
                       allow_unregistered=True)])
    assert _jobs(app, "notify") == [] and _jobs(app, "push") == []
    # nothing of the failed batch holds a key: the next enqueues are first ones
    push = app.enqueue("push", {"user_id": "u1", "n": 2})
    assert push.state is JobState.SCHEDULED
    jobs = app.enqueue_many([JobRequest("notify", {"user_id": "u1", "n": n})
                             for n in (1, 2, 3)])
    assert len({j.id for j in jobs}) == 1
    assert all(j.payload["n"] == 3 for j in jobs)


def test_a_missing_key_field_is_invalid_payload(app: Hora, ran: list[Any]) -> None:
    with pytest.raises(InvalidPayload) as e:
        app.enqueue("push", {"n": 1})
    assert e.value.field == "payload.user_id"
    with pytest.raises(InvalidPayload):
        app.enqueue("notify", {"n": 1})
    assert _jobs(app, "push") == [] and _jobs(app, "notify") == []


def test_a_process_without_the_code_gets_the_same_behaviour(
        app: Hora, clock: FakeClock, database_url: str, ran: list[Any]) -> None:
    app.register_tasks()
    remote = Hora(database_url, clock=clock)
    try:
        a = remote.enqueue("notify", {"user_id": "u1", "n": 1})
        b = remote.enqueue("notify", {"user_id": "u1", "n": 2})
        assert a.id == b.id and b.payload["n"] == 2
        remote.enqueue("push", {"user_id": "u1", "n": 1})
        assert remote.enqueue("push", {"user_id": "u1", "n": 2}).state is JobState.CANCELLED
        with pytest.raises(InvalidPayload):
            remote.enqueue("push", {"user": "u1", "n": 3})
    finally:
        remote.close()


def test_expired_keys_are_pruned_in_bounded_batches(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    for i in range(5):
        app.enqueue("push", {"user_id": f"u{i}", "n": 1})
    store = app.store
    assert store.prune_flow_keys(before=clock.now(), limit=100) == 0  # windows still open
    expired = clock.now() + timedelta(seconds=31)
    assert store.prune_flow_keys(before=expired, limit=2) == 2
    assert store.prune_flow_keys(before=expired, limit=100) == 3
    # an enqueue that makes a new key deletes a few rows expired for FLOW_KEY_GRACE
    for i in range(5):
        app.enqueue("push", {"user_id": f"u{i}", "n": 2})
    clock.advance(timedelta(seconds=30) + FLOW_KEY_GRACE + S)
    assert app.enqueue("push", {"user_id": "new", "n": 1}).state is JobState.SCHEDULED
    assert store.prune_flow_keys(before=clock.now() - FLOW_KEY_GRACE, limit=100) == 0
    assert store.prune_flow_keys(before=clock.now() + timedelta(days=1), limit=100) == 1


# -- racing enqueues on PostgreSQL ------------------------------------------------------------


@pytest.fixture
def pg_apps() -> Iterator[tuple[Hora, FakeClock]]:
    with fresh_pg_schema() as url:
        clock = FakeClock()
        app = Hora(url, clock=clock, store_options={"max_size": 12})
        try:
            _tasks(app, [])
            yield app, clock
        finally:
            app.close()


def _race(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            out[i] = fn(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return out


def test_racing_debounced_enqueues_leave_one_waiting_job(
        pg_apps: tuple[Hora, FakeClock]) -> None:
    app, _ = pg_apps
    seen: set[str] = set()
    for _ in range(3):  # a new key, then the same key after its job ran (twice)
        jobs = _race(8, lambda i: [app.enqueue("notify", {"user_id": "r", "n": k})
                                   for k in range(i * 3, i * 3 + 3)])
        ids = {j.id for batch in jobs for j in batch}
        assert len(ids) == 1 and not ids & seen
        waiting = app.list_jobs(task="notify", state="scheduled", limit=1000).items
        assert [j.id for j in waiting] == list(ids)
        stored = app.get_job(ids.pop())
        folds = [e for e in stored.events if (e.reason or "").startswith("debounced:")]
        assert len(folds) == 23  # 24 enqueues: the first made it, 23 folded in
        seen.add(stored.id)
        run_until_idle(app)
        assert app.get_job(stored.id).state is JobState.SUCCEEDED
    assert len(app.list_jobs(task="notify", limit=1000).items) == 3


def test_racing_throttled_enqueues_admit_one_per_window(
        pg_apps: tuple[Hora, FakeClock]) -> None:
    app, clock = pg_apps
    for _ in range(3):
        jobs = _race(8, lambda i: app.enqueue("push", {"user_id": "u1", "n": i}))
        admitted = [j for j in jobs if j.state is JobState.SCHEDULED]
        assert len(admitted) == 1
        assert all(j.state_reason == f"throttled: within 30s of job {admitted[0].id}"
                   for j in jobs if j is not admitted[0])
        clock.advance(30)
    assert len(app.list_jobs(task="push", limit=1000).items) == 24


def test_the_retention_pass_deletes_expired_keys_in_batches(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    from hora.retention import Retention

    for i in range(5):
        app.enqueue("push", {"user_id": f"u{i}", "n": 1})
    retention = Retention(app.store, clock, batch_size=2, max_batches=10)
    clock.advance(timedelta(seconds=30) + FLOW_KEY_GRACE - S)
    retention.pass_if_due()
    far = clock.now() + timedelta(days=1)
    assert app.store.prune_flow_keys(before=far, limit=100) == 5  # nothing expired yet
    for i in range(5):
        app.enqueue("push", {"user_id": f"u{i}", "n": 2})  # windows open again
    clock.advance(timedelta(seconds=30) + FLOW_KEY_GRACE + S)
    Retention(app.store, clock, batch_size=2, max_batches=10).pass_if_due()
    assert app.store.prune_flow_keys(before=far, limit=100) == 0


def test_a_debounced_job_a_worker_reserved_takes_no_more_folds(
        app: Hora, clock: FakeClock, ran: list[Any]) -> None:
    from hora.models import DEFAULT_QUEUE

    first = app.enqueue("notify", {"user_id": "u1", "n": 1})
    now = clock.now()
    _, reserved = app.store.claim_jobs(
        owner="w1", queues=[DEFAULT_QUEUE], tasks=None, now=now,
        lease_until=now + 60 * S, limit=0, horizon=now + 60 * S, reserve_limit=10)
    assert [j.id for j in reserved] == [first.id]
    second = app.enqueue("notify", {"user_id": "u1", "n": 2})
    assert second.id != first.id
    kept = app.get_job(first.id)
    assert kept.payload["n"] == 1 and kept.state is JobState.SCHEDULED
    assert app.enqueue("notify", {"user_id": "u1", "n": 3}).id == second.id
