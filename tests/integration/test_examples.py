"""The article's own examples (``examples/``), end to end on the FakeClock, on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from examples import invoice, onboarding
from hora import FakeClock, Hora
from hora.testing import run_until_idle

START = datetime(2030, 12, 17, 15, tzinfo=UTC)  # a Tuesday, a week before Christmas


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def onboard(database_url: str, clock: FakeClock) -> Iterator[tuple[Hora, onboarding.Outbox]]:
    app, outbox = onboarding.create_app(database_url, clock)
    yield app, outbox
    app.close()


def test_onboarding_moves_the_call_past_christmas_and_waits_for_approval(
        onboard: tuple[Hora, onboarding.Outbox], clock: FakeClock) -> None:
    app, outbox = onboard
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
    assert [(m["what"], m["sent_at"]) for m in outbox.sent] == [
        ("welcome email", "2030-12-17T15:00:00+00:00"),
        ("product tour", "2030-12-18T15:00:00+00:00"),
    ]
    app.approve(request.id, actor="sam@crm", comment="good fit")
    run_until_idle(app)
    done = app.get_workflow("onb-42")
    assert done.state == "completed"
    assert done.result == {"call": "booked", "at": "2030-12-26T10:00:00-05:00",
                           "approved_by": "sam@crm"}
    # One correlation id end to end: every job, every step, the approval.
    assert {m["correlation_id"] for m in outbox.sent} == {"user-42"}
    jobs = app.list_jobs(limit=1000, include_internal=True).items  # the workflow's own too
    assert jobs and {j.correlation_id for j in jobs} == {"user-42"}
    decided = app.get_approval(request.id)
    assert (decided.state, decided.decided_by, decided.comment) == (
        "approved", "sam@crm", "good fit")
    keys = [m["key"] for m in outbox.sent]
    assert len(keys) == len(set(keys)) == 3


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
