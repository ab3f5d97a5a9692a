"""Batching: reserve the due jobs of batched tasks, start a batch in one statement, say why
a buffered job waits (``hora.batching``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from hora.models import ClaimedJob
from hora.store.common import to_us
from hora.store.sqlite.connection import Q, SQLiteConnection
from hora.store.sqlite.jobs import _claimed


class SQLiteBatches(SQLiteConnection):
    """The batching moves over hora_jobs (no table of their own)."""

    def reserve_due(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str],
                    now: datetime, lease_until: datetime, limit: int) -> list[ClaimedJob]:
        if limit <= 0 or not queues or not tasks:
            return []
        with self._write() as conn:
            jobs = _claimed(conn.execute(Q["reserve_due"], {
                "owner": owner, "queues": json.dumps(list(dict.fromkeys(queues))),
                "tasks": json.dumps(list(tasks)), "now": to_us(now),
                "lease_until": to_us(lease_until), "limit": limit}).fetchall())
        jobs.sort(key=lambda j: (j.due_at, j.priority, j.id))
        return jobs

    def start_batch(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                    lease_until: datetime) -> list[str]:
        if not job_ids:
            return []
        with self._write() as conn:
            started = {r[0] for r in conn.execute(Q["start_batch"], {
                "ids": json.dumps(list(job_ids)), "owner": owner, "now": to_us(now),
                "lease_until": to_us(lease_until)})}
        return [job_id for job_id in dict.fromkeys(job_ids) if job_id in started]

    def mark_batching(self, reasons: Sequence[tuple[str, str]], *, owner: str) -> int:
        if not reasons:
            return 0
        with self._write() as conn:
            return conn.executemany(Q["mark_batching"], [
                {"id": job_id, "reason": reason, "owner": owner}
                for job_id, reason in reasons]).rowcount
