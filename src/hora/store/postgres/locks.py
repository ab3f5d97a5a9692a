"""Distributed locks: a row per (tenant, name) with a fencing token counting its grants."""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row

from hora.models import LockRecord
from hora.store.common import lock_from_row, lock_params
from hora.store.postgres.connection import PostgresConnection, Q, _utc


class PostgresLocks(PostgresConnection):
    """Distributed locks (hora_locks)."""

    def acquire_lock(self, tenant_id: str, name: str, *, owner: str, now: datetime,
                     expires_at: datetime) -> int | None:
        """One INSERT ... ON CONFLICT DO UPDATE ... WHERE, its own transaction: of concurrent
        acquirers of a free lock exactly one gets a token (see the query)."""
        params = lock_params(tenant_id, name, _utc, owner=owner, now=now,
                             expires_at=expires_at)
        with self._statement() as conn:
            row = conn.execute(Q["acquire_lock"], params).fetchone()
        return None if row is None else int(row[0])

    def renew_lock(self, tenant_id: str, name: str, *, owner: str, token: int, now: datetime,
                   expires_at: datetime) -> bool:
        params = lock_params(tenant_id, name, _utc, owner=owner, token=token, now=now,
                             expires_at=expires_at)
        with self._statement() as conn:
            return conn.execute(Q["renew_lock"], params).rowcount == 1

    def release_lock(self, tenant_id: str, name: str, *, owner: str, token: int) -> bool:
        params = lock_params(tenant_id, name, _utc, owner=owner, token=token)
        with self._statement() as conn:
            return conn.execute(Q["release_lock"], params).rowcount == 1

    def get_lock(self, tenant_id: str, name: str) -> LockRecord | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_lock"], lock_params(tenant_id, name, _utc)).fetchone()
        return None if row is None else lock_from_row(row, _utc)


