"""The in-app inbox of notifications (see ``hora.store.InboxStore``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from hora.store.common import dumps, from_us, to_us
from hora.store.notify_rows import (
    InboxAction,
    InboxItem,
    InboxStatus,
    inbox_from_row,
    inbox_params,
)
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteInbox(SQLiteConnection):
    """The in-app inbox (hora_inbox)."""

    def add_inbox_item(self, item: InboxItem) -> bool:
        assert item.created_at is not None
        with self._write() as conn:
            return conn.execute(Q["add_inbox_item"], inbox_params(
                item, data=dumps(dict(item.data)), created_at=to_us(item.created_at),
            )).rowcount == 1

    def get_inbox_item(self, tenant_id: str, recipient_id: str,
                       item_id: str) -> InboxItem | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_inbox_item"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id, "id": item_id}))
        return inbox_from_row(rows[0], from_us) if rows else None

    def list_inbox(self, tenant_id: str, recipient_id: str, *, status: InboxStatus = "all",
                   after: tuple[datetime, str] | None = None,
                   limit: int = 50) -> list[InboxItem]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_inbox"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id, "status": status,
                "after_at": None if after is None else to_us(after[0]),
                "after_id": None if after is None else after[1], "limit": limit}))
        return [inbox_from_row(r, from_us) for r in rows]

    def mark_inbox(self, tenant_id: str, recipient_id: str, ids: Sequence[str],
                   action: InboxAction, now: datetime) -> int:
        with self._write() as conn:
            return conn.execute(Q["mark_inbox"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id,
                "ids": json.dumps(list(ids)), "action": action, "now": to_us(now)}).rowcount

    def inbox_counts(self, tenant_id: str, recipient_id: str) -> dict[str, int]:
        with self._read() as conn:
            unread, total = conn.execute(Q["inbox_counts"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id}).fetchone()
        return {"unread": int(unread), "total": int(total)}
