"""The task and workflow registry: ``hora_task_registry``, one row per (tenant, kind, name)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hora.models import RegisteredTask
from hora.store.common import from_us, to_us
from hora.store.registry_rows import probe_result, registered_from_row, registry_params
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteRegistry(SQLiteConnection):
    """The registry aggregate (``hora.store.RegistryStore``)."""

    def register_tasks(self, entries: Sequence[RegisteredTask], now: datetime) -> None:
        if not entries:
            return
        n = to_us(now)
        with self._write() as conn:
            conn.executemany(Q["upsert_registered_task"],
                             [registry_params(e, n) for e in entries])

    def get_registered_task(self, *, tenant_id: str, kind: str,
                            name: str) -> RegisteredTask | None:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["get_registered_task"], {
                "tenant_id": tenant_id, "kind": kind, "name": name}))
        return registered_from_row(rows[0], from_us) if rows else None

    def probe_registered_task(self, *, tenant_id: str, kind: str,
                              name: str) -> tuple[RegisteredTask | None, bool]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["probe_registered_task"], {
                "tenant_id": tenant_id, "kind": kind, "name": name}))
        return probe_result(rows[0] if rows else None, from_us)

    def list_registered_tasks(self, *, tenant_id: str, kind: str | None = None,
                              limit: int = 1000) -> list[RegisteredTask]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_registered_tasks"], {
                "tenant_id": tenant_id, "kind": kind, "limit": limit}))
        return [registered_from_row(r, from_us) for r in rows]
