"""Flow control inside the SQLite claim: rate and concurrency gates (``hora.store.gating``).

SQLite has one writer at a time (every write is ``BEGIN IMMEDIATE``), so reading the
buckets and the running counts, deciding, and writing back is atomic across every process
on the file without further locks.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from hora.flow import Rate
from hora.store.gating import (
    Bucket,
    Candidate,
    Limit,
    Plan,
    bucket_keys,
    concurrency_keys,
    limit_keys,
)
from hora.store.gating import plan as plan_gates
from hora.store.sqlite.connection import Q


@functools.cache
def candidates_sql(queues: int) -> str:
    heads = " UNION ALL ".join(
        f"SELECT * FROM ({Q[name].replace(':queue', f':q{i}')})"
        for i in range(queues) for name in ("returning_in_queue_flow", "due_in_queue_flow"))
    return Q["claim_candidates"].replace("/*HEADS*/", heads)


#: The most due candidates one claim reads while gates push them back: a backlog of pushed
#: jobs is given its slots this many at a time (not a worker's free slots at a time, which
#: left due jobs queued behind it), and the write lock is still held for a bounded time.
SCAN_LIMIT = 1000


def claim(conn: sqlite3.Connection, params: dict[str, Any], queues: int,
          ) -> tuple[list[tuple[Any, ...]], int | None]:
    """Start up to ``params['limit']`` due jobs, gates checked, in the caller's write
    transaction. Returns the started rows (claim columns) and, when some job was pushed
    back or nothing was due, the instant (µs) the worker should claim again.

    When gates pushed candidates back and the claim has room left, it reads on (the pushed
    ones are no longer due), up to SCAN_LIMIT candidates."""
    limit: int = params["limit"]
    started: list[tuple[Any, ...]] = []
    wake: int | None = None
    scanned = 0
    while True:
        rows, step_wake, pushed = _claim_step(conn, {**params, "limit": limit - len(started)},
                                              queues, first=scanned == 0)
        started.extend(rows)
        if step_wake is not None:
            wake = step_wake if wake is None else min(wake, step_wake)
        scanned += pushed + len(rows)
        if not pushed or len(started) >= limit or scanned >= SCAN_LIMIT:
            return started, wake


def _claim_step(conn: sqlite3.Connection, params: dict[str, Any], queues: int, *,
                first: bool) -> tuple[list[tuple[Any, ...]], int | None, int]:
    """One read of candidates and their decision: (started rows, wake instant, how many a
    gate pushed back or cancelled)."""
    now_us: int = params["now"]
    limit: int = params["limit"]
    rows = conn.execute(candidates_sql(queues), params).fetchall()
    if not rows:
        if not first:
            return [], None, 0
        # Nothing due: say when something is. Jobs a gate pushed to a slot are not reserved
        # ahead of time, so without this the worker would find them at its next poll.
        nxt = conn.execute(Q["next_due_at"], params).fetchone()
        return [], None if nxt is None or nxt[0] is None else int(nxt[0]), 0
    gated = [Candidate(r[0], r[2], r[3], r[1], bool(r[4]), r[5], int(r[6])) for r in rows
             if r[1] is not None or r[4]]
    # (a job read ahead of its instant, and no longer gated, waits for its instant)
    ids: list[tuple[str, int]] = [(r[0], now_us) for r in rows
                                  if r[1] is None and not r[4] and r[6] <= now_us]
    wake: int | None = None
    p: Plan | None = None
    if gated:
        p = _plan(conn, gated, now_us, full_batch=len(rows) >= limit,
                  ahead_us=params.get("ahead_us", 0))
        ids.extend((i, p.start_at.get(i, now_us)) for i in p.admitted)
        wake = p.wake_at
        if p.blocked:
            conn.execute(Q["block_jobs"], {"now": now_us, "rows": json.dumps(p.blocked)})
        for job_id, reason in p.cancelled:
            conn.execute(Q["cancel_gated"], {"id": job_id, "reason": reason, "now": now_us})
    started = conn.execute(Q["start_jobs"], {
        "ids": json.dumps(ids), "owner": params["owner"], "now": now_us,
        "lease_until": params["lease_until"]}).fetchall() if ids else []
    if p is not None:
        for tenant_id, key, job_id in p.supersede:
            args = {"tenant_id": tenant_id, "key": key, "id": job_id, "now": now_us,
                    "reason": f"superseded by {job_id}"}
            conn.execute(Q["supersede_running"], args)
            conn.execute(Q["supersede_waiting"], args)
    if p is not None and p.pending:
        # The worker sleeps until the next job is due (a pushed one, most likely).
        nxt = conn.execute(Q["next_due_at"], params).fetchone()
        if nxt is not None and nxt[0] is not None:
            wake = nxt[0] if wake is None else min(wake, nxt[0])
    pushed = 0 if p is None else len(p.blocked) + len(p.cancelled)
    return started, wake, pushed


def _plan(conn: sqlite3.Connection, gated: Sequence[Candidate], now_us: int, *,
          full_batch: bool, ahead_us: int) -> Plan:
    overrides = {(r[0], r[1]): Limit(Rate(int(r[2]), float(r[3])), int(r[4]))
                 for r in conn.execute(Q["rate_overrides"],
                                       {"keys": json.dumps(limit_keys(gated))})}
    bkeys = bucket_keys(gated)
    buckets = {(r[0], r[1], r[2]): Bucket(int(r[3]), r[4])
               for r in conn.execute(Q["rate_buckets"], {"keys": json.dumps(bkeys)})
               } if bkeys else {}
    ckeys = concurrency_keys(gated)
    running = {(r[0], r[1]): int(r[2])
               for r in conn.execute(Q["running_counts"], {"keys": json.dumps(ckeys)})
               } if ckeys else {}
    p = plan_gates(gated, now_us, overrides=overrides, buckets=buckets, running=running,
                   full_batch=full_batch, ahead_us=ahead_us)
    changed = [[*k, b.tat, b.slot] for k, b in buckets.items() if b.changed]
    if changed:
        conn.execute(Q["save_buckets"], {"rows": json.dumps(changed)})
    return p


def wake_parked(conn: sqlite3.Connection, freed: Iterable[tuple[str, str | None]],
                now_us: int) -> None:
    """Jobs left running under these (tenant, concurrency key): per job that left, the next
    job parked behind its key is due now."""
    counts = Counter((t, k) for t, k in freed if k is not None)
    for (tenant_id, key), n in sorted(counts.items()):
        conn.execute(Q["wake_parked"], {"tenant_id": tenant_id, "key": key, "n": n,
                                        "now": now_us})


def wake_parked_of(conn: sqlite3.Connection, job_ids: Sequence[str], now_us: int) -> None:
    """``wake_parked`` for jobs known by id only (a rescue, a release)."""
    if job_ids:
        wake_parked(conn, conn.execute(Q["concurrency_keys_of"],
                                       {"ids": json.dumps(list(job_ids))}).fetchall(), now_us)
