"""Jobs: enqueue, the worker's moves (claim, finish, release, rescue), visibility and control."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hora.errors import IdempotencyConflict, NotFound, StoreError, TransitionConflict
from hora.models import ClaimedJob, Job, JobFilter, NewJob, Page, is_internal_task
from hora.states import JobState
from hora.store import LeaseStatus, Outcome
from hora.store.common import (
    attempt_from_row,
    dumps,
    error_json,
    event_from_row,
    from_us,
    id_cursor,
    job_from_row,
    keyset_page,
    replay_of,
    rescue_decision,
    to_us,
    with_attempt_logs,
    with_current_attempt,
)
from hora.store.gating import Claimed
from hora.store.sqlite import flow
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows


class SQLiteJobs(SQLiteConnection):
    """The jobs aggregate: hora_jobs, hora_job_attempts and hora_job_events."""

    def insert_jobs(self, jobs: Sequence[NewJob], now: datetime) -> list[tuple[str, bool]]:
        with self._write() as conn:
            return _insert_jobs(conn, jobs, to_us(now))

    def claim_jobs(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str] | None,
                   now: datetime, lease_until: datetime, limit: int,
                   horizon: datetime | None = None, reserve_limit: int = 0,
                   gate_ahead: timedelta = timedelta(0),
                   ) -> tuple[list[ClaimedJob], list[ClaimedJob]]:
        queue_list = list(dict.fromkeys(queues))
        params: dict[str, Any] = {
            "owner": owner, "queues": json.dumps(queue_list),
            "tasks": None if tasks is None else json.dumps(list(tasks)),
            "now": to_us(now), "lease_until": to_us(lease_until), "limit": limit,
            "ahead_us": gate_ahead // timedelta(microseconds=1),
            "back_until": to_us(now + gate_ahead),
        }
        wake: int | None = None
        with self._write() as conn:
            started: list[ClaimedJob] = []
            if limit > 0 and queue_list:
                params.update({f"q{i}": q for i, q in enumerate(queue_list)})
                rows, wake = flow.claim(conn, params, len(queue_list))
                started = _claimed(rows)
            reserved: list[ClaimedJob] = []
            if horizon is not None and reserve_limit > 0:
                params.update(horizon=to_us(horizon), limit=reserve_limit)
                reserved = _claimed(conn.execute(Q["reserve_upcoming"], params).fetchall())
        # RETURNING does not promise an order; hand them out as the queries chose them.
        started.sort(key=lambda j: (j.priority, j.due_at, j.id))
        reserved.sort(key=lambda j: (j.due_at, j.priority, j.id))
        return Claimed(started, reserved, None if wake is None else from_us(wake))

    def start_reserved(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                       lease_until: datetime) -> list[str]:
        params = {"owner": owner, "now": to_us(now), "lease_until": to_us(lease_until)}
        out: list[str] = []
        with self._write() as conn:
            for job_id in job_ids:
                out.extend(r[0] for r in conn.execute(Q["start_reserved"],
                                                      {**params, "id": job_id}))
        return out

    def finish_jobs(self, outcomes: Sequence[Outcome], now: datetime) -> list[str]:
        if not outcomes:
            return []
        n = to_us(now)
        batch = json.dumps([_outcome_dict(o) for o in outcomes], separators=(",", ":"))
        with self._write() as conn:
            rows = conn.execute(Q["finish_jobs"], {"batch": batch, "now": n}).fetchall()
            applied = [r[0] for r in rows]
            flow.wake_parked(conn, ((r[1], r[2]) for r in rows), n)
            if applied:
                every = len(applied) == len(outcomes)
                conn.execute(Q["record_attempts"], {
                    "batch": batch, "now": n,
                    "applied": None if every else json.dumps(applied)})
        return applied

    def extend_leases(self, *, owner: str, now: datetime, lease_until: datetime) -> LeaseStatus:
        with self._write() as conn:
            rows = conn.execute(Q["extend_leases"],
                                {"owner": owner, "lease_until": to_us(lease_until)}).fetchall()
        return LeaseStatus(held=frozenset(r[0] for r in rows),
                           cancel_requested=frozenset(r[0] for r in rows if r[2]))

    def rescue_expired(self, now: datetime, limit: int = 500) -> list[str]:
        n = to_us(now)
        rescued: list[str] = []
        with self._write() as conn:
            rows = conn.execute(Q["expired_running"], {"now": n, "limit": limit}).fetchall()
            for job_id, attempt, max_attempts, owner, cancel in rows:
                state, reason, err = rescue_decision(attempt, max_attempts, owner,
                                                     bool(cancel))
                cur = conn.execute(Q["rescue_job"], {
                    "id": job_id, "attempt": attempt, "state": state, "now": n,
                    "error": dumps(err), "reason": reason})
                if cur.rowcount == 1:
                    rescued.append(job_id)
                    conn.execute(Q["record_attempt"], {
                        "id": job_id, "attempt": attempt, "worker_id": owner, "now": n,
                        "outcome": "lost", "error_type": err["type"],
                        "error_message": err["message"], "traceback": None})
            flow.wake_parked_of(conn, rescued, n)
        return rescued

    def release_jobs(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> int:
        n = to_us(now)
        count = 0
        with self._write() as conn:
            released: list[str] = []
            for o in outcomes:
                cur = conn.execute(Q["release_running"], {
                    "id": o.job_id, "owner": owner, "attempt": o.attempt, "now": n,
                    "reason": o.reason})
                if cur.rowcount == 1:
                    count += 1
                    released.append(o.job_id)
                    conn.execute(Q["record_attempt"], _attempt_params(o, n))
            flow.wake_parked_of(conn, released, n)
            count += conn.execute(Q["release_reserved"], {"owner": owner}).rowcount
        return count

    def next_due_at(self, *, queues: Sequence[str], tasks: Sequence[str] | None,
                    now: datetime) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_due_at"], {
                "queues": json.dumps(list(queues)),
                "tasks": None if tasks is None else json.dumps(list(tasks)),
                "now": to_us(now)}).fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    def get_job(self, job_id: str, *, tenant_id: str, history: bool = True) -> Job:
        with self._read() as conn:
            return self._get_job(conn, job_id, tenant_id, history)

    def _get_job(self, conn: sqlite3.Connection, job_id: str, tenant_id: str,
                 history: bool) -> Job:
        rows = _rows(conn.execute(Q["get_job"], {"id": job_id, "tenant_id": tenant_id}))
        if not rows:
            raise NotFound(f"job {job_id} not found")
        if not history:
            return job_from_row(rows[0], from_us)
        attempts = tuple(attempt_from_row(r, from_us)
                         for r in conn.execute(Q["get_attempts"], {"id": job_id}))
        attempts = with_attempt_logs(attempts, conn.execute(Q["get_attempt_logs"],
                                                            {"id": job_id}))
        attempts = with_current_attempt(rows[0], attempts, from_us)
        events = tuple(event_from_row(r, from_us)
                       for r in conn.execute(Q["get_events"], {"id": job_id}))
        return job_from_row(rows[0], from_us, attempts=attempts, events=events, history=True)

    def list_jobs(self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None,
                  ) -> Page[Job]:
        params = {
            "tenant_id": flt.tenant_id, "cursor": id_cursor(cursor),
            "states": None if flt.states is None else json.dumps([str(s) for s in flt.states]),
            "task": flt.task, "queue": flt.queue, "correlation_id": flt.correlation_id,
            "created_after": None if flt.created_after is None else to_us(flt.created_after),
            "created_before": None if flt.created_before is None else to_us(flt.created_before),
            "limit": limit + 1,
            "include_internal": flt.include_internal or (
                flt.task is not None and is_internal_task(flt.task)),
        }
        with self._read() as conn:
            jobs = [job_from_row(r, from_us) for r in _rows(conn.execute(Q["list_jobs"], params))]
        return keyset_page(jobs, limit, lambda j: j.id)

    def cancel_job(self, job_id: str, *, tenant_id: str, now: datetime, reason: str) -> Job:
        params = {"id": job_id, "tenant_id": tenant_id, "now": to_us(now), "reason": reason}
        with self._write() as conn:
            if (conn.execute(Q["cancel_waiting"], params).rowcount == 0
                    and conn.execute(Q["request_cancel"], params).rowcount == 0):
                job = self._get_job(conn, job_id, tenant_id, history=False)
                raise TransitionConflict(job_id, ("scheduled", "retrying", "running"),
                                         job.state)
            return self._get_job(conn, job_id, tenant_id, history=False)

    def replay_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                    ) -> list[Job]:
        n = to_us(now)
        created: list[Job] = []
        with self._write() as conn:
            for job_id in job_ids:
                old = self._get_job(conn, job_id, tenant_id, history=False)
                if old.state is not JobState.DEAD:
                    raise TransitionConflict(job_id, "dead", old.state)
                gates = conn.execute(Q["job_flow"], {"id": job_id}).fetchone()
                new = replay_of(old, now, flow_json=gates and gates[0],
                                concurrency_key=gates and gates[1])
                conn.execute(Q["insert_job"], _insert_params(new, n))
                conn.execute(Q["mark_replayed"], {"id": job_id, "tenant_id": tenant_id,
                                                  "new_id": new.id, "now": n,
                                                  "reason": f"replayed as {new.id}"})
                created.append(self._get_job(conn, new.id, tenant_id, history=False))
        return created

    def discard_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                     ) -> list[str]:
        n = to_us(now)
        with self._write() as conn:
            for job_id in job_ids:
                cur = conn.execute(Q["discard_dead"], {"id": job_id, "tenant_id": tenant_id,
                                                       "now": n, "reason": "discarded"})
                if cur.rowcount == 0:
                    old = self._get_job(conn, job_id, tenant_id, history=False)
                    raise TransitionConflict(job_id, "dead", old.state)
        return list(job_ids)

    def count_jobs(self, *, tenant_id: str, include_internal: bool = False) -> dict[str, int]:
        with self._read() as conn:
            return dict(conn.execute(Q["count_by_state"], {
                "tenant_id": tenant_id, "include_internal": include_internal}).fetchall())

    def count_pending_jobs(self, tenant_id: str, *, limit: int) -> int:
        with self._read() as conn:
            return int(conn.execute(Q["count_pending_jobs"], {
                "tenant_id": tenant_id, "limit": limit}).fetchone()[0])


# -- helpers ----------------------------------------------------------------------------


def _insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], now_us: int, *,
                 skip_existing: bool = False) -> list[tuple[str, bool]]:
    """Insert jobs in the caller's write transaction; per job (id, created). An existing
    idempotency key with the same fingerprint yields that job's id and False, a different one
    raises IdempotencyConflict; with ``skip_existing`` a job whose key exists is left out,
    whatever its fingerprint (and of the output)."""
    out: list[tuple[str, bool]] = []
    for job in jobs:
        cur = conn.execute(Q["insert_job"], _insert_params(job, now_us))
        if cur.rowcount == 1:
            out.append((job.id, True))
            continue
        if skip_existing:
            continue
        row = conn.execute(Q["job_by_idempotency_key"],
                           {"tenant_id": job.tenant_id, "key": job.idempotency_key},
                           ).fetchone()
        if row is None:  # pragma: no cover - the conflict target guarantees a row
            raise StoreError(f"insert of job {job.id} was ignored without a conflict")
        if row[1] != job.fingerprint:
            raise IdempotencyConflict(job.idempotency_key or "", row[0])
        out.append((row[0], False))
    return out


def _insert_params(job: NewJob, now_us: int) -> dict[str, Any]:
    return {
        "id": job.id, "tenant_id": job.tenant_id, "task": job.task, "payload": job.payload_json,
        "fingerprint": job.fingerprint, "queue": job.queue, "priority": job.priority,
        "due_at": to_us(job.due_at), "max_attempts": job.max_attempts,
        "retry_policy": job.retry_policy_json, "timeout": job.timeout,
        "idempotency_key": job.idempotency_key, "correlation_id": job.correlation_id,
        "replay_of": job.replay_of,
        "state_reason": f"replay of {job.replay_of}" if job.replay_of else None,
        "now": now_us, "schedule_id": job.schedule_id, "flow": job.flow_json,
        "concurrency_key": job.concurrency_key,
    }


def _attempt_params(o: Outcome, now_us: int) -> dict[str, Any]:
    e = o.error
    return {"id": o.job_id, "attempt": o.attempt, "worker_id": o.owner, "now": now_us,
            "outcome": o.outcome,
            "error_type": e.type if e else None, "error_message": e.message if e else None,
            "traceback": e.traceback if e else None}


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    e = o.error
    return {"id": o.job_id, "attempt": o.attempt, "owner": o.owner, "state": o.state,
            "outcome": o.outcome, "due_at": None if o.due_at is None else to_us(o.due_at),
            "started_at": to_us(o.started_at),
            "result": o.result_json, "error": error_json(e), "reason": o.reason,
            "error_type": e.type if e else None, "error_message": e.message if e else None,
            "traceback": e.traceback if e else None, "logs": o.logs_json}


def _claimed(rows: list[tuple[Any, ...]]) -> list[ClaimedJob]:
    loads = json.loads
    return [ClaimedJob(r[0], r[1], loads(r[2]), r[3], r[4],
                       None if r[5] is None else loads(r[5]), r[6], r[7], r[8], from_us(r[9]),
                       r[10]) for r in rows]

