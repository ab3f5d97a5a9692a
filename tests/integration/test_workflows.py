"""Durable workflows on both stores, driven by the FakeClock: days of timers in milliseconds.

A "restart" is a new ``Hora`` on the same database with the workflow registered afresh: no
state survives in memory, only what the store holds.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from hora import FakeClock, Hora, TransitionConflict
from hora.testing import run_until_idle
from hora.workflows import (
    StepFailed,
    WorkflowContext,
    current_step,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def fresh(database_url: str, clock: FakeClock) -> Hora:
    return Hora(database_url, clock=clock)


def run(app: Hora, *, until: datetime | None = None) -> None:
    run_until_idle(app, until=until, poll_interval=0.01)


def test_steps_run_once_and_the_result_is_stored(app: Hora) -> None:
    calls: Counter[str] = Counter()

    def add(a: int, b: int) -> int:
        calls["add"] += 1
        return a + b

    async def fetch(user: str) -> dict[str, Any]:
        calls["fetch"] += 1
        return {"user": user, "ok": True}

    @app.workflow(name="sum")
    async def total(ctx: WorkflowContext, user: str) -> dict[str, Any]:
        x = await ctx.step(add, 1, 2)
        profile = await ctx.step(fetch, user)
        return {"x": x, "ok": profile.ok, "user": profile["user"]}

    wf = total.start(user="ada", workflow_id="sum-1")
    assert wf.state == "running" and wf.correlation_id == "sum-1"
    run(app)
    done = app.get_workflow("sum-1")
    assert done.state == "completed", done.error
    assert done.result == {"x": 3, "ok": True, "user": "ada"}
    assert calls == {"add": 1, "fetch": 1}
    history = app.workflow_history("sum-1")
    assert [(h.seq, h.kind, h.status) for h in history] == [(1, "step", "done"),
                                                            (2, "step", "done")]
    assert history[0].output == 3 and history[0].name.endswith("add")
    # Idempotent start: the same id is the same workflow, nothing runs again.
    again = total.start(user="ada", workflow_id="sum-1")
    assert again.state == "completed" and again.args == {"user": "ada"}
    run(app)
    assert calls == {"add": 1, "fetch": 1}
    # Every job the workflow created carries its correlation id (and is internal: listed
    # only when asked for).
    assert app.list_jobs(correlation_id="sum-1").items == []
    jobs = app.list_jobs(correlation_id="sum-1", include_internal=True).items
    assert jobs and all(j.task == "hora.workflow:sum" for j in jobs)


def test_a_restart_replays_the_journal_without_rerunning_steps(database_url: str,
                                                              clock: FakeClock) -> None:
    calls: Counter[str] = Counter()

    def register(app: Hora) -> None:
        def charge(order: str) -> str:
            calls["charge"] += 1
            return f"charged {order}"

        def ship(order: str) -> str:
            calls["ship"] += 1
            return f"shipped {order}"

        @app.workflow(name="order")
        async def order(ctx: WorkflowContext, order_id: str) -> list[str]:
            a = await ctx.step(charge, order_id)
            await ctx.sleep(timedelta(days=1))
            b = await ctx.step(ship, order_id)
            return [a, b]

    first = fresh(database_url, clock)
    register(first)
    first.start_workflow("order", {"order_id": "o-1"}, workflow_id="o-1")
    run(first, until=T0 + timedelta(hours=1))
    sleeping = first.get_workflow("o-1")
    assert sleeping.state == "sleeping" and sleeping.wait_kind == "sleep"
    assert sleeping.wait_until == T0 + timedelta(days=1)
    first.close()

    second = fresh(database_url, clock)  # the process restarted: nothing in memory
    register(second)
    run(second)
    done = second.get_workflow("o-1")
    assert done.state == "completed" and done.result == ["charged o-1", "shipped o-1"]
    assert calls == {"charge": 1, "ship": 1}
    second.close()


def test_a_changed_step_order_fails_with_nondeterminism_naming_both(
        database_url: str, clock: FakeClock) -> None:
    def alpha() -> str:
        return "a"

    def beta() -> str:
        return "b"

    v1 = fresh(database_url, clock)

    @v1.workflow(name="flow")
    async def flow_v1(ctx: WorkflowContext) -> None:
        await ctx.step(alpha)
        await ctx.sleep(60)
        await ctx.step(beta)

    v1.start_workflow("flow", workflow_id="f-1")
    run(v1, until=T0 + timedelta(seconds=30))
    v1.close()

    v2 = fresh(database_url, clock)

    @v2.workflow(name="flow")
    async def flow_v2(ctx: WorkflowContext) -> None:
        await ctx.step(beta)  # the order changed under a running workflow
        await ctx.sleep(60)
        await ctx.step(alpha)

    run(v2)
    wf = v2.get_workflow("f-1")
    assert wf.state == "failed" and wf.error is not None
    assert wf.error.type == "hora.errors.NondeterminismError"  # moved there
    assert "beta" in wf.error.message and "alpha" in wf.error.message
    v2.close()


def test_a_thirty_day_sleep_and_sleep_until_take_no_wall_time(app: Hora,
                                                              clock: FakeClock) -> None:
    @app.workflow(name="patient")
    async def patient(ctx: WorkflowContext) -> str:
        await ctx.sleep(timedelta(days=30))
        first = ctx.now()
        await ctx.sleep_until(datetime(2030, 3, 1, 9, tzinfo=UTC))
        return f"{first.isoformat()} then {ctx.now().isoformat()}"

    patient.start(workflow_id="p")
    run(app)
    wf = app.get_workflow("p")
    assert wf.state == "completed"
    assert wf.result == ("2030-01-31T00:00:00+00:00 then 2030-03-01T09:00:00+00:00")
    # The sleeps held no worker: each wait ended the run, a scheduled job resumed it.
    runs = app.list_jobs(task="hora.workflow:patient", correlation_id="p", limit=100).items
    assert len(runs) == 3 and all(j.state == "succeeded" for j in runs)


@pytest.mark.parametrize(("wait", "says"), [
    (lambda ctx: ctx.sleep(1e308), "sleep: must be at least 0 and at most"),
    (lambda ctx: ctx.sleep(float("nan")), "sleep: must be at least 0 and at most"),
    (lambda ctx: ctx.sleep(timedelta(days=999_999_999)), "sleep: must be at least 0"),
    (lambda ctx: ctx.sleep_until(datetime(9999, 12, 31, 23, 59, 59,
                                          tzinfo=timezone(timedelta(hours=-1)))),
     "sleep_until: 9999-12-31T23:59:59-01:00 is outside the supported range"),
    (lambda ctx: ctx.wait_for_signal("s", timeout=1e308), "wait_for_signal timeout: must be"),
    (lambda ctx: ctx.wait_for_approval(timeout=timedelta(days=999_999_999)),
     "wait_for_approval timeout: must be"),
])
def test_an_absurd_wait_fails_the_workflow_with_a_message_naming_it(
        app: Hora, wait: Any, says: str) -> None:
    @app.workflow(name="absurd")
    async def absurd(ctx: WorkflowContext) -> str:
        await ctx.sleep(-5)  # negative: over at once, as asyncio.sleep(-5) is
        await wait(ctx)
        return "unreachable"

    absurd.start(workflow_id="a")
    run(app)
    wf = app.get_workflow("a")
    assert wf.state == "failed", wf.state
    assert says in str(wf.error) and "OverflowError" not in str(wf.error), wf.error


def test_signals_sent_early_wait_in_order_and_a_timeout_gives_none(app: Hora) -> None:
    @app.workflow(name="inbox")
    async def inbox(ctx: WorkflowContext) -> list[Any]:
        first = await ctx.wait_for_signal("msg")
        second = await ctx.wait_for_signal("msg")
        late = await ctx.wait_for_signal("never", timeout=timedelta(days=3))
        return [first, second, late]

    inbox.start(workflow_id="i")
    app.signal_workflow("i", "msg", {"n": 1})  # both before the workflow waits
    app.signal_workflow("i", "msg", {"n": 2})
    run(app)
    wf = app.get_workflow("i")
    assert wf.state == "completed" and wf.result == [{"n": 1}, {"n": 2}, None]
    with pytest.raises(TransitionConflict):
        app.signal_workflow("i", "msg", {"n": 3})


def test_an_approval_waits_visibly_and_is_audited(app: Hora, clock: FakeClock) -> None:
    @app.workflow(name="expense")
    async def expense(ctx: WorkflowContext, amount: int) -> str:
        decision = await ctx.wait_for_approval(timeout=timedelta(days=3))
        if decision is None:
            return "escalated"
        return f"{'approved' if decision.approved else 'rejected'} by {decision.actor}"

    expense.start(amount=120, workflow_id="e-1")
    expense.start(amount=90, workflow_id="e-2")
    run(app, until=T0 + timedelta(hours=1))
    # The inbox lists approval requests, one per waiting workflow, with their deadline.
    inbox = app.approvals().items
    assert sorted(a.workflow_id for a in inbox) == ["e-1", "e-2"]
    assert all(a.name == "approval" and a.deadline == T0 + timedelta(days=3)
               and a.state == "pending" and a.workflow_name == "expense" for a in inbox)
    assert app.get_workflow("e-1").wait_kind == "approval"
    # By workflow id (its single pending request), as scripts did before requests had ids.
    decided = app.approve("e-1", actor="grace", comment="within budget")
    assert (decided.workflow_id, decided.state, decided.decided_by, decided.comment) == (
        "e-1", "approved", "grace", "within budget")
    run(app, until=T0 + timedelta(hours=2))
    assert app.get_workflow("e-1").result == "approved by grace"
    # The audit trail is the request itself (and the journal's done entry), not a signal.
    assert app.get_approval(decided.id).decided_at == T0 + timedelta(hours=1)
    assert app.workflow_signals("e-1") == []
    (entry,) = app.workflow_history("e-1")
    assert (entry.kind, entry.status, entry.output["actor"]) == ("approval", "done", "grace")
    run(app)  # e-2 times out after 3 days of fake time
    assert app.get_workflow("e-2").result == "escalated"
    (expired,) = app.approvals(workflow_id="e-2", state=None).items
    assert expired.state == "expired" and expired.decided_at == T0 + timedelta(days=3)


def test_compensations_run_in_reverse_when_a_step_fails(app: Hora) -> None:
    done: list[str] = []

    def reserve(item: str) -> str:
        done.append(f"reserve {item}")
        return item

    def release(item: str) -> None:
        done.append(f"release {item}")

    def charge() -> None:
        raise ValueError("card declined")

    from hora import RetryPolicy

    @app.workflow(name="trip", step_retry=RetryPolicy(max_attempts=2, base=1, jitter="none"))
    async def trip(ctx: WorkflowContext) -> None:
        for item in ("flight", "hotel"):
            await ctx.step(reserve, item)
            ctx.on_rollback(release, item)
        await ctx.step(charge)

    trip.start(workflow_id="t")
    run(app)
    wf = app.get_workflow("t")
    assert wf.state == "failed" and wf.compensation == "completed"
    assert wf.error is not None and "card declined" in wf.error.message
    assert done == ["reserve flight", "reserve hotel", "release hotel", "release flight"]
    charge_entry = next(h for h in app.workflow_history("t") if h.name.endswith("charge"))
    assert charge_entry.status == "failed" and charge_entry.attempts == 2


def test_cancel_interrupts_a_sleep_and_compensates(app: Hora) -> None:
    undone: list[str] = []

    def book() -> str:
        return "booked"

    def unbook() -> None:
        undone.append("unbook")

    @app.workflow(name="long")
    async def long(ctx: WorkflowContext) -> None:
        await ctx.step(book)
        ctx.on_rollback(unbook)
        await ctx.sleep(timedelta(days=10))

    long.start(workflow_id="l")
    run(app, until=T0 + timedelta(days=1))
    assert app.get_workflow("l").state == "sleeping"
    app.cancel_workflow("l", reason="customer left")
    run(app, until=T0 + timedelta(days=2))
    wf = app.get_workflow("l")
    assert wf.state == "cancelled" and wf.compensation == "completed"
    assert wf.error is not None and "customer left" in wf.error.message
    assert undone == ["unbook"]
    with pytest.raises(TransitionConflict):
        app.cancel_workflow("l")


def test_a_step_retries_with_durable_backoff(app: Hora) -> None:
    tries: list[int] = []

    def flaky() -> str:
        tries.append(current_step().attempt)
        if len(tries) < 3:
            raise ConnectionError("gateway timeout")
        return current_step().idempotency_key

    @app.workflow(name="retrying")
    async def retrying(ctx: WorkflowContext) -> str:
        return str(await ctx.step(flaky))

    retrying.start(workflow_id="r")
    run(app)
    wf = app.get_workflow("r")
    assert wf.state == "completed" and wf.result == "default:r:1"
    assert tries == [1, 2, 3]


def test_a_permanent_step_failure_can_be_caught(app: Hora) -> None:
    def boom() -> None:
        raise KeyError("missing")

    from hora import RetryPolicy

    @app.workflow(name="careful")
    async def careful(ctx: WorkflowContext) -> str:
        try:
            await ctx.step(boom, retry=RetryPolicy(max_attempts=1))
        except StepFailed as e:
            return f"handled {e.error.type}"
        return "unreachable"

    careful.start(workflow_id="c")
    run(app)
    assert app.get_workflow("c").result == "handled KeyError"


def test_children_and_fan_out_are_deterministic(app: Hora) -> None:
    def square(n: int) -> int:
        return n * n

    @app.workflow(name="leaf")
    async def leaf(ctx: WorkflowContext, n: int) -> int:
        await ctx.sleep(timedelta(minutes=n))
        return int(await ctx.step(square, n))

    @app.workflow(name="root")
    async def root(ctx: WorkflowContext) -> list[Any]:
        children = await ctx.gather(ctx.child("leaf", n=2), ctx.child(leaf, n=3))
        fanned = await ctx.gather(*(ctx.step(square, n) for n in (4, 5, 6)))
        return [children, fanned]

    root.start(workflow_id="root")
    run(app)
    wf = app.get_workflow("root")
    assert wf.state == "completed", wf.error
    assert wf.result == [[4, 9], [16, 25, 36]]
    kids = app.list_workflows(name="leaf").items
    assert sorted(k.id for k in kids) == ["root.1", "root.2"]
    assert all(k.parent_id == "root" and k.correlation_id == "root" for k in kids)


def test_now_random_and_uuid_are_replayed(database_url: str, clock: FakeClock) -> None:
    seen: list[tuple[str, float, str]] = []

    def register(app: Hora) -> None:
        def note(stamp: str, r: float, u: str) -> None:
            seen.append((stamp, r, u))

        @app.workflow(name="det")
        async def det(ctx: WorkflowContext) -> list[Any]:
            values = [ctx.now().isoformat(), ctx.random(), ctx.uuid4()]
            await ctx.step(note, *values)
            await ctx.sleep(60)
            return [ctx.now().isoformat(), ctx.random(), ctx.uuid4(), *values]

    a = fresh(database_url, clock)
    register(a)
    a.start_workflow("det", workflow_id="d")
    run(a, until=T0 + timedelta(seconds=10))
    a.close()
    clock.advance(timedelta(hours=5))
    b = fresh(database_url, clock)
    register(b)
    run(b)
    wf = b.get_workflow("d")
    assert wf.state == "completed"
    assert len(seen) == 1 and wf.result[3:] == list(seen[0])
    b.close()


def test_a_schedule_starts_a_workflow_per_occurrence(app: Hora) -> None:
    @app.workflow(name="nightly")
    async def nightly(ctx: WorkflowContext, kind: str) -> str:
        return f"ran {kind}"

    app.create_schedule("workflow:nightly", {"kind": "sales"},
                        trigger={"cron": "0 2 * * *", "timezone": "UTC"})
    run(app, until=T0 + timedelta(days=2, hours=1))
    wfs = app.list_workflows(name="nightly").items
    assert len(wfs) == 2 and all(w.state == "completed" and w.result == "ran sales"
                                 for w in wfs)


def test_only_workers_that_know_a_workflow_run_it(app: Hora) -> None:
    @app.workflow(name="known")
    async def known(ctx: WorkflowContext) -> str:
        return "ran"

    app.start_workflow("unknown.elsewhere", {"x": 1}, workflow_id="u", allow_unregistered=True)
    known.start(workflow_id="k")
    run(app)
    assert app.get_workflow("k").state == "completed"
    waiting = app.get_workflow("u")  # left for a worker that registers it, untouched
    assert waiting.state == "running" and waiting.run_owner is None
    job = app.list_jobs(task="hora.workflow:unknown.elsewhere").items[0]
    assert job.state == "scheduled" and job.attempt == 0


def test_the_same_id_with_another_request_is_a_conflict(app: Hora) -> None:
    from hora import Conflict

    @app.workflow(name="w")
    async def w(ctx: WorkflowContext, n: int) -> int:
        return n

    w.start(n=1, workflow_id="same")
    assert w.start(n=1, workflow_id="same").args == {"n": 1}
    with pytest.raises(Conflict, match="same"):
        w.start(n=2, workflow_id="same")


def test_history_keeps_when_each_step_started(app: Hora, clock: FakeClock) -> None:
    async def slow() -> str:
        clock.advance(timedelta(seconds=5))  # the step takes five (fake) seconds
        return "ok"

    @app.workflow(name="timed")
    async def timed(ctx: WorkflowContext) -> None:
        await ctx.step(slow)

    timed.start(workflow_id="tm")
    run(app)
    (entry,) = app.workflow_history("tm")
    assert entry.finished_at is not None
    assert entry.finished_at - entry.started_at == timedelta(seconds=5)


def test_a_later_attempt_takes_over_and_fences_out_the_earlier_one(app: Hora) -> None:
    from hora import StaleRecord
    from hora.models import HistoryEntry

    @app.workflow(name="fenced")
    async def fenced(ctx: WorkflowContext) -> str:
        return "ok"

    fenced.start(workflow_id="fz")
    (job,) = app.list_jobs(task="hora.workflow:fenced").items
    # A previous attempt of this job froze holding the run lease (a paused VM): the job core
    # declared it lost, and the next attempt must not wait out its ten minutes.
    now = app.clock.now()
    zombie = f"job:{job.id}:0"
    assert app.store.acquire_workflow("fz", tenant_id="default", owner=zombie, now=now,
                                      until=now + timedelta(minutes=10)) is not None
    run(app)
    assert app.get_workflow("fz").state == "completed"
    # When the frozen attempt wakes up, its writes are refused: it no longer owns the run.
    late = HistoryEntry(tenant_id="default", workflow_id="fz", seq=1, kind="step", name="x",
                        input=None, output="stale", error=None, status="done", attempts=1,
                        started_at=now, finished_at=now, deadline=None)
    with pytest.raises(StaleRecord):
        app.store.record_history([late], owner=zombie)
    assert app.workflow_history("fz") == []


def test_a_step_that_overruns_its_timeout_fails_and_is_retried(app: Hora) -> None:
    import asyncio

    from hora import RetryPolicy

    seen: list[int] = []

    async def slow() -> str:
        seen.append(current_step().attempt)
        if len(seen) == 1:
            await asyncio.Event().wait()  # hangs: only the timeout ends it
        return "second time lucky"

    @app.workflow(name="timeouts")
    async def timeouts(ctx: WorkflowContext) -> str:
        return str(await ctx.step(slow, timeout=0.05,
                                  retry=RetryPolicy(max_attempts=2, base=30, jitter="none")))

    timeouts.start(workflow_id="to")
    run(app)
    wf = app.get_workflow("to")
    assert wf.state == "completed" and wf.result == "second time lucky" and seen == [1, 2]
    (entry,) = app.workflow_history("to")
    assert entry.attempts == 2


def test_a_long_step_keeps_its_run_lease(app: Hora, clock: FakeClock) -> None:
    from hora.testing import await_condition

    start = clock.now()
    intruders: list[object] = []

    async def long_step() -> str:
        clock.advance(timedelta(minutes=7))  # past a third of the 10-minute run lease
        await await_condition(
            lambda: (w := app.get_workflow("lw")).run_until is not None
            and w.run_until > start + timedelta(minutes=10), timeout=5)
        clock.advance(timedelta(minutes=7))  # the first lease would be over by now
        now = clock.now()
        intruders.append(app.store.acquire_workflow(
            "lw", tenant_id="default", owner="intruder", now=now,
            until=now + timedelta(minutes=10)))
        return "done"

    @app.workflow(name="long-step")
    async def long_flow(ctx: WorkflowContext) -> str:
        return str(await ctx.step(long_step))

    long_flow.start(workflow_id="lw")
    # A job lease longer than the clock's jumps: with the default 30 s one, the worker's own
    # rescuer could see the runner job's lease over after a 7-minute jump before a heartbeat
    # renewed it, and run the step again (seen as a flaky intruder). The run lease under test
    # is still renewed by the heartbeat, every minute of the clock.
    run_until_idle(app, poll_interval=0.01, lease=3600, heartbeat=60)
    assert intruders == [None]  # the renewed lease kept the other owner out
    wf = app.get_workflow("lw")
    assert wf.state == "completed" and wf.run_owner is None
