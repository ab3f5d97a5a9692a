"""``app.notify``: one call, one recipient, one delivery job per channel
(docs/notifications.md).

``notify`` reads the recipient, resolves the delivery instant in their local time (moved out
of quiet hours and off their non-business days: ``hora.notify.recipients.resolve_delivery``),
checks each channel against their preferences and addresses, and writes the notification, its
deliveries and their jobs in one transaction (``NotificationStore.create_notification``). A
channel a preference or a missing address rules out is a ``suppressed`` delivery with the
reason, never silently dropped. Each delivery job is a job of the internal task
``hora.notify.deliver``: retried with backoff, dead-lettered, visible in ``GET /v1/jobs`` like
any job. Its gates are the notification's limits, computed here rather than declared on the
task: the channel's limit (name ``notify.<channel>``) and the category's per-recipient caps
(name ``notify.<category>`` or ``notify.<category>.<n>``, keyed by recipient), so an operator
lowers any of them at run time with ``app.rate_limits.set``. A delivery over a cap waits for
its turn (``rate_limited: notify.reminders (u42)``): delayed, never lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from hora.context import current_job
from hora.errors import InvalidNotification, NotFound, PermanentDeliveryError, Retry
from hora.flow import FlowSpec, RateLimit, parse_rate
from hora.ids import new_id
from hora.notify.model import (
    DeliveryState,
    LocalTime,
    Message,
    Notification,
    Recipient,
    check_channel,
    check_name,
)
from hora.notify.recipients import resolve_delivery, secret_key, signed_unsubscribe_token
from hora.observability import NOTIFICATION_DELIVERIES, NOTIFICATIONS
from hora.payloads import JobRequest, new_job
from hora.retry import RetryPolicy
from hora.store.notification_rows import NewDelivery, NewNotification
from hora.triggers.dst import zone

if TYPE_CHECKING:
    from hora.app import Hora

__all__ = ["DELIVER_TASK", "DIGEST_TASK", "Category", "Digest", "NotificationService",
           "NotifyConfig", "install"]

log = logging.getLogger("hora.notify")

#: The internal task whose jobs send one delivery each.
DELIVER_TASK = "hora.notify.deliver"
#: The internal task whose jobs send one digest each (every delivery folded into it).
DIGEST_TASK = "hora.notify.digest"
#: A channel's limit when none is set: high enough never to bind by itself, present so an
#: operator can lower it at run time (``app.rate_limits.set("notify.email", "20/s")``).
DEFAULT_CHANNEL_RATE = "1000/s"
#: How long a dedup key holds unless the category or the call says otherwise.
DEFAULT_DEDUP_WINDOW = timedelta(days=1)
#: The most a notification's data may weigh (JSON bytes).
MAX_DATA_BYTES = 64 * 1024
#: Retries of a delivery: 8 attempts, 10 s doubling to at most an hour (about 35 min in all).
DELIVERY_RETRY = RetryPolicy(max_attempts=8, base=10.0, max_delay=3600.0,
                             non_retryable=(PermanentDeliveryError,))


@dataclass(frozen=True, slots=True)
class Digest:
    """Fold a recipient's notifications of a category into one message: every ``every``
    (aligned on the recipient's local clock: hourly digests go out at :00 their time) or
    daily ``at`` a local time; rendered from ``template``, which lists ``items``."""

    template: str
    every: timedelta | None = None
    at: LocalTime | None = None

    def __post_init__(self) -> None:
        check_name(self.template, "digest.template")
        if (self.every is None) == (self.at is None):
            raise InvalidNotification("give every= (a period) or at= (a daily local time)",
                                      field="digest")
        if self.every is not None and not (timedelta(minutes=1) <= self.every
                                           <= timedelta(days=7)):
            raise InvalidNotification("must be 1 minute to 7 days", field="digest.every")


@dataclass(frozen=True, slots=True)
class Category:
    """How one category of notifications is limited (``app.notifications.category``)."""

    name: str
    #: Per-recipient caps, all enforced: ``("3/h", "10/d")``.
    per_recipient: tuple[str, ...] = ()
    dedup_window: timedelta = DEFAULT_DEDUP_WINDOW
    #: Every notification of the category goes into the recipient's digest.
    digest: Digest | None = None
    #: What exceeds a per-recipient cap: ``"delay"`` (waits for the cap, the default) or
    #: ``"digest"`` (folded into the next digest; needs ``digest``).
    over_limit: str = "delay"


@dataclass(slots=True)
class NotifyConfig:
    """What an app declares about notifications, shared by its tenants' views."""

    categories: dict[str, Category]
    channel_rates: dict[str, str]


def install(app: Hora) -> NotifyConfig:
    """Once per app (not per tenant view): the declarations' home, and the delivery task,
    whose jobs run as the tenant that sent them."""
    config = NotifyConfig({}, {})

    async def deliver(notification_id: str, channel: str, recipient: str,
                      cap_key: str | None = None) -> dict[str, Any]:
        ctx = current_job()
        view = app if ctx.tenant_id == app.tenant_id else app.for_tenant(ctx.tenant_id)
        return await view.notifications._deliver(notification_id, channel, recipient)

    async def digest(recipient: str, category: str, channel: str,
                     template: str) -> dict[str, Any]:
        ctx = current_job()
        view = app if ctx.tenant_id == app.tenant_id else app.for_tenant(ctx.tenant_id)
        return await view.notifications._send_digest(recipient, category, channel, template)

    app._register_task(deliver, name=DELIVER_TASK, retry=DELIVERY_RETRY)
    app._register_task(digest, name=DIGEST_TASK, retry=DELIVERY_RETRY)
    return config


class NotificationService:
    """``app.notifications`` (and ``app.notify``): declare categories and channel limits,
    send, and read what was sent."""

    def __init__(self, app: Hora, config: NotifyConfig) -> None:
        self._app = app
        self._categories = config.categories
        self._channel_rates = config.channel_rates

    # -- declarations --------------------------------------------------------------------------

    def category(self, name: str, *, per_recipient: Sequence[str] | str = (),
                 dedup_window: timedelta | None = None, digest: Digest | None = None,
                 over_limit: str = "delay") -> Category:
        """Declare a category: its per-recipient caps (``"3/h"``, ``["3/h", "10/d"]``), what
        exceeds them (``over_limit="delay"`` or ``"digest"``), and a ``Digest`` -- alone, it
        folds every notification of the category; with ``over_limit="digest"``, only what
        exceeds a cap. Every process that sends or delivers it should declare the same."""
        check_name(name, "category")
        caps = (per_recipient,) if isinstance(per_recipient, str) else tuple(per_recipient)
        for i, cap in enumerate(caps):
            try:
                parse_rate(cap)
            except ValueError as e:
                raise InvalidNotification(str(e), field=f"per_recipient[{i}]") from None
        if over_limit not in ("delay", "digest"):
            raise InvalidNotification(f"{over_limit!r} is not delay or digest",
                                      field="over_limit")
        if over_limit == "digest" and (digest is None or not caps):
            raise InvalidNotification("folding what exceeds a cap needs a digest= and "
                                      "per_recipient caps", field="over_limit")
        c = Category(name, caps, dedup_window or DEFAULT_DEDUP_WINDOW, digest, over_limit)
        self._categories[name] = c
        return c

    def channel_limit(self, channel: str, rate: str) -> None:
        """The default rate of a channel's limit ``notify.<channel>`` (run-time overrides by
        that name win)."""
        check_channel(channel)
        parse_rate(rate)
        self._channel_rates[channel] = rate

    # -- sending -------------------------------------------------------------------------------

    def notify(self, recipient: str, *, category: str, template: str,
               data: Mapping[str, Any] | None = None,
               at: LocalTime | datetime | str | None = None,
               channels: Iterable[str] = ("email",), dedup_key: str | None = None,
               correlation_id: str | None = None) -> Notification:
        """Send ``template`` to ``recipient`` on each of ``channels`` at ``at`` (None or
        ``"now"``: now; a ``LocalTime`` or ``"local:09:00"``: that wall time in the
        recipient's zone; an aware datetime), moved out of their quiet hours. Returns the
        notification (``created`` False when ``dedup_key`` found an earlier one)."""
        app = self._app
        tenant = app.tenant_id
        check_name(recipient, "recipient")
        check_name(category, "category")
        check_name(template, "template")
        chans = list(dict.fromkeys(channels))
        if not chans:
            raise InvalidNotification("name at least one channel", field="channels")
        for i, ch in enumerate(chans):
            check_channel(ch, f"channels[{i}]")
        body = dict(data or {})
        try:
            data_json = json.dumps(body, separators=(",", ":"), sort_keys=True)
        except (TypeError, ValueError) as e:
            raise InvalidNotification(f"is not JSON: {e}", field="data") from None
        if len(data_json.encode()) > MAX_DATA_BYTES:
            raise InvalidNotification(f"is larger than {MAX_DATA_BYTES} bytes", field="data")
        if dedup_key is not None and (not isinstance(dedup_key, str)
                                      or not 1 <= len(dedup_key) <= 200):
            raise InvalidNotification("must be 1-200 characters", field="dedup_key")
        when, requested = _parse_at(at)
        r = app.store.get_recipient(tenant, recipient)
        if r is None:
            raise NotFound(f"no recipient {recipient!r} (create it with PUT "
                           f"/v1/recipients/{recipient})", field="recipient")
        now = app.clock.now()
        deliver_at, note = resolve_delivery(r, when, now)
        cat = self._categories.get(category) or Category(category)
        fingerprint = hashlib.sha256(json.dumps(
            [category, template, data_json, chans, requested],
            separators=(",", ":")).encode()).hexdigest()
        nid = new_id()
        deliveries: list[NewDelivery] = []
        jobs = []
        digests: list[Any] = []
        fold = self._fold_reason(cat, r.id, now)
        digest_at = None
        if fold is not None:
            assert cat.digest is not None
            digest_at = _digest_instant(r, cat.digest, deliver_at, resolve_delivery)
        for ch in chans:
            address = r.addresses.get(ch)
            why = r.preferences.allows(category, ch)
            if why is None and ch in ("email", "webhook") and not address:
                why = f"no {ch} address"
            if why is not None:
                deliveries.append(NewDelivery(ch, DeliveryState.SUPPRESSED, why, address))
                continue
            if digest_at is not None:
                job = self._digest_job(ch, r.id, cat, digest_at, now)
                digests.append(job)
                deliveries.append(NewDelivery(
                    ch, DeliveryState.SCHEDULED, f"{fold}: in the digest of "
                    f"{digest_at.isoformat()}", address, job.id, digest_at))
                continue
            job = self._job(nid, ch, r.id, cat, deliver_at, correlation_id, now)
            jobs.append(job)
            deliveries.append(NewDelivery(ch, DeliveryState.SCHEDULED, note, address, job.id))
        n = NewNotification(
            id=nid, tenant_id=tenant, recipient_id=r.id, category=category,
            template=template, data_json=data_json, correlation_id=correlation_id,
            dedup_key=dedup_key,
            dedup_until=None if dedup_key is None else now + cat.dedup_window,
            fingerprint=fingerprint, requested_at=requested, deliver_at=deliver_at, note=note)
        found, created = app.store.create_notification(n, deliveries, jobs, now,
                                                       digests=digests)
        if created:
            NOTIFICATIONS.labels(category).inc()
            for d in deliveries:
                NOTIFICATION_DELIVERIES.labels(d.channel, d.state.value).inc()
            if jobs or digests:
                app._notify_workers(deliver_at if digest_at is None else digest_at)
        out = self.get(found)
        return out if created else replace(out, created=False)

    def _job(self, nid: str, channel: str, recipient: str, cat: Category,
             deliver_at: datetime, correlation_id: str | None, now: datetime) -> Any:
        limits = [RateLimit(self._channel_rates.get(channel, DEFAULT_CHANNEL_RATE),
                            name=f"notify.{channel}")]
        for i, cap in enumerate(cat.per_recipient):
            name = f"notify.{cat.name}" if i == 0 else f"notify.{cat.name}.{i}"
            limits.append(RateLimit(cap, key="cap_key", name=name))
        # A cap counts a recipient's notifications on each channel: one sent by e-mail and
        # in-app uses one of the e-mail budget and one of the in-app budget.
        payload = {"notification_id": nid, "channel": channel, "recipient": recipient,
                   "cap_key": f"{recipient}/{channel}"}
        job = new_job(JobRequest(task=DELIVER_TASK, payload=payload, at=deliver_at,
                                 correlation_id=correlation_id),
                      now, tenant_id=self._app.tenant_id,
                      task=self._app.tasks.get(DELIVER_TASK))
        spec = FlowSpec.build(DELIVER_TASK, rate_limit=limits)
        assert spec is not None
        return replace(job, flow_json=spec.gates(payload).json)

    def _fold_reason(self, cat: Category, recipient: str, now: datetime) -> str | None:
        """Why this notification goes into the recipient's digest, or None (it goes alone)."""
        if cat.digest is None:
            return None
        if cat.over_limit != "digest":
            return "digested"
        for cap in cat.per_recipient:
            rate = parse_rate(cap)
            since = now - timedelta(seconds=rate.period)
            if self._app.store.count_direct(self._app.tenant_id, recipient, cat.name,
                                            since) >= rate.count:
                return f"over the cap {cap}, digested"
        return None

    def _digest_job(self, channel: str, recipient: str, cat: Category, at: datetime,
                    now: datetime) -> Any:
        """The job that sends the digest of (recipient, category, channel) at ``at``: one
        per such digest, by idempotency key (the store folds into the one that waits)."""
        assert cat.digest is not None
        payload = {"recipient": recipient, "category": cat.name, "channel": channel,
                   "template": cat.digest.template}
        limits = [RateLimit(self._channel_rates.get(channel, DEFAULT_CHANNEL_RATE),
                            name=f"notify.{channel}")]
        job = new_job(JobRequest(
            task=DIGEST_TASK, payload=payload, at=at,
            idempotency_key=f"digest:{recipient}:{cat.name}:{channel}:{at.isoformat()}"),
            now, tenant_id=self._app.tenant_id, task=self._app.tasks.get(DIGEST_TASK))
        spec = FlowSpec.build(DIGEST_TASK, rate_limit=limits)
        assert spec is not None
        return replace(job, flow_json=spec.gates(payload).json)

    # -- reading -------------------------------------------------------------------------------

    def get(self, notification_id: str) -> Notification:
        n = self._app.store.get_notification(self._app.tenant_id, notification_id)
        if n is None:
            raise NotFound(f"no notification {notification_id!r}", field="notification_id")
        return n

    def list(self, *, recipient: str | None = None, correlation_id: str | None = None,
             category: str | None = None, after: str | None = None,
             limit: int = 100) -> list[Notification]:
        """Newest first; pass the last id as ``after`` for the next page."""
        if not 1 <= limit <= 1000:
            raise InvalidNotification("must be 1-1000", field="limit")
        return self._app.store.list_notifications(
            self._app.tenant_id, recipient_id=recipient, correlation_id=correlation_id,
            category=category, after=after, limit=limit)

    # -- delivering (the worker side) ----------------------------------------------------------

    async def _send_digest(self, recipient: str, category: str, channel: str,
                           template: str) -> dict[str, Any]:
        """The job of one digest: every delivery folded into it, as one message rendered
        from the digest template with ``items`` (each notification's id, template, data,
        created_at). Its deliveries end ``sent`` together (or ``failed``, as a delivery)."""
        import asyncio

        ctx = current_job()
        app = self._app
        store = app.store
        tenant = ctx.tenant_id
        items = await asyncio.to_thread(store.digest_items, tenant, ctx.job_id)
        if not items:
            return {"channel": channel, "items": 0}
        try:
            r = await asyncio.to_thread(store.get_recipient, tenant, recipient)
            if r is None:
                raise PermanentDeliveryError("the recipient is gone")
            _defer_if_closed(r, app.clock.now())
            link = unsubscribe_link(tenant, r.id)
            listed = [{"id": i.notification_id, "template": i.template, "data": i.data,
                       "created_at": i.created_at.isoformat()} for i in items]
            rendered = await asyncio.to_thread(
                app.templates.render, template, channel, recipient=r, data={},
                extra={"items": listed, "category": category, "unsubscribe_url": link})
            message = Message(notification_id=items[0].notification_id,
                              delivery_id=f"digest:{ctx.job_id}:{channel}", tenant_id=tenant,
                              recipient=r, channel=channel,
                              address=r.addresses.get(channel), category=category,
                              rendered=rendered, unsubscribe_url=link,
                              correlation_id=items[0].correlation_id,
                              data={"items": listed})
            provider_id = await _send(app, channel, message)
        except Retry:
            raise  # deferred to the recipient's next opening: not a failure
        except Exception as e:
            if isinstance(e, PermanentDeliveryError) or ctx.attempt >= ctx.max_attempts:
                NOTIFICATION_DELIVERIES.labels(channel, DeliveryState.FAILED.value).inc(
                    len(items))
                await asyncio.to_thread(
                    store.finish_digest, tenant, ctx.job_id, DeliveryState.FAILED,
                    reason=f"{type(e).__name__}: {e}"[:1000], provider_id=None,
                    now=app.clock.now())
            raise
        NOTIFICATION_DELIVERIES.labels(channel, DeliveryState.SENT.value).inc(len(items))
        await asyncio.to_thread(
            store.finish_digest, tenant, ctx.job_id, DeliveryState.SENT,
            reason=f"digested: one message of {len(items)}", provider_id=provider_id,
            now=app.clock.now())
        return {"channel": channel, "items": len(items), "provider_id": provider_id}

    async def _deliver(self, notification_id: str, channel: str, recipient: str) -> dict[str, Any]:
        """The job of one delivery: render, send, record. A permanent error (an SMTP 5xx,
        a template variable missing) fails it without retries; a temporary one is retried,
        and the delivery is ``failed`` once its last attempt fails."""
        import asyncio

        ctx = current_job()
        app = self._app
        store = app.store
        tenant = ctx.tenant_id
        try:
            n = await asyncio.to_thread(store.get_notification, tenant, notification_id)
            r = await asyncio.to_thread(store.get_recipient, tenant, recipient)
            if n is None or r is None:
                raise PermanentDeliveryError(
                    f"the {'notification' if n is None else 'recipient'} is gone")
            _defer_if_closed(r, app.clock.now())
            link = unsubscribe_link(tenant, r.id)
            rendered = await asyncio.to_thread(
                app.templates.render, n.template, channel, recipient=r, data=n.data,
                extra={"unsubscribe_url": link})
            message = Message(notification_id=n.id, delivery_id=f"{n.id}:{channel}",
                              tenant_id=tenant, recipient=r, channel=channel,
                              address=r.addresses.get(channel), category=n.category,
                              rendered=rendered, unsubscribe_url=link,
                              correlation_id=n.correlation_id, data=n.data)
            provider_id = await app.channels.get(channel).send(message)
        except Retry:
            raise  # deferred to the recipient's next opening: not a failure
        except Exception as e:
            last = isinstance(e, PermanentDeliveryError) or ctx.attempt >= ctx.max_attempts
            if last:
                NOTIFICATION_DELIVERIES.labels(channel, DeliveryState.FAILED.value).inc()
                await asyncio.to_thread(
                    store.set_delivery, tenant, notification_id, channel,
                    DeliveryState.FAILED, reason=f"{type(e).__name__}: {e}"[:1000],
                    provider_id=None, now=app.clock.now())
            raise
        NOTIFICATION_DELIVERIES.labels(channel, DeliveryState.SENT.value).inc()
        await asyncio.to_thread(store.set_delivery, tenant, notification_id, channel,
                                DeliveryState.SENT, reason=None, provider_id=provider_id,
                                now=app.clock.now())
        log.info("delivered", extra={"notification_id": notification_id, "channel": channel,
                                     "recipient": recipient})
        return {"channel": channel, "provider_id": provider_id}


def _digest_instant(r: Recipient, digest: Digest, after: datetime,
                    resolve: Callable[[Recipient, LocalTime | datetime | None, datetime],
                                      tuple[datetime, str | None]]) -> datetime:
    """When the digest a notification due ``after`` folds into goes out: the next daily
    ``at`` in the recipient's zone, or the end of the ``every`` period (aligned on their
    local midnight) that holds ``after``; then out of their quiet hours like any delivery."""
    if digest.at is not None:
        return resolve(r, digest.at, after)[0]
    assert digest.every is not None
    tz = zone(r.timezone)
    local = after.astimezone(tz)
    midnight = datetime.combine(local.date(), time(0), tz)
    step = digest.every
    k = (local - midnight) // step + 1
    end = (midnight + k * step).astimezone(after.tzinfo)
    return resolve(r, end, after)[0]


def _defer_if_closed(r: Recipient, now: datetime) -> None:
    """A delivery whose job starts while the recipient is closed (a per-recipient cap or a
    channel limit held it past the instant notify resolved, into their quiet hours or a day
    off) waits for their next opening instead: the job is retried then (``Retry``)."""
    opens, note = resolve_delivery(r, None, now)
    if opens > now:
        raise Retry((opens - now).total_seconds(), f"deferred: {note}")


def unsubscribe_link(tenant_id: str, recipient_id: str) -> str | None:
    """The recipient's unsubscribe link for a message (``List-Unsubscribe``, and
    ``unsubscribe_url`` in templates): signed with ``HORA_SECRET_KEY`` under the server's
    ``HORA_PUBLIC_URL``; None unless both are set."""
    public = os.environ.get("HORA_PUBLIC_URL", "").rstrip("/")
    key = secret_key()
    if not public or key is None:
        return None
    return f"{public}/v1/unsubscribe/{signed_unsubscribe_token(key, tenant_id, recipient_id)}"


async def _send(app: Hora, channel: str, message: Message) -> str | None:
    return await app.channels.get(channel).send(message)


def _parse_at(at: LocalTime | datetime | str | None) -> tuple[LocalTime | datetime | None,
                                                              str]:
    """The delivery instant asked for, and how to record it."""
    if at is None or at == "now":
        return None, "now"
    if isinstance(at, LocalTime):
        return at, f"local:{at.hour:02d}:{at.minute:02d}"
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise InvalidNotification("must have a time zone (or use LocalTime for the "
                                      "recipient's own)", field="at")
        return at, at.isoformat()
    if isinstance(at, str):
        if at.startswith("local:"):
            lt = LocalTime.parse(at)
            return lt, f"local:{lt.hour:02d}:{lt.minute:02d}"
        try:
            parsed = datetime.fromisoformat(at)
        except ValueError:
            raise InvalidNotification(f"{at!r} is not 'now', 'local:HH:MM' or an ISO 8601 "
                                      "instant with a zone", field="at") from None
        return _parse_at(parsed)
    raise InvalidNotification(f"{at!r} is not a delivery time", field="at")

