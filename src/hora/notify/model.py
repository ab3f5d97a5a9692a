"""The notification domain's values (docs/notifications.md), shared by the recipients,
templates, channels and sending parts: a leaf module (no store, no I/O).

A **recipient** is a person (or system) of one tenant with a time zone, quiet hours, a
holiday calendar, addresses per channel and preferences. A **notification** is one call of
``app.notify``: one recipient, one category, one template, one delivery instant resolved in
the recipient's local time; it becomes one **delivery** per channel, each a durable job of
the task ``hora.notify.deliver`` (retries, dead letters, history like any job).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from hora.errors import InvalidNotification, InvalidTrigger
from hora.triggers.dst import zone

#: The channels hora ships (``hora.notify.channels``). ``log`` writes to the ``hora.notify``
#: logger: for development, and for tests of one's own templates.
CHANNELS = ("email", "webhook", "inapp", "log")
#: Recipient ids, categories, template names: what may appear in a URL path segment.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$")
#: The most addresses, preference entries or metadata keys one recipient may carry.
MAX_ENTRIES = 64
#: The largest locale tag (BCP 47 tags are short; this only bounds input).
MAX_LOCALE = 35


class DeliveryState(StrEnum):
    """Where one (notification, channel) delivery stands."""

    SCHEDULED = "scheduled"  # its job waits for the resolved instant (or a limit)
    SENT = "sent"  # the channel accepted it (SMTP 250, HTTP 2xx, stored in the inbox)
    DELIVERED = "delivered"  # the channel confirmed receipt (where a channel can tell)
    FAILED = "failed"  # retries exhausted or a permanent error: its job is dead
    SUPPRESSED = "suppressed"  # not sent, with the reason (opted out, deduplicated...)


def check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InvalidNotification(
            f"{value!r} is not a valid name: 1-200 characters of letters, digits and "
            "_ . : @ + -, starting with a letter or digit", field=what)
    return value


def check_channel(value: object, what: str = "channel") -> str:
    if value not in CHANNELS:
        raise InvalidNotification(f"{value!r} is not a channel; one of {', '.join(CHANNELS)}",
                                  field=what)
    return str(value)


def parse_local_time(value: object, what: str) -> time:
    """``"21:00"`` or a ``datetime.time`` without a zone; ``25:00`` names the field."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise InvalidNotification("must be a local time without a zone", field=what)
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if m and int(m.group(1)) < 24 and int(m.group(2)) < 60:
            return time(int(m.group(1)), int(m.group(2)))
    raise InvalidNotification(f"{value!r} is not a local time such as 21:00 (00:00-23:59)",
                              field=what)


def check_timezone(value: object, what: str = "timezone") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidNotification("must be an IANA time zone such as Europe/Paris", field=what)
    try:
        zone(value)
    except InvalidTrigger:  # it names a trigger's field; this is the recipient's
        raise InvalidNotification(f"{value!r} is not a known IANA time zone (such as "
                                  "Europe/Paris)", field=what) from None
    return value


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No delivery from ``start`` to ``end`` local time (``21:00``-``08:00`` runs overnight).
    A delivery that falls inside is moved to ``end``."""

    start: time
    end: time

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", parse_local_time(self.start, "quiet_hours.start"))
        object.__setattr__(self, "end", parse_local_time(self.end, "quiet_hours.end"))
        if self.start == self.end:
            raise InvalidNotification("start and end are equal: quiet all day or never?",
                                      field="quiet_hours")

    @classmethod
    def parse(cls, value: object) -> QuietHours | None:
        """``"21:00-08:00"``, ``{"start": "21:00", "end": "08:00"}``, a QuietHours or None."""
        if value is None or isinstance(value, QuietHours):
            return value
        if isinstance(value, str):
            start, sep, end = value.partition("-")
            if not sep:
                raise InvalidNotification(f"{value!r} is not START-END such as 21:00-08:00",
                                          field="quiet_hours")
            return cls(parse_local_time(start, "quiet_hours.start"),
                       parse_local_time(end, "quiet_hours.end"))
        if isinstance(value, Mapping):
            return cls(parse_local_time(value.get("start"), "quiet_hours.start"),
                       parse_local_time(value.get("end"), "quiet_hours.end"))
        raise InvalidNotification(f"{value!r} is not quiet hours such as 21:00-08:00",
                                  field="quiet_hours")

    def to_dict(self) -> dict[str, str]:
        return {"start": f"{self.start:%H:%M}", "end": f"{self.end:%H:%M}"}


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a recipient agreed to receive (Knock's model). ``channels``: a channel set to
    False receives nothing. ``categories``: a category set to False receives nothing; set to
    a mapping, it names the channels of that category turned off (``{"digest": {"email":
    False}}``). Anything not mentioned is allowed."""

    channels: Mapping[str, bool] = field(default_factory=dict)
    categories: Mapping[str, bool | Mapping[str, bool]] = field(default_factory=dict)

    def allows(self, category: str, channel: str) -> str | None:
        """None when allowed, else why not (the suppression's reason)."""
        if self.channels.get(channel) is False:
            return f"opted out of the {channel} channel"
        c = self.categories.get(category)
        if c is False:
            return f"opted out of {category}"
        if isinstance(c, Mapping) and c.get(channel) is False:
            return f"opted out of {category} by {channel}"
        return None

    @classmethod
    def parse(cls, value: object) -> Preferences:
        if value is None:
            return cls()
        if isinstance(value, Preferences):
            return value
        if not isinstance(value, Mapping):
            raise InvalidNotification("must be an object with channels and categories",
                                      field="preferences")
        channels = value.get("channels") or {}
        categories = value.get("categories") or {}
        if not isinstance(channels, Mapping) or not isinstance(categories, Mapping):
            raise InvalidNotification("channels and categories must be objects",
                                      field="preferences")
        if len(channels) + len(categories) > MAX_ENTRIES:
            raise InvalidNotification(f"at most {MAX_ENTRIES} entries", field="preferences")
        out_ch: dict[str, bool] = {}
        for ch, on in channels.items():
            check_channel(ch, f"preferences.channels.{ch}")
            if not isinstance(on, bool):
                raise InvalidNotification("must be true or false",
                                          field=f"preferences.channels.{ch}")
            out_ch[ch] = on
        out_cat: dict[str, bool | Mapping[str, bool]] = {}
        for cat, on in categories.items():
            check_name(cat, f"preferences.categories.{cat}")
            if isinstance(on, bool):
                out_cat[cat] = on
            elif isinstance(on, Mapping):
                per: dict[str, bool] = {}
                for ch, v in on.items():
                    check_channel(ch, f"preferences.categories.{cat}.{ch}")
                    if not isinstance(v, bool):
                        raise InvalidNotification(
                            "must be true or false", field=f"preferences.categories.{cat}.{ch}")
                    per[ch] = v
                out_cat[cat] = per
            else:
                raise InvalidNotification("must be true, false or an object of channels",
                                          field=f"preferences.categories.{cat}")
        return cls(out_ch, out_cat)

    def to_dict(self) -> dict[str, Any]:
        return {"channels": dict(self.channels),
                "categories": {k: v if isinstance(v, bool) else dict(v)
                               for k, v in self.categories.items()}}


