"""The webhook channel against a real local HTTP receiver (signed like every HTTP target;
410 and other 4xx permanent, 5xx and 429 temporary; the Slack body), the in-app channel into
both stores (once per delivery), and the log channel's line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest

from hora import FakeClock, Hora
from hora.errors import DeliveryError, PermanentDeliveryError, Retry
from hora.http_target import AddressPolicy, verify
from hora.notify.channels import Channels, InAppChannel, LogChannel, WebhookChannel
from hora.notify.model import Message, Recipient, Rendered
from tests.receiver import Receiver, Reply


def message(address: str | None, *, data: dict[str, object] | None = None,
            delivery_id: str = "d-1") -> Message:
    return Message(notification_id="n-1", delivery_id=delivery_id, tenant_id="acme",
                   recipient=Recipient("u42", tenant_id="acme"), channel="webhook",
                   address=address, category="reports",
                   rendered=Rendered("Report ready", "Q3 is in.", "<p>Q3 is in.</p>"),
                   correlation_id="c-7", data=data or {"report": "Q3"})


@pytest.fixture
def webhook(sqlite_url: str, clock: FakeClock) -> Iterator[tuple[Hora, WebhookChannel]]:
    app = Hora(sqlite_url, clock=clock)
    ch = WebhookChannel(app, policy=AddressPolicy.parse("127.0.0.1"), timeout=5)
    try:
        yield app, ch
    finally:
        asyncio.run(ch.aclose())
        app.close()


def test_a_webhook_posts_signed_json(webhook: tuple[Hora, WebhookChannel],
                                     receiver: Receiver) -> None:
    app, ch = webhook
    asyncio.run(ch.send(message(receiver.url("/notify"))))
    [seen] = receiver.requests
    assert (seen.method, seen.path) == ("POST", "/notify")
    assert json.loads(seen.body) == {
        "notification_id": "n-1", "delivery_id": "d-1", "category": "reports",
        "recipient": "u42", "subject": "Report ready", "text": "Q3 is in.",
        "html": "<p>Q3 is in.</p>", "data": {"report": "Q3"}, "correlation_id": "c-7"}
    assert seen.headers["webhook-id"] == "d-1"  # the same on every attempt: dedup
    assert seen.headers["hora-correlation-id"] == "c-7"
    secret = app.for_tenant("acme").store.get_tenant("acme").webhook_secret  # type: ignore[union-attr]
    verify(secret, seen.headers, seen.body, now=app.clock.now())  # raises if it does not


def test_slack_body_when_asked(webhook: tuple[Hora, WebhookChannel],
                               receiver: Receiver) -> None:
    _, ch = webhook
    asyncio.run(ch.send(message(receiver.url(), data={"slack": True})))
    assert json.loads(receiver.requests[0].body) == {"text": "Report ready\nQ3 is in."}


@pytest.mark.parametrize("status", [410, 400, 404, 301])
def test_gone_and_other_client_errors_are_permanent(
        webhook: tuple[Hora, WebhookChannel], receiver: Receiver, status: int) -> None:
    _, ch = webhook
    receiver.answer(Reply(status, b"gone for good"))
    with pytest.raises(PermanentDeliveryError) as caught:
        asyncio.run(ch.send(message(receiver.url())))
    assert str(status) in str(caught.value)


@pytest.mark.parametrize("status", [503, 500, 429, 408])
def test_server_errors_and_throttling_are_temporary(
        webhook: tuple[Hora, WebhookChannel], receiver: Receiver, status: int) -> None:
    _, ch = webhook
    receiver.answer(Reply(status, b"busy", {"Retry-After": "30"}))
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(ch.send(message(receiver.url())))
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert str(status) in str(caught.value)
    if status in (408, 429):
        assert isinstance(caught.value.__cause__, Retry)
        assert caught.value.__cause__.delay == 30


def test_refused_and_missing_addresses_are_permanent(sqlite_url: str, clock: FakeClock,
                                                     receiver: Receiver) -> None:
    app = Hora(sqlite_url, clock=clock)
    try:
        strict = WebhookChannel(app, policy=AddressPolicy())  # no private addresses
        with pytest.raises(PermanentDeliveryError, match="loopback"):
            asyncio.run(strict.send(message(receiver.url())))
        with pytest.raises(PermanentDeliveryError, match="no webhook address"):
            asyncio.run(strict.send(message(None)))
        with pytest.raises(PermanentDeliveryError, match=r"target\.url"):
            asyncio.run(strict.send(message("ftp://files.example/x")))
        assert receiver.requests == []
    finally:
        app.close()


def test_inapp_stores_one_item_per_delivery(app: Hora) -> None:
    ch = InAppChannel(lambda: app.store, app.clock)
    msg = message(None)
    assert asyncio.run(ch.send(msg)) == "d-1"
    asyncio.run(ch.send(msg))  # a retried delivery
    acme = app.for_tenant("acme")
    page = acme.inbox.list("u42")
    assert [(i.id, i.subject, i.text, dict(i.data)) for i in page.items] == [
        ("d-1", "Report ready", "Q3 is in.", {"report": "Q3"})]
    assert acme.inbox.counts("u42") == {"unread": 1, "total": 1}
    assert app.inbox.counts("u42") == {"unread": 0, "total": 0}  # another tenant's


def test_log_channel_writes_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hora.notify"):
        assert asyncio.run(LogChannel().send(message(None))) is None
    [record] = [r for r in caplog.records if r.name == "hora.notify"]
    assert "n-1" in record.getMessage() and "u42" in record.getMessage()
    assert record.notification["subject"] == "Report ready"  # type: ignore[attr-defined]


def test_closing_the_channels_closes_the_webhook_client(
        webhook: tuple[Hora, WebhookChannel], receiver: Receiver) -> None:
    _, ch = webhook

    async def send_then_close() -> bool:
        await ch.send(message(receiver.url()))
        client = ch.targets().client()
        assert not client.is_closed
        await Channels([ch, LogChannel()]).aclose()
        return client.is_closed

    assert asyncio.run(send_then_close())
