"""Prune N old finished jobs (default 1,000,000, each with one attempt and two events) while a
worker processes new ones on the same store, in the same process (as ``hora serve`` runs the
scheduler role's pruner beside its worker).

The finished jobs are bulk-inserted in SQL (a recursive CTE on SQLite, generate_series on
PostgreSQL), 30 days old. Then, per run, the worker does the same work twice, without and
during the prune: drains a backlog of --work no-op jobs (processed jobs/s), then runs
--lateness-jobs jobs due at distinct instants over --spread seconds (p99 start lateness);
twice alone, then again and again for as long as the prune runs (medians of the phases).
The prune is ``hora.retention.Retention`` as the scheduler role runs it (batches of
--batch-size, resting so it holds the store at most --duty of the time: 0.1 by default).

Prints one JSON line: rows pruned/s, the worker's jobs/s and p99 lateness without and during
the prune with their ratios (target: throughput >= 80 %, p99 lateness <= 2x), how much of
the measured work the prune overlapped, and the store's raw commit rate (medians of --runs).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from _common import fresh_database, median, parser
from hora import Hora, JobRequest, current_job
from hora.retention import Retention
from throughput import commit_rate

SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM n WHERE i < :stop - 1)
INSERT INTO {table}
"""


def fill_sqlite(url: str, jobs: int, finished: datetime) -> None:
    import sqlite3

    from hora.store.common import to_us

    conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
    at = to_us(finished)
    chunk = 200_000
    for start in range(0, jobs, chunk):
        p = {"start": start, "stop": min(jobs, start + chunk), "at": at}
        conn.execute("BEGIN")
        conn.execute(SQLITE_FILL.format(table="hora_jobs") + """
            (id, tenant_id, task, payload, fingerprint, queue, priority, state, due_at,
             attempt, max_attempts, result, created_at, updated_at, started_at, finished_at)
            SELECT printf('0bench-%012d', i), 'default', 'old', '{}', 'f', 'default', 0,
                   'succeeded', :at, 1, 3, 'null', :at, :at, :at, :at + i FROM n""", p)
        conn.execute(SQLITE_FILL.format(table="hora_job_attempts") + """
            (job_id, attempt, worker_id, started_at, ended_at, outcome)
            SELECT printf('0bench-%012d', i), 1, 'w', :at, :at, 'succeeded' FROM n""", p)
        conn.execute(SQLITE_FILL.format(table="hora_job_events") + """
            (job_id, at, from_state, to_state, attempt)
            SELECT printf('0bench-%012d', i), :at, 'scheduled', 'running', 1 FROM n
            UNION ALL
            SELECT printf('0bench-%012d', i), :at, 'running', 'succeeded', 1 FROM n""", p)
        conn.execute("COMMIT")
    conn.close()


def fill_postgres(url: str, jobs: int, finished: datetime) -> None:
    import psycopg

    chunk = 200_000
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, jobs, chunk):
            p = {"start": start, "stop": min(jobs, start + chunk) - 1, "at": finished}
            with conn.transaction():
                conn.execute("""
                    INSERT INTO hora_jobs (id, tenant_id, task, payload, fingerprint, queue,
                        priority, state, due_at, attempt, max_attempts, result, created_at,
                        updated_at, started_at, finished_at)
                    SELECT '0bench-' || lpad(i::text, 12, '0'), 'default', 'old', '{}', 'f',
                           'default', 0, 'succeeded', %(at)s, 1, 3, 'null', %(at)s, %(at)s,
                           %(at)s, %(at)s + i * interval '1 microsecond'
                    FROM generate_series(%(start)s, %(stop)s) AS i""", p)
                conn.execute("""
                    INSERT INTO hora_job_attempts (job_id, attempt, worker_id, started_at,
                                                   ended_at, outcome)
                    SELECT '0bench-' || lpad(i::text, 12, '0'), 1, 'w', %(at)s, %(at)s,
                           'succeeded'
                    FROM generate_series(%(start)s, %(stop)s) AS i""", p)
                conn.execute("""
                    INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt)
                    SELECT '0bench-' || lpad(i::text, 12, '0'), %(at)s, s.f, s.t, 1
                    FROM generate_series(%(start)s, %(stop)s) AS i,
                         (VALUES ('scheduled', 'running'), ('running', 'succeeded'))
                             AS s(f, t)""", p)
        conn.execute("VACUUM ANALYZE hora_jobs")
        conn.execute("VACUUM ANALYZE hora_job_events")
        conn.execute("VACUUM ANALYZE hora_job_attempts")


