"""``app.recipients``: the people notifications go to, and when a delivery may reach them.

A recipient (``hora.notify.model.Recipient``) is stored per tenant (``hora_recipients``):
``upsert`` replaces one whole, ``upsert_many`` thousands in one transaction (all or none),
every field checked first with the field named (``addresses.email``, ``quiet_hours.start``,
``recipients[3].timezone``). ``unsubscribe_url`` makes a link that works without an API key:
the token is random, shown once, and only its sha256 is stored, so a new link revokes the
old one and a copy of the database unsubscribes nobody.

``resolve_delivery`` is the pure half: "09:00 in their zone", then out of their quiet hours
and off their weekends and holidays -- through the same ``DeliveryWindow`` and
``BusinessCalendar`` schedules use, so a schedule and a notification agree on what
"business day 08:00 in Paris" is, DST days included.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from hora.clock import Clock
from hora.errors import ConfigError, InvalidNotification, InvalidTrigger, NotFound
from hora.limits import check_int
from hora.notify.model import (
    CHANNELS,
    MAX_ENTRIES,
    MAX_LOCALE,
    LocalTime,
    Preferences,
    QuietHours,
    Recipient,
    check_channel,
    check_name,
    check_timezone,
)
from hora.store import Store
from hora.store.recipient_rows import token_hash
from hora.triggers.calendar import BusinessCalendar
from hora.triggers.dst import DstFold, DstGap, resolve_local, zone
from hora.triggers.window import DeliveryWindow

__all__ = ["MAX_ADDRESS", "MAX_BULK", "MAX_DATA_BYTES", "MAX_PAGE", "RecipientService",
           "check_recipient", "recipient_dict", "recipient_from_dict", "resolve_delivery"]

#: The most recipients one ``upsert_many`` (``POST /v1/recipients:bulk``) writes.
MAX_BULK = 10_000
#: The largest ``data`` of a recipient, as compact JSON (templates read it; it is no store).
MAX_DATA_BYTES = 16 * 1024
#: The longest address (a URL may be long; an e-mail address is at most 254).
MAX_ADDRESS = 2048
#: The largest page ``list`` returns.
MAX_PAGE = 1000
#: The fields a recipient document may carry (``PUT /v1/recipients/{id}``, JSON lines).
FIELDS = ("id", "timezone", "locale", "quiet_hours", "holidays", "business_days_only",
          "addresses", "preferences", "data")
_LOCALE = re.compile(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
#: A signed unsubscribe token (what e-mails carry): ``s1.<tenant>.<recipient>.<mac>``, each
#: part base64url; the mac is HMAC-SHA256 under ``HORA_SECRET_KEY``.
_SIGNED = re.compile(r"^s1\.([A-Za-z0-9_-]{1,300})\.([A-Za-z0-9_-]{1,300})\.([A-Za-z0-9_-]{43})$")
#: The least a secret key may hold (bytes of its UTF-8).
MIN_SECRET = 16


def secret_key() -> bytes | None:
    """``HORA_SECRET_KEY``, the key signed unsubscribe links are made with; None when unset
    (then e-mails carry no unsubscribe link). Changing it ends every link made with it."""
    raw = os.environ.get("HORA_SECRET_KEY", "")
    if not raw:
        return None
    if len(raw.encode()) < MIN_SECRET:
        raise ConfigError(f"HORA_SECRET_KEY must be at least {MIN_SECRET} bytes")
    return raw.encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_unsubscribe_token(key: bytes, tenant_id: str, recipient_id: str) -> str:
    """A token that names its recipient and proves hora made it: stable for as long as the
    key (every e-mail to a recipient carries the same link, and a link in an old e-mail
    keeps working), and nothing to store."""
    t, r = _b64(tenant_id.encode()), _b64(recipient_id.encode())
    mac = hmac.new(key, f"s1.{t}.{r}".encode(), hashlib.sha256).digest()
    return f"s1.{t}.{r}.{_b64(mac)}"


def verify_unsubscribe_token(key: bytes, token: str) -> tuple[str, str] | None:
    """(tenant, recipient) of a genuine signed token, else None."""
    m = _SIGNED.match(token)
    if m is None:
        return None
    mac = hmac.new(key, f"s1.{m.group(1)}.{m.group(2)}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(_b64(mac), m.group(3)):
        return None
    try:
        return _unb64(m.group(1)).decode(), _unb64(m.group(2)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


# -- validation -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _calendar(code: str | None) -> BusinessCalendar:
    """One calendar per country code, shared: building one loads the holidays package's
    country module, which a bulk of 10,000 recipients must not do 10,000 times."""
    return BusinessCalendar(code)


def _check_holidays(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 20:
        raise InvalidNotification("must be a country code such as FR or US-CA", field=what)
    try:
        cal = _calendar(value.strip())
    except InvalidTrigger as e:  # it names the calendar's field; this is the recipient's
        raise InvalidNotification(str(e), field=what) from None
    assert cal.country is not None
    return cal.country if cal.subdivision is None else f"{cal.country}-{cal.subdivision}"


def _check_address(channel: str, value: object, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ADDRESS:
        raise InvalidNotification(f"must be a text of 1 to {MAX_ADDRESS} characters",
                                  field=what)
    if channel == "email":
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as e:
            raise InvalidNotification(f"{value[:80]!r} is not an e-mail address: {e}",
                                      field=what) from None
    if channel == "webhook":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidNotification(f"{value[:80]!r} is not an http(s) URL", field=what)
    return value


def _check_addresses(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidNotification("must be an object of channel -> address, e.g. "
                                  '{"email": "ada@example.com"}', field=what)
    if len(value) > len(CHANNELS):
        raise InvalidNotification(f"at most one address per channel ({', '.join(CHANNELS)})",
                                  field=what)
    out: dict[str, str] = {}
    for channel, address in value.items():
        name = f"{what}.{str(channel)[:40]}"
        check_channel(channel, name)
        out[channel] = _check_address(channel, address, name)
    return out


def _check_data(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidNotification("must be an object", field=what)
    if len(value) > MAX_ENTRIES:
        raise InvalidNotification(f"at most {MAX_ENTRIES} keys", field=what)
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError):  # NaN too: PostgreSQL's jsonb has none
        raise InvalidNotification("must be JSON: objects, arrays, text, finite numbers, "
                                  "true/false/null", field=what) from None
    if size > MAX_DATA_BYTES:
        raise InvalidNotification(f"is {size} bytes as JSON; at most {MAX_DATA_BYTES}",
                                  field=what)
    return dict(value)


def _check_locale(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_LOCALE or not _LOCALE.match(value):
        raise InvalidNotification("must be a locale tag such as en, fr-FR or pt_BR",
                                  field=what)
    return value


def _prefixed(prefix: str, fn: Callable[[], Recipient]) -> Recipient:
    """``fn()``, its InvalidNotification's field under ``prefix`` (``recipients[3].``)."""
    if not prefix:
        return fn()
    try:
        return fn()
    except InvalidNotification as e:
        raise InvalidNotification(e.reason, field=prefix + e.field if e.field
                                  else prefix.rstrip(".")) from None


