"""What both stores share for notification templates and the in-app inbox: the records
(``StoredTemplate``, ``InboxItem``) and their row codecs. The records live here, at the store
layer, because the store protocol returns them; ``hora.notify`` re-exports them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: Which inbox items a listing shows: ``all`` is the feed (every item not archived),
#: ``unread`` and ``read`` split it, ``archived`` is what was archived.
InboxStatus = Literal["all", "unread", "read", "archived"]
INBOX_STATUSES: tuple[InboxStatus, ...] = ("all", "unread", "read", "archived")
#: What ``mark_inbox`` does to items.
InboxAction = Literal["read", "unread", "archived", "unarchived"]
INBOX_ACTIONS: tuple[InboxAction, ...] = ("read", "unread", "archived", "unarchived")


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    """One version of a tenant's template for one channel (``*``: any channel)."""

    tenant_id: str
    name: str
    channel: str
    version: int
    subject: str
    text: str
    html: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One message of a recipient's in-app inbox; ``id`` is its delivery's id."""

    tenant_id: str
    recipient_id: str
    id: str
    notification_id: str
    category: str
    subject: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    read_at: datetime | None = None
    archived_at: datetime | None = None


def template_from_row(r: Mapping[str, Any], ts: Callable[[Any], datetime]) -> StoredTemplate:
    return StoredTemplate(tenant_id=r["tenant_id"], name=r["name"], channel=r["channel"],
                          version=int(r["version"]), subject=r["subject"], text=r["text_body"],
                          html=r["html_body"], created_at=ts(r["created_at"]))


def inbox_params(item: InboxItem, *, data: Any, created_at: Any) -> dict[str, Any]:
    """``add_inbox_item``'s parameters; ``data`` and ``created_at`` in the dialect's form."""
    return {"tenant_id": item.tenant_id, "recipient_id": item.recipient_id, "id": item.id,
            "notification_id": item.notification_id, "category": item.category,
            "subject": item.subject, "text": item.text, "data": data,
            "created_at": created_at}


def inbox_from_row(r: Mapping[str, Any], ts: Callable[[Any], datetime]) -> InboxItem:
    data = r["data"]
    if isinstance(data, str):  # SQLite keeps JSON as text; psycopg decodes jsonb
        data = json.loads(data)
    return InboxItem(tenant_id=r["tenant_id"], recipient_id=r["recipient_id"], id=r["id"],
                     notification_id=r["notification_id"], category=r["category"],
                     subject=r["subject"], text=r["text"], data=data,
                     created_at=ts(r["created_at"]),
                     read_at=None if r["read_at"] is None else ts(r["read_at"]),
                     archived_at=None if r["archived_at"] is None else ts(r["archived_at"]))
