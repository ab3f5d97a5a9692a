"""The task and workflow registry through the SDK, on both stores (issue #11): a worker
registers its app's tasks and workflows; another process enqueueing by name is checked
against them (unknown names refused with suggestions, defaults applied, payloads validated);
a workflow can be terminated, and its timers end with it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hora import FakeClock, Hora
from hora.errors import InvalidPayload, TransitionConflict, UnknownTask
from hora.retry import RetryPolicy
from hora.testing import run_until_idle
from hora.workflows import WorkflowContext


def define(app: Hora) -> None:
    @app.task(name="billing.charge", queue="billing", priority=4,
              retry=RetryPolicy(max_attempts=7), timeout=30)
    def charge(order: str, cents: int, currency: str = "EUR") -> None:
        return None

    @app.task(name="billing.refund")
    def refund(order: str, **extra: Any) -> None:
        return None

    @app.workflow(name="orders.fulfil")
    async def fulfil(ctx: WorkflowContext, order: str) -> str:
        await ctx.sleep(timedelta(days=1))
        return order


@pytest.fixture
def worker_app(database_url: str, clock: FakeClock) -> Any:
    """The app a worker runs: it registers its tasks as it starts."""
    app = Hora(database_url, clock=clock)
    define(app)
    run_until_idle(app, poll_interval=0.01)
    yield app
    app.close()


@pytest.fixture
def remote(database_url: str, clock: FakeClock, worker_app: Hora) -> Any:
    """Another process on the same store that does not import the code (as the CLI or the
    HTTP API without --app)."""
    app = Hora(database_url, clock=clock)
    yield app
    app.close()


def test_a_worker_registers_its_tasks_and_workflows(worker_app: Hora, remote: Hora) -> None:
    entries = {(t.kind, t.name): t for t in remote.registered_tasks()}
    assert set(entries) == {("task", "billing.charge"), ("task", "billing.refund"),
                            ("task", "workflow:orders.fulfil"),
                            ("workflow", "orders.fulfil")}
    charge = entries[("task", "billing.charge")]
    assert (charge.queue, charge.priority, charge.max_attempts, charge.timeout) == (
        "billing", 4, 7, 30.0)
    assert charge.payload_schema["required"] == ["order", "cents"]
    assert charge.payload_schema["properties"]["cents"] == {"type": "integer"}
    assert charge.payload_schema["additionalProperties"] is False
    assert entries[("task", "billing.refund")].payload_schema["additionalProperties"] is True
    flow = entries[("workflow", "orders.fulfil")]
    assert list(flow.payload_schema["properties"]) == ["order"]  # ctx is not an argument
    assert [t.name for t in remote.registered_tasks(kind="workflow")] == ["orders.fulfil"]
    # A second start upserts: same rows, updated_at moves, registered_at stays.
    first = charge.registered_at
    remote.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    worker_app.register_tasks()
    again = {(t.kind, t.name): t for t in remote.registered_tasks()}[("task", "billing.charge")]
    assert again.registered_at == first and again.updated_at > first
    assert len(remote.registered_tasks()) == 4


def test_an_unknown_name_is_refused_with_suggestions(remote: Hora) -> None:
    with pytest.raises(UnknownTask) as caught:
        remote.enqueue("billing.chrage", {"order": "A", "cents": 1})
    assert caught.value.name == "billing.chrage"
    assert caught.value.suggestions[0] == "billing.charge"
    assert "did you mean 'billing.charge'" in str(caught.value)
    assert remote.count_jobs() == {} or sum(remote.count_jobs().values()) == 0
    with pytest.raises(UnknownTask) as wf:
        remote.start_workflow("orders.fulfill", {"order": "A"})
    assert wf.value.kind == "workflow" and wf.value.suggestions == ("orders.fulfil",)
    with pytest.raises(UnknownTask):
        remote.create_schedule("billing.chrage", {"order": "A", "cents": 1},
                               trigger="0 9 * * *")
    assert remote.list_schedules().items == []


def test_allow_unregistered_accepts_an_unknown_name(remote: Hora) -> None:
    job = remote.enqueue("elsewhere.task", {"any": 1}, allow_unregistered=True)
    assert job.task == "elsewhere.task" and job.queue == "default"
    wf = remote.start_workflow("elsewhere.flow", {}, allow_unregistered=True)
    assert wf.state == "running"
    s = remote.create_schedule("elsewhere.task", trigger="0 9 * * *", allow_unregistered=True)
    assert s.task == "elsewhere.task"


def test_an_empty_registry_accepts_any_name(app: Hora) -> None:
    # Nothing registered for the tenant and no task defined here: nothing to compare with.
    assert app.registered_tasks() == []
    assert app.enqueue("anything.goes", {"x": 1}).task == "anything.goes"


def test_a_local_app_refuses_a_name_it_does_not_define(app: Hora) -> None:
    define(app)
    with pytest.raises(UnknownTask) as caught:
        app.enqueue("billing.refnud", {"order": "A"})
    assert caught.value.suggestions[0] == "billing.refund"


def test_registered_defaults_apply_to_an_enqueue_by_name(remote: Hora) -> None:
    job = remote.enqueue("billing.charge", {"order": "A", "cents": 100})
    assert (job.queue, job.priority, job.max_attempts) == ("billing", 4, 7)
    explicit = remote.enqueue("billing.charge", {"order": "B", "cents": 1}, queue="q",
                              priority=-1, max_attempts=2)
    assert (explicit.queue, explicit.priority, explicit.max_attempts) == ("q", -1, 2)
    s = remote.create_schedule("billing.charge", {"order": "C", "cents": 1},
                               trigger="0 9 * * *")
    assert (s.queue, s.priority, s.max_attempts, s.timeout) == ("billing", 4, 7, 30.0)


@pytest.mark.parametrize(("payload", "field"), [
    ({"order": "A", "cents": "ten"}, "payload.cents"),
    ({"order": "A"}, "payload.cents"),
    ({"order": "A", "cents": 1, "coupon": "X"}, "payload.coupon"),
])
def test_a_payload_that_does_not_fit_is_refused_and_nothing_written(
        remote: Hora, worker_app: Hora, payload: dict[str, Any], field: str) -> None:
    for app in (remote, worker_app):  # from the registry, and from the local task
        with pytest.raises(InvalidPayload) as caught:
            app.enqueue("billing.charge", payload)
        assert caught.value.field == field
    with pytest.raises(InvalidPayload):
        remote.create_schedule("billing.charge", payload, trigger="0 9 * * *")
    assert remote.list_jobs().items == [] and remote.list_schedules().items == []
    # **extra takes any other field
    assert remote.enqueue("billing.refund", {"order": "A", "note": 1}).task == "billing.refund"
    with pytest.raises(InvalidPayload) as wf:
        remote.start_workflow("orders.fulfil", {"order": 1})
    assert wf.value.field == "args.order"


def test_terminate_ends_a_workflow_no_worker_knows(remote: Hora) -> None:
    wf = remote.start_workflow("nobody.knows", {"x": 1}, allow_unregistered=True)
    cancelled = remote.cancel_workflow(wf.id)
    assert cancelled.state == "running" and cancelled.cancel_requested  # stuck, as before
    ended = remote.terminate_workflow(wf.id, "typo")
    assert ended.state == "cancelled" and ended.finished_at is not None
    assert ended.error is not None and ended.error.type == "Terminated"
    assert ended.cancel_reason == "terminated: typo"
    jobs = remote.list_jobs(task="hora.workflow:nobody.knows").items
    assert jobs and all(j.state == "cancelled" for j in jobs)
    with pytest.raises(TransitionConflict):
        remote.terminate_workflow(wf.id)


def test_terminate_cancels_timers_and_runs_no_compensation(app: Hora,
                                                             clock: FakeClock) -> None:
    undone: list[str] = []

    @app.workflow(name="trip")
    async def trip(ctx: WorkflowContext) -> str:
        ctx.on_rollback(undone.append, "hotel")
        await ctx.sleep(timedelta(days=2))
        return "done"

    trip.start(workflow_id="t1")
    run_until_idle(app, until=clock.now() + timedelta(minutes=1), poll_interval=0.01)
    assert app.get_workflow("t1").state == "sleeping"
    timer = [j for j in app.list_jobs(task="hora.workflow:trip").items
             if j.state == "scheduled"]
    assert timer, "the workflow waits on a timer job"
    ended = app.terminate_workflow("t1", "no longer needed")
    assert ended.state == "cancelled"
    assert all(app.get_job(j.id).state == "cancelled" for j in timer)
    run_until_idle(app, poll_interval=0.01)
    assert undone == [] and app.get_workflow("t1").state == "cancelled"


def test_a_finished_workflow_leaves_no_timer_scheduled(app: Hora, clock: FakeClock) -> None:
    @app.workflow(name="inbox")
    async def inbox(ctx: WorkflowContext) -> Any:
        return await ctx.wait_for_signal("msg", timeout=timedelta(days=3))

    inbox.start(workflow_id="i1")
    run_until_idle(app, until=clock.now() + timedelta(minutes=1), poll_interval=0.01)
    assert app.get_workflow("i1").state == "waiting"
    app.signal_workflow("i1", "msg", {"n": 1})
    run_until_idle(app, until=clock.now() + timedelta(minutes=1), poll_interval=0.01)
    assert app.get_workflow("i1").state == "completed"
    jobs = app.list_jobs(task="hora.workflow:inbox").items
    assert [j for j in jobs if j.state in ("scheduled", "retrying")] == []
    assert any(j.state == "cancelled" for j in jobs)  # the 3-day deadline's wake-up


def test_a_schedule_payload_change_is_checked_too(remote: Hora) -> None:
    s = remote.create_schedule("billing.charge", {"order": "A", "cents": 1},
                               trigger="0 9 * * *")
    with pytest.raises(InvalidPayload) as caught:
        remote.update_schedule(s.id, payload={"order": "A", "cents": "x"})
    assert caught.value.field == "payload.cents"
    assert remote.get_schedule(s.id).payload == {"order": "A", "cents": 1}
    assert remote.update_schedule(s.id, payload={"order": "B", "cents": 2}).payload == {
        "order": "B", "cents": 2}
