"""Approval requests on both stores, driven by the FakeClock: each wait_for_approval makes one
request, a decision names it and moves it once, so a double click is one decision and can
never answer the next wait (issue #9: a two-stage approval ended with a double click's second
approval as its second stage)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hora import Conflict, FakeClock, Hora, TransitionConflict
from hora.errors import NotAllowed, NotFound
from hora.models import ApprovalRequest, HistoryEntry
from hora.testing import run_until_idle
from hora.workflows import WorkflowContext

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def run(app: Hora, *, until: datetime | None = None) -> None:
    run_until_idle(app, until=until, poll_interval=0.01)


def register(app: Hora) -> None:
    """A two-stage approval whose stages share the default name (the worst case for a
    decision that names no request), and a single one with a deadline and named approvers."""

    @app.workflow(name="purchase")
    async def purchase(ctx: WorkflowContext, amount: int) -> list[Any]:
        first = await ctx.wait_for_approval(context={"stage": 1, "amount": amount})
        second = await ctx.wait_for_approval(context={"stage": 2, "amount": amount})
        assert first is not None and second is not None
        return [first.actor, second.actor, first.approval_id != second.approval_id]

    @app.workflow(name="expense")
    async def expense(ctx: WorkflowContext, amount: int) -> str:
        decision = await ctx.wait_for_approval("manager", timeout=timedelta(hours=1),
                                               context={"amount": amount},
                                               approvers=["ann", "bo"])
        await ctx.sleep(timedelta(minutes=5))  # a replay after the decision
        if decision is None:
            return "escalated"
        return f"{'approved' if decision.approved else 'rejected'} by {decision.actor}"


@pytest.fixture
def flows(app: Hora) -> Hora:
    register(app)
    return app


def pending(app: Hora, workflow_id: str) -> ApprovalRequest:
    (request,) = app.approvals(workflow_id=workflow_id).items
    return request


def test_a_double_click_is_one_decision_and_stage_two_still_waits(flows: Hora) -> None:
    app = flows
    app.start_workflow("purchase", {"amount": 5000}, workflow_id="p-1")
    run(app)
    stage1 = pending(app, "p-1")
    assert (stage1.name, stage1.context, stage1.seq, stage1.state) == (
        "approval", {"stage": 1, "amount": 5000}, 1, "pending")
    first = app.approve(stage1.id, actor="manager-a")
    again = app.approve(stage1.id, actor="manager-b (double click)", comment="again")
    # The same decision twice is one decision: the second returns the first, unchanged.
    assert again == first and again.decided_by == "manager-a" and again.comment is None
    run(app)
    stage2 = pending(app, "p-1")
    assert stage2.id != stage1.id and stage2.context == {"stage": 2, "amount": 5000}
    wf = app.get_workflow("p-1")
    assert (wf.state, wf.wait_kind, wf.wait_name) == ("waiting", "approval", "approval")
    # A third click on stage 1 still names stage 1: stage 2 stays pending.
    app.approve(stage1.id, actor="manager-b (double click)")
    run(app)
    assert app.get_approval(stage2.id).state == "pending"
    assert app.get_workflow("p-1").state == "waiting"
    app.approve(stage2.id, actor="manager-b")
    run(app)
    done = app.get_workflow("p-1")
    assert done.state == "completed" and done.result == ["manager-a", "manager-b", True]
    assert [a.state for a in app.approvals(workflow_id="p-1", state=None).items] == [
        "approved", "approved"]


def test_a_conflicting_decision_is_refused_and_changes_nothing(flows: Hora,
                                                               clock: FakeClock) -> None:
    app = flows
    app.start_workflow("expense", {"amount": 10}, workflow_id="e-1")
    run(app, until=T0)
    request = pending(app, "e-1")
    assert request.approvers == ("ann", "bo") and request.deadline == T0 + timedelta(hours=1)
    clock.advance(timedelta(minutes=1))
    rejected = app.reject(request.id, actor="bo", comment="no budget")
    assert (rejected.state, rejected.decided_at) == ("rejected", T0 + timedelta(minutes=1))
    with pytest.raises(TransitionConflict, match=r"approval .* is rejected, expected pending"):
        app.approve(request.id, actor="ann")
    assert app.get_approval(request.id) == rejected
    run(app)
    assert app.get_workflow("e-1").result == "rejected by bo"


def test_only_the_named_approvers_decide(flows: Hora) -> None:
    app = flows
    app.start_workflow("expense", {"amount": 10}, workflow_id="e-2")
    run(app, until=T0)
    request = pending(app, "e-2")
    with pytest.raises(NotAllowed, match="ann, bo only, not by 'mallory'"):
        app.approve(request.id, actor="mallory")
    assert app.get_approval(request.id).state == "pending"
    app.approve(request.id, actor="ann")
    with pytest.raises(NotAllowed):  # not even a repeat of the decision
        app.approve(request.id, actor="mallory")


def test_an_expired_request_cannot_be_decided_and_the_wait_returns_none(
        flows: Hora, clock: FakeClock) -> None:
    app = flows
    app.start_workflow("expense", {"amount": 10}, workflow_id="e-3")
    run(app, until=T0)
    request = pending(app, "e-3")
    clock.advance(timedelta(hours=1))  # the deadline, before any worker noticed
    with pytest.raises(TransitionConflict, match="is expired"):
        app.approve(request.id, actor="ann")
    expired = app.get_approval(request.id)
    assert (expired.state, expired.decided_at, expired.decided_by) == (
        "expired", T0 + timedelta(hours=1), None)
    assert app.approvals().items == []  # gone from the inbox
    run(app)
    assert app.get_workflow("e-3").result == "escalated"
    assert app.get_approval(request.id) == expired


def test_a_restart_finds_the_same_request(database_url: str, clock: FakeClock) -> None:
    one = Hora(database_url, clock=clock)
    register(one)
    one.start_workflow("expense", {"amount": 7}, workflow_id="e-4")
    run(one, until=T0)
    request = pending(one, "e-4")
    one.close()
    # A new process on the same database, woken early for no reason: the replay of the wait
    # finds the request its position made, and makes no other.
    two = Hora(database_url, clock=clock)
    register(two)
    try:
        wf = two.get_workflow("e-4")
        two.store.insert_jobs([two.workflows.workflow_job(wf, key="poke")], clock.now())
        run(two, until=T0)
        assert two.approvals(workflow_id="e-4", state=None).items == [request]
        assert two.get_workflow("e-4").state == "waiting"
        two.approve(request.id, actor="bo")
        run(two)  # the decision, then a sleep: the wait is replayed from its journal entry
        assert two.get_workflow("e-4").result == "approved by bo"
        (only,) = two.approvals(workflow_id="e-4", state=None).items
        assert only.id == request.id and only.state == "approved"
        entry = next(h for h in two.workflow_history("e-4") if h.kind == "approval")
        assert entry.input == {"approval_id": request.id}
        assert entry.output == {"approval_id": request.id, "approved": True, "actor": "bo",
                                "comment": None}
    finally:
        two.close()


def test_cancelling_the_workflow_cancels_its_request(flows: Hora) -> None:
    app = flows
    app.start_workflow("expense", {"amount": 10}, workflow_id="e-5")
    run(app, until=T0)
    request = pending(app, "e-5")
    app.cancel_workflow("e-5", "withdrawn")
    assert app.get_approval(request.id).state == "cancelled"
    with pytest.raises(TransitionConflict, match="is cancelled"):
        app.approve(request.id, actor="ann")
    run(app)
    assert app.get_workflow("e-5").state == "cancelled"


def test_deciding_by_workflow_id_needs_one_pending_request(app: Hora) -> None:
    @app.workflow(name="two-at-once")
    async def both(ctx: WorkflowContext) -> list[bool]:
        a, b = await ctx.gather(ctx.wait_for_approval("legal"),
                                ctx.wait_for_approval("finance"))
        return [a.approved, b.approved]

    app.start_workflow("two-at-once", workflow_id="w")
    run(app)
    with pytest.raises(Conflict, match="several pending approval requests"):
        app.approve("w", actor="ann")
    legal = app.approve("w", actor="ann", name="legal")  # by name: the one pending
    assert legal.name == "legal" and legal.state == "approved"
    # By name again: the repeat of that decision is that decision, not finance's.
    assert app.approve("w", actor="ann", name="legal") == legal
    with pytest.raises(TransitionConflict):
        app.reject("w", actor="ann", name="legal")
    app.reject("w", actor="bob")  # the single pending one: finance
    run(app)
    assert app.get_workflow("w").result == [True, False]
    with pytest.raises(TransitionConflict, match="workflow w is completed"):
        app.approve("w", actor="ann")
    with pytest.raises(NotFound, match="approval request or workflow nope not found"):
        app.approve("nope", actor="ann")
    # Another tenant sees neither the requests nor the workflow.
    other = app.for_tenant("other")
    with pytest.raises(NotFound):
        other.approve(legal.id, actor="ann")
    with pytest.raises(NotFound):
        other.get_approval(legal.id)
    assert other.approvals(state=None).items == []


def test_a_decision_journaled_before_requests_existed_still_replays(flows: Hora) -> None:
    """A workflow that passed its approval as a signal (before this release) and sleeps
    across the upgrade: its replay takes the journaled signal, not a NondeterminismError."""
    app = flows
    app.start_workflow("expense", {"amount": 3}, workflow_id="old-1")
    store, tenant = app.store, app.tenant_id
    held = store.acquire_workflow("old-1", tenant_id=tenant, owner="legacy", now=T0,
                                  until=T0 + timedelta(minutes=1))
    assert held is not None
    store.record_history([HistoryEntry(
        tenant_id=tenant, workflow_id="old-1", seq=1, kind="signal", name="manager",
        input=None, output={"payload": {"approved": True}, "actor": "old-timer",
                            "comment": "fine", "signal_id": "s-1"},
        error=None, status="done", attempts=0, started_at=T0, finished_at=T0,
        deadline=None)], owner="legacy")
    store.finish_run(replace(held, state="waiting", updated_at=T0), owner="legacy")
    run(app)
    assert app.get_workflow("old-1").result == "approved by old-timer"
    assert app.approvals(workflow_id="old-1", state=None).items == []
