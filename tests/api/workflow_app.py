"""An app whose worker runs real workflows: ``hora serve --app tests.api.workflow_app:app``.

``api.order`` reserves stock (a step), registers its release as the compensation, waits
for a human's approval (a day at most), then waits for a ``ship`` signal and returns what
it got. A rejection, a timeout or a cancellation releases the stock. The database comes
from ``hora serve --database-url``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hora import Hora
from hora.workflows import WorkflowContext

app = Hora()


def reserve(order: str) -> dict[str, Any]:
    return {"reserved": order}


def release(order: str) -> str:
    return f"released {order}"


@app.workflow(name="api.order")
async def order(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    reserved = await ctx.step(reserve, order)
    ctx.on_rollback(release, order)
    decision = await ctx.wait_for_approval(timeout=timedelta(days=1))
    if decision is None or not decision.approved:
        raise RuntimeError(f"order {order} not approved"
                           + (f": {decision.comment}" if decision and decision.comment else ""))
    ship = await ctx.wait_for_signal("ship")
    return {"order": reserved.reserved, "approved_by": decision.actor, "ship": ship}


@app.workflow(name="api.purchase")
async def purchase(ctx: WorkflowContext, amount: int) -> list[str | None]:
    """Two stages under one name: the issue's double-click repro."""
    first = await ctx.wait_for_approval(context={"stage": 1, "amount": amount})
    second = await ctx.wait_for_approval(context={"stage": 2, "amount": amount})
    return [d.actor if d else None for d in (first, second)]


@app.workflow(name="api.quick")
async def quick(ctx: WorkflowContext, seconds: float) -> str:
    """An approval that expires after ``seconds`` (real time: the server's clock)."""
    decision = await ctx.wait_for_approval("quick", timeout=seconds,
                                           approvers=["manager-a"])
    return "expired" if decision is None else f"decided by {decision.actor}"
