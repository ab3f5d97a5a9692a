"""The e-mail channel against a real SMTP server (aiosmtpd on 127.0.0.1): a multipart
text + html message with its headers and the unsubscribe link arrives; a 5xx reply is a
permanent failure, a 4xx reply or a closed port a temporary one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from hora import FakeClock
from hora.errors import ConfigError, DeliveryError, PermanentDeliveryError
from hora.notify.channels import Channels, LogChannel, SmtpChannel
from hora.notify.model import Message, Recipient, Rendered
from tests.notify.smtpd import Smtpd, free_port, running_smtpd

NOW = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def smtpd() -> Iterator[Smtpd]:
    with running_smtpd() as server:
        yield server


def message(*, html: str | None = "<p>Your <b>report</b> is ready</p>",
            unsubscribe: str | None = "https://hora.example/u/tok123",
            address: str | None = "ada@example.com") -> Message:
    return Message(notification_id="n-1", delivery_id="d-1", tenant_id="acme",
                   recipient=Recipient("u42", tenant_id="acme"), channel="email",
                   address=address, category="reports",
                   rendered=Rendered("Report ready", "Your report is ready.\n", html),
                   unsubscribe_url=unsubscribe, correlation_id="onboarding-42")


def channel(server: Smtpd, **kw: object) -> SmtpChannel:
    return SmtpChannel(server.host, server.port, sender="Acme <no-reply@acme.example>",
                       starttls=False, timeout=10, clock=FakeClock(NOW), **kw)  # type: ignore[arg-type]


def test_a_multipart_message_arrives_with_its_headers(smtpd: Smtpd) -> None:
    provider_id = asyncio.run(channel(smtpd).send(message()))
    [got] = smtpd.handler.received
    assert got.rcpt_tos == ["ada@example.com"]
    assert got.mail_from == "no-reply@acme.example"
    msg = got.message
    assert msg["From"] == "Acme <no-reply@acme.example>"
    assert msg["To"] == "ada@example.com"
    assert msg["Subject"] == "Report ready"
    assert msg["Date"] == "Fri, 01 Mar 2030 09:00:00 +0000"
    assert msg["Message-ID"] == "<d-1@acme.example>" == provider_id
    assert msg["List-Unsubscribe"] == "<https://hora.example/u/tok123>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["X-Hora-Notification"] == "n-1"
    assert msg["X-Hora-Correlation-Id"] == "onboarding-42"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().replace("\r\n", "\n") == "Your report is ready.\n"  # CRLF on the wire
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<p>Your <b>report</b> is ready</p>"


def test_text_only_without_unsubscribe_is_a_plain_message(smtpd: Smtpd) -> None:
    asyncio.run(channel(smtpd).send(message(html=None, unsubscribe=None)))
    [got] = smtpd.handler.received
    assert got.message.get_content_type() == "text/plain"
    assert got.message["List-Unsubscribe"] is None
    assert got.message.get_content().replace("\r\n", "\n") == "Your report is ready.\n"


def test_a_550_recipient_refusal_is_permanent(smtpd: Smtpd) -> None:
    smtpd.handler.rcpt_reply = "550 5.1.1 no such user"
    with pytest.raises(PermanentDeliveryError) as caught:
        asyncio.run(channel(smtpd).send(message()))
    assert "550" in str(caught.value) and "no such user" in str(caught.value)
    assert smtpd.handler.received == []


def test_a_451_is_temporary(smtpd: Smtpd) -> None:
    smtpd.handler.data_reply = "451 4.3.0 try later"
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(channel(smtpd).send(message()))
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert "451" in str(caught.value)
    smtpd.handler.data_reply = None  # the retry goes through
    asyncio.run(channel(smtpd).send(message()))
    assert len(smtpd.handler.received) == 1


def test_a_closed_port_is_temporary() -> None:
    ch = SmtpChannel("127.0.0.1", free_port(), sender="a@b.example", starttls=False,
                     timeout=5)
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(ch.send(message()))
    assert not isinstance(caught.value, PermanentDeliveryError)


def test_a_message_without_an_address_is_permanent(smtpd: Smtpd) -> None:
    with pytest.raises(PermanentDeliveryError, match="no e-mail address"):
        asyncio.run(channel(smtpd).send(message(address=None)))
    with pytest.raises(PermanentDeliveryError, match="headers"):
        asyncio.run(channel(smtpd).send(message(address="ada@example.com\r\nBcc: x@y.z")))
    assert smtpd.handler.received == []


def test_from_env_reads_the_settings_and_names_a_bad_one() -> None:
    ch = SmtpChannel.from_env({"HORA_SMTP_HOST": "smtp.example.com", "HORA_SMTP_PORT": "2525",
                               "HORA_SMTP_FROM": "no-reply@acme.example",
                               "HORA_SMTP_STARTTLS": "true", "HORA_SMTP_USERNAME": "u",
                               "HORA_SMTP_PASSWORD": "p"})
    assert (ch.host, ch.port, ch.sender, ch.starttls, ch.username, ch.password) == (
        "smtp.example.com", 2525, "no-reply@acme.example", True, "u", "p")
    assert SmtpChannel.from_env({"HORA_SMTP_HOST": "h", "HORA_SMTP_FROM": "a@b"}).starttls is None
    with pytest.raises(ConfigError) as caught:
        SmtpChannel.from_env({"HORA_SMTP_HOST": "h", "HORA_SMTP_FROM": "a@b",
                              "HORA_SMTP_STARTTLS": "maybe"})
    assert caught.value.field == "HORA_SMTP_STARTTLS"
    with pytest.raises(ConfigError) as caught:
        SmtpChannel.from_env({"HORA_SMTP_HOST": "h"})
    assert caught.value.field == "HORA_SMTP_FROM"


def test_the_registry_knows_email_only_once_configured(smtpd: Smtpd,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from hora import Hora
    from hora.errors import InvalidNotification

    monkeypatch.delenv("HORA_SMTP_HOST", raising=False)
    app = Hora("sqlite:///unused.db")
    assert app.channels.names() == ["inapp", "log", "webhook"]
    with pytest.raises(InvalidNotification, match="HORA_SMTP_HOST") as caught:
        app.channels.get("email")
    assert caught.value.field == "channels"
    app.channels.register(channel(smtpd))
    assert isinstance(app.channels.get("email"), SmtpChannel)
    assert app.for_tenant("other").channels is app.channels  # shared by tenant views
    monkeypatch.setenv("HORA_SMTP_HOST", smtpd.host)
    monkeypatch.setenv("HORA_SMTP_PORT", str(smtpd.port))
    monkeypatch.setenv("HORA_SMTP_FROM", "ops@acme.example")
    assert "email" in Hora("sqlite:///unused.db").channels
    assert Channels([LogChannel()]).names() == ["log"]