def check_recipient(r: Recipient, *, prefix: str = "") -> Recipient:
    """``r`` with every field checked and normalised (an e-mail address as
    ``email-validator`` writes it, a holiday code upper-cased), or InvalidNotification
    naming the field (under ``prefix``)."""

    def check() -> Recipient:
        if not isinstance(r.business_days_only, bool):
            raise InvalidNotification("must be true or false", field="business_days_only")
        return dataclasses.replace(
            r, id=check_name(r.id, "id"), timezone=check_timezone(r.timezone),
            locale=_check_locale(r.locale, "locale"),
            quiet_hours=QuietHours.parse(r.quiet_hours),
            holidays=_check_holidays(r.holidays, "holidays"),
            addresses=_check_addresses(r.addresses, "addresses"),
            preferences=Preferences.parse(r.preferences),
            data=_check_data(r.data, "data"))

    return _prefixed(prefix, check)


def recipient_from_dict(doc: object, tenant_id: str, *, prefix: str = "",
                        recipient_id: str | None = None) -> Recipient:
    """A recipient from its JSON document (the API's body, a line of ``hora recipients
    import``), checked; ``recipient_id`` is the path's id when the body may omit it."""

    def build() -> Recipient:
        if not isinstance(doc, Mapping):
            raise InvalidNotification("must be an object with an id and the recipient's "
                                      "fields", field=None)
        for key in doc:
            if key not in FIELDS:
                raise InvalidNotification(f"unknown field; the fields are {', '.join(FIELDS)}",
                                          field=str(key)[:40])
        rid = doc.get("id", recipient_id)
        if recipient_id is not None and rid != recipient_id:
            raise InvalidNotification(f"the body names {rid!r} but the path "
                                      f"{recipient_id!r}", field="id")
        return check_recipient(Recipient(
            id=rid, tenant_id=tenant_id,
            timezone=doc.get("timezone", "UTC"), locale=doc.get("locale", "en"),
            quiet_hours=doc.get("quiet_hours"),  # parsed in check_recipient
            holidays=doc.get("holidays"),
            business_days_only=doc.get("business_days_only", False),
            addresses=doc.get("addresses") or {}, preferences=doc.get("preferences"),  # type: ignore[arg-type]
            data=doc.get("data") or {}))

    return _prefixed(prefix, build)


