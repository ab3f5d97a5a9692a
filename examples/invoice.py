"""The invoice flow from the workflow issue, with compensation.

Charge the card; a declined card waits up to 3 days for a person to approve a manual charge
(escalating without an answer); a day later, send the receipt. If anything after the charge
fails for good, the charge is refunded (a compensation registered when the charge
succeeded), then the workflow ends failed with ``compensation == "completed"``.

    python -m examples.invoice
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hora import FakeClock, Hora, RetryPolicy
from hora.workflows import WorkflowContext, current_step


@dataclass
class Ledger:
    """The payment provider and the mailer, as the steps saw them."""

    declined: set[str] = field(default_factory=set)  # invoices whose card is declined
    receipts_fail: set[str] = field(default_factory=set)  # invoices whose receipt bounces
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (what, invoice, key)

    def log(self, what: str, invoice_id: str) -> None:
        self.events.append((what, invoice_id, current_step().idempotency_key))


def create_app(database_url: str, clock: FakeClock | None = None) -> tuple[Hora, Ledger]:
    app = Hora(database_url, clock=clock)
    ledger = Ledger()

    def charge_card(invoice_id: str, amount: int) -> dict[str, Any]:
        if invoice_id in ledger.declined:
            ledger.log("declined", invoice_id)
            return {"ok": False, "reason": "card declined"}
        ledger.log("charged", invoice_id)
        return {"ok": True, "charge_id": f"ch_{invoice_id}", "amount": amount}

    def charge_manually(invoice_id: str, amount: int, approved_by: str) -> dict[str, Any]:
        ledger.log(f"charged manually ({approved_by})", invoice_id)
        return {"ok": True, "charge_id": f"manual_{invoice_id}", "amount": amount}

    def refund(invoice_id: str, charge_id: str) -> None:
        ledger.log(f"refunded {charge_id}", invoice_id)

    def escalate(invoice_id: str) -> None:
        ledger.log("escalated to collections", invoice_id)

    def send_receipt(invoice_id: str) -> None:
        if invoice_id in ledger.receipts_fail:
            raise ConnectionError("mailer rejected the receipt")
        ledger.log("receipt sent", invoice_id)

    @app.workflow(name="invoice",
                  step_retry=RetryPolicy(max_attempts=3, base=60, jitter="none"))
    async def invoice(ctx: WorkflowContext, invoice_id: str, amount: int) -> str:
        charge = await ctx.step(charge_card, invoice_id, amount)
        if not charge.ok:
            decision = await ctx.wait_for_approval(
                timeout=timedelta(days=3),
                context={"invoice_id": invoice_id, "amount": amount, "reason": charge.reason})
            if decision is None:
                await ctx.step(escalate, invoice_id)
                return "escalated"
            if not decision.approved:
                return f"written off by {decision.actor}"
            charge = await ctx.step(charge_manually, invoice_id, amount, decision.actor)
        ctx.on_rollback(refund, invoice_id, charge.charge_id)
        await ctx.sleep(timedelta(hours=24))  # durable: no worker held for the day
        await ctx.step(send_receipt, invoice_id)
        return "done"

    return app, ledger


def main() -> None:  # pragma: no cover - a demo
    import tempfile

    from hora.testing import arun_until_idle

    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
        app, ledger = create_app(f"sqlite:///{tmp}/invoice.db", clock)
        ledger.receipts_fail.add("inv-2")
        for inv in ("inv-1", "inv-2"):
            app.start_workflow("invoice", {"invoice_id": inv, "amount": 1250},
                               workflow_id=inv)
        asyncio.run(arun_until_idle(app))
        for event in ledger.events:
            print(event)
        for inv in ("inv-1", "inv-2"):
            wf = app.get_workflow(inv)
            print(inv, wf.state, wf.result, wf.compensation)
        app.close()


if __name__ == "__main__":  # pragma: no cover
    main()
