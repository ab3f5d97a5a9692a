"""Channels: how a rendered message leaves hora (docs/notifications.md, "Channels").

One small seam, ``Channel``: a ``name`` and ``async send(message) -> provider id | None``.
A send that fails raises ``DeliveryError`` (the delivery job retries it) or
``PermanentDeliveryError`` (no retry can help: the job fails at once, into the DLQ).

- ``SmtpChannel``: e-mail over SMTP (aiosmtplib), a real multipart/alternative message with
  ``List-Unsubscribe``. A 5xx reply is permanent; a 4xx, a refused connection or a timeout
  is temporary.
- ``WebhookChannel``: a signed JSON POST through the HTTP targets' machinery
  (``hora.http_target``: the same signature, SSRF guard and client). 410 and other 4xx are
  permanent; 5xx, 408, 429 and timeouts are temporary.
- ``InAppChannel``: an item in the recipient's inbox (``hora_inbox``).
- ``LogChannel``: one line on the ``hora.notify`` logger, for development.

``Channels`` is the registry an app carries as ``app.channels``: log, inapp and webhook
always, email when ``HORA_SMTP_HOST`` is set or an ``SmtpChannel`` is registered.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hora.clock import Clock
from hora.errors import (
    ConfigError,
    DeliveryError,
    Fail,
    InvalidNotification,
    InvalidPayload,
    PermanentDeliveryError,
    Retry,
)
from hora.notify.model import Message
from hora.store import Store
from hora.store.notify_rows import InboxItem

if TYPE_CHECKING:  # imported when used: httpx and aiosmtplib are not for every process
    import aiosmtplib

    from hora.app import Hora
    from hora.http_target import AddressPolicy, HttpTargets

__all__ = ["Channel", "Channels", "InAppChannel", "LogChannel", "SmtpChannel",
           "WebhookChannel", "default_channels", "email_message", "webhook_body"]

log = logging.getLogger("hora.notify")

#: The largest inbox item's text (characters) and data (keys): an inbox is for reading.
MAX_INBOX_TEXT = 64 * 1024


@runtime_checkable
class Channel(Protocol):
    """One way to deliver a message. ``send`` returns the provider's id of what it sent
    (an SMTP Message-ID, an inbox item's id) or None, and raises ``DeliveryError`` to be
    retried or ``PermanentDeliveryError`` to fail for good."""

    name: str

    async def send(self, message: Message) -> str | None: ...


# -- e-mail ----------------------------------------------------------------------------------


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip(">") or "hora.invalid"


def email_message(message: Message, *, sender: str,
                  now: datetime | None = None) -> EmailMessage:
    """The e-mail of one delivery: text, plus html as the alternative when there is one;
    Message-ID from the delivery's id, so a retried send is recognisably the same mail.
    PermanentDeliveryError when the address is missing or not a header value."""
    if not message.address:
        raise PermanentDeliveryError(f"recipient {message.recipient.id} has no e-mail address")
    msg = EmailMessage()
    try:
        msg["From"] = sender
        msg["To"] = message.address
        msg["Subject"] = message.rendered.subject
        msg["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
        msg["Message-ID"] = f"<{message.delivery_id}@{_domain(sender)}>"
        msg["X-Hora-Notification"] = message.notification_id
        if message.correlation_id:
            msg["X-Hora-Correlation-Id"] = message.correlation_id
        if message.unsubscribe_url:
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs
            # "List-Unsubscribe=One-Click" to the URL, no login needed.
            msg["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    except (ValueError, TypeError) as e:  # a line break or bad address in a header
        raise PermanentDeliveryError(f"cannot write the e-mail's headers: {e}") from None
    msg.set_content(message.rendered.text)
    if message.rendered.html is not None:
        msg.add_alternative(message.rendered.html, subtype="html")
    return msg


def _smtp_error(e: aiosmtplib.SMTPException, where: str) -> DeliveryError:
    """5xx replies are permanent (RFC 5321: do not repeat the same request); 4xx,
    disconnections, timeouts and refused connections are worth another try."""
    import aiosmtplib

    code: int | None = None
    text = str(e)
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused) and e.recipients:
        first = e.recipients[0]
        code, text = first.code, f"{first.code} {first.message}"
    elif isinstance(e, aiosmtplib.SMTPResponseException) and e.code > 0:
        code, text = e.code, f"{e.code} {e.message}"
    if code is not None and 500 <= code < 600:
        return PermanentDeliveryError(f"{where}: the server refused for good: {text}")
    return DeliveryError(f"{where}: {type(e).__name__}: {text}")


class SmtpChannel:
    """E-mail over SMTP. ``starttls``: None upgrades when the server offers it, True
    requires it, False never tries; ``use_tls`` is implicit TLS (port 465)."""

    name = "email"

    def __init__(self, host: str, port: int = 587, *, sender: str,
                 starttls: bool | None = None, username: str | None = None,
                 password: str | None = None, timeout: float = 30.0,
                 use_tls: bool = False, clock: Clock | None = None) -> None:
        if not host:
            raise ConfigError("an SMTP host is needed", field="HORA_SMTP_HOST")
        if not sender or "@" not in sender:
            raise ConfigError(f"{sender!r} is not a sender address such as "
                              "'Acme <no-reply@acme.example>'", field="HORA_SMTP_FROM")
        if not 0 < port < 65536:
            raise ConfigError(f"{port} is not a port", field="HORA_SMTP_PORT")
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self.password = password
        self.timeout = timeout
        self.use_tls = use_tls
        self.clock = clock

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpChannel:
        """From ``HORA_SMTP_HOST``, ``HORA_SMTP_PORT`` (587), ``HORA_SMTP_FROM``,
        ``HORA_SMTP_STARTTLS`` (``true``, ``false``, or unset/``auto``: when offered),
        ``HORA_SMTP_USERNAME`` and ``HORA_SMTP_PASSWORD``."""
        env = os.environ if environ is None else environ
        port_text = env.get("HORA_SMTP_PORT") or "587"
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"{port_text!r} is not a port", field="HORA_SMTP_PORT") from None
        tls_text = (env.get("HORA_SMTP_STARTTLS") or "auto").strip().lower()
        tls_values: dict[str, bool | None] = {"true": True, "1": True, "yes": True,
                                              "false": False, "0": False, "no": False,
                                              "auto": None}
        if tls_text not in tls_values:
            raise ConfigError(f"{tls_text!r}: use true, false or auto",
                              field="HORA_SMTP_STARTTLS")
        return cls(env.get("HORA_SMTP_HOST", ""), port, sender=env.get("HORA_SMTP_FROM", ""),
                   starttls=tls_values[tls_text], username=env.get("HORA_SMTP_USERNAME") or None,
                   password=env.get("HORA_SMTP_PASSWORD") or None)

    async def send(self, message: Message) -> str | None:
        now = self.clock.now() if self.clock is not None else None
        msg = email_message(message, sender=self.sender, now=now)
        where = f"SMTP {self.host}:{self.port}"
        import aiosmtplib

        try:
            async with asyncio.timeout(self.timeout):
                await aiosmtplib.send(
                    msg, hostname=self.host, port=self.port, username=self.username,
                    password=self.password, start_tls=self.starttls, use_tls=self.use_tls,
                    timeout=self.timeout)
        except aiosmtplib.SMTPException as e:
            raise _smtp_error(e, where) from e
        except (TimeoutError, OSError) as e:
            raise DeliveryError(f"{where}: {type(e).__name__}: {e or 'timed out'}") from e
        return str(msg["Message-ID"])


# -- webhooks --------------------------------------------------------------------------------


def webhook_body(message: Message) -> dict[str, Any]:
    """What the webhook channel POSTs. With ``data["slack"] is True``, Slack's incoming-
    webhook body instead: ``{"text": subject + "\\n" + text}``."""
    r = message.rendered
    if message.data.get("slack") is True:
        return {"text": f"{r.subject}\n{r.text}" if r.subject else r.text}
    return {"notification_id": message.notification_id, "delivery_id": message.delivery_id,
            "category": message.category, "recipient": message.recipient.id,
            "subject": r.subject, "text": r.text, "html": r.html, "data": dict(message.data),
            "correlation_id": message.correlation_id}


class WebhookChannel:
    """A signed JSON POST to the recipient's webhook address, through the HTTP targets'
    ``deliver`` (Standard Webhooks signature with the tenant's secret, ``webhook-id`` the
    delivery id on every attempt, the SSRF guard of ``HORA_HTTP_ALLOW``)."""

    name = "webhook"

    def __init__(self, app: Hora, *, policy: AddressPolicy | None = None,
                 timeout: float = 30.0) -> None:
        self._app = app
        self._policy = policy
        self.timeout = timeout
        self._targets: HttpTargets | None = None

    def targets(self) -> HttpTargets:
        """The HTTP targets' client and secrets cache; the policy is read at first use."""
        from hora.http_target import AddressPolicy, HttpTargets

        if self._targets is None:
            self._targets = HttpTargets(self._app, self._policy if self._policy is not None
                                        else AddressPolicy.from_env())
        return self._targets

    async def aclose(self) -> None:
        if self._targets is not None:
            await self._targets.aclose()

    async def send(self, message: Message) -> str | None:
        if not message.address:
            raise PermanentDeliveryError(
                f"recipient {message.recipient.id} has no webhook address")
        from hora.http_target import HttpTargetError, deliver, parse_target

        try:
            target = parse_target({"url": message.address, "method": "POST",
                                   "body": webhook_body(message), "timeout": self.timeout})
        except InvalidPayload as e:
            raise PermanentDeliveryError(f"webhook address: {e}") from None
        targets = self.targets()
        try:
            await deliver(target, secret=await targets.secret(message.tenant_id),
                          msg_id=message.delivery_id, client=targets.client(),
                          policy=targets.policy, now=self._app.clock.now,
                          correlation_id=message.correlation_id)
        except Fail as e:  # 3xx, 4xx but 408/429, a refused address
            raise PermanentDeliveryError(e.reason) from e
        except Retry as e:  # 408, 429: __cause__.delay is the receiver's Retry-After
            raise DeliveryError(e.reason) from e
        except HttpTargetError as e:  # 5xx, timeouts, no answer
            raise DeliveryError(str(e)) from e
        return None


# -- in-app and log --------------------------------------------------------------------------


class InAppChannel:
    """Stores the message in the recipient's inbox; the item's id is the delivery's, so a
    retried delivery stores it once."""

    name = "inapp"

    def __init__(self, store: Callable[[], Store], clock: Clock) -> None:
        self._store = store
        self.clock = clock

    async def send(self, message: Message) -> str | None:
        r = message.rendered
        item = InboxItem(tenant_id=message.tenant_id, recipient_id=message.recipient.id,
                         id=message.delivery_id, notification_id=message.notification_id,
                         category=message.category, subject=r.subject,
                         text=r.text[:MAX_INBOX_TEXT], data=dict(message.data),
                         created_at=self.clock.now())
        await asyncio.to_thread(self._store().add_inbox_item, item)
        return item.id


class LogChannel:
    """One line per message on the ``hora.notify`` logger (INFO), its fields also as the
    record's ``notification`` attribute for structured handlers."""

    name = "log"

    async def send(self, message: Message) -> str | None:
        fields = {"tenant_id": message.tenant_id, "notification_id": message.notification_id,
                  "delivery_id": message.delivery_id, "recipient": message.recipient.id,
                  "category": message.category, "subject": message.rendered.subject,
                  "correlation_id": message.correlation_id}
        log.info("notification %s to %s (%s): %s", message.notification_id,
                 message.recipient.id, message.category, message.rendered.subject,
                 extra={"notification": fields})
        return None


# -- the registry ----------------------------------------------------------------------------


class Channels:
    """The channels an app delivers through, by name (``app.channels``)."""

    def __init__(self, channels: Iterable[Channel] = ()) -> None:
        self._by_name: dict[str, Channel] = {}
        for channel in channels:
            self.register(channel)

    def register(self, channel: Channel) -> None:
        """Add ``channel`` under its ``name``, replacing the one registered before (e.g.
        ``app.channels.register(SmtpChannel("smtp.example.com", sender=...))``)."""
        if not isinstance(channel, Channel):
            raise TypeError(f"{channel!r} is not a channel: it needs a name and async send()")
        self._by_name[channel.name] = channel

    def get(self, name: str) -> Channel:
        """The channel ``name``; InvalidNotification naming ``channels`` when it is not
        configured (e-mail without ``HORA_SMTP_HOST`` or a registered ``SmtpChannel``)."""
        found = self._by_name.get(name)
        if found is None:
            hint = (": set HORA_SMTP_HOST (and HORA_SMTP_FROM) or register an SmtpChannel"
                    if name == "email" else "")
            raise InvalidNotification(f"channel {name!r} is not configured{hint}",
                                      field="channels")
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)

    async def aclose(self) -> None:
        """Close the channels' pooled connections (the webhook client): when the worker's
        event loop stops, as ``HttpTargets.aclose``."""
        for channel in self._by_name.values():
            close = getattr(channel, "aclose", None)
            if close is not None:
                await close()


def default_channels(app: Hora) -> Channels:
    """What ``Hora()`` starts with: log, inapp and webhook; email when ``HORA_SMTP_HOST``
    is set (read now, when the app is made)."""
    channels = Channels([LogChannel(), InAppChannel(lambda: app.store, app.clock),
                         WebhookChannel(app)])
    if os.environ.get("HORA_SMTP_HOST"):
        channels.register(SmtpChannel.from_env())
    return channels
