"""Results have a documented size limit (``hora.limits.MAX_RESULT_BYTES``): a handler or a
workflow step returning more fails for good, with the reason stored as data, instead of
storing the giant result (or crashing the worker). On both stores, by the FakeClock."""

from __future__ import annotations

from typing import Any

from hora import Hora, RetryPolicy
from hora.limits import MAX_JSON_DEPTH, MAX_RESULT_BYTES
from hora.testing import run_until_idle
from hora.workflows import WorkflowContext

RETRYING = RetryPolicy(max_attempts=5, base=0.0, jitter="none")


def _deep(depth: int) -> list[Any]:
    v: list[Any] = []
    for _ in range(depth):
        v = [v]
    return v


def test_an_oversized_result_fails_the_job_for_good_and_is_not_stored(app: Hora) -> None:
    calls: list[int] = []

    @app.task(retry=RETRYING)
    def big() -> str:
        calls.append(1)
        return "x" * (MAX_RESULT_BYTES + 1)

    @app.task(retry=RETRYING)
    def deep() -> list[Any]:
        return _deep(50_000)

    @app.task
    def fine() -> str:
        return "x" * 1000

    jobs = [big.enqueue(), deep.enqueue(), fine.enqueue()]
    stats = run_until_idle(app, poll_interval=0.01)
    assert stats["dead"] == 2 and stats["succeeded"] == 1, stats
    assert calls == [1]  # not retried: a retry cannot make it smaller
    b, d, f = (app.get_job(j.id) for j in jobs)
    assert b.state == "dead" and b.result is None
    assert b.last_error is not None
    assert b.last_error.type == "hora.errors.TooLarge"
    assert b.last_error.message == f"result: JSON over its limit of {MAX_RESULT_BYTES} bytes"
    assert d.state == "dead" and d.result is None
    assert d.last_error is not None
    assert d.last_error.message == f"result: JSON nested deeper than {MAX_JSON_DEPTH} levels"
    assert f.state == "succeeded" and f.result == "x" * 1000


def test_an_oversized_step_result_fails_the_step_without_retries(app: Hora) -> None:
    attempts: list[int] = []

    def huge() -> str:
        attempts.append(1)
        return "x" * (MAX_RESULT_BYTES + 1)

    @app.workflow(name="wf-big-step")
    async def wf(ctx: WorkflowContext) -> str:
        await ctx.step(huge, retry=RETRYING)
        return "unreachable"

    started = app.start_workflow("wf-big-step")
    run_until_idle(app, poll_interval=0.01)
    done = app.get_workflow(started.id)
    assert done.state == "failed"
    assert attempts == [1]
    assert done.error is not None
    assert f"over its limit of {MAX_RESULT_BYTES} bytes" in done.error.message
    steps = [e for e in app.workflow_history(started.id) if e.kind == "step"]
    assert [(e.status, e.output) for e in steps] == [("failed", None)]


def test_an_oversized_workflow_output_fails_the_workflow(app: Hora) -> None:
    @app.workflow(name="wf-big-output")
    async def wf(ctx: WorkflowContext) -> str:
        return "x" * (MAX_RESULT_BYTES + 1)

    started = app.start_workflow("wf-big-output")
    run_until_idle(app, poll_interval=0.01)
    done = app.get_workflow(started.id)
    assert done.state == "failed" and done.result is None
    assert done.error is not None and done.error.type == "hora.errors.TooLarge"
