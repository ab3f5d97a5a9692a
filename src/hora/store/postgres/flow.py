"""Flow control inside the PostgreSQL claim: rate and concurrency gates
(``hora.store.gating``), shared by every worker process.

Locks, always in this order, so claims and finishes never wait on each other in a cycle:
the candidate jobs (``FOR UPDATE SKIP LOCKED``: nobody waits), the concurrency keys
(``pg_advisory_xact_lock`` on a hash of (tenant, key), sorted), the rate buckets (rows
inserted if missing, then ``FOR UPDATE`` in key order). Another claim on the same key or
bucket waits for this transaction and then reads what it wrote. A finish that frees a key
takes the key's lock before waking the next parked job, so a claim that counted the key
full before the finish committed has committed its parking by then.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from hora.flow import Rate
from hora.store.common import from_us, to_us
from hora.store.gating import (
    Bucket,
    BucketKey,
    Candidate,
    Limit,
    Plan,
    bucket_keys,
    concurrency_keys,
    limit_keys,
    lock_id,
)
from hora.store.gating import plan as plan_gates
from hora.store.postgres.connection import Conn, Q, _announce, _utc


def claim(conn: Conn, params: dict[str, Any]) -> tuple[list[tuple[Any, ...]], datetime | None]:
    """Start up to ``params['limit']`` due jobs, gates checked, in the caller's transaction.
    Returns the started rows (claim columns) and, when a gate pushed jobs back or nothing
    was due, when the worker should claim again.

    One read of candidates per transaction (unlike SQLite, which reads on while gates push
    candidates back): a second read would lock buckets out of the one sorted order every
    claimer takes them in, and concurrent claims would deadlock."""
    rows, wake, _pushed = _claim_step(conn, params, first=True)
    return rows, wake


def _claim_step(conn: Conn, params: dict[str, Any], *, first: bool,
                ) -> tuple[list[tuple[Any, ...]], datetime | None, int]:
    """One read of candidates and their decision: (started rows, wake instant, how many a
    gate pushed back or cancelled)."""
    started: list[tuple[Any, ...]] = []
    gated: list[Candidate] = []
    count = 0
    for r in conn.execute(Q["claim_flow"], params):
        count += 1
        if r[0]:
            started.append(r[1:12])
        else:
            gated.append(Candidate(r[1], r[9], r[12], r[13], bool(r[14]), r[15],
                                   to_us(r[10])))
    if count == 0:
        if not first:
            return started, None, 0
        # Nothing due: say when something is. Jobs a gate pushed to a slot are not reserved
        # ahead of time, so without this the worker would find them at its next poll.
        row = conn.execute(Q["next_due_at"], params).fetchone()
        return started, None if row is None or row[0] is None else _utc(row[0]), 0
    if not gated:
        return started, None, 0
    now: datetime = params["now"]
    now_us = to_us(now)
    p, changed = _plan(conn, gated, now_us, full_batch=count >= params["limit"],
                       ahead_us=params.get("ahead_us", 0))
    if p.admitted or p.blocked or changed:
        started.extend(conn.execute(Q["apply_gates"], {
            "b_tenants": [k[0] for k, _ in changed], "b_names": [k[1] for k, _ in changed],
            "b_keys": [k[2] for k, _ in changed], "b_tats": [b.tat for _, b in changed],
            "b_slots": [b.slot for _, b in changed],
            "blocked": [b[0] for b in p.blocked],
            "due_ats": [from_us(b[1]) for b in p.blocked],
            "reasons": [b[2] for b in p.blocked], "blocked_ons": [b[3] for b in p.blocked],
            "ids": p.admitted,
            "ats": [from_us(p.start_at[i]) if i in p.start_at else now for i in p.admitted],
            "owner": params["owner"], "now": now,
            "lease_until": params["lease_until"]}).fetchall())
    for job_id, reason in p.cancelled:
        conn.execute(Q["cancel_gated"], {"id": job_id, "reason": reason, "now": now})
    for tenant_id, key, job_id in p.supersede:
        args = {"tenant_id": tenant_id, "key": key, "id": job_id, "now": now,
                "reason": f"superseded by {job_id}"}
        conn.execute(Q["supersede_running"], args)
        conn.execute(Q["supersede_waiting"], args)
    wake = None if p.wake_at is None else from_us(p.wake_at)
    if p.pending:  # the worker sleeps until the next job is due (a pushed one, most likely)
        row = conn.execute(Q["next_due_at"], params).fetchone()
        if row is not None and row[0] is not None:
            wake = _utc(row[0]) if wake is None else min(wake, _utc(row[0]))
    return started, wake, len(p.blocked) + len(p.cancelled)


def _plan(conn: Conn, gated: Sequence[Candidate], now_us: int, *, full_batch: bool,
          ahead_us: int) -> tuple[Plan, list[tuple[BucketKey, Bucket]]]:
    """The plan, and the buckets it changed (to write back)."""
    ckeys = concurrency_keys(gated)
    running: dict[tuple[str, str], int] = {}
    if ckeys:
        conn.execute(Q["lock_concurrency_keys"],
                     {"keys": sorted({lock_id(t, k) for t, k in ckeys})})
        running = {(r[0], r[1]): int(r[2]) for r in conn.execute(Q["running_counts"], {
            "tenants": [k[0] for k in ckeys], "keys": [k[1] for k in ckeys]})}
    lkeys = limit_keys(gated)
    bkeys = bucket_keys(gated)
    overrides: dict[tuple[str, str], Limit] = {}
    buckets: dict[BucketKey, Bucket] = {}
    for r in conn.execute(Q["gate_state"], {
            **_bucket_args(bkeys),
            "l_tenants": [k[0] for k in lkeys], "l_names": [k[1] for k in lkeys]}):
        if r[0]:
            buckets[(r[1], r[2], r[3])] = Bucket(int(r[4]), r[5])
        else:
            overrides[(r[1], r[2])] = Limit(Rate(int(r[6]), float(r[7])), int(r[8]))
    missing = [k for k in bkeys if k not in buckets]
    if missing:  # never used yet: made full, then locked (both in key order)
        conn.execute(Q["insert_buckets"], _bucket_args(missing))
        buckets.update(((r[0], r[1], r[2]), Bucket(int(r[3]), r[4]))
                       for r in conn.execute(Q["lock_buckets"], _bucket_args(missing)))
    p = plan_gates(gated, now_us, overrides=overrides, buckets=buckets, running=running,
                   full_batch=full_batch, ahead_us=ahead_us)
    return p, [(k, b) for k, b in buckets.items() if b.changed]


def _bucket_args(keys: Sequence[BucketKey]) -> dict[str, list[str]]:
    return {"tenants": [k[0] for k in keys], "names": [k[1] for k in keys],
            "keys": [k[2] for k in keys]}


def wake_parked(conn: Conn, freed: Iterable[tuple[str, str | None]], now: datetime) -> None:
    """Jobs left running under these (tenant, concurrency key): per job that left, the next
    job parked behind its key is due now (under the key's lock; see the module doc)."""
    counts = Counter((t, k) for t, k in freed if k is not None)
    if not counts:
        return
    conn.execute(Q["lock_concurrency_keys"],
                 {"keys": sorted({lock_id(t, k) for t, k in counts})})
    queues: set[str] = set()
    for (tenant_id, key), n in sorted(counts.items()):
        queues.update(r[0] for r in conn.execute(Q["wake_parked"], {
            "tenant_id": tenant_id, "key": key, "n": n, "now": now}))
    _announce(conn, queues)


def wake_parked_of(conn: Conn, job_ids: Sequence[str], now: datetime) -> None:
    """``wake_parked`` for jobs known by id only (a rescue, a release)."""
    if job_ids:
        wake_parked(conn, conn.execute(Q["concurrency_keys_of"],
                                       {"ids": list(job_ids)}).fetchall(), now)