def work(app: Hora, lateness_ms: list[float], backlog: int, lateness_jobs: int,
         spread: float) -> dict[str, float]:
    """The worker's share: drain a backlog (jobs/s), then jobs due over ``spread`` seconds
    (their start lateness, appended to ``lateness_ms`` by the stamp task)."""
    lateness_ms.clear()

    for start in range(0, backlog, 1000):
        app.enqueue_many([JobRequest(task="noop") for _ in range(min(1000, backlog - start))])
    worker = app.worker()
    t0 = time.perf_counter()
    asyncio.run(worker.run(until_idle=True))
    drained = backlog / (time.perf_counter() - t0)
    assert worker.stats["succeeded"] == backlog, worker.stats
    first = app.clock.now() + timedelta(seconds=1)
    step = spread / lateness_jobs
    app.enqueue_many([JobRequest(task="stamp", at=first + timedelta(seconds=i * step))
                      for i in range(lateness_jobs)])
    asyncio.run(app.worker().run(until_idle=True))
    assert len(lateness_ms) == lateness_jobs
    q = statistics.quantiles(lateness_ms, n=100)
    return {"jobs_per_s": drained, "p50_ms": statistics.median(lateness_ms), "p99_ms": q[98]}


def one_run(url: str, args: Any) -> dict[str, float]:
    app = Hora(url)
    app.migrate()

    lateness_ms: list[float] = []

    @app.task(name="noop")
    async def noop() -> None:
        return None

    @app.task(name="stamp")
    async def stamp() -> None:
        lateness_ms.append((app.clock.now() - current_job().due_at).total_seconds() * 1000)

    finished = app.clock.now() - timedelta(days=30)
    t0 = time.perf_counter()
    (fill_sqlite if url.startswith("sqlite") else fill_postgres)(url, args.jobs, finished)
    filled = time.perf_counter() - t0

    alone = [work(app, lateness_ms, args.work, args.lateness_jobs, args.spread)
             for _ in range(2)]

    retention = Retention(app.store, app.clock, batch_size=args.batch_size, duty=args.duty)
    pruned: dict[str, float] = {}

    def prune() -> None:
        report = retention.prune(["jobs"])
        pruned.update(rows=report.total, seconds=report.seconds, ended=time.perf_counter())

    pruner = threading.Thread(target=prune)
    t0 = time.perf_counter()
    pruner.start()
    during = []  # the same work, again and again, for as long as the prune runs
    while pruner.is_alive() or not during:
        phase = work(app, lateness_ms, args.work, args.lateness_jobs, args.spread)
        if pruner.is_alive() or not during:
            during.append(phase)
    worked = time.perf_counter() - t0
    pruner.join()
    app.close()
    assert pruned["rows"] == args.jobs, pruned
    overlap = min(1.0, (pruned["ended"] - t0) / worked)

    def med(phases: list[dict[str, float]], key: str) -> float:
        return statistics.median(p[key] for p in phases)

    return {"fill_rows_per_s": args.jobs / filled,
            "pruned_rows_per_s": pruned["rows"] / pruned["seconds"],
            "prune_seconds": pruned["seconds"], "phases_during": len(during),
            "alone_jobs_per_s": med(alone, "jobs_per_s"),
            "during_jobs_per_s": med(during, "jobs_per_s"),
            "alone_p99_ms": med(alone, "p99_ms"), "during_p99_ms": med(during, "p99_ms"),
            "alone_p50_ms": med(alone, "p50_ms"), "during_p50_ms": med(during, "p50_ms"),
            "prune_overlap": overlap}


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--jobs", type=int, default=1_000_000, help="old finished jobs to prune")
    p.add_argument("--work", type=int, default=20_000, help="backlog the worker drains")
    p.add_argument("--lateness-jobs", type=int, default=1000)
    p.add_argument("--spread", type=float, default=10.0, help="seconds")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--duty", type=float, default=0.1)
    p.set_defaults(runs=1)
    args = p.parse_args()
    runs = []
    for _ in range(args.runs):
        with fresh_database(args.store, args.postgres_url) as url:
            runs.append(one_run(url, args))
    with fresh_database(args.store, args.postgres_url) as url:
        commits = commit_rate(url)

    def med(key: str) -> float:
        return median([r[key] for r in runs])

    print(json.dumps({
        "bench": "retention", "store": args.store, "jobs": args.jobs, "work": args.work,
        "lateness_jobs": args.lateness_jobs, "batch_size": args.batch_size,
        "duty": args.duty, "runs": args.runs,
        "pruned_rows_per_s": med("pruned_rows_per_s"),
        "prune_seconds": med("prune_seconds"),
        "worker_jobs_per_s_alone": med("alone_jobs_per_s"),
        "worker_jobs_per_s_during_prune": med("during_jobs_per_s"),
        "throughput_ratio": round(med("during_jobs_per_s") / med("alone_jobs_per_s"), 2),
        "p99_lateness_ms_alone": med("alone_p99_ms"),
        "p99_lateness_ms_during_prune": med("during_p99_ms"),
        "p99_lateness_ratio": round(med("during_p99_ms") / max(med("alone_p99_ms"), 0.1), 2),
        "prune_overlap_of_work": round(statistics.median(r["prune_overlap"] for r in runs), 2),
        "fill_rows_per_s": med("fill_rows_per_s"),
        "store_commits_per_s": round(commits, 1),
        "all_runs": [{k: round(v, 2) for k, v in r.items()} for r in runs],
    }))


if __name__ == "__main__":
    main()
