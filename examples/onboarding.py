"""The article's onboarding sequence as a durable workflow, its messages sent with
``app.notify`` (docs/notifications.md).

The user is made a notification recipient (their time zone, quiet hours 21:00-08:00 local,
their e-mail address); the welcome message goes out at once and the product tour 24 hours
later, both through ``app.notify`` in the category ``onboarding``, so each is moved out of
the user's quiet hours by hora rather than by this code: someone who signs up at 22:30 gets
both at 08:00 their time. The category caps what one user receives at 3 deliveries an hour
(each channel's copy counts); the cap is strict -- one every 20 minutes -- so a message's
second channel follows its first 20 minutes later. Then a follow-up call
7 days after the tour, moved to the next working day (no weekends, no public holidays of
the user's country) at 10:00 in the user's time zone; the call waits for a person's approval
(2 days at most): an approval request in the inbox, showing the user and the call's time.
One correlation id runs through every step, every notification and every delivery job.

Why each message has a dedup key: a step may run twice (its worker dies after ``notify``
returned but before the step's result was recorded, and the step is retried). The second
``notify`` with the same key and content returns the first notification (``created`` False)
instead of messaging the user again, which makes the step idempotent.

Channels: e-mail and the in-app inbox when an SMTP server is configured -- ``Hora()``
registers an ``SmtpChannel`` from ``HORA_SMTP_HOST`` (``HORA_SMTP_PORT``, ``HORA_SMTP_FROM``,
...) when that variable is set. Without it the example uses the in-app inbox and the ``log``
channel (one line per message on the ``hora.notify`` logger), so it runs anywhere with no
mail server and no e-mail address is ever contacted.

    python -m examples.onboarding        # runs it on a fake clock: 9 days in milliseconds
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hora import Clock, FakeClock, Hora
from hora.errors import NotFound
from hora.triggers.calendar import BusinessCalendar
from hora.workflows import WorkflowContext, current_step

CALL_HOUR = time(10, 0)
CATEGORY = "onboarding"
QUIET_HOURS = "21:00-08:00"

#: One template per message for any channel (``*``): e-mail uses the html, the inbox and the
#: log the subject and text.
TEMPLATES: dict[str, dict[str, str]] = {
    "welcome": {
        "subject": "Welcome to Acme",
        "text": "Hello {{ recipient.id }}, your account {{ data.email }} is ready.",
        "html": "<p>Hello {{ recipient.id }}, your account <b>{{ data.email }}</b> is ready.</p>",
    },
    "product-tour": {
        "subject": "A five-minute tour of Acme",
        "text": "Hello {{ recipient.id }}, here is what you can do: {{ data.tour_url }}",
        "html": "<p>Hello {{ recipient.id }}, <a href=\"{{ data.tour_url }}\">take the tour</a>."
                "</p>",
    },
}
TOUR_URL = "https://acme.example/tour"


@dataclass
class Outbox:
    """What the steps did besides notifying -- the CRM's side: a real app would book the
    call in its CRM here, passing the step's idempotency key along. ``lose_reply`` names
    templates whose step fails once *after* ``notify`` returned, as when a worker dies before
    the step's result is recorded (the tests use it to show the step is safe to re-run)."""

    clock: Clock
    sent: list[dict[str, Any]] = field(default_factory=list)
    lose_reply: set[str] = field(default_factory=set)

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


def _ensure_template(app: Hora, name: str, *, subject: str, text: str, html: str) -> None:
    """Every process that runs the example declares the templates: store a new version only
    when the latest differs, so restarts do not pile up identical versions."""
    try:
        latest = app.templates.get(name)
    except NotFound:
        latest = None
    if latest is None or (latest.subject, latest.text, latest.html) != (subject, text, html):
        app.templates.put(name, subject=subject, text=text, html=html)


