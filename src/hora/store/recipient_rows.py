"""What both stores share for notification recipients (``hora_recipients``): the row codec
and the hash a new recipient's unsubscribe token starts with."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from hora.notify.model import Preferences, QuietHours, Recipient
from hora.store.common import dumps


def token_hash(token: str) -> str:
    """What the store keeps of an unsubscribe token: its sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def unknown_token_hash() -> str:
    """The hash of a token nobody was given: a new recipient has no working link until
    ``unsubscribe_url`` makes one, and the column stays unique and not null."""
    return token_hash(secrets.token_urlsafe(32))


def recipient_params(r: Recipient, now: Any) -> dict[str, Any]:
    """The upsert's parameters (``now`` in the dialect's form; JSON as text)."""
    return {
        "tenant_id": r.tenant_id, "id": r.id, "timezone": r.timezone, "locale": r.locale,
        "quiet_hours": None if r.quiet_hours is None else dumps(r.quiet_hours.to_dict()),
        "holidays": r.holidays, "business_days_only": r.business_days_only,
        "addresses": dumps(dict(r.addresses)), "preferences": dumps(r.preferences.to_dict()),
        "data": dumps(dict(r.data)), "token_hash": unknown_token_hash(), "now": now}


def _json(value: Any) -> Any:
    """SQLite gives JSON as text, PostgreSQL's jsonb as the decoded value."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def recipient_from_row(r: Mapping[str, Any], ts: Callable[[Any], datetime]) -> Recipient:
    quiet = _json(r["quiet_hours"])
    return Recipient(
        id=r["id"], tenant_id=r["tenant_id"], timezone=r["timezone"], locale=r["locale"],
        quiet_hours=None if quiet is None else QuietHours.parse(quiet),
        holidays=r["holidays"], business_days_only=bool(r["business_days_only"]),
        addresses=_json(r["addresses"]), preferences=Preferences.parse(_json(r["preferences"])),
        data=_json(r["data"]), created_at=ts(r["created_at"]), updated_at=ts(r["updated_at"]))
