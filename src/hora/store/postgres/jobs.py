"""Jobs: enqueue, the worker's moves (claim, finish, release, rescue), visibility and control."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row

from hora.errors import IdempotencyConflict, NotFound, StoreError, TransitionConflict
from hora.models import ClaimedJob, Job, JobFilter, NewJob, Page, is_internal_task
from hora.states import JobState
from hora.store import LeaseStatus, Outcome
from hora.store.common import (
    attempt_from_row,
    dumps,
    error_json,
    event_from_row,
    id_cursor,
    job_from_row,
    keyset_page,
    replay_of,
    rescue_decision,
    with_attempt_logs,
    with_current_attempt,
)
from hora.store.gating import Claimed
from hora.store.postgres import flow
from hora.store.postgres.connection import Conn, PostgresConnection, Q, _announce, _utc


class PostgresJobs(PostgresConnection):
    """The jobs aggregate: hora_jobs, hora_job_attempts and hora_job_events."""

    def insert_jobs(self, jobs: Sequence[NewJob], now: datetime) -> list[tuple[str, bool]]:
        if not jobs:
            return []
        with self._write() as conn:
            return _insert_jobs(conn, jobs, now)

    def claim_jobs(self, *, owner: str, queues: Sequence[str], tasks: Sequence[str] | None,
                   now: datetime, lease_until: datetime, limit: int,
                   horizon: datetime | None = None, reserve_limit: int = 0,
                   gate_ahead: timedelta = timedelta(0),
                   ) -> tuple[list[ClaimedJob], list[ClaimedJob]]:
        params: dict[str, Any] = {
            # each queue once: claim_due scans one index range per queue
            "owner": owner, "queues": list(dict.fromkeys(queues)),
            "tasks": None if tasks is None else list(tasks),
            "now": now, "lease_until": lease_until, "limit": limit,
            "ahead_us": gate_ahead // timedelta(microseconds=1),
            "back_until": now + gate_ahead,
        }
        reserve = horizon is not None and reserve_limit > 0
        if limit <= 0 and not reserve:
            return [], []
        wake: datetime | None = None
        with self._write() as conn:
            started: list[ClaimedJob] = []
            if limit > 0:
                rows, wake = flow.claim(conn, params)
                started = _claimed(rows)
            reserved: list[ClaimedJob] = []
            if reserve:
                params.update(horizon=horizon, limit=reserve_limit)
                reserved = _claimed(conn.execute(Q["reserve_upcoming"], params))
        # RETURNING does not promise an order; hand them out as the queries chose them.
        started.sort(key=lambda j: (j.priority, j.due_at, j.id))
        reserved.sort(key=lambda j: (j.due_at, j.priority, j.id))
        return Claimed(started, reserved, wake)

    def start_reserved(self, job_ids: Sequence[str], *, owner: str, now: datetime,
                       lease_until: datetime) -> list[str]:
        if not job_ids:
            return []
        with self._write() as conn:
            started = {r[0] for r in conn.execute(Q["start_reserved"], {
                "ids": list(job_ids), "owner": owner, "now": now, "lease_until": lease_until})}
        # In the order asked for, each once, as when they are started one by one.
        return [job_id for job_id in dict.fromkeys(job_ids) if job_id in started]

    def finish_jobs(self, outcomes: Sequence[Outcome], now: datetime) -> list[str]:
        if not outcomes:
            return []
        params: dict[str, Any] = {
            "ids": [o.job_id for o in outcomes], "attempts": [o.attempt for o in outcomes],
            "owners": [o.owner for o in outcomes], "states": [o.state.value for o in outcomes],
            "due_ats": [o.due_at for o in outcomes],
            "results": [o.result_json for o in outcomes],
            "errors": [error_json(o.error) for o in outcomes],
            "reasons": [o.reason for o in outcomes], "now": now,
            "logs": [o.logs_json for o in outcomes],
            **_attempt_params(outcomes),
        }
        with self._write() as conn:
            # The planner's estimates of the unnested batch and of a fresh backlog are far
            # off, and a nested loop over them is quadratic: 2,000 outcomes (a worker's
            # batched tasks finish by the hundred) took 4.7 s instead of 0.16 s.
            conn.execute("SET LOCAL enable_nestloop = off")
            rows = conn.execute(Q["finish_jobs"], params).fetchall()
            conn.execute("SET LOCAL enable_nestloop = on")
            flow.wake_parked(conn, ((r[1], r[2]) for r in rows), now)
            return [r[0] for r in rows]

    def extend_leases(self, *, owner: str, now: datetime, lease_until: datetime) -> LeaseStatus:
        with self._write() as conn:
            rows = conn.execute(Q["extend_leases"],
                                {"owner": owner, "lease_until": lease_until}).fetchall()
        return LeaseStatus(held=frozenset(r[0] for r in rows),
                           cancel_requested=frozenset(r[0] for r in rows if r[2]))

    def rescue_expired(self, now: datetime, limit: int = 500) -> list[str]:
        with self._write() as conn:
            rows = conn.execute(Q["expired_running"], {"now": now, "limit": limit}).fetchall()
            if not rows:
                return []
            decisions = [rescue_decision(attempt, max_attempts, owner, bool(cancel))
                         for _, attempt, max_attempts, owner, cancel in rows]
            _announce(conn, {"*"})  # rescued jobs are due now, in whichever queue
            rescued = [r[0] for r in conn.execute(Q["rescue_jobs"], {
                "ids": [r[0] for r in rows], "attempts": [r[1] for r in rows],
                "owners": [r[3] for r in rows],
                "states": [d[0] for d in decisions], "reasons": [d[1] for d in decisions],
                "errors": [dumps(d[2]) for d in decisions],
                "error_types": [d[2]["type"] for d in decisions],
                "error_messages": [d[2]["message"] for d in decisions],
                "now": now,
            })]
            flow.wake_parked_of(conn, rescued, now)
            return rescued

    def release_jobs(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> int:
        count = 0
        with self._write() as conn:
            if outcomes:
                row = conn.execute(Q["release_running"], {
                    "ids": [o.job_id for o in outcomes],
                    "attempts": [o.attempt for o in outcomes],
                    "owners": [o.owner for o in outcomes],
                    "reasons": [o.reason for o in outcomes], "owner": owner, "now": now,
                    **_attempt_params(outcomes),
                }).fetchone()
                count += 0 if row is None else int(row[0])
                if row is not None and row[0]:
                    flow.wake_parked_of(conn, [o.job_id for o in outcomes], now)
            count += conn.execute(Q["release_reserved"], {"owner": owner}).rowcount
        return count

    def next_due_at(self, *, queues: Sequence[str], tasks: Sequence[str] | None,
                    now: datetime) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["next_due_at"], {
                "queues": list(queues), "tasks": None if tasks is None else list(tasks),
                "now": now}).fetchone()
        return None if row is None or row[0] is None else _utc(row[0])

    def get_job(self, job_id: str, *, tenant_id: str, history: bool = True) -> Job:
        with self._read(snapshot=history) as conn:
            return self._get_job(conn, job_id, tenant_id, history)

    def _get_job(self, conn: Conn, job_id: str, tenant_id: str, history: bool) -> Job:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_job"], {"id": job_id, "tenant_id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        if not history:
            return job_from_row(row, _utc, decoded=True)
        attempts = tuple(attempt_from_row(r, _utc)
                         for r in conn.execute(Q["get_attempts"], {"id": job_id}))
        attempts = with_attempt_logs(attempts, conn.execute(Q["get_attempt_logs"],
                                                            {"id": job_id}))
        attempts = with_current_attempt(row, attempts, _utc)
        events = tuple(event_from_row(r, _utc)
                       for r in conn.execute(Q["get_events"], {"id": job_id}))
        return job_from_row(row, _utc, decoded=True, attempts=attempts, events=events,
                            history=True)

    def list_jobs(self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None,
                  ) -> Page[Job]:
        params = {
            "tenant_id": flt.tenant_id, "cursor": id_cursor(cursor),
            "states": None if flt.states is None else [str(s) for s in flt.states],
            "task": flt.task, "queue": flt.queue, "correlation_id": flt.correlation_id,
            "created_after": flt.created_after, "created_before": flt.created_before,
            "limit": limit + 1,
            "include_internal": flt.include_internal or (
                flt.task is not None and is_internal_task(flt.task)),
        }
        with self._read() as conn:
            jobs = _jobs(conn, Q["list_jobs"], params)
        return keyset_page(jobs, limit, lambda j: j.id)

    def cancel_job(self, job_id: str, *, tenant_id: str, now: datetime, reason: str) -> Job:
        params = {"id": job_id, "tenant_id": tenant_id, "now": now, "reason": reason}
        with self._write() as conn:
            if (conn.execute(Q["cancel_waiting"], params).rowcount == 0
                    and conn.execute(Q["request_cancel"], params).rowcount == 0):
                job = self._get_job(conn, job_id, tenant_id, history=False)
                raise TransitionConflict(job_id, ("scheduled", "retrying", "running"),
                                         job.state)
            return self._get_job(conn, job_id, tenant_id, history=False)

    def replay_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                    ) -> list[Job]:
        created: list[Job] = []
        with self._write() as conn:
            conn.execute(Q["lock_jobs"], {"ids": list(job_ids), "tenant_id": tenant_id})
            for job_id in job_ids:
                old = self._get_job(conn, job_id, tenant_id, history=False)
                if old.state is not JobState.DEAD:
                    raise TransitionConflict(job_id, "dead", old.state)
                gates = conn.execute(Q["job_flow"], {"id": job_id}).fetchone()
                new = replay_of(old, now, flow_json=gates and gates[0],
                                concurrency_key=gates and gates[1])
                conn.execute(Q["insert_jobs"], _insert_params([new], now))
                cur = conn.execute(Q["mark_replayed"], {
                    "id": job_id, "tenant_id": tenant_id, "new_id": new.id, "now": now,
                    "reason": f"replayed as {new.id}"})
                if cur.rowcount != 1:  # pragma: no cover - the row is locked and was dead
                    raise TransitionConflict(job_id, "dead", None)
                created.append(self._get_job(conn, new.id, tenant_id, history=False))
            _announce(conn, {j.queue for j in created})
        return created

    def discard_jobs(self, job_ids: Sequence[str], *, tenant_id: str, now: datetime,
                     ) -> list[str]:
        with self._write() as conn:
            conn.execute(Q["lock_jobs"], {"ids": list(job_ids), "tenant_id": tenant_id})
            for job_id in job_ids:
                cur = conn.execute(Q["discard_dead"], {"id": job_id, "tenant_id": tenant_id,
                                                       "now": now, "reason": "discarded"})
                if cur.rowcount == 0:
                    old = self._get_job(conn, job_id, tenant_id, history=False)
                    raise TransitionConflict(job_id, "dead", old.state)
        return list(job_ids)

    def count_jobs(self, *, tenant_id: str, include_internal: bool = False) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(Q["count_by_state"], {
                "tenant_id": tenant_id, "include_internal": include_internal}).fetchall()
        return {state: int(n) for state, n in rows}

    def count_pending_jobs(self, tenant_id: str, *, limit: int) -> int:
        return self._count(Q["count_pending_jobs"], {"tenant_id": tenant_id, "limit": limit})


# -- helpers ----------------------------------------------------------------------------


def _insert_order(jobs: Sequence[NewJob]) -> list[NewJob]:
    """Keyless jobs first, then keyed ones by (tenant, key, position): concurrent batches then
    wait on one another's keys in one order (no deadlock), and of two jobs in a batch with one
    key the earlier is inserted, as when jobs are inserted one by one."""

    def rank(i: int) -> tuple[bool, str, str, int]:
        job = jobs[i]
        if job.idempotency_key is None:
            return False, "", "", i
        return True, job.tenant_id, job.idempotency_key, i

    return [jobs[i] for i in sorted(range(len(jobs)), key=rank)]


def _insert_params(jobs: Sequence[NewJob], now: datetime) -> dict[str, Any]:
    return {
        "ids": [j.id for j in jobs], "tenant_ids": [j.tenant_id for j in jobs],
        "tasks": [j.task for j in jobs], "payloads": [j.payload_json for j in jobs],
        "fingerprints": [j.fingerprint for j in jobs], "queues": [j.queue for j in jobs],
        "priorities": [j.priority for j in jobs], "due_ats": [j.due_at for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs],
        "retry_policies": [j.retry_policy_json for j in jobs],
        # float(): an int timeout next to a float one would make a list of mixed types.
        "timeouts": [None if j.timeout is None else float(j.timeout) for j in jobs],
        "idempotency_keys": [j.idempotency_key for j in jobs],
        "correlation_ids": [j.correlation_id for j in jobs],
        "replay_ofs": [j.replay_of for j in jobs],
        "state_reasons": [f"replay of {j.replay_of}" if j.replay_of else None for j in jobs],
        "schedule_ids": [j.schedule_id for j in jobs],
        "flows": [j.flow_json for j in jobs],
        "concurrency_keys": [j.concurrency_key for j in jobs],
        "now": now,
    }


def _insert_jobs(conn: Conn, jobs: Sequence[NewJob], now: datetime, *,
                 skip_existing: bool = False) -> list[tuple[str, bool]]:
    """Insert jobs in the caller's transaction, one statement, and announce the queues of
    those inserted; per job (id, created). An existing idempotency key with the same
    fingerprint yields that job's id and False, a different one raises IdempotencyConflict;
    with ``skip_existing`` a job whose key exists is left out, whatever its fingerprint (and
    of the output)."""
    if not jobs:
        return []
    inserted = {r[0] for r in conn.execute(
        Q["insert_jobs"], _insert_params(_insert_order(jobs), now))}
    _announce(conn, {j.queue for j in jobs if j.id in inserted})
    if len(inserted) == len(jobs):
        return [(job.id, True) for job in jobs]
    if skip_existing:
        return [(job.id, True) for job in jobs if job.id in inserted]
    keyed = [job for job in jobs if job.id not in inserted]
    existing = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
        Q["jobs_by_idempotency_key"],
        {"tenant_ids": [j.tenant_id for j in keyed],
         "keys": [j.idempotency_key for j in keyed]})}
    out: list[tuple[str, bool]] = []
    for job in jobs:
        if job.id in inserted:
            out.append((job.id, True))
            continue
        found = existing.get((job.tenant_id, job.idempotency_key))
        if found is None:  # pragma: no cover - the conflict target guarantees a row
            raise StoreError(f"insert of job {job.id} was ignored without a conflict")
        if found[1] != job.fingerprint:
            raise IdempotencyConflict(job.idempotency_key or "", found[0])
        out.append((found[0], False))
    return out


def _attempt_params(outcomes: Sequence[Outcome]) -> dict[str, list[str | None]]:
    return {
        "outcomes": [o.outcome for o in outcomes],
        "error_types": [o.error.type if o.error else None for o in outcomes],
        "error_messages": [o.error.message if o.error else None for o in outcomes],
        "tracebacks": [o.error.traceback if o.error else None for o in outcomes],
    }


def _claimed(cur: Iterable[Sequence[Any]]) -> list[ClaimedJob]:
    # jsonb arrives decoded; the row is already in CLAIM_COLUMNS order.
    return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], _utc(r[9]), r[10])
            for r in cur]


def _jobs(conn: Conn, query: str, params: dict[str, Any]) -> list[Job]:
    with conn.cursor(row_factory=dict_row) as cur:
        return [job_from_row(r, _utc, decoded=True) for r in cur.execute(query, params)]

