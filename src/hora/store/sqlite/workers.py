"""Workers and queues: a row per worker process refreshed by its heartbeat, a row per paused
queue, and the grouped reads behind ``GET /v1/queues``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hora.models import QueueDepth, QueueState, WorkerInfo
from hora.store.common import from_us, to_us
from hora.store.queue_rows import depths_from_rows, queue_state_from_row
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteWorkers(SQLiteConnection):
    """Workers (hora_workers) and queues (hora_queues)."""

    def register_worker(self, worker: WorkerInfo) -> None:
        with self._write() as conn:
            conn.execute(Q["register_worker"], {
                "id": worker.id, "host": worker.host, "pid": worker.pid,
                "version": worker.version, "queues": json.dumps(list(worker.queues)),
                "tasks": None if worker.tasks is None else json.dumps(list(worker.tasks)),
                "workflows": json.dumps(list(worker.workflows)),
                "concurrency": worker.concurrency, "heartbeat": worker.heartbeat,
                "started_at": to_us(worker.started_at),
                "last_seen_at": to_us(worker.last_seen_at), "running": worker.running})

    def touch_worker(self, worker_id: str, *, now: datetime, running: int,
                     forget_before: datetime | None = None, forget_limit: int = 100,
                     ) -> tuple[bool, int]:
        with self._write() as conn:
            found = conn.execute(Q["touch_worker"], {"id": worker_id, "now": to_us(now),
                                                     "running": running}).rowcount == 1
            if forget_before is None or forget_limit <= 0:
                return found, 0
            return found, conn.execute(Q["forget_workers"], {
                "before": to_us(forget_before), "limit": forget_limit}).rowcount

    def stop_worker(self, worker_id: str, *, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(Q["stop_worker"], {"id": worker_id, "now": to_us(now)})

    def list_workers(self, *, limit: int = 1000) -> list[WorkerInfo]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_workers"], {"limit": limit}))
        return [_worker(r) for r in rows]

    def queue_depths(self, tenant_id: str, *, now: datetime) -> list[QueueDepth]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["queue_depths"], {"tenant_id": tenant_id,
                                                          "now": to_us(now)}))
        return depths_from_rows(rows, from_us)

    def due_waiting_tasks(self, *, now: datetime, tenant_id: str | None = None,
                          queues: Sequence[str] | None = None, limit: int = 1000,
                          ) -> list[tuple[str, str, int]]:
        with self._read() as conn:
            rows = conn.execute(Q["due_waiting_tasks"], {
                "now": to_us(now), "tenant_id": tenant_id, "limit": limit,
                "queues": None if queues is None else json.dumps(list(queues))}).fetchall()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def set_queue_paused(self, tenant_id: str, name: str, *, paused: bool, now: datetime,
                         reason: str | None = None) -> QueueState:
        with self._write() as conn:
            rows = _rows(conn.execute(Q["set_queue_paused"], {
                "tenant_id": tenant_id, "name": name, "paused": int(paused),
                "paused_at": to_us(now) if paused else None,
                "reason": reason if paused else None}))
        return queue_state_from_row(rows[0], from_us)

    def list_queue_states(self, tenant_id: str) -> list[QueueState]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_queue_states"], {"tenant_id": tenant_id}))
        return [queue_state_from_row(r, from_us) for r in rows]


def _names(value: Any) -> tuple[str, ...]:
    return tuple(json.loads(value) if isinstance(value, str) else value)


def _worker(r: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=r["id"], host=r["host"], pid=int(r["pid"]), version=r["version"],
        queues=_names(r["queues"]), tasks=None if r["tasks"] is None else _names(r["tasks"]),
        workflows=_names(r["workflows"]), concurrency=int(r["concurrency"]),
        heartbeat=float(r["heartbeat"]), started_at=from_us(r["started_at"]),
        last_seen_at=from_us(r["last_seen_at"]), running=int(r["running"]),
        stopped_at=None if r["stopped_at"] is None else from_us(r["stopped_at"]))
