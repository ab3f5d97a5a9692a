"""The article's own examples (``examples/``), end to end on the FakeClock, on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from examples import invoice, onboarding
from hora import FakeClock, Hora
from hora.models import HistoryEntry
from hora.notify.model import DeliveryState
from hora.notify.service import DELIVER_TASK
from hora.states import JobState
from hora.testing import run_until_idle
from tests.notify.smtpd import running_smtpd

START = datetime(2030, 12, 17, 15, tzinfo=UTC)  # a Tuesday, a week before Christmas


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


#: Ada signs up on Tuesday 17 December at 22:30 in New York: inside her quiet hours
#: (21:00-08:00), and so is the same time 24 hours later, when the product tour is due.
SIGNUP = datetime(2030, 12, 18, 3, 30, tzinfo=UTC)


@pytest.fixture
def onboard(database_url: str, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Hora, onboarding.Outbox]]:
    monkeypatch.delenv("HORA_SMTP_HOST", raising=False)  # the in-app inbox and the log
    app, outbox = onboarding.create_app(database_url, FakeClock(SIGNUP))
    yield app, outbox
    app.close()


def _steps(app: Hora, workflow_id: str) -> dict[str, HistoryEntry]:
    """The workflow's steps by the step function's name."""
    return {h.name.rsplit(".", 1)[-1]: h for h in app.workflow_history(workflow_id)
            if h.kind == "step"}


def _outputs(app: Hora, workflow_id: str) -> dict[str, Any]:
    """Each step's result by the step function's name."""
    return {name: h.output for name, h in _steps(app, workflow_id).items()}


def test_onboarding_notifies_outside_quiet_hours_then_moves_the_call_past_christmas(
        onboard: tuple[Hora, onboarding.Outbox]) -> None:
    app, outbox = onboard
    # The product tour's step "crashes" once after notify() returned: its retry notifies again.
    outbox.lose_reply.add("product-tour")
    app.start_workflow("onboarding", {"user_id": "u-42", "email": "ada@example.com"},
                       workflow_id="onb-42", correlation_id="user-42")
    # Seven days after the tour is Christmas Day (a US holiday): the call moves to the 26th,
    # 10:00 in New York, and waits there for a person.
    run_until_idle(app, until=datetime(2030, 12, 26, 16, tzinfo=UTC))
    waiting = app.get_workflow("onb-42")
    assert waiting.state == "waiting" and waiting.wait_name == "call-approval"
    assert waiting.wait_until == datetime(2030, 12, 28, 15, tzinfo=UTC)
    (request,) = app.approvals().items
    assert (request.workflow_id, request.name, request.deadline) == (
        "onb-42", "call-approval", waiting.wait_until)
    assert request.context == {"user_id": "u-42", "email": "ada@example.com",
                               "call_at": "2030-12-26T10:00:00-05:00"}

    # The recipient the first step made: her zone, her quiet hours, her address.
    ada = app.recipients.get("u-42")
    assert (ada.timezone, ada.addresses) == ("America/New_York", {"email": "ada@example.com"})
    assert ada.quiet_hours is not None
    # Two notifications, one per message (the tour's re-run found the first by its key),
    # each moved to the end of the quiet hours: 08:00 in New York, 13:00 UTC.
    tour, welcome = app.notifications.list(recipient="u-42")
    assert (welcome.template, tour.template) == ("welcome", "product-tour")
    assert (welcome.category, welcome.dedup_key, tour.dedup_key) == (
        "onboarding", "welcome-u-42", "product-tour-u-42")
    assert welcome.deliver_at == datetime(2030, 12, 18, 13, tzinfo=UTC)
    assert welcome.note == ("quiet hours 21:00-08:00 (America/New_York): "
                            "moved to 2030-12-18 08:00 local")
    assert tour.deliver_at == datetime(2030, 12, 19, 13, tzinfo=UTC)
    assert tour.note == ("quiet hours 21:00-08:00 (America/New_York): "
                         "moved to 2030-12-19 08:00 local")
    for n in (welcome, tour):
        assert {d.channel: d.state for d in n.deliveries} == {
            "inapp": DeliveryState.SENT, "log": DeliveryState.SENT}
        # The per-user cap "3/h" counts per channel: both channels of one message go out at
        # 08:00 together, neither before.
        assert [d.updated_at for d in n.deliveries] == [n.deliver_at, n.deliver_at]
    # The in-app inbox, newest first.
    inbox = app.inbox.list("u-42").items
    assert [(i.notification_id, i.subject) for i in inbox] == [
        (tour.id, "A five-minute tour of Acme"), (welcome.id, "Welcome to Acme")]
    assert "ada@example.com" in inbox[1].text and onboarding.TOUR_URL in inbox[0].text
    assert app.inbox.counts("u-42") == {"unread": 2, "total": 2}

    # Dedup keys make the step idempotent: its second attempt got the first notification.
    steps = _steps(app, "onb-42")
    assert steps["send_product_tour"].attempts == 2
    assert steps["send_product_tour"].output["notification_id"] == tour.id
    assert steps["send_product_tour"].output["created"] is False
    assert steps["send_welcome"].attempts == 1
    assert steps["send_welcome"].output["created"] is True
    deliveries = app.list_jobs(task=DELIVER_TASK, limit=100, include_internal=True).items
    assert len(deliveries) == 4  # two channels of two notifications, no more
    assert {j.id for j in deliveries} == {
        d.job_id for n in (welcome, tour) for d in n.deliveries}
    assert {j.state for j in deliveries} == {JobState.SUCCEEDED}

    app.approve(request.id, actor="sam@crm", comment="good fit")
    run_until_idle(app)
    done = app.get_workflow("onb-42")
    assert done.state == "completed"
    assert done.result == {"call": "booked", "at": "2030-12-26T10:00:00-05:00",
                           "approved_by": "sam@crm"}
    assert [(m["what"], m["sent_at"]) for m in outbox.sent] == [
        ("follow-up call", "2030-12-26T16:00:00+00:00")]  # when sam approved
    # One correlation id end to end: every step, notification, delivery, job, the approval.
    outputs = _outputs(app, "onb-42")
    assert set(outputs) == {"register_recipient", "send_welcome", "send_product_tour",
                            "book_follow_up_call"}
    assert {o["correlation_id"] for o in outputs.values()} == {"user-42"}
    assert [n.id for n in app.notifications.list(correlation_id="user-42")] == [
        tour.id, welcome.id]
    jobs = app.list_jobs(limit=1000, include_internal=True).items  # the workflow's own too
    assert {j.task for j in jobs} >= {DELIVER_TASK}
    assert {j.correlation_id for j in jobs} == {"user-42"}
    decided = app.get_approval(request.id)
    assert (decided.state, decided.decided_by, decided.comment) == (
        "approved", "sam@crm", "good fit")
    keys = [o["key"] for o in outputs.values()]
    assert len(keys) == len(set(keys)) == 4


def test_onboarding_skips_the_call_without_a_decision(
        onboard: tuple[Hora, onboarding.Outbox]) -> None:
    app, outbox = onboard
    app.start_workflow("onboarding", {"user_id": "u-7", "email": "bo@example.com",
                                      "country": "GB", "timezone": "Europe/London"},
                       workflow_id="onb-7")
    run_until_idle(app)
    wf = app.get_workflow("onb-7")
    assert wf.result == {"call": "skipped", "reason": "no decision within 2 days"}
    # In the UK the 26th is Boxing Day too: the call day is Friday the 27th.
    assert outbox.sent[-1]["sent_at"] == "2030-12-29T10:00:00+00:00"
    # 03:30 in London is quiet too: both messages at 08:00 London (UTC in winter), on the
    # workflow's own correlation id (its id, as none was given).
    sent = app.notifications.list(recipient="u-7")
    assert [(n.template, n.deliver_at) for n in sent] == [
        ("product-tour", datetime(2030, 12, 19, 8, tzinfo=UTC)),
        ("welcome", datetime(2030, 12, 18, 8, tzinfo=UTC))]
    assert {n.correlation_id for n in sent} == {"onb-7"}
    assert len(app.inbox.list("u-7").items) == 2


def test_a_user_who_is_a_recipient_already_keeps_their_settings(
        onboard: tuple[Hora, onboarding.Outbox]) -> None:
    app, _ = onboard
    # No quiet hours and no e-mail wanted: the workflow does not overwrite that.
    app.recipients.upsert("u-9", timezone="Asia/Tokyo", addresses={"email": "kei@example.com"},
                          preferences={"channels": {"log": False}})
    app.start_workflow("onboarding", {"user_id": "u-9", "email": "other@example.com",
                                      "country": "JP", "timezone": "Asia/Tokyo"},
                       workflow_id="onb-9")
    run_until_idle(app, until=SIGNUP + timedelta(days=2))
    assert _outputs(app, "onb-9")["register_recipient"]["created"] is False
    kept = app.recipients.get("u-9")
    assert (kept.quiet_hours, kept.addresses) == (None, {"email": "kei@example.com"})
    tour, welcome = app.notifications.list(recipient="u-9")
    assert (welcome.deliver_at, welcome.note) == (SIGNUP, None)  # 12:30 in Tokyo: not moved
    assert tour.deliver_at == SIGNUP + timedelta(hours=24)
    assert {d.channel: d.state for d in welcome.deliveries} == {
        "inapp": DeliveryState.SENT, "log": DeliveryState.SUPPRESSED}


def test_with_an_smtp_server_the_messages_are_e_mails_too(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_smtpd() as smtpd:
        monkeypatch.setenv("HORA_SMTP_HOST", smtpd.host)
        monkeypatch.setenv("HORA_SMTP_PORT", str(smtpd.port))
        monkeypatch.setenv("HORA_SMTP_FROM", "Acme <hello@acme.example>")
        monkeypatch.setenv("HORA_SMTP_STARTTLS", "false")
        app, _ = onboarding.create_app(database_url, FakeClock(SIGNUP))
        try:
            app.start_workflow("onboarding", {"user_id": "u-42", "email": "ada@example.com"},
                               workflow_id="onb-42", correlation_id="user-42")
            run_until_idle(app, until=SIGNUP + timedelta(days=2))
            tour, welcome = app.notifications.list(recipient="u-42")
            for n in (welcome, tour):
                assert {d.channel: d.state for d in n.deliveries} == {
                    "email": DeliveryState.SENT, "inapp": DeliveryState.SENT}
        finally:
            app.close()
    mails = [r.message for r in smtpd.handler.received]
    assert [(m["To"], m["Subject"], m["X-Hora-Correlation-Id"]) for m in mails] == [
        ("ada@example.com", "Welcome to Acme", "user-42"),
        ("ada@example.com", "A five-minute tour of Acme", "user-42")]
    html = mails[1].get_body(("html",))
    assert html is not None and onboarding.TOUR_URL in html.get_content()


@pytest.fixture
def billing(database_url: str, clock: FakeClock) -> Iterator[tuple[Hora, invoice.Ledger]]:
    app, ledger = invoice.create_app(database_url, clock)
    yield app, ledger
    app.close()


def test_invoice_paid_waits_a_day_then_sends_the_receipt(
        billing: tuple[Hora, invoice.Ledger]) -> None:
    app, ledger = billing
    app.start_workflow("invoice", {"invoice_id": "i-1", "amount": 1250}, workflow_id="i-1")
    run_until_idle(app)
    wf = app.get_workflow("i-1")
    assert (wf.state, wf.result, wf.compensation) == ("completed", "done", None)
    assert [e[0] for e in ledger.events] == ["charged", "receipt sent"]
    sleeps = [h for h in app.workflow_history("i-1") if h.kind == "sleep"]
    assert sleeps[0].deadline == START + timedelta(hours=24)


def test_a_declined_card_waits_for_approval_then_charges_manually(
        billing: tuple[Hora, invoice.Ledger]) -> None:
    app, ledger = billing
    ledger.declined.add("i-2")
    app.start_workflow("invoice", {"invoice_id": "i-2", "amount": 900}, workflow_id="i-2")
    run_until_idle(app, until=START + timedelta(hours=1))
    assert app.get_workflow("i-2").wait_name == "approval"
    (request,) = app.approvals().items
    assert request.context == {"invoice_id": "i-2", "amount": 900, "reason": "card declined"}
    app.approve("i-2", actor="finance@acme", comment="customer called")  # by workflow id
    run_until_idle(app)
    assert app.get_workflow("i-2").result == "done"
    assert [e[0] for e in ledger.events] == [
        "declined", "charged manually (finance@acme)", "receipt sent"]


def test_a_declined_card_escalates_after_three_days(
        billing: tuple[Hora, invoice.Ledger]) -> None:
    app, ledger = billing
    ledger.declined.add("i-3")
    app.start_workflow("invoice", {"invoice_id": "i-3", "amount": 900}, workflow_id="i-3")
    run_until_idle(app)
    wf = app.get_workflow("i-3")
    assert wf.result == "escalated" and wf.finished_at == START + timedelta(days=3)
    assert [e[0] for e in ledger.events] == ["declined", "escalated to collections"]


def test_a_failing_receipt_refunds_the_charge(billing: tuple[Hora, invoice.Ledger]) -> None:
    app, ledger = billing
    ledger.receipts_fail.add("i-4")
    app.start_workflow("invoice", {"invoice_id": "i-4", "amount": 500}, workflow_id="i-4")
    run_until_idle(app)
    wf = app.get_workflow("i-4")
    assert (wf.state, wf.compensation) == ("failed", "completed")
    assert wf.error is not None and "mailer rejected" in wf.error.message
    assert [e[0] for e in ledger.events] == ["charged", "refunded ch_i-4"]
    receipt = next(h for h in app.workflow_history("i-4") if h.name.endswith("send_receipt"))
    assert receipt.status == "failed" and receipt.attempts == 3
