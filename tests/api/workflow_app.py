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
