"""The in-app inbox of notifications (see ``hora.store.InboxStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hora.store.notify_rows import (
    InboxAction,
    InboxItem,
    InboxStatus,
    inbox_from_row,
    inbox_params,
)
from hora.store.postgres.connection import PostgresConnection, Q, _utc


class PostgresInbox(PostgresConnection):
    """The in-app inbox (hora_inbox)."""

    def add_inbox_item(self, item: InboxItem) -> bool:
        assert item.created_at is not None
        with self._write() as conn:
            return conn.execute(Q["add_inbox_item"], inbox_params(
                item, data=Jsonb(dict(item.data)), created_at=_utc(item.created_at),
            )).rowcount == 1

    def get_inbox_item(self, tenant_id: str, recipient_id: str,
                       item_id: str) -> InboxItem | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_inbox_item"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id, "id": item_id}).fetchone()
        return None if row is None else inbox_from_row(row, _utc)

    def list_inbox(self, tenant_id: str, recipient_id: str, *, status: InboxStatus = "all",
                   after: tuple[datetime, str] | None = None,
                   limit: int = 50) -> list[InboxItem]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_inbox"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id, "status": status,
                "after_at": None if after is None else _utc(after[0]),
                "after_id": None if after is None else after[1], "limit": limit}).fetchall()
        return [inbox_from_row(r, _utc) for r in rows]

    def mark_inbox(self, tenant_id: str, recipient_id: str, ids: Sequence[str],
                   action: InboxAction, now: datetime) -> int:
        with self._write() as conn:
            return conn.execute(Q["mark_inbox"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id, "ids": list(ids),
                "action": action, "now": _utc(now)}).rowcount

    def inbox_counts(self, tenant_id: str, recipient_id: str) -> dict[str, int]:
        with self._read() as conn:
            row = conn.execute(Q["inbox_counts"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id}).fetchone()
        assert row is not None
        return {"unread": int(row[0]), "total": int(row[1])}
