"""The article's onboarding sequence as a durable workflow.

Welcome email now; the product tour 24 hours later; a follow-up call 7 days after that,
moved to the next working day (no weekends, no public holidays of the user's country) at
10:00 in the user's time zone; the call waits for a person's approval (2 days at most): an
approval request in the inbox, showing the user and the call's time. One correlation id runs
through every job and step.

    python -m examples.onboarding        # runs it on a fake clock: 9 days in milliseconds
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hora import Clock, FakeClock, Hora
from hora.triggers.calendar import BusinessCalendar
from hora.workflows import WorkflowContext, current_step

CALL_HOUR = time(10, 0)


@dataclass
class Outbox:
    """What the steps "sent", with the step's idempotency key and correlation id: a real app
    would call an email provider or a CRM here, passing the key along."""

    clock: Clock
    sent: list[dict[str, Any]] = field(default_factory=list)

    def record(self, what: str, **details: Any) -> dict[str, Any]:
        step = current_step()
        item = {"what": what, "sent_at": self.clock.now().isoformat(),
                "key": step.idempotency_key, "correlation_id": step.correlation_id, **details}
        self.sent.append(item)
        return item


def follow_up_call_at(start: datetime, *, country: str, timezone: str) -> datetime:
    """Seven days after ``start``, moved to the next working day, at 10:00 local time."""
    tz = ZoneInfo(timezone)
    day = (start.astimezone(tz) + timedelta(days=7)).date()
    working = BusinessCalendar(country).next_business_day(day)
    return datetime.combine(working, CALL_HOUR, tz)


def create_app(database_url: str, clock: FakeClock | None = None) -> tuple[Hora, Outbox]:
    app = Hora(database_url, clock=clock)
    outbox = Outbox(app.clock)

    def send_welcome_email(user_id: str, email: str) -> dict[str, Any]:
        return outbox.record("welcome email", user_id=user_id, to=email)

    def send_product_tour(user_id: str) -> dict[str, Any]:
        return outbox.record("product tour", user_id=user_id)

    def book_follow_up_call(user_id: str, at: str, approved_by: str) -> dict[str, Any]:
        return outbox.record("follow-up call", user_id=user_id, at=at, approved_by=approved_by)

    def note_call_skipped(user_id: str, reason: str) -> dict[str, Any]:
        return outbox.record("call skipped", user_id=user_id, reason=reason)

    @app.workflow(name="onboarding")
    async def onboarding(ctx: WorkflowContext, user_id: str, email: str, country: str = "US",
                         timezone: str = "America/New_York") -> dict[str, Any]:
        await ctx.step(send_welcome_email, user_id, email)
        await ctx.sleep(timedelta(hours=24))
        await ctx.step(send_product_tour, user_id)
        call_at = follow_up_call_at(ctx.now(), country=country, timezone=timezone)
        await ctx.sleep_until(call_at)
        decision = await ctx.wait_for_approval(
            "call-approval", timeout=timedelta(days=2),
            context={"user_id": user_id, "email": email, "call_at": call_at.isoformat()})
        if decision is None or not decision.approved:
            reason = "no decision within 2 days" if decision is None else (
                f"declined by {decision.actor}: {decision.comment}")
            await ctx.step(note_call_skipped, user_id, reason)
            return {"call": "skipped", "reason": reason}
        booked = await ctx.step(book_follow_up_call, user_id, call_at.isoformat(),
                                decision.actor or "?")
        return {"call": "booked", "at": booked.at, "approved_by": decision.actor}

    return app, outbox


def main() -> None:  # pragma: no cover - a demo
    import tempfile

    from hora.testing import arun_until_idle

    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(datetime(2030, 12, 17, 15, tzinfo=UTC))
        app, outbox = create_app(f"sqlite:///{tmp}/onboarding.db", clock)
        app.start_workflow("onboarding", {"user_id": "u-42", "email": "ada@example.com"},
                           workflow_id="onboarding-u-42", correlation_id="user-42")
        # Until the call's day (Christmas moved it to the 26th), when the request is made.
        asyncio.run(arun_until_idle(app, until=datetime(2030, 12, 26, 16, tzinfo=UTC)))
        (request,) = app.approvals().items  # the inbox: the call waiting for a decision
        print("deciding", request.id, request.context)
        app.approve(request.id, actor="sam@crm", comment="good fit")
        asyncio.run(arun_until_idle(app))
        for item in outbox.sent:
            print(item)
        print(app.get_workflow("onboarding-u-42").result)
        app.close()


if __name__ == "__main__":  # pragma: no cover
    main()
