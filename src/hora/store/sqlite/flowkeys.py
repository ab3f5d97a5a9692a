"""Debounce and throttle on enqueue: hora_flow_keys, inside the enqueue's one transaction.

SQLite has one writer: the ``BEGIN IMMEDIATE`` transaction of ``enqueue_flow`` serialises
every enqueue of a key (and the claims that would start the key's job), so reading the key's
row and acting on it is atomic without row locks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from hora.errors import IdempotencyConflict
from hora.models import NewJob
from hora.store import FlowEnqueue, FlowOutcome
from hora.store.common import from_us, to_us
from hora.store.flowkeys import (
    FLOW_KEY_GRACE,
    PRUNE_ON_ENQUEUE,
    flow_order,
    fold_due,
    fold_event,
    fold_reason_tail,
    throttle_reason,
)
from hora.store.sqlite.connection import Q, SQLiteConnection
from hora.store.sqlite.jobs import _insert_jobs


class SQLiteFlowKeys(SQLiteConnection):
    """The debounce/throttle keys aggregate: hora_flow_keys."""

    def enqueue_flow(self, jobs: Sequence[NewJob], flows: Sequence[FlowEnqueue | None],
                     now: datetime) -> list[tuple[str, FlowOutcome]]:
        n = to_us(now)
        out: list[tuple[str, FlowOutcome]] = [("", "")] * len(jobs)
        with self._write() as conn:
            plain = [i for i, f in enumerate(flows) if f is None]
            inserted = _insert_jobs(conn, [jobs[i] for i in plain], n)
            for i, (job_id, created) in zip(plain, inserted, strict=True):
                out[i] = (job_id, "created" if created else "existing")
            for i in flow_order(flows, [j.task for j in jobs]):
                flow = flows[i]
                assert flow is not None
                out[i] = _enqueue_one(conn, jobs[i], flow, now, n)
        return out

    def prune_flow_keys(self, *, before: datetime, limit: int) -> int:
        with self._write() as conn:
            return conn.execute(Q["flow_keys_prune"],
                                {"before": to_us(before), "limit": limit}).rowcount


def _enqueue_one(conn: sqlite3.Connection, job: NewJob, flow: FlowEnqueue, now: datetime,
                 n: int) -> tuple[str, FlowOutcome]:
    key = {"tenant_id": job.tenant_id, "kind": flow.kind, "task": job.task, "key": flow.key}
    holder, first_at, until = conn.execute(Q["flow_key_lock"], {**key, "now": n}).fetchone()
    if not holder:  # a new key: clean up a few expired ones (the table grows no faster)
        conn.execute(Q["flow_keys_prune"], {"before": to_us(now - FLOW_KEY_GRACE),
                                            "limit": PRUNE_ON_ENQUEUE})
    if job.idempotency_key is not None:
        row = conn.execute(Q["flow_job_by_idempotency_key"],
                           {"tenant_id": job.tenant_id, "key": job.idempotency_key}).fetchone()
        if row is not None:
            if row[1] != job.fingerprint:
                raise IdempotencyConflict(job.idempotency_key, row[0])
            return row[0], "existing"
    if flow.kind == "debounce":
        due = fold_due(job.due_at, flow, from_us(first_at))
        if holder and conn.execute(Q["debounce_fold"], {
                "id": holder, "tenant_id": job.tenant_id, "payload": job.payload_json,
                "flow": job.flow_json, "concurrency_key": job.concurrency_key,
                "due_at": to_us(due), "idempotency_key": job.idempotency_key,
                "fingerprint": job.fingerprint, "reason": fold_reason_tail(now),
                "now": n}).rowcount == 1:
            conn.execute(Q["debounce_event"], {"id": holder, "now": n,
                                               "reason": fold_event(due)})
            conn.execute(Q["flow_key_set"], {**key, "job_id": holder, "first_at": first_at,
                                             "until": to_us(due)})
            return holder, "debounced"
        stored, created = _insert_jobs(conn, [job], n)[0]
        if not created:  # never under the one writer: the key was checked above
            return stored, "existing"
        conn.execute(Q["flow_key_set"], {**key, "job_id": job.id, "first_at": n,
                                         "until": to_us(job.due_at)})
        return job.id, "created"
    stored, created = _insert_jobs(conn, [job], n)[0]
    if not created:  # never under the one writer: the key was checked above
        return stored, "existing"
    if holder and until > n:
        conn.execute(Q["throttle_cancel"], {"id": job.id, "now": n,
                                            "reason": throttle_reason(flow.window, holder)})
        return job.id, "throttled"
    until_us = to_us(now + timedelta(seconds=flow.window))
    conn.execute(Q["flow_key_set"], {**key, "job_id": job.id, "first_at": n, "until": until_us})
    return job.id, "created"