def create_app(database_url: str, clock: FakeClock | None = None) -> tuple[Hora, Outbox]:
    app = Hora(database_url, clock=clock)
    outbox = Outbox(app.clock)
    channels = ["email", "inapp"] if "email" in app.channels else ["inapp", "log"]
    # A user is onboarded once: a dedup key holds for 30 days, longer than any step retry.
    app.notifications.category(CATEGORY, per_recipient=["3/h"], dedup_window=timedelta(days=30))
    for name, parts in TEMPLATES.items():
        _ensure_template(app, name, **parts)

    def register_recipient(user_id: str, email: str, timezone: str) -> dict[str, Any]:
        """The user as a recipient; one that exists already is kept as it is (their
        preferences, their quiet hours)."""
        try:
            app.recipients.get(user_id)
            created = False
        except NotFound:
            app.recipients.upsert(user_id, timezone=timezone, quiet_hours=QUIET_HOURS,
                                  addresses={"email": email})
            created = True
        step = current_step()
        return {"recipient": user_id, "created": created, "key": step.idempotency_key,
                "correlation_id": step.correlation_id}

    def send(user_id: str, template: str, data: dict[str, Any]) -> dict[str, Any]:
        step = current_step()
        n = app.notify(user_id, category=CATEGORY, template=template, data=data,
                       channels=channels, dedup_key=f"{template}-{user_id}",
                       correlation_id=step.correlation_id)
        if template in outbox.lose_reply:
            outbox.lose_reply.discard(template)
            raise ConnectionError(f"lost the reply after notify({template!r})")
        return {"notification_id": n.id, "template": template, "created": n.created,
                "deliver_at": n.deliver_at.isoformat(), "note": n.note,
                "key": step.idempotency_key, "correlation_id": step.correlation_id}

    def send_welcome(user_id: str, email: str) -> dict[str, Any]:
        return send(user_id, "welcome", {"email": email})

    def send_product_tour(user_id: str) -> dict[str, Any]:
        return send(user_id, "product-tour", {"tour_url": TOUR_URL})

    def book_follow_up_call(user_id: str, at: str, approved_by: str) -> dict[str, Any]:
        return outbox.record("follow-up call", user_id=user_id, at=at, approved_by=approved_by)

    def note_call_skipped(user_id: str, reason: str) -> dict[str, Any]:
        return outbox.record("call skipped", user_id=user_id, reason=reason)

    @app.workflow(name="onboarding")
    async def onboarding(ctx: WorkflowContext, user_id: str, email: str, country: str = "US",
                         timezone: str = "America/New_York") -> dict[str, Any]:
        await ctx.step(register_recipient, user_id, email, timezone)
        await ctx.step(send_welcome, user_id, email)
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
    import logging
    import sys
    import tempfile

    from hora.testing import arun_until_idle

    # The log channel's lines (records with the message's fields), as they are sent.
    shown = logging.StreamHandler(sys.stdout)
    shown.setFormatter(logging.Formatter("  log channel: %(message)s"))
    shown.addFilter(lambda record: hasattr(record, "notification"))
    logging.getLogger("hora.notify").addHandler(shown)
    logging.getLogger("hora.notify").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        # Ada signs up on Tuesday 17 December at 22:30 in New York: inside her quiet hours.
        clock = FakeClock(datetime(2030, 12, 18, 3, 30, tzinfo=UTC))
        app, outbox = create_app(f"sqlite:///{tmp}/onboarding.db", clock)
        app.start_workflow("onboarding", {"user_id": "u-42", "email": "ada@example.com"},
                           workflow_id="onboarding-u-42", correlation_id="user-42")
        # Until the call's day (Christmas moved it to the 26th), when the request is made.
        asyncio.run(arun_until_idle(app, until=datetime(2030, 12, 26, 16, tzinfo=UTC)))
        print("notifications (correlation id user-42):")
        for n in reversed(app.notifications.list(correlation_id="user-42")):
            print(f"  {n.template}: due {n.deliver_at.isoformat()} ({n.note or 'not moved'});",
                  ", ".join(f"{d.channel} {d.state.value} at {d.updated_at:%H:%M} UTC"
                            for d in n.deliveries))
        print("u-42's inbox:", [item.subject for item in app.inbox.list("u-42").items],
              app.inbox.counts("u-42"))
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
