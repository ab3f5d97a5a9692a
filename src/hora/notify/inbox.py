"""``app.inbox``: each recipient's in-app inbox, the feed a product shows behind a bell
(Knock's and Novu's feed; docs/notifications.md, "In-app inbox").

The ``inapp`` channel (``hora.notify.channels.InAppChannel``) adds one item per delivery;
the product lists the feed newest first, marks items read, unread, archived or unarchived,
and shows the unread count. Archived items leave the feed and its counts but stay listable
with ``status="archived"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from hora.clock import Clock
from hora.errors import InvalidNotification
from hora.models import Page
from hora.notify.model import check_name
from hora.store import Store
from hora.store.common import from_us, to_us
from hora.store.notify_rows import (
    INBOX_ACTIONS,
    INBOX_STATUSES,
    InboxAction,
    InboxItem,
    InboxStatus,
)

__all__ = ["MAX_MARK", "MAX_PAGE", "InboxItem", "InboxService", "decode_cursor",
           "encode_cursor", "inbox_item_dict"]

#: The most items one ``mark`` names, and one listing returns.
MAX_MARK = 500
MAX_PAGE = 200
_CURSOR = re.compile(r"^(\d{1,20}):([A-Za-z0-9_.:@+-]{1,200})$")


def encode_cursor(item: InboxItem) -> str:
    assert item.created_at is not None
    return f"{to_us(item.created_at)}:{item.id}"


def decode_cursor(cursor: str) -> tuple[Any, str]:
    m = _CURSOR.match(cursor) if isinstance(cursor, str) else None
    if m is None:
        raise InvalidNotification("not a cursor this listing gave (next_cursor)",
                                  field="cursor")
    return from_us(int(m.group(1))), m.group(2)


def check_status(status: object) -> InboxStatus:
    if status not in INBOX_STATUSES:
        raise InvalidNotification(f"{status!r} is not one of {', '.join(INBOX_STATUSES)}",
                                  field="status")
    return status


def check_action(action: object) -> InboxAction:
    if action not in INBOX_ACTIONS:
        raise InvalidNotification(f"{action!r} is not one of {', '.join(INBOX_ACTIONS)}",
                                  field="action")
    return action


def inbox_item_dict(item: InboxItem) -> dict[str, Any]:
    """An inbox item as the HTTP API and the CLI show it."""
    def iso(dt: datetime | None) -> str | None:
        return None if dt is None else dt.astimezone(UTC).isoformat()

    return {"id": item.id, "notification_id": item.notification_id,
            "category": item.category, "subject": item.subject, "text": item.text,
            "data": dict(item.data), "created_at": iso(item.created_at),
            "read": item.read_at is not None, "read_at": iso(item.read_at),
            "archived": item.archived_at is not None, "archived_at": iso(item.archived_at)}


class InboxService:
    """The tenant's recipients' inboxes."""

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id

    def list(self, recipient_id: str, *, status: str = "all", cursor: str | None = None,
             limit: int = 50) -> Page[InboxItem]:
        """The recipient's items, newest first: ``all`` (the feed: not archived),
        ``unread``, ``read`` or ``archived``; pass ``next_cursor`` back for the next page."""
        check_name(recipient_id, "recipient_id")
        st = check_status(status)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidNotification(f"must be 1-{MAX_PAGE}", field="limit")
        after = None if cursor is None else decode_cursor(cursor)
        items = self._store().list_inbox(self.tenant_id, recipient_id, status=st, after=after,
                                         limit=limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return Page(items=items, next_cursor=encode_cursor(items[-1]) if more else None)

    def mark(self, recipient_id: str, ids: Sequence[str], action: str = "read") -> int:
        """Mark the recipient's items ``ids`` read, unread, archived or unarchived; returns
        how many changed (ids of other recipients, unknown ones and items already so do
        not count)."""
        check_name(recipient_id, "recipient_id")
        act = check_action(action)
        if isinstance(ids, str) or not isinstance(ids, Sequence) or not 1 <= len(ids) <= MAX_MARK:
            raise InvalidNotification(f"must be a list of 1-{MAX_MARK} item ids", field="ids")
        for i, item_id in enumerate(ids):
            if not isinstance(item_id, str) or not 1 <= len(item_id) <= 200:
                raise InvalidNotification("must be an item id (1-200 characters)",
                                          field=f"ids[{i}]")
        return self._store().mark_inbox(self.tenant_id, recipient_id, list(dict.fromkeys(ids)),
                                        act, self.clock.now())

    def counts(self, recipient_id: str) -> dict[str, int]:
        """``{"unread": n, "total": n}`` of the recipient's feed (archived items count in
        neither): the badge."""
        check_name(recipient_id, "recipient_id")
        return self._store().inbox_counts(self.tenant_id, recipient_id)