def recipient_dict(r: Recipient) -> dict[str, Any]:
    """The JSON form of a recipient (the API's answers, the CLI's ``--json``)."""
    return {"id": r.id, "timezone": r.timezone, "locale": r.locale,
            "quiet_hours": None if r.quiet_hours is None else r.quiet_hours.to_dict(),
            "holidays": r.holidays, "business_days_only": r.business_days_only,
            "addresses": dict(r.addresses), "preferences": r.preferences.to_dict(),
            "data": dict(r.data),
            "created_at": None if r.created_at is None else r.created_at.isoformat(),
            "updated_at": None if r.updated_at is None else r.updated_at.isoformat()}


# -- when a delivery may reach the recipient --------------------------------------------------


def _in_quiet(quiet: QuietHours, t: time) -> bool:
    if quiet.start < quiet.end:
        return quiet.start <= t < quiet.end
    return t >= quiet.start or t < quiet.end


@functools.lru_cache(maxsize=1024)
def _windows(quiet: QuietHours, timezone: str, holidays: str | None,
             business: bool) -> tuple[DeliveryWindow, ...]:
    """The recipient's open hours (quiet hours' end to their start), on business days when
    asked: cached, as DeliveryWindow keeps the day bounds it computed.

    Quiet hours within one day (12:00-13:30) leave an opening that runs overnight (13:30 to
    12:00 the next day); a window is checked against the calendar on the day it opens, so on
    business days that opening would run from Friday into Saturday. There the open hours are
    two windows per day instead: 00:00 to the quiet hours' start, and their end to midnight."""
    days = _calendar(holidays) if business else None
    if not business or quiet.end < quiet.start:
        return (DeliveryWindow(quiet.end, quiet.start, timezone, days=days),)
    out = [DeliveryWindow(quiet.end, time(0), timezone, days=days)]
    if quiet.start != time(0):
        out.append(DeliveryWindow(time(0), quiet.start, timezone, days=days))
    return tuple(out)


def _next_business_start(r: Recipient, instant: datetime) -> datetime:
    """Without quiet hours, the business-day rule alone: the instant itself on a business
    day, else 00:00 local of the next one (DST-resolved like every wall time)."""
    tz = zone(r.timezone)
    cal = _calendar(r.holidays)
    day = instant.astimezone(tz).date()
    if cal.is_business_day(day):
        return instant
    try:
        opens = cal.next_business_day(day)
    except InvalidTrigger:  # pragma: no cover - a calendar without business days
        raise InvalidNotification("no business day within ten years",
                                  field="business_days_only") from None
    return resolve_local(datetime.combine(opens, time()), tz, DstGap.FIRST_VALID,
                         DstFold.FIRST)[0][0]


def _instant(r: Recipient, at: LocalTime | datetime | str | None, now: datetime) -> datetime:
    """The delivery instant ``at`` asks for, before quiet hours and business days."""
    if isinstance(at, str):
        if at == "now":
            return now
        if at.startswith("local:"):
            at = LocalTime.parse(at)
        else:
            raise InvalidNotification(f"{at[:40]!r} is not 'now', 'local:HH:MM' or an "
                                      "instant with a zone", field="at")
    if at is None:
        return now
    if isinstance(at, LocalTime):
        tz = zone(r.timezone)
        day = now.astimezone(tz).date()
        for _ in range(3):  # today's, else tomorrow's (a DST day shifts by an hour at most)
            instants, _note = resolve_local(datetime.combine(day, at.time), tz,
                                            DstGap.FIRST_VALID, DstFold.FIRST)
            if instants[0] >= now:
                return instants[0]
            day += timedelta(days=1)
        raise AssertionError("a local time recurs within two days")  # pragma: no cover
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidNotification("an instant needs a zone (2027-01-04T09:00:00+01:00); "
                                      "for the recipient's own wall time use LocalTime",
                                      field="at")
        return at
    raise InvalidNotification(f"{type(at).__name__} is not a LocalTime, 'now' or an aware "
                              "datetime", field="at")


