"""Tenants, API keys and the HTTP idempotency records: the API's own state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from hora.errors import Conflict, NotFound, StoreError
from hora.models import ApiKey, IdempotencyRecord, Page, Tenant
from hora.store.common import (
    api_key_from_row,
    api_key_params,
    id_cursor,
    idempotency_from_row,
    keyset_page,
    refuse_last_operator,
    tenant_cursor,
    tenant_from_row,
    tenant_params,
)
from hora.store.postgres.connection import Conn, PostgresConnection, Q, _utc


class PostgresTenants(PostgresConnection):
    """Tenants, API keys and HTTP idempotency records: hora_tenants, hora_api_keys and
    hora_idempotency."""

    def insert_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["insert_tenant"], _tenant_params(tenant)).fetchone()
        if row is None:
            raise Conflict(f"tenant {tenant.id!r} already exists")
        return tenant_from_row(row, _utc)

    def ensure_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["insert_tenant"], _tenant_params(tenant)).fetchone()
            # Inserted, or (READ COMMITTED) this statement sees the row that stood in the way.
            return tenant_from_row(row, _utc) if row else self._get_tenant(conn, tenant.id)

    def _get_tenant(self, conn: Conn, tenant_id: str) -> Tenant:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_tenant"], {"id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant_from_row(row, _utc)

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self._read() as conn:
            return self._get_tenant(conn, tenant_id)

    def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_tenants"], {"cursor": tenant_cursor(cursor),
                                                   "limit": limit + 1}).fetchall()
        return keyset_page([tenant_from_row(r, _utc) for r in rows], limit, lambda t: t.id)

    def update_tenant(self, tenant: Tenant) -> Tenant:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["update_tenant"], _tenant_params(tenant)).fetchone()
        if row is None:
            raise NotFound(f"tenant {tenant.id!r} not found")
        return tenant_from_row(row, _utc)

    def insert_api_key(self, key: ApiKey) -> ApiKey:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["insert_api_key"],
                              api_key_params(key, _utc, encode_json=False)).fetchone()
        if row is None:
            raise Conflict(f"API key {key.id} (or one with its hash) already exists")
        return api_key_from_row(row, _utc, decoded=True)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["api_key_by_hash"], {"key_hash": key_hash}).fetchone()
        return None if row is None else api_key_from_row(row, _utc, decoded=True)

    def list_api_keys(self, *, tenant_id: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page[ApiKey]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_api_keys"], {
                "tenant_id": tenant_id, "cursor": id_cursor(cursor),
                "limit": limit + 1}).fetchall()
        return keyset_page([api_key_from_row(r, _utc, decoded=True) for r in rows], limit,
                           lambda k: k.id)

    def get_api_key(self, key_id: str) -> ApiKey:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_api_key"], {"id": key_id}).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return api_key_from_row(row, _utc, decoded=True)

    def revoke_api_key(self, key_id: str, *, now: datetime,
                       allow_last_operator: bool = False) -> ApiKey:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            if not allow_last_operator:
                # Lock the operator keys first, then read the key: a racing revocation of
                # another operator key is seen once its lock is released.
                operators = [api_key_from_row(r, _utc, decoded=True) for r in
                             cur.execute(Q["unrevoked_operator_keys"]).fetchall()]
                row = cur.execute(Q["get_api_key"], {"id": key_id}).fetchone()
                if row is None:
                    raise NotFound(f"API key {key_id} not found")
                refuse_last_operator(api_key_from_row(row, _utc, decoded=True), operators, now)
            row = cur.execute(Q["revoke_api_key"], {"id": key_id, "now": now}).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return api_key_from_row(row, _utc, decoded=True)

    def set_webhook_secret(self, tenant_id: str, secret: str, *, now: datetime) -> Tenant:
        with self._write() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["set_webhook_secret"], {
                "id": tenant_id, "webhook_secret": secret, "now": now}).fetchone()
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant_from_row(row, _utc)

    def count_api_keys(self) -> int:
        return self._count(Q["count_api_keys"], {})

    def begin_idempotent(self, tenant_id: str, key: str, fingerprint: str, *, now: datetime,
                         expired_before: datetime, stuck_before: datetime,
                         ) -> IdempotencyRecord | None:
        """Claim or read, in one transaction. The claim is one INSERT ... ON CONFLICT DO
        UPDATE ... WHERE: of two concurrent requests with one key, the second waits for the
        first's row and then finds it taken, so only one is told to go ahead."""
        params = {"tenant_id": tenant_id, "key": key, "fingerprint": fingerprint, "now": now,
                  "expired_before": expired_before, "stuck_before": stuck_before}
        with self._write() as conn:
            if conn.execute(Q["claim_idempotent"], params).fetchone() is not None:
                return None
            # The refused upsert locked the row that stood in the way: it is still there.
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["get_idempotent"], params).fetchone()
        if row is None:  # pragma: no cover - see above
            raise StoreError(f"idempotency key {key!r} was neither claimed nor found")
        return idempotency_from_row(row, _utc)

    def finish_idempotent(self, tenant_id: str, key: str, *, status: int, body: str) -> None:
        with self._write() as conn:
            conn.execute(Q["finish_idempotent"], {"tenant_id": tenant_id, "key": key,
                                                  "status": status, "body": body})

    def abort_idempotent(self, tenant_id: str, key: str) -> None:
        with self._write() as conn:
            conn.execute(Q["abort_idempotent"], {"tenant_id": tenant_id, "key": key})

    def purge_idempotent(self, before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(Q["purge_idempotent"], {"before": before}).rowcount


# -- helpers ----------------------------------------------------------------------------


def _tenant_params(tenant: Tenant) -> dict[str, Any]:
    return tenant_params(tenant, _utc)

