"""Retention in the store: bounded prunes of old finished records, on both stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hora.ids import new_id
from hora.models import JobFilter, RetentionPolicy, Tick, Workflow
from hora.states import BURY, SUCCEED, JobState
from hora.store import Outcome, Store
from tests.store.test_conformance import claim, insert, new_job, raw

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def finish(store: Store, n: int, *, at: datetime, tenant: str = "default", task: str = "t",
           move: Any = SUCCEED, payload: dict[str, Any] | None = None) -> list[str]:
    """``n`` jobs that ran and ended (by ``move``) at ``at``."""
    ids = insert(store, *[new_job(task, tenant=tenant, payload=payload or {"i": i})
                          for i in range(n)], now=at)
    started, _ = claim(store, now=at, limit=n, tasks=[task])
    assert {j.id for j in started} == set(ids)
    store.finish_jobs([Outcome.of(move, job_id=j.id, attempt=1, owner="w1",
                                  outcome="succeeded" if move is SUCCEED else "failed",
                                  started_at=at) for j in started], at)
    return ids


def all_ids(store: Store, tenant: str = "default") -> set[str]:
    return {j.id for j in store.list_jobs(JobFilter(tenant_id=tenant, include_internal=True),
                                          limit=10_000).items}


def table_count(database_url: str, table: str) -> int:
    with raw(database_url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_prunes_only_old_finished_jobs_with_their_attempts_and_events(
        store: Store, database_url: str) -> None:
    old = finish(store, 5, at=T0)
    young = finish(store, 3, at=T0 + 20 * DAY)
    waiting = insert(store, new_job("t", due=T0 + 100 * DAY), now=T0)
    running = insert(store, new_job("r"), now=T0)
    claim(store, now=T0, tasks=["r"])
    dead = finish(store, 2, at=T0, move=BURY)
    cutoff = T0 + 14 * DAY
    assert store.count_prunable("jobs", cutoff=cutoff, limit=100) == 5
    assert store.count_prunable("jobs", cutoff=cutoff, limit=3) == 3  # bounded count
    assert store.prune_batch("jobs", cutoff=cutoff, limit=1000) == 5
    left = all_ids(store)
    assert left == set(young) | set(waiting) | set(running) | set(dead)
    with raw(database_url) as conn:
        q = "SELECT count(*) FROM {} WHERE job_id IN ({})".format
        marks = ",".join(f"'{i}'" for i in old)
        assert conn.execute(q("hora_job_attempts", marks)).fetchone()[0] == 0
        assert conn.execute(q("hora_job_events", marks)).fetchone()[0] == 0
        keep = ",".join(f"'{i}'" for i in young)
        assert conn.execute(q("hora_job_events", keep)).fetchone()[0] > 0
    # dead letters have their own kind
    assert store.prune_batch("dead", cutoff=cutoff, limit=1000) == 2
    assert all_ids(store) == set(young) | set(waiting) | set(running)


def test_a_batch_deletes_at_most_its_limit_oldest_first(store: Store) -> None:
    first = finish(store, 4, at=T0)
    second = finish(store, 4, at=T0 + DAY)
    cutoff = T0 + 30 * DAY
    assert store.prune_batch("jobs", cutoff=cutoff, limit=3) == 3
    assert store.prune_batch("jobs", cutoff=cutoff, limit=3) == 3
    left = all_ids(store)
    assert len(left) == 2 and left <= set(second)
    assert not set(first) & left
    assert store.prune_batch("jobs", cutoff=cutoff, limit=3) == 2
    assert store.prune_batch("jobs", cutoff=cutoff, limit=3) == 0


def test_tenant_filter_and_exclusion(store: Store) -> None:
    a = finish(store, 2, at=T0, tenant="a")
    b = finish(store, 2, at=T0, tenant="b")
    cutoff = T0 + 30 * DAY
    assert store.prune_batch("jobs", cutoff=cutoff, limit=100, exclude_tenants=["b"]) == 2
    assert not all_ids(store, "a") and all_ids(store, "b") == set(b)
    assert store.prune_batch("jobs", cutoff=cutoff, limit=100, tenant_id="b") == 2
    assert not all_ids(store, "b")
    assert a


def wf(store: Store, *, state: str, finished: datetime | None, parent: str | None = None,
       tenant: str = "default") -> Workflow:
    w = Workflow(tenant_id=tenant, id=new_id(), name="order", args={}, state="running",
                 result=None, error=None, correlation_id=None, parent_id=parent,
                 wait_kind=None, wait_name=None, wait_until=None, cancel_requested=False,
                 cancel_reason=None, compensation=None, run_owner=None, run_until=None,
                 created_at=T0, updated_at=T0, finished_at=None)
    job = new_job("hora.workflow:order", tenant=tenant, payload={"workflow_id": w.id})
    store.start_workflow(w, job)
    if finished is not None:
        end_workflow(store, w, state, finished)
    return w


def end_workflow(store: Store, w: Workflow, state: str, at: datetime) -> None:
    owned = store.acquire_workflow(w.id, tenant_id=w.tenant_id, owner="o", now=at,
                                   until=at + DAY)
    assert owned is not None
    store.finish_run(replace(owned, state=state, finished_at=at, run_owner=None,
                             run_until=None, updated_at=at), owner="o")


def test_workflows_go_with_their_history_and_after_their_parent(
        store: Store, database_url: str) -> None:
    parent = wf(store, state="running", finished=None)
    child = wf(store, state="completed", finished=T0, parent=parent.id)
    done = wf(store, state="completed", finished=T0)
    young = wf(store, state="failed", finished=T0 + 40 * DAY)
    live = wf(store, state="running", finished=None)
    cutoff = T0 + 30 * DAY
    assert store.count_prunable("workflows", cutoff=cutoff, limit=100) == 1
    assert store.prune_batch("workflows", cutoff=cutoff, limit=100) == 1
    with raw(database_url) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM hora_workflows").fetchall()}
    assert ids == {parent.id, child.id, young.id, live.id}
    assert done.id not in ids
    # the live workflows' run jobs stay even when old and finished
    live_jobs = [j for j in store.list_jobs(JobFilter(include_internal=True), limit=100).items
                 if j.payload.get("workflow_id") in (parent.id, live.id)]
    assert len(live_jobs) == 2


def test_a_live_workflows_finished_jobs_stay(store: Store) -> None:
    live = wf(store, state="running", finished=None)
    done = wf(store, state="completed", finished=T0)
    # run every workflow job to success
    jobs = store.list_jobs(JobFilter(include_internal=True), limit=100).items
    started, _ = claim(store, now=T0, limit=10, tasks=["hora.workflow:order"])
    assert len(started) == len(jobs) == 2
    store.finish_jobs([Outcome.of(SUCCEED, job_id=j.id, attempt=1, owner="w1",
                                  outcome="succeeded", started_at=T0) for j in started], T0)
    assert store.prune_batch("jobs", cutoff=T0 + 30 * DAY, limit=100) == 1
    left = store.list_jobs(JobFilter(include_internal=True), limit=100).items
    assert [j.payload["workflow_id"] for j in left] == [live.id]
    assert done


def test_ticks_older_than_the_cutoff_go(store: Store, database_url: str) -> None:
    with raw(database_url) as conn:  # a schedule row is all a tick needs here
        instant = "0" if database_url.startswith("sqlite") else "now()"
        conn.execute(
            "INSERT INTO hora_schedules (id, tenant_id, task, payload, trigger, queue, "
            "max_attempts, misfire_policy, misfire_grace, catchup_limit, overlap_policy, "
            "state, cursor, created_at, updated_at) VALUES ('s1', 'default', 't', '{}', "
            f"'{{}}', 'default', 1, 'skip', 0, 1, 'allow', 'active', {instant}, {instant}, "
            f"{instant})")
    with store.schedule_pass(T0) as tx:
        tx.record_ticks([Tick("s1", T0 + i * DAY, T0 + i * DAY, "skipped", "test", None,
                              T0 + i * DAY) for i in range(20)])
    assert store.count_prunable("ticks", cutoff=T0 + 14 * DAY, limit=100) == 14
    assert store.prune_batch("ticks", cutoff=T0 + 14 * DAY, limit=10) == 10
    assert store.prune_batch("ticks", cutoff=T0 + 14 * DAY, limit=10) == 4
    assert table_count(database_url, "hora_schedule_ticks") == 6


def test_idempotency_records_by_age(store: Store, database_url: str) -> None:
    for i in range(3):
        store.begin_idempotent("default", f"k{i}", "f", now=T0 + i * DAY,
                               expired_before=T0, stuck_before=T0)
    assert store.count_prunable("idempotency", cutoff=T0 + 2 * DAY, limit=10) == 2
    assert store.prune_batch("idempotency", cutoff=T0 + 2 * DAY, limit=10) == 2
    assert table_count(database_url, "hora_idempotency") == 1


def test_overrides_round_trip(store: Store) -> None:
    assert store.retention_overrides() == {}
    store.set_retention("a", RetentionPolicy(jobs=3600.0), now=T0)
    store.set_retention("b", RetentionPolicy(dead=7200.0, ticks=60.0), now=T0)
    assert store.retention_overrides() == {
        "a": RetentionPolicy(jobs=3600.0), "b": RetentionPolicy(dead=7200.0, ticks=60.0)}
    store.set_retention("a", RetentionPolicy(), now=T0)
    store.set_retention("b", None, now=T0)
    assert store.retention_overrides() == {}


@pytest.mark.parametrize("kind", ["bogus"])
def test_unknown_kind_is_refused(store: Store, kind: str) -> None:
    with pytest.raises(ValueError):
        store.prune_batch(kind, cutoff=T0, limit=1)
    assert JobState.SUCCEEDED


def test_internal_jobs_are_hidden_from_listings_and_counts_unless_asked(store: Store) -> None:
    user = insert(store, new_job("send"), new_job("hora.workflowish"))
    internal = insert(store, new_job("hora.workflow:order"), new_job("hora.workflow:x"))
    shown = {j.id for j in store.list_jobs(JobFilter(), limit=100).items}
    assert shown == set(user)
    every = {j.id for j in store.list_jobs(JobFilter(include_internal=True), limit=100).items}
    assert every == set(user) | set(internal)
    named = store.list_jobs(JobFilter(task="hora.workflow:order"), limit=100).items
    assert [j.id for j in named] == internal[:1]
    assert store.count_jobs(tenant_id="default") == {"scheduled": 2}
    assert store.count_jobs(tenant_id="default", include_internal=True) == {"scheduled": 4}
