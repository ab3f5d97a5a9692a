"""Workers and queues in the store, on both stores: a worker's row (register, heartbeat,
stop), aging out in bounded batches, queue depth by state, paused queues not claimed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hora.models import NewJob, WorkerInfo
from hora.payloads import JobRequest, new_job
from hora.store import Store

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def worker(wid: str = "w1", *, queues: tuple[str, ...] = ("default",),
           tasks: tuple[str, ...] | None = ("t.a",), at: datetime = T0) -> WorkerInfo:
    return WorkerInfo(id=wid, host="box", pid=42, version="0.1.0", queues=queues, tasks=tasks,
                      workflows=("flow",), concurrency=10, heartbeat=10.0, started_at=at,
                      last_seen_at=at, running=0)


def job(task: str = "t.a", *, queue: str = "default", tenant: str = "acme",
        due: datetime = T0) -> NewJob:
    return new_job(JobRequest(task=task, payload={}, queue=queue, at=due), T0,
                   tenant_id=tenant, task=None)


def claim(store: Store, *, now: datetime = T0, queues: tuple[str, ...] = ("default",),
          limit: int = 10, reserve: int = 0) -> tuple[list[str], list[str]]:
    started, reserved = store.claim_jobs(
        owner="w", queues=queues, tasks=None, now=now,
        lease_until=now + timedelta(seconds=30), limit=limit,
        horizon=now + timedelta(seconds=5), reserve_limit=reserve)
    return [j.id for j in started], [j.id for j in reserved]


def test_register_refresh_and_stop(store: Store) -> None:
    store.register_worker(worker())
    [w] = store.list_workers()
    assert (w.id, w.host, w.pid, w.queues, w.tasks, w.workflows, w.concurrency) == (
        "w1", "box", 42, ("default",), ("t.a",), ("flow",), 10)
    assert w.last_seen_at == T0 and w.stopped_at is None and w.heartbeat == 10.0
    assert store.touch_worker("w1", now=T0 + timedelta(seconds=10), running=3) == (True, 0)
    assert store.touch_worker("nobody", now=T0, running=0) == (False, 0)
    [w] = store.list_workers()
    assert w.last_seen_at == T0 + timedelta(seconds=10) and w.running == 3
    store.stop_worker("w1", now=T0 + timedelta(seconds=12))
    [w] = store.list_workers()
    assert w.stopped_at == T0 + timedelta(seconds=12) and w.running == 0
    # a restart under the same id starts the row afresh
    store.register_worker(worker(at=T0 + timedelta(minutes=1)))
    [w] = store.list_workers()
    assert w.stopped_at is None and w.started_at == T0 + timedelta(minutes=1)


def test_any_task_worker_is_stored_as_none(store: Store) -> None:
    store.register_worker(worker(tasks=None))
    [w] = store.list_workers()
    assert w.tasks is None and w.serves("default", "anything")
    assert not w.serves("other", "anything")


def test_old_rows_are_deleted_in_bounded_batches(store: Store) -> None:
    for i in range(5):
        store.register_worker(worker(f"old{i}", at=T0 + timedelta(seconds=i)))
    store.register_worker(worker("me", at=T0 + timedelta(days=2)))
    now = T0 + timedelta(days=2)
    forget = now - timedelta(days=1)
    assert store.touch_worker("me", now=now, running=0, forget_before=forget,
                              forget_limit=2) == (True, 2)
    left = {w.id for w in store.list_workers()}
    assert left == {"me", "old2", "old3", "old4"}  # the oldest went first
    assert store.touch_worker("me", now=now, running=0, forget_before=forget,
                              forget_limit=100) == (True, 3)
    assert [w.id for w in store.list_workers()] == ["me"]


def test_queue_depths_group_by_queue_and_state(store: Store) -> None:
    store.insert_jobs([job(due=T0 - timedelta(seconds=30)), job(),
                       job(due=T0 + timedelta(hours=1)),
                       job(queue="mail", due=T0 - timedelta(seconds=5)),
                       job(tenant="other", due=T0 + timedelta(hours=2))], T0)
    started, _ = claim(store, limit=1)
    assert len(started) == 1  # the oldest due one is now running
    depths = {d.queue: d for d in store.queue_depths("acme", now=T0)}
    assert set(depths) == {"default", "mail"}
    d = depths["default"]
    assert (d.scheduled, d.running, d.retrying, d.dead, d.due) == (2, 1, 0, 0, 1)
    assert d.oldest_due_at == T0
    m = depths["mail"]
    assert (m.scheduled, m.due, m.oldest_due_at) == (1, 1, T0 - timedelta(seconds=5))
    assert [d.queue for d in store.queue_depths("nobody", now=T0)] == []


def test_due_waiting_tasks_by_queue_and_task(store: Store) -> None:
    store.insert_jobs([job("t.a"), job("t.a", tenant="other"), job("t.b", queue="mail"),
                       job("t.c", due=T0 + timedelta(hours=1))], T0)
    assert store.due_waiting_tasks(now=T0) == [("default", "t.a", 2), ("mail", "t.b", 1)]
    assert store.due_waiting_tasks(now=T0, queues=["mail"]) == [("mail", "t.b", 1)]
    assert store.due_waiting_tasks(now=T0, tenant_id="other") == [("default", "t.a", 1)]


def test_paused_queue_is_not_claimed_until_resumed(store: Store) -> None:
    a, b = job(), job(tenant="other")
    soon = job(due=T0 + timedelta(seconds=2))
    store.insert_jobs([a, b, soon], T0)
    state = store.set_queue_paused("acme", "default", paused=True, now=T0, reason="deploy")
    assert state.paused and state.paused_at == T0 and state.reason == "deploy"
    started, reserved = claim(store, reserve=10)
    assert started == [b.id] and reserved == []  # tenant "other"'s queue is not paused
    assert store.next_due_at(queues=["default"], tasks=None, now=T0) is None
    [s] = store.list_queue_states("acme")
    assert s.paused and s.name == "default"
    assert store.list_queue_states("other") == []
    state = store.set_queue_paused("acme", "default", paused=False, now=T0)
    assert not state.paused and state.paused_at is None and state.reason is None
    started, reserved = claim(store, reserve=10)
    assert started == [a.id] and reserved == [soon.id]
