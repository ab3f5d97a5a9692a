"""Durable workflows: functions whose steps, timers and signals survive any crash.

    @app.workflow
    async def invoice(ctx: WorkflowContext, invoice_id: str) -> str:
        charge = await ctx.step(charge_card, invoice_id)       # journaled; retried by policy
        ctx.on_rollback(refund, invoice_id)                     # compensation, run in reverse
        decision = await ctx.wait_for_approval(timeout=timedelta(days=3))  # a request
        await ctx.sleep(timedelta(hours=24))                    # durable timer: no worker held
        await ctx.step(send_receipt, invoice_id)
        return "done"

How it works (the DBOS/Temporal "replay" model, in-process, on hora's own job core): a
workflow runs inside a job of the internal task ``hora.workflow``. Every call it makes
through ``ctx`` gets a position ``seq`` and leaves a journal row (``HistoryEntry``) with its
outcome. A run after a crash, a timer or a signal re-executes the function from the top;
each call whose row exists returns the recorded outcome instead of running again, so the
function fast-forwards to where it stopped and carries on. Waiting (a timer, a signal, an
approval request, a child) ends the run: the workflow's row says what it waits for, and a
job scheduled for the deadline (or enqueued by the signal or the decision) starts the next
run — a workflow sleeping for 30 days costs one row and one scheduled job, no worker.

The function must be deterministic given its journal: the same calls in the same order.
Anything that varies between runs (time, randomness, ids, I/O) goes through ``ctx`` or a
step. A call that does not match the journal at its position raises ``NondeterminismError``
naming both, and the workflow fails; hora never guesses.

Steps run at least once and, once journaled, never again: a crash after a step's side
effect but before its row is written runs it again. ``current_step().idempotency_key`` is
stable across those runs; use it to make side effects exactly-once.

The package: ``context`` (what workflow code sees: ``WorkflowContext``, ``Approval``,
``current_step``), ``engine`` (one run against the journal, and its suspension) and
``service`` (``app.workflows``: define, start, signal, approve, cancel, inspect; and
``WorkflowDef``). Each imports only the ones before it; none imports ``hora.app``.
"""

import warnings
from typing import Any

from hora.errors import ChildFailed, NondeterminismError, StepFailed, WorkflowCancelled
from hora.workflows.context import (
    APPROVAL,
    MAX_APPROVAL_CONTEXT,
    MAX_APPROVERS,
    Approval,
    Record,
    StepContext,
    WorkflowContext,
    current_step,
)
from hora.workflows.engine import RUN_LEASE
from hora.workflows.service import (
    BUSY_RETRY,
    DEFAULT_STEP_RETRY,
    RUNNER_TASK,
    WorkflowDef,
    WorkflowService,
    runner_task,
    workflow_jobs,
)

__all__ = ["APPROVAL", "BUSY_RETRY", "DEFAULT_STEP_RETRY", "MAX_APPROVAL_CONTEXT",
           "MAX_APPROVERS", "RUNNER_TASK", "RUN_LEASE", "Approval", "ChildFailed",
           "NondeterminismError", "Record", "StepContext", "StepFailed", "WorkflowCancelled",
           "WorkflowContext", "WorkflowDef", "WorkflowService", "current_step", "runner_task",
           "workflow_jobs"]


def __getattr__(name: str) -> Any:
    """``WorkflowMixin`` was how ``Hora`` got its workflow methods; it is the service
    ``app.workflows`` (``WorkflowService``) now."""
    if name == "WorkflowMixin":
        warnings.warn("hora.workflows.WorkflowMixin is gone: Hora holds a WorkflowService as "
                      "app.workflows; use hora.workflows.WorkflowService",
                      DeprecationWarning, stacklevel=2)
        return WorkflowService
    raise AttributeError(f"module 'hora.workflows' has no attribute {name!r}")
