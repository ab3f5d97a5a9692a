"""The registry aggregate and the end of a workflow's waiting runs, on both stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from hora.errors import NotFound, TransitionConflict
from hora.models import ErrorInfo, RegisteredTask, Workflow
from hora.store import Store
from tests.store.test_workflows_store import (
    T0,
    jobs_of,
    run_job,
    start,
    started,
    workflow,
)


def entry(name: str, *, tenant: str = "acme", kind: str = "task", queue: str = "default",
          priority: int = 0) -> RegisteredTask:
    return RegisteredTask(
        tenant_id=tenant, kind=kind, name=name, queue=queue, priority=priority,
        max_attempts=5, retry={"max_attempts": 5, "base": 1.0}, timeout=None,
        payload_schema={"type": "object", "properties": {"x": {"type": "integer"}},
                        "additionalProperties": False},
        registered_at=T0, updated_at=T0)


def test_register_upserts_by_tenant_kind_and_name(store: Store) -> None:
    store.register_tasks([entry("a.b"), entry("a.c", queue="q", priority=2),
                          entry("a.b", kind="workflow"), entry("a.b", tenant="other")], T0)
    got = store.list_registered_tasks(tenant_id="acme")
    assert [(e.kind, e.name) for e in got] == [("task", "a.b"), ("task", "a.c"),
                                                ("workflow", "a.b")]
    assert got[0] == entry("a.b")
    assert [e.name for e in store.list_registered_tasks(tenant_id="acme", kind="workflow")
            ] == ["a.b"]
    assert [e.name for e in store.list_registered_tasks(tenant_id="other")] == ["a.b"]
    assert store.list_registered_tasks(tenant_id="nobody") == []
    later = T0 + timedelta(hours=1)
    store.register_tasks([replace(entry("a.c"), queue="fast", timeout=2.5)], later)
    c = store.get_registered_task(tenant_id="acme", kind="task", name="a.c")
    assert c is not None
    assert (c.queue, c.priority, c.timeout, c.registered_at, c.updated_at) == (
        "fast", 0, 2.5, T0, later)
    assert store.get_registered_task(tenant_id="acme", kind="workflow", name="a.c") is None
    assert len(store.list_registered_tasks(tenant_id="acme", limit=2)) == 2


def _timers(store: Store, wf: Workflow) -> list[str]:
    """A wake-up in an hour, and a job of another workflow under the same correlation id."""
    timer = run_job(wf, key=f"wf:{wf.id}:timer:1", due=T0 + timedelta(hours=1),
                    task=f"hora.workflow:{wf.name}")
    timer = replace(timer, correlation_id=wf.correlation_id)
    store.insert_jobs([timer], T0)
    return [timer.id]


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
def test_finishing_a_workflow_cancels_its_waiting_runs(store: Store, final: str) -> None:
    wf = started(store, workflow(correlation="c-1"))
    other = start(store, workflow(correlation="c-1", name=wf.name))
    other_timer = run_job(other, key=f"wf:{other.id}:timer:1", task=f"hora.workflow:{wf.name}")
    store.insert_jobs([replace(other_timer, correlation_id="c-1")], T0)
    (timer,) = _timers(store, wf)
    t1 = T0 + timedelta(minutes=1)
    done = replace(wf, state=final, finished_at=t1, updated_at=t1)
    store.finish_run(done, owner="run-1")
    states = {j.id: j.state for j in jobs_of(store)}
    assert states[timer] == "cancelled"
    assert states[other_timer.id] == "scheduled"  # another workflow's: untouched


def test_a_run_that_only_waits_keeps_its_timer(store: Store) -> None:
    wf = started(store, workflow(correlation="c-2"))
    (timer,) = _timers(store, wf)
    asleep = replace(wf, state="sleeping", wait_kind="sleep",
                     wait_until=T0 + timedelta(hours=1), updated_at=T0)
    store.finish_run(asleep, owner="run-1")
    assert {j.id: j.state for j in jobs_of(store)}[timer] == "scheduled"


def test_terminate_ends_the_workflow_whoever_runs_it(store: Store) -> None:
    wf = started(store, workflow(correlation="c-3"))  # a run holds its lease
    (timer,) = _timers(store, wf)
    t1 = T0 + timedelta(minutes=2)
    parent_resume = run_job(wf, key="wf:parent:child:x")
    ended = store.terminate_workflow(wf.id, tenant_id="acme", reason="terminated: stop",
                                     error=ErrorInfo("Terminated", "stop"), now=t1,
                                     jobs=[parent_resume])
    assert (ended.state, ended.run_owner, ended.finished_at, ended.cancel_reason) == (
        "cancelled", None, t1, "terminated: stop")
    assert ended.error == ErrorInfo("Terminated", "stop") and ended.compensation is None
    assert store.get_workflow(wf.id, tenant_id="acme") == ended
    states = {j.id: j.state for j in jobs_of(store)}
    assert states[timer] == "cancelled" and states[parent_resume.id] == "scheduled"
    with pytest.raises(TransitionConflict):
        store.terminate_workflow(wf.id, tenant_id="acme", reason="again",
                                 error=ErrorInfo("Terminated", "again"), now=t1)
    with pytest.raises(NotFound):
        store.terminate_workflow("nope", tenant_id="acme", reason="x",
                                 error=ErrorInfo("Terminated", "x"), now=t1)


def test_probe_answers_the_entry_and_whether_any_is_registered(store: Store) -> None:
    assert store.probe_registered_task(tenant_id="acme", kind="task", name="a.b") == (
        None, False)
    store.register_tasks([entry("a.b"), entry("z.z", kind="workflow")], T0)
    assert store.probe_registered_task(tenant_id="acme", kind="task", name="a.b") == (
        entry("a.b"), True)
    assert store.probe_registered_task(tenant_id="acme", kind="task", name="a.x") == (
        None, True)
    assert store.probe_registered_task(tenant_id="other", kind="task", name="a.b") == (
        None, False)
