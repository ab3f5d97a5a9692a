"""Job control: a waiting job's new due time (reschedule, run now) and bulk cancels by
filter, each batch one short ``BEGIN IMMEDIATE`` transaction."""

from __future__ import annotations

import functools
import json
import sqlite3
from datetime import datetime

from hora.errors import NotFound, TransitionConflict
from hora.models import Job, is_internal_task
from hora.store import CancelBatch, JobSelection
from hora.store.common import from_us, job_from_row, to_us
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows

#: Per filter field, its condition (the parameter has the field's name).
_CONDITIONS = {
    "correlation_id": "correlation_id = :correlation_id",
    "task": "task = :task",
    "queue": "queue = :queue",
    "schedule_id": "schedule_id = :schedule_id",
    "created_before": "created_at < :created_before",
}
_AFTER = "id > :after"
_WAITING = "state IN ('scheduled', 'retrying')"
_OR_RUNNING = ("(state IN ('scheduled', 'retrying') "
               "OR (state = 'running' AND cancel_requested = 0))")


class SQLiteControl(SQLiteConnection):
    """Job control over hora_jobs (and hora_job_events for what leaves the state alone)."""

    def reschedule_job(self, job_id: str, *, tenant_id: str, due_at: datetime,
                       now: datetime, reason: str) -> Job:
        n = to_us(now)
        with self._write() as conn:
            row = conn.execute(Q["reschedule_waiting"], {
                "id": job_id, "tenant_id": tenant_id, "due_at": to_us(due_at), "now": n,
                "reason": reason}).fetchone()
            if row is None:
                job = _job(conn, job_id, tenant_id)
                raise TransitionConflict(job_id, ("scheduled", "retrying"), job.state)
            conn.execute(Q["record_control_event"], {
                "id": job_id, "now": n, "state": row[0], "attempt": row[1], "reason": reason})
            return _job(conn, job_id, tenant_id)

    def cancel_jobs_batch(self, selection: JobSelection, *, now: datetime, reason: str,
                          after: str | None, limit: int) -> CancelBatch:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        sel = selection
        params = {
            "tenant_id": sel.tenant_id, "after": after, "limit": limit,
            "include_internal": int(sel.task is not None and is_internal_task(sel.task)),
            "correlation_id": sel.correlation_id, "task": sel.task, "queue": sel.queue,
            "schedule_id": sel.schedule_id,
            "created_before": None if sel.created_before is None else to_us(sel.created_before),
        }
        n = to_us(now)
        # The batch is chosen in a read (WAL: no lock), and written in a short BEGIN
        # IMMEDIATE that updates by id and re-checks each job's state: the write lock is
        # held for the updates only, however many rows the filter had to read past.
        query = _select_sql(sel.given(), sel.include_running, after is not None)
        with self._read() as conn:
            rows = conn.execute(query, params).fetchall()
        if not rows:
            return CancelBatch((), (), None)
        # Both moves over every id: a job claimed since the read is asked to stop (with
        # include_running) rather than missed; each update checks the state it moves from.
        batch = {"tenant_id": sel.tenant_id, "now": n, "reason": reason,
                 "ids": json.dumps([r[0] for r in rows])}
        requested: tuple[str, ...] = ()
        with self._write() as conn:
            cancelled = tuple(r[0] for r in conn.execute(Q["cancel_waiting_ids"], batch))
            if sel.include_running:
                requested = tuple(r[0] for r in conn.execute(Q["request_cancel_ids"], batch))
        last = rows[-1][0] if len(rows) == limit else None
        return CancelBatch(tuple(sorted(cancelled)), tuple(sorted(requested)), last)


def _job(conn: sqlite3.Connection, job_id: str, tenant_id: str) -> Job:
    rows = _rows(conn.execute(Q["get_job"], {"id": job_id, "tenant_id": tenant_id}))
    if not rows:
        raise NotFound(f"job {job_id} not found")
    return job_from_row(rows[0], from_us)


@functools.cache
def _select_sql(given: tuple[str, ...], running: bool, after: bool) -> str:
    parts = [*([_AFTER] if after else []), _OR_RUNNING if running else _WAITING,
             *(_CONDITIONS[f] for f in given)]
    return Q["select_cancellable"].replace("/*FILTERS*/", " ".join(f"AND {p}" for p in parts))
