"""``app.notify`` by e-mail into a real SMTP server (aiosmtpd on 127.0.0.1), on each store
and a fake clock: the message arrives rendered for the recipient; a 550 fails the delivery
at once (its job dead after one attempt, no retries); a 451 is retried and then sent; the
delivery counters follow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY

from hora import FakeClock, Hora
from hora.notify.channels import SmtpChannel
from hora.notify.model import DeliveryState
from hora.states import JobState
from hora.testing import run_until_idle
from tests.notify.smtpd import Handler, Smtpd, free_port

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)


class FlakyHandler(Handler):
    """Answers DATA with ``data_reply`` for the first ``failures`` messages, then accepts."""

    failures = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.failures > 0:
            self.failures -= 1
            return "451 4.3.0 try later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def smtpd() -> Iterator[Smtpd]:
    handler = FlakyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield Smtpd(handler, "127.0.0.1", controller.port)
    finally:
        controller.stop()


def sent_count(channel: str, state: str) -> float:
    return REGISTRY.get_sample_value("hora_notification_deliveries_total",
                                     {"channel": channel, "state": state}) or 0.0


def prepare(app: Hora, smtpd: Smtpd) -> None:
    app.channels.register(SmtpChannel(smtpd.host, smtpd.port, sender="no-reply@acme.example",
                                      starttls=False, timeout=10))
    app.recipients.upsert("u42", timezone="UTC", addresses={"email": "ada@example.com"},
                          data={"name": "Ada"})
    app.templates.put("ready", channel="email", subject="Report {{ data.report }}",
                      text="Hello {{ recipient.data.name }}", html="<p>Hello <b>Ada</b></p>")


def test_an_email_arrives_and_counts_as_sent(app: Hora, smtpd: Smtpd) -> None:
    prepare(app, smtpd)
    before = sent_count("email", "sent")
    n = app.notify("u42", category="reports", template="ready", data={"report": "Q3"},
                   correlation_id="c-1")
    run_until_idle(app, until=T0 + timedelta(hours=1))
    [got] = smtpd.handler.received
    assert got.rcpt_tos == ["ada@example.com"]
    assert got.message["Subject"] == "Report Q3"
    assert got.message["X-Hora-Correlation-Id"] == "c-1"
    kinds = [p.get_content_type() for p in got.message.walk()]
    assert "text/plain" in kinds and "text/html" in kinds
    (d,) = app.notifications.get(n.id).deliveries
    assert d.state is DeliveryState.SENT
    assert sent_count("email", "sent") == before + 1


def test_a_550_fails_at_once_and_a_451_is_retried(app: Hora, smtpd: Smtpd) -> None:
    prepare(app, smtpd)
    assert isinstance(smtpd.handler, FlakyHandler)
    smtpd.handler.rcpt_reply = "550 5.1.1 no such user"
    refused = app.notify("u42", category="reports", template="ready", data={"report": "A"})
    run_until_idle(app, until=T0 + timedelta(hours=1))
    (d,) = app.notifications.get(refused.id).deliveries
    assert d.state is DeliveryState.FAILED and d.reason and "550" in d.reason
    job = app.get_job(d.job_id or "")
    assert (job.state, job.attempt) == (JobState.DEAD, 1)  # no retry of a permanent error

    smtpd.handler.rcpt_reply = None
    smtpd.handler.failures = 2  # two 451s, then accepted
    later = app.notify("u42", category="reports", template="ready", data={"report": "B"})
    run_until_idle(app, until=T0 + timedelta(hours=3))
    (d,) = app.notifications.get(later.id).deliveries
    assert d.state is DeliveryState.SENT
    job = app.get_job(d.job_id or "")
    assert (job.state, job.attempt) == (JobState.SUCCEEDED, 3)
    assert [r.message["Subject"] for r in smtpd.handler.received] == ["Report B"]


def test_the_email_carries_a_stable_signed_unsubscribe_link_that_works(
        app: Hora, smtpd: Smtpd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORA_PUBLIC_URL", "https://hora.example.com/")
    monkeypatch.setenv("HORA_SECRET_KEY", "a-test-secret-of-enough-bytes")
    prepare(app, smtpd)
    app.templates.put("ready", channel="email", subject="Report {{ data.report }}",
                      text="Unsubscribe: {{ unsubscribe_url }}")
    for report in ("A", "B"):
        app.notify("u42", category="reports", template="ready", data={"report": report})
    run_until_idle(app, until=T0 + timedelta(hours=1))
    first, second = smtpd.handler.received
    link = first.message["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://hora.example.com/v1/unsubscribe/s1.")
    assert second.message["List-Unsubscribe"] == first.message["List-Unsubscribe"]  # stable
    assert link in first.message.get_body(("plain",)).get_content()
    token = link.rsplit("/", 1)[1]
    assert app.recipients.by_token(token[:-2] + "AA") is None  # a forged mac names nobody
    app.recipients.unsubscribe(token)  # what the public page does with it
    assert app.recipients.get("u42").preferences.allows("reports", "email") is not None
    again = app.notify("u42", category="reports", template="ready", data={"report": "C"})
    assert again.deliveries[0].state is DeliveryState.SUPPRESSED
