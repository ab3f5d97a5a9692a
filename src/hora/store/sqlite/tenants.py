"""Tenants, API keys and the HTTP idempotency records: the API's own state."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from hora.errors import Conflict, NotFound, StoreError
from hora.models import ApiKey, IdempotencyRecord, Page, Tenant
from hora.store.common import (
    api_key_from_row,
    api_key_params,
    from_us,
    id_cursor,
    idempotency_from_row,
    keyset_page,
    refuse_last_operator,
    tenant_cursor,
    tenant_from_row,
    tenant_params,
    to_us,
)
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteTenants(SQLiteConnection):
    """Tenants, API keys and HTTP idempotency records: hora_tenants, hora_api_keys and
    hora_idempotency."""

    def insert_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            if conn.execute(Q["insert_tenant"], tenant_params(tenant, to_us)).rowcount == 0:
                raise Conflict(f"tenant {tenant.id!r} already exists")
            return self._get_tenant(conn, tenant.id)

    def ensure_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            conn.execute(Q["insert_tenant"], tenant_params(tenant, to_us))
            return self._get_tenant(conn, tenant.id)

    def _get_tenant(self, conn: sqlite3.Connection, tenant_id: str) -> Tenant:
        rows = _rows(conn.execute(Q["get_tenant"], {"id": tenant_id}))
        if not rows:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant_from_row(rows[0], from_us)

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self._read() as conn:
            return self._get_tenant(conn, tenant_id)

    def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_tenants"], {"cursor": tenant_cursor(cursor),
                                                          "limit": limit + 1}))
        return keyset_page([tenant_from_row(r, from_us) for r in rows], limit, lambda t: t.id)

    def update_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            if conn.execute(Q["update_tenant"], tenant_params(tenant, to_us)).rowcount == 0:
                raise NotFound(f"tenant {tenant.id!r} not found")
            return self._get_tenant(conn, tenant.id)

    def insert_api_key(self, key: ApiKey) -> ApiKey:
        with self._write() as conn:
            if conn.execute(Q["insert_api_key"], api_key_params(key, to_us)).rowcount == 0:
                raise Conflict(f"API key {key.id} (or one with its hash) already exists")
            return self._get_api_key(conn, key.id)

    def _get_api_key(self, conn: sqlite3.Connection, key_id: str) -> ApiKey:
        rows = _rows(conn.execute(Q["get_api_key"], {"id": key_id}))
        if not rows:
            raise NotFound(f"API key {key_id} not found")
        return api_key_from_row(rows[0], from_us)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["api_key_by_hash"], {"key_hash": key_hash}))
        return api_key_from_row(rows[0], from_us) if rows else None

    def list_api_keys(self, *, tenant_id: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page[ApiKey]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_api_keys"], {
                "tenant_id": tenant_id, "cursor": id_cursor(cursor), "limit": limit + 1}))
        return keyset_page([api_key_from_row(r, from_us) for r in rows], limit,
                           lambda k: k.id)

    def get_api_key(self, key_id: str) -> ApiKey:
        with self._read() as conn:
            return self._get_api_key(conn, key_id)

    def revoke_api_key(self, key_id: str, *, now: datetime,
                       allow_last_operator: bool = False) -> ApiKey:
        with self._write() as conn:  # BEGIN IMMEDIATE: the check and the write are one step
            key = self._get_api_key(conn, key_id)
            if not allow_last_operator:
                others = _rows(conn.execute(Q["unrevoked_operator_keys"]))
                refuse_last_operator(key, (api_key_from_row(r, from_us) for r in others), now)
            conn.execute(Q["revoke_api_key"], {"id": key_id, "now": to_us(now)})
            return self._get_api_key(conn, key_id)

    def set_webhook_secret(self, tenant_id: str, secret: str, *, now: datetime) -> Tenant:
        with self._write() as conn:
            if conn.execute(Q["set_webhook_secret"], {
                    "id": tenant_id, "webhook_secret": secret, "now": to_us(now)}).rowcount == 0:
                raise NotFound(f"tenant {tenant_id!r} not found")
            return self._get_tenant(conn, tenant_id)

    def count_api_keys(self) -> int:
        with self._read() as conn:
            return int(conn.execute(Q["count_api_keys"]).fetchone()[0])

    def begin_idempotent(self, tenant_id: str, key: str, fingerprint: str, *, now: datetime,
                         expired_before: datetime, stuck_before: datetime,
                         ) -> IdempotencyRecord | None:
        """Claim or read, in one write transaction (BEGIN IMMEDIATE: one writer at a time)."""
        params = {"tenant_id": tenant_id, "key": key, "fingerprint": fingerprint,
                  "now": to_us(now), "expired_before": to_us(expired_before),
                  "stuck_before": to_us(stuck_before)}
        with self._write() as conn:
            if conn.execute(Q["claim_idempotent"], params).fetchall():
                return None
            rows = _rows(conn.execute(Q["get_idempotent"], params))
        if not rows:  # pragma: no cover - the conflict that refused the claim is this row
            raise StoreError(f"idempotency key {key!r} was neither claimed nor found")
        return idempotency_from_row(rows[0], from_us)

    def finish_idempotent(self, tenant_id: str, key: str, *, status: int, body: str) -> None:
        with self._write() as conn:
            conn.execute(Q["finish_idempotent"], {"tenant_id": tenant_id, "key": key,
                                                  "status": status, "body": body})

    def abort_idempotent(self, tenant_id: str, key: str) -> None:
        with self._write() as conn:
            conn.execute(Q["abort_idempotent"], {"tenant_id": tenant_id, "key": key})

    def purge_idempotent(self, before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(Q["purge_idempotent"], {"before": to_us(before)}).rowcount


