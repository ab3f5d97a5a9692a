"""Batching: reserve the due jobs of batched tasks, start a batch in one statement, say why
a buffered job waits (``hora.batching``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hora.models import ClaimedJob
from hora.store.postgres.connection import PostgresConnection, Q
from hora.store.postgres.jobs import _claimed


class PostgresBatches(PostgresConnection):
    """The batching moves over hora_jobs (no table of their own)."""

    def reserve_due(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str],
                    now: datetime, lease_until: datetime, limit: int) -> list[ClaimedJob]:
        if limit <= 0 or not queues or not tasks:
            return []
        with self._write() as conn:
            jobs = _claimed(conn.execute(Q["reserve_due"], {
                "owner": owner, "queues": list(dict.fromkeys(queues)), "tasks": list(tasks),
                "now": now, "lease_until": lease_until, "limit": limit}))
        jobs.sort(key=lambda j: (j.due_at, j.priority, j.id))
        return jobs

    def start_batch(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                    lease_until: datetime) -> list[str]:
        if not job_ids:
            return []
        with self._write() as conn:
            started = {r[0] for r in conn.execute(Q["start_batch"], {
                "ids": list(job_ids), "owner": owner, "now": now,
                "lease_until": lease_until})}
        return [job_id for job_id in dict.fromkeys(job_ids) if job_id in started]

    def mark_batching(self, reasons: Sequence[tuple[str, str]], *, owner: str) -> int:
        if not reasons:
            return 0
        with self._write() as conn:
            return conn.execute(Q["mark_batching"], {
                "ids": [r[0] for r in reasons], "reasons": [r[1] for r in reasons],
                "owner": owner}).rowcount
