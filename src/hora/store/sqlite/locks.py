"""Distributed locks: a row per (tenant, name) with a fencing token counting its grants."""

from __future__ import annotations

from datetime import datetime

from hora.models import LockRecord
from hora.store.common import from_us, lock_from_row, lock_params, to_us
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteLocks(SQLiteConnection):
    """Distributed locks (hora_locks)."""

    def acquire_lock(self, tenant_id: str, name: str, *, owner: str, now: datetime,
                     expires_at: datetime) -> int | None:
        params = lock_params(tenant_id, name, to_us, owner=owner, now=now,
                             expires_at=expires_at)
        with self._write() as conn:
            row = conn.execute(Q["acquire_lock"], params).fetchone()
        return None if row is None else int(row[0])

    def renew_lock(self, tenant_id: str, name: str, *, owner: str, token: int, now: datetime,
                   expires_at: datetime) -> bool:
        params = lock_params(tenant_id, name, to_us, owner=owner, token=token, now=now,
                             expires_at=expires_at)
        with self._write() as conn:
            return conn.execute(Q["renew_lock"], params).rowcount == 1

    def release_lock(self, tenant_id: str, name: str, *, owner: str, token: int) -> bool:
        params = lock_params(tenant_id, name, to_us, owner=owner, token=token)
        with self._write() as conn:
            return conn.execute(Q["release_lock"], params).rowcount == 1

    def get_lock(self, tenant_id: str, name: str) -> LockRecord | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_lock"], lock_params(tenant_id, name, to_us)))
        return lock_from_row(rows[0], from_us) if rows else None


