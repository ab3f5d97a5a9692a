"""Notification recipients (see ``hora.store.RecipientStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hora.notify.model import Preferences, Recipient
from hora.store.common import dumps, from_us, to_us
from hora.store.recipient_rows import recipient_from_row, recipient_params
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteRecipients(SQLiteConnection):
    """Recipients (hora_recipients)."""

    def upsert_recipients(self, recipients: Sequence[Recipient], now: datetime) -> int:
        now_us = to_us(now)
        params = [recipient_params(r, now_us) for r in recipients]
        for p in params:
            p["business_days_only"] = int(p["business_days_only"])
        with self._write() as conn:
            conn.executemany(Q["upsert_recipient"], params)
        return len(params)

    def get_recipient(self, tenant_id: str, recipient_id: str) -> Recipient | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_recipient"], {"tenant_id": tenant_id,
                                                           "id": recipient_id}))
        return recipient_from_row(rows[0], from_us) if rows else None

    def list_recipients(self, tenant_id: str, *, after: str | None,
                        limit: int) -> list[Recipient]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_recipients"], {
                "tenant_id": tenant_id, "after": after, "limit": limit}))
        return [recipient_from_row(r, from_us) for r in rows]

    def delete_recipient(self, tenant_id: str, recipient_id: str) -> bool:
        with self._write() as conn:
            return conn.execute(Q["delete_recipient"], {
                "tenant_id": tenant_id, "id": recipient_id}).rowcount == 1

    def set_unsubscribe_token(self, tenant_id: str, recipient_id: str,
                              token_hash: str) -> bool:
        with self._write() as conn:
            return conn.execute(Q["set_recipient_token"], {
                "tenant_id": tenant_id, "id": recipient_id,
                "token_hash": token_hash}).rowcount == 1

    def recipient_by_token_hash(self, token_hash: str) -> Recipient | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["recipient_by_token"], {"token_hash": token_hash}))
        return recipient_from_row(rows[0], from_us) if rows else None

    def update_preferences(self, tenant_id: str, recipient_id: str, preferences: Preferences,
                           now: datetime) -> bool:
        with self._write() as conn:
            return conn.execute(Q["update_recipient_preferences"], {
                "tenant_id": tenant_id, "id": recipient_id,
                "preferences": dumps(preferences.to_dict()), "now": to_us(now)}).rowcount == 1
