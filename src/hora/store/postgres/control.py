"""Job control: a waiting job's new due time (reschedule, run now) and bulk cancels by
filter, each batch one short transaction that locks its jobs in id order."""

from __future__ import annotations

import functools
from datetime import datetime

from psycopg.rows import dict_row

from hora.errors import NotFound, TransitionConflict
from hora.models import Job, is_internal_task
from hora.store import CancelBatch, JobSelection
from hora.store.common import job_from_row
from hora.store.postgres.connection import Conn, PostgresConnection, Q, _announce, _utc

#: Per filter field, its condition (the parameter has the field's name).
_CONDITIONS = {
    "correlation_id": "correlation_id = %(correlation_id)s::text",
    "task": "task = %(task)s::text",
    "queue": "queue = %(queue)s::text",
    "schedule_id": "schedule_id = %(schedule_id)s::text",
    "created_before": "created_at < %(created_before)s::timestamptz",
}
_AFTER = "id > %(after)s::text"
_WAITING = "state IN ('scheduled', 'retrying')"
_OR_RUNNING = ("(state IN ('scheduled', 'retrying') "
               "OR (state = 'running' AND NOT cancel_requested))")


class PostgresControl(PostgresConnection):
    """Job control over hora_jobs (and hora_job_events for what leaves the state alone)."""

    def reschedule_job(self, job_id: str, *, tenant_id: str, due_at: datetime,
                       now: datetime, reason: str) -> Job:
        with self._write() as conn:
            row = conn.execute(Q["reschedule_waiting"], {
                "id": job_id, "tenant_id": tenant_id, "due_at": due_at, "now": now,
                "reason": reason}).fetchone()
            if row is None:
                job = _job(conn, job_id, tenant_id)
                raise TransitionConflict(job_id, ("scheduled", "retrying"), job.state)
            conn.execute(Q["record_control_event"], {
                "id": job_id, "now": now, "state": row[0], "attempt": row[1],
                "reason": reason})
            _announce(conn, {row[2]})  # an earlier due time may be now: wake the workers
            return _job(conn, job_id, tenant_id)

    def cancel_jobs_batch(self, selection: JobSelection, *, now: datetime, reason: str,
                          after: str | None, limit: int) -> CancelBatch:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        sel = selection
        params = {
            "tenant_id": sel.tenant_id, "after": after, "limit": limit,
            "include_internal": sel.task is not None and is_internal_task(sel.task),
            "correlation_id": sel.correlation_id, "task": sel.task, "queue": sel.queue,
            "schedule_id": sel.schedule_id, "created_before": sel.created_before,
        }
        with self._write() as conn:
            query = _select_sql(sel.given(), sel.include_running, after is not None)
            rows = conn.execute(query, params).fetchall()
            if not rows:
                return CancelBatch((), (), None)
            waiting = [r[0] for r in rows if r[1] != "running"]
            running = [r[0] for r in rows if r[1] == "running"]
            common = {"tenant_id": sel.tenant_id, "now": now, "reason": reason}
            cancelled: tuple[str, ...] = ()
            requested: tuple[str, ...] = ()
            if waiting:
                cancelled = tuple(r[0] for r in conn.execute(
                    Q["cancel_waiting_ids"], {**common, "ids": waiting}))
            if running:
                requested = tuple(r[0] for r in conn.execute(
                    Q["request_cancel_ids"], {**common, "ids": running}))
        last = rows[-1][0] if len(rows) == limit else None
        return CancelBatch(tuple(sorted(cancelled)), tuple(sorted(requested)), last)


def _job(conn: Conn, job_id: str, tenant_id: str) -> Job:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(Q["get_job"], {"id": job_id, "tenant_id": tenant_id}).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return job_from_row(row, _utc, decoded=True)


@functools.cache
def _select_sql(given: tuple[str, ...], running: bool, after: bool) -> str:
    parts = [*([_AFTER] if after else []), _OR_RUNNING if running else _WAITING,
             *(_CONDITIONS[f] for f in given)]
    return Q["select_cancellable"].replace("/*FILTERS*/", " ".join(f"AND {p}" for p in parts))