def resolve_delivery(recipient: Recipient, at: LocalTime | datetime | str | None,
                     now: datetime) -> tuple[datetime, str | None]:
    """When a notification to ``recipient`` asked for ``at`` is delivered, and why it moved.

    ``at``: None or ``"now"`` is ``now``; a ``LocalTime`` (or ``"local:09:00"``) the next
    occurrence at or after ``now`` of that wall time in the recipient's zone (a time the
    clocks skip is the first one after the jump, one they repeat the first of the two); an
    aware datetime is taken as it is. That instant then leaves the recipient's quiet hours
    and, with ``business_days_only``, their weekends and holidays, for the next opening
    (``DeliveryWindow``, whose search is bounded). Returns (instant, note), the note None
    when nothing moved it. Pure: no store, no clock.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    instant = _instant(recipient, at, now)
    quiet = recipient.quiet_hours
    business = recipient.business_days_only
    if quiet is None and not business:
        return instant, None
    try:
        if quiet is None:
            placed = _next_business_start(recipient, instant)
        else:
            placed = min(w.place(instant)[0] for w in _windows(
                quiet, recipient.timezone, recipient.holidays, business))
    except InvalidTrigger as e:  # never open within the window's bounded search
        raise InvalidNotification(str(e), field="business_days_only") from None
    if placed == instant:
        return instant, None
    tz = zone(recipient.timezone)
    local = instant.astimezone(tz)
    why: list[str] = []
    if quiet is not None and _in_quiet(quiet, local.time()):
        why.append(f"quiet hours {quiet.start:%H:%M}-{quiet.end:%H:%M} ({recipient.timezone})")
    if business:
        day_off = _calendar(recipient.holidays).why_not_business_day(local.date())
        if day_off is not None:
            why.append(day_off)
    reason = "; ".join(why) or "outside the recipient's delivery hours"
    return placed, f"{reason}: moved to {placed.astimezone(tz):%Y-%m-%d %H:%M} local"


# -- the service ------------------------------------------------------------------------------


class RecipientService:
    """A tenant's recipients: upsert (one, or thousands at once), read, list, delete,
    preferences and the unsubscribe link."""

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id

    def upsert(self, id: str, *, timezone: str = "UTC", locale: str = "en",
               quiet_hours: QuietHours | str | Mapping[str, str] | None = None,
               holidays: str | None = None, business_days_only: bool = False,
               addresses: Mapping[str, str] | None = None,
               preferences: Preferences | Mapping[str, Any] | None = None,
               data: Mapping[str, Any] | None = None) -> Recipient:
        """Create recipient ``id`` or replace it whole (its unsubscribe link and
        ``created_at`` stay). ``quiet_hours="21:00-08:00"``, ``holidays="FR"`` (with
        ``business_days_only``), ``addresses={"email": ...}``. Returns it as stored."""
        r = check_recipient(Recipient(
            id=id, tenant_id=self.tenant_id, timezone=timezone, locale=locale,
            quiet_hours=quiet_hours,  # type: ignore[arg-type]  # parsed by the check
            holidays=holidays, business_days_only=business_days_only,
            addresses=addresses or {}, preferences=preferences,  # type: ignore[arg-type]
            data=data or {}))
        self._store().upsert_recipients([r], self.clock.now())
        return self.get(r.id)

    def upsert_many(self, recipients: Iterable[Recipient | Mapping[str, Any]]) -> int:
        """Create or replace up to 10,000 recipients (``Recipient`` values or their JSON
        documents) in one transaction: all of them, or -- on any bad one, named as
        ``recipients[i].field`` -- none. Returns how many were written."""
        checked: list[Recipient] = []
        for i, item in enumerate(recipients):
            if i >= MAX_BULK:
                raise InvalidNotification(f"at most {MAX_BULK} recipients per call",
                                          field="recipients")
            prefix = f"recipients[{i}]."
            if isinstance(item, Recipient):
                checked.append(check_recipient(
                    dataclasses.replace(item, tenant_id=self.tenant_id), prefix=prefix))
            else:
                checked.append(recipient_from_dict(item, self.tenant_id, prefix=prefix))
        if not checked:
            return 0
        return self._store().upsert_recipients(checked, self.clock.now())

    def find(self, id: str) -> Recipient | None:
        """Recipient ``id`` of this tenant, or None."""
        check_name(id, "id")
        return self._store().get_recipient(self.tenant_id, id)

    def get(self, id: str) -> Recipient:
        """Recipient ``id`` of this tenant; NotFound when there is none."""
        found = self.find(id)
        if found is None:
            raise NotFound(f"no recipient {id!r}")
        return found

    def delete(self, id: str) -> bool:
        """Remove recipient ``id`` (its unsubscribe link stops working): False when there
        was none."""
        check_name(id, "id")
        return self._store().delete_recipient(self.tenant_id, id)

    def set_preferences(self, id: str,
                        preferences: Preferences | Mapping[str, Any]) -> Recipient:
        """Replace what recipient ``id`` agreed to receive (channels and categories turned
        off); NotFound when there is none."""
        check_name(id, "id")
        prefs = Preferences.parse(preferences)
        if not self._store().update_preferences(self.tenant_id, id, prefs, self.clock.now()):
            raise NotFound(f"no recipient {id!r}")
        return self.get(id)

    def unsubscribe_url(self, id: str, base_url: str) -> str:
        """A new unsubscribe link of recipient ``id``, ``{base_url}/v1/unsubscribe/{token}``,
        that works without an API key; the previous link stops working. The token is in the
        link only (the store keeps its sha256), so ask again rather than storing it."""
        check_name(id, "id")
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
                or len(base_url) > MAX_ADDRESS:
            raise InvalidNotification("must be the server's public http(s) URL, such as "
                                      "https://hora.example.com", field="base_url")
        token = secrets.token_urlsafe(32)
        if not self._store().set_unsubscribe_token(self.tenant_id, id, token_hash(token)):
            raise NotFound(f"no recipient {id!r}")
        return f"{base_url.rstrip('/')}/v1/unsubscribe/{token}"

    def by_token(self, token: str) -> Recipient | None:
        """The recipient (of any tenant: the link names no tenant) an unsubscribe token
        belongs to, or None for a malformed, unknown or replaced one."""
        if not isinstance(token, str):
            return None
        if token.startswith("s1."):
            key = secret_key()
            named = None if key is None else verify_unsubscribe_token(key, token)
            return None if named is None else self._store().get_recipient(*named)
        if not _TOKEN.match(token):
            return None
        return self._store().recipient_by_token_hash(token_hash(token))

    def unsubscribe(self, token: str, category: str | None = None) -> Recipient:
        """What the public link does: opt the token's recipient out of ``category`` (every
        channel of it), or without one out of the e-mail channel. NotFound for a token that
        names nobody."""
        found = self.by_token(token)
        if found is None:
            raise NotFound("this unsubscribe link is unknown or was replaced")
        prefs = found.preferences
        if category is None:
            prefs = dataclasses.replace(prefs, channels={**prefs.channels, "email": False})
        else:
            check_name(category, "category")
            prefs = dataclasses.replace(prefs, categories={**prefs.categories,
                                                           category: False})
        prefs = Preferences.parse(prefs.to_dict())  # bounded like any other write
        if not self._store().update_preferences(found.tenant_id, found.id, prefs,
                                                self.clock.now()):
            raise NotFound("this unsubscribe link is unknown or was replaced")
        return dataclasses.replace(found, preferences=prefs)

    def resolve(self, id: str,
                at: LocalTime | datetime | str | None = None) -> tuple[datetime, str | None]:
        """``resolve_delivery`` for recipient ``id`` at the clock's now."""
        return resolve_delivery(self.get(id), at, self.clock.now())

    # last in the class: below it, ``list`` names this method
    def list(self, after: str | None = None, limit: int = 100) -> list[Recipient]:
        """The tenant's recipients by id, those after ``after`` (the last id of the previous
        page), at most ``limit`` (1-1000)."""
        if after is not None:
            check_name(after, "after")
        check_int(limit, "limit", least=1, most=MAX_PAGE, error=InvalidNotification)
        return self._store().list_recipients(self.tenant_id, after=after, limit=limit)
