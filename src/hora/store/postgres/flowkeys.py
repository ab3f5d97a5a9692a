"""Debounce and throttle on enqueue: hora_flow_keys, inside the enqueue's one transaction.

Each key's row is created if new and locked until the commit in one statement (``INSERT ...
ON CONFLICT DO UPDATE ... RETURNING``, which waits for a racing insert of the same key):
racing enqueues of one key, from any thread or process, take turns, so a debounce keeps
exactly one waiting job per key and a throttle admits exactly one job per window. The
key's waiting job is locked too before a fold, so a claim either started it first (then
the enqueue makes a new job) or skips it until the fold commits (the fold's UPDATE locks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from hora.errors import IdempotencyConflict
from hora.models import NewJob
from hora.store import FlowEnqueue, FlowOutcome
from hora.store.flowkeys import (
    FLOW_KEY_GRACE,
    PRUNE_ON_ENQUEUE,
    flow_order,
    fold_due,
    fold_event,
    fold_reason_tail,
    throttle_reason,
)
from hora.store.postgres.connection import Conn, PostgresConnection, Q, _utc
from hora.store.postgres.jobs import _insert_jobs


class PostgresFlowKeys(PostgresConnection):
    """The debounce/throttle keys aggregate: hora_flow_keys."""

    def enqueue_flow(self, jobs: Sequence[NewJob], flows: Sequence[FlowEnqueue | None],
                     now: datetime) -> list[tuple[str, FlowOutcome]]:
        out: list[tuple[str, FlowOutcome]] = [("", "")] * len(jobs)
        with self._write() as conn:
            plain = [i for i, f in enumerate(flows) if f is None]
            inserted = _insert_jobs(conn, [jobs[i] for i in plain], now)
            for i, (job_id, created) in zip(plain, inserted, strict=True):
                out[i] = (job_id, "created" if created else "existing")
            for i in flow_order(flows, [j.task for j in jobs]):
                flow = flows[i]
                assert flow is not None
                out[i] = _enqueue_one(conn, jobs[i], flow, now)
        return out

    def prune_flow_keys(self, *, before: datetime, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(Q["flow_keys_prune"],
                                {"before": before, "limit": limit}).rowcount


def _enqueue_one(conn: Conn, job: NewJob, flow: FlowEnqueue,
                 now: datetime) -> tuple[str, FlowOutcome]:
    key = {"tenant_id": job.tenant_id, "kind": flow.kind, "task": job.task, "key": flow.key}
    row = conn.execute(Q["flow_key_lock"], {**key, "now": now}).fetchone()
    assert row is not None  # an upsert's RETURNING always has the row
    holder, first_at, until = row[0], _utc(row[1]), _utc(row[2])
    if not holder:  # a new key: clean up a few expired ones (the table grows no faster)
        conn.execute(Q["flow_keys_prune"], {"before": now - FLOW_KEY_GRACE,
                                            "limit": PRUNE_ON_ENQUEUE})
    if job.idempotency_key is not None:
        row = conn.execute(Q["flow_job_by_idempotency_key"],
                           {"tenant_id": job.tenant_id, "key": job.idempotency_key}).fetchone()
        if row is not None:
            if row[1] != job.fingerprint:
                raise IdempotencyConflict(job.idempotency_key, row[0])
            return row[0], "existing"
    if flow.kind == "debounce":
        due = fold_due(job.due_at, flow, first_at)
        if holder and conn.execute(Q["debounce_fold"], {
                "id": holder, "tenant_id": job.tenant_id, "payload": job.payload_json,
                "flow": job.flow_json, "concurrency_key": job.concurrency_key,
                "due_at": due, "idempotency_key": job.idempotency_key,
                "fingerprint": job.fingerprint, "reason": fold_reason_tail(now),
                "now": now}).rowcount == 1:
            conn.execute(Q["debounce_event"], {"id": holder, "now": now,
                                               "reason": fold_event(due)})
            conn.execute(Q["flow_key_set"], {**key, "job_id": holder, "first_at": first_at,
                                             "until": due})
            return holder, "debounced"
        stored, created = _insert_jobs(conn, [job], now)[0]
        if not created:  # its idempotency key was stored meanwhile (PostgreSQL)
            return stored, "existing"
        conn.execute(Q["flow_key_set"], {**key, "job_id": job.id, "first_at": now,
                                         "until": job.due_at})
        return job.id, "created"
    stored, created = _insert_jobs(conn, [job], now)[0]
    if not created:  # its idempotency key was stored meanwhile (PostgreSQL)
        return stored, "existing"
    if holder and until > now:
        conn.execute(Q["throttle_cancel"], {"id": job.id, "now": now,
                                            "reason": throttle_reason(flow.window, holder)})
        return job.id, "throttled"
    conn.execute(Q["flow_key_set"], {**key, "job_id": job.id, "first_at": now,
                                     "until": now + timedelta(seconds=flow.window)})
    return job.id, "created"
