"""Workflows for the CLI tests: ``build(url)`` gives an app on that database that runs them
(``run_until_idle``); ``app`` is the same for ``hora worker --app tests.cli.workflow_app:app``.

``cli.expense`` books an expense (a step), registers its cancellation as the compensation,
waits up to a week for an approval and returns the decision with who made it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hora import Hora
from hora.workflows import WorkflowContext


def book(amount: int) -> dict[str, Any]:
    return {"booked": amount}


def unbook(amount: int) -> str:
    return f"unbooked {amount}"


def register(app: Hora) -> Hora:
    @app.workflow(name="cli.expense")
    async def expense(ctx: WorkflowContext, amount: int) -> dict[str, Any]:
        booked = await ctx.step(book, amount)
        ctx.on_rollback(unbook, amount)
        decision = await ctx.wait_for_approval(timeout=timedelta(days=7),
                                               context={"amount": amount})
        if decision is None or not decision.approved:
            raise RuntimeError(f"expense of {amount} rejected")
        return {"booked": booked.booked, "by": decision.actor, "comment": decision.comment}

    return app


def build(database_url: str) -> Hora:
    return register(Hora(database_url))


app = register(Hora())
