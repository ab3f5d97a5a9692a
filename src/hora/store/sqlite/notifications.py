"""Notifications and their deliveries on SQLite (see ``hora.store.NotificationStore``)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from hora.errors import Conflict
from hora.models import NewJob
from hora.notify.model import Delivery, DeliveryState, Notification
from hora.store.common import from_us, to_us
from hora.store.notification_rows import (
    DigestItem,
    NewDelivery,
    NewNotification,
    delivery_from_row,
    digest_item_from_row,
    digest_job,
    notification_from_row,
)
from hora.store.sqlite.connection import Q, SQLiteConnection
from hora.store.sqlite.jobs import _insert_jobs


class SQLiteNotifications(SQLiteConnection):
    """hora_notifications and hora_deliveries."""

    def create_notification(self, n: NewNotification, deliveries: Sequence[NewDelivery],
                            jobs: Sequence[NewJob], now: datetime,
                            digests: Sequence[NewJob] = ()) -> tuple[str, bool]:
        now_us = to_us(now)
        with self._write() as conn:
            if n.dedup_key is not None:
                key = {"tenant_id": n.tenant_id, "recipient_id": n.recipient_id,
                       "dedup_key": n.dedup_key, "now": now_us}
                conn.execute(Q["expire_dedup"], key)
                found = conn.execute(Q["find_dedup"], key).fetchone()
                if found is not None:
                    if found[1] != n.fingerprint:
                        raise Conflict(
                            f"dedup key {n.dedup_key!r} of recipient {n.recipient_id!r} is "
                            f"notification {found[0]}, sent with a different content",
                            field="dedup_key")
                    return str(found[0]), False
            conn.execute(Q["insert_notification"], {
                "id": n.id, "tenant_id": n.tenant_id, "recipient_id": n.recipient_id,
                "category": n.category, "template": n.template, "data": n.data_json,
                "correlation_id": n.correlation_id, "dedup_key": n.dedup_key,
                "dedup_until": None if n.dedup_until is None else to_us(n.dedup_until),
                "fingerprint": n.fingerprint, "requested_at": n.requested_at,
                "deliver_at": to_us(n.deliver_at), "note": n.note, "now": now_us})
            if jobs:
                _insert_jobs(conn, jobs, now_us)
            actual = {j.id: digest_job(conn, j, n.id, now_us, _insert_jobs, Q["job_state"])
                      for j in digests}
            for d in deliveries:
                conn.execute(Q["insert_delivery"], {
                    "notification_id": n.id, "channel": d.channel, "tenant_id": n.tenant_id,
                    "state": d.state.value, "reason": d.reason, "address": d.address,
                    "job_id": actual.get(d.job_id or "", d.job_id),
                    "digest_at": None if d.digest_at is None else to_us(d.digest_at),
                    "now": now_us})
        return n.id, True

    def get_notification(self, tenant_id: str, notification_id: str) -> Notification | None:
        with self._read() as conn:
            row = conn.execute(Q["get_notification"], {"tenant_id": tenant_id,
                                                       "id": notification_id}).fetchone()
            if row is None:
                return None
            ds = [delivery_from_row(r, from_us) for r in conn.execute(
                Q["deliveries_of"], {"ids": json.dumps([notification_id])})]
        return notification_from_row(row, from_us, ds)

    def list_notifications(self, tenant_id: str, *, recipient_id: str | None = None,
                           correlation_id: str | None = None, category: str | None = None,
                           after: str | None = None, limit: int = 100) -> list[Notification]:
        with self._read() as conn:
            rows = conn.execute(Q["list_notifications"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id,
                "correlation_id": correlation_id, "category": category, "after": after,
                "limit": limit}).fetchall()
            by: dict[str, list[Delivery]] = defaultdict(list)
            if rows:
                for r in conn.execute(Q["deliveries_of"],
                                      {"ids": json.dumps([r[0] for r in rows])}):
                    by[r[0]].append(delivery_from_row(r, from_us))
        return [notification_from_row(r, from_us, by[r[0]]) for r in rows]

    def set_delivery(self, tenant_id: str, notification_id: str, channel: str,
                     state: DeliveryState, *, reason: str | None, provider_id: str | None,
                     now: datetime) -> bool:
        with self._write() as conn:
            cur = conn.execute(Q["set_delivery"], {
                "tenant_id": tenant_id, "notification_id": notification_id,
                "channel": channel, "state": state.value, "reason": reason,
                "provider_id": provider_id, "now": to_us(now)})
            return cur.rowcount > 0

    def delivery_counts(self, tenant_id: str) -> dict[tuple[str, str], int]:
        with self._read() as conn:
            return {(r[0], r[1]): int(r[2]) for r in conn.execute(
                Q["delivery_counts"], {"tenant_id": tenant_id})}

    def digest_items(self, tenant_id: str, job_id: str) -> list[DigestItem]:
        with self._read() as conn:
            return [digest_item_from_row(r, from_us) for r in conn.execute(
                Q["digest_items"], {"tenant_id": tenant_id, "job_id": job_id})]

    def finish_digest(self, tenant_id: str, job_id: str, state: DeliveryState, *,
                      reason: str | None, provider_id: str | None, now: datetime) -> int:
        with self._write() as conn:
            return conn.execute(Q["finish_digest"], {
                "tenant_id": tenant_id, "job_id": job_id, "state": state.value,
                "reason": reason, "provider_id": provider_id, "now": to_us(now)}).rowcount

    def count_direct(self, tenant_id: str, recipient_id: str, category: str,
                     since: datetime) -> int:
        with self._read() as conn:
            row = conn.execute(Q["count_direct"], {
                "tenant_id": tenant_id, "recipient_id": recipient_id, "category": category,
                "since": to_us(since)}).fetchone()
        return 0 if row is None else int(row[0])