@dataclass(frozen=True, slots=True)
class LocalTime:
    """``at=LocalTime(9, 0)``: the next 09:00 in the recipient's own zone (DST-correct:
    a 02:30 that does not exist on a spring-forward day is 03:00, one that happens twice is
    the first), then moved out of their quiet hours and non-business days."""

    hour: int
    minute: int = 0

    def __post_init__(self) -> None:
        for what, v, most in (("hour", self.hour, 23), ("minute", self.minute, 59)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= most:
                raise InvalidNotification(f"{v!r} is not 0-{most}", field=f"at.{what}")

    @property
    def time(self) -> time:
        return time(self.hour, self.minute)

    @classmethod
    def parse(cls, value: str) -> LocalTime:
        """``"local:09:00"`` (the HTTP API's and the CLI's spelling)."""
        t = parse_local_time(value.removeprefix("local:"), "at")
        return cls(t.hour, t.minute)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One person of one tenant (``/v1/recipients/{id}``)."""

    id: str
    tenant_id: str = "default"
    timezone: str = "UTC"
    locale: str = "en"
    quiet_hours: QuietHours | None = None
    #: Holidays of this country (ISO 3166 code, ``holidays`` package; ``"US-CA"`` adds a
    #: subdivision) count as days without delivery when ``business_days_only``.
    holidays: str | None = None
    #: Deliver on business days only (Monday-Friday, minus ``holidays``).
    business_days_only: bool = False
    #: Channel -> address: ``{"email": "ada@example.com", "webhook": "https://..."}``.
    addresses: Mapping[str, str] = field(default_factory=dict)
    preferences: Preferences = field(default_factory=Preferences)
    #: Free data the templates see as ``recipient.data`` (a name, a plan...).
    data: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template rendered for one recipient and channel."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """What a channel's ``send`` gets: everything needed to deliver one delivery."""

    notification_id: str
    delivery_id: str
    tenant_id: str
    recipient: Recipient
    channel: str
    address: str | None
    category: str
    rendered: Rendered
    #: The recipient's unsubscribe link (``List-Unsubscribe`` for e-mail), when the server's
    #: public URL is known.
    unsubscribe_url: str | None = None
    correlation_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One channel of one notification: its state, why, and the job that sends it."""

    channel: str
    state: DeliveryState
    reason: str | None = None
    address: str | None = None
    job_id: str | None = None
    provider_id: str | None = None
    updated_at: datetime | None = None
    #: Folded into the recipient's digest of this instant (its job sends the digest).
    digest_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """One ``app.notify`` call as stored, with its deliveries."""

    id: str
    tenant_id: str
    recipient_id: str
    category: str
    template: str
    data: Mapping[str, Any]
    deliver_at: datetime
    created_at: datetime
    correlation_id: str | None = None
    dedup_key: str | None = None
    requested_at: str | None = None
    #: Why ``deliver_at`` is not the instant asked for (quiet hours, a holiday).
    note: str | None = None
    deliveries: tuple[Delivery, ...] = ()
    #: False when ``notify`` found it by its dedup key instead of creating it.
    created: bool = True
