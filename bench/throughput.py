"""Enqueue N no-op jobs one by one and with enqueue_many, then drain them with the default
worker. Prints one JSON line: jobs/s for each phase (median of --runs) and the store's raw
commit rate on this machine, for scale."""

from __future__ import annotations

import asyncio
import json
import time

from _common import fresh_database, median, parser
from hora import Hora, JobRequest


def commit_rate(url: str, n: int = 500) -> float:
    """Transactions/s of one tiny write each: the ceiling for one-by-one enqueue."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")  # as the store runs it
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (x INTEGER)")
        t0 = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_probe VALUES (?)", (i,))
            conn.execute("COMMIT")
        rate = n / (time.perf_counter() - t0)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (x int)")
            t0 = time.perf_counter()
            for i in range(n):
                conn.execute("INSERT INTO bench_probe VALUES (%s)", (i,))
            rate = n / (time.perf_counter() - t0)
    return rate


def one_run(url: str, jobs: int, one_by_one: int) -> dict[str, float]:
    app = Hora(url)

    @app.task(name="noop")
    async def noop() -> None:
        return None

    t0 = time.perf_counter()
    for _ in range(one_by_one):
        noop.enqueue()
    single = one_by_one / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for start in range(0, jobs, 1000):
        app.enqueue_many([JobRequest(task="noop") for _ in range(min(1000, jobs - start))])
    many = jobs / (time.perf_counter() - t0)

    total = jobs + one_by_one
    worker = app.worker()
    t0 = time.perf_counter()
    asyncio.run(worker.run(until_idle=True))
    drained = total / (time.perf_counter() - t0)
    assert worker.stats["succeeded"] == total, worker.stats
    assert app.count_jobs() == {"succeeded": total}
    app.close()
    return {"enqueue_one_by_one": single, "enqueue_many": many, "processed": drained}


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--one-by-one", type=int, default=2_000,
                   help="jobs enqueued one call each (before the enqueue_many batch)")
    args = p.parse_args()
    runs = []
    for _ in range(args.runs):
        with fresh_database(args.store, args.postgres_url) as url:
            runs.append(one_run(url, args.jobs, args.one_by_one))
    with fresh_database(args.store, args.postgres_url) as url:
        commits = commit_rate(url)
    print(json.dumps({
        "bench": "throughput", "store": args.store, "jobs": args.jobs, "runs": args.runs,
        "enqueue_one_by_one_jobs_per_s": median([r["enqueue_one_by_one"] for r in runs]),
        "enqueue_many_jobs_per_s": median([r["enqueue_many"] for r in runs]),
        "processed_jobs_per_s": median([r["processed"] for r in runs]),
        "store_commits_per_s": round(commits, 1),
        "all_runs": [{k: round(v, 1) for k, v in r.items()} for r in runs],
    }))


if __name__ == "__main__":
    main()
