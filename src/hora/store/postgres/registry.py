"""The task and workflow registry: ``hora_task_registry``, one row per (tenant, kind, name)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg.rows import dict_row

from hora.models import RegisteredTask
from hora.store.postgres.connection import PostgresConnection, Q, _utc
from hora.store.registry_rows import probe_result, registered_from_row, registry_params


class PostgresRegistry(PostgresConnection):
    """The registry aggregate (``hora.store.RegistryStore``)."""

    def register_tasks(self, entries: Sequence[RegisteredTask], now: datetime) -> None:
        if not entries:
            return
        # A stable order: two workers starting at once lock the rows in the same order.
        ordered = sorted(entries, key=lambda e: (e.tenant_id, e.kind, e.name))
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(Q["upsert_registered_task"],
                            [registry_params(e, now) for e in ordered])

    def get_registered_task(self, *, tenant_id: str, kind: str,
                            name: str) -> RegisteredTask | None:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_registered_task"], {
                "tenant_id": tenant_id, "kind": kind, "name": name}).fetchone()
        return None if row is None else registered_from_row(row, _utc)

    def probe_registered_task(self, *, tenant_id: str, kind: str,
                              name: str) -> tuple[RegisteredTask | None, bool]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["probe_registered_task"], {
                "tenant_id": tenant_id, "kind": kind, "name": name}).fetchone()
        return probe_result(row, _utc)

    def list_registered_tasks(self, *, tenant_id: str, kind: str | None = None,
                              limit: int = 1000) -> list[RegisteredTask]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_registered_tasks"], {
                "tenant_id": tenant_id, "kind": kind, "limit": limit}).fetchall()
        return [registered_from_row(r, _utc) for r in rows]
