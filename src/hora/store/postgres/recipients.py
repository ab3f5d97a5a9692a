"""Notification recipients (see ``hora.store.RecipientStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg.rows import dict_row

from hora.notify.model import Preferences, Recipient
from hora.store.common import dumps
from hora.store.postgres.connection import PostgresConnection, Q, _utc
from hora.store.recipient_rows import recipient_from_row, recipient_params


class PostgresRecipients(PostgresConnection):
    """Recipients (hora_recipients)."""

    def upsert_recipients(self, recipients: Sequence[Recipient], now: datetime) -> int:
        """One transaction; psycopg pipelines ``executemany``, so thousands of rows cost a
        few round trips, not one each."""
        params = [recipient_params(r, _utc(now)) for r in recipients]
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(Q["upsert_recipient"], params)
        return len(params)

    def get_recipient(self, tenant_id: str, recipient_id: str) -> Recipient | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_recipient"], {"tenant_id": tenant_id,
                                                   "id": recipient_id}).fetchone()
        return None if row is None else recipient_from_row(row, _utc)

    def list_recipients(self, tenant_id: str, *, after: str | None,
                        limit: int) -> list[Recipient]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_recipients"], {
                "tenant_id": tenant_id, "after": after, "limit": limit}).fetchall()
        return [recipient_from_row(r, _utc) for r in rows]

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
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["recipient_by_token"], {"token_hash": token_hash}).fetchone()
        return None if row is None else recipient_from_row(row, _utc)

    def update_preferences(self, tenant_id: str, recipient_id: str, preferences: Preferences,
                           now: datetime) -> bool:
        with self._write() as conn:
            return conn.execute(Q["update_recipient_preferences"], {
                "tenant_id": tenant_id, "id": recipient_id,
                "preferences": dumps(preferences.to_dict()), "now": _utc(now)}).rowcount == 1
