"""Batching: N jobs processed one by one, then N jobs of a batched task (batches of 100),
by the default worker, on one store. Each handler call costs ``--call-ms`` (default 20 ms,
an awaited sleep: the round trip to a provider, what batching saves); ``--call-ms 0``
measures hora's own overhead. Prints one JSON line: processed jobs/s of each, their ratio
(target >= 3), and the store's raw commit rate on this machine, for scale.

``run(store_url)`` is what ``bench/flow.py`` imports; ``python bench/flow_batching.py
--store postgres`` runs it alone on a fresh database."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from _common import fresh_database, median, parser
from hora import Batch, Hora, JobRequest
from throughput import commit_rate

CHUNK = 1000  # jobs per enqueue_many call


def _enqueue(app: Hora, task: str, jobs: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, jobs, CHUNK):
        app.enqueue_many([JobRequest(task=task, payload={"n": start + i, "provider": "ses"})
                          for i in range(min(CHUNK, jobs - start))])
    return time.perf_counter() - t0


def _drain(app: Hora, expected: int) -> float:
    worker = app.worker()
    t0 = time.perf_counter()
    asyncio.run(worker.run(until_idle=True))
    seconds = time.perf_counter() - t0
    assert worker.stats["succeeded"] == expected, worker.stats
    return seconds


def run(store_url: str, *, jobs: int = 100_000, batch_size: int = 100,
        call_ms: float = 20.0) -> dict[str, Any]:
    """Unbatched, then batched, on ``store_url`` (the batched phase runs on the bigger
    table: the ratio errs low). Each handler call awaits ``call_ms``."""
    app = Hora(store_url)
    batches: list[int] = []
    call_s = call_ms / 1000

    @app.task(name="bench.single")
    async def single(n: int, provider: str) -> None:
        if call_s:
            await asyncio.sleep(call_s)

    @app.task(name="bench.batched",
              batch=Batch(max_size=batch_size, max_wait=timedelta(seconds=1), key="provider"))
    async def batched(items: list[dict[str, Any]]) -> None:
        batches.append(len(items))
        if call_s:
            await asyncio.sleep(call_s)

    try:
        enqueue_single = _enqueue(app, "bench.single", jobs)
        single_s = _drain(app, jobs)
        enqueue_batched = _enqueue(app, "bench.batched", jobs)
        batched_s = _drain(app, jobs)
        assert sum(batches) == jobs, (sum(batches), jobs)
        assert app.count_jobs() == {"succeeded": 2 * jobs}
    finally:
        app.close()
    unbatched_rate = jobs / single_s
    batched_rate = jobs / batched_s
    return {
        "jobs": jobs, "batch_size": batch_size, "call_ms": call_ms,
        "unbatched_jobs_per_s": round(unbatched_rate, 1),
        "batched_jobs_per_s": round(batched_rate, 1),
        "speedup": round(batched_rate / unbatched_rate, 2),
        "batches": len(batches), "mean_batch": round(sum(batches) / len(batches), 1),
        "enqueue_jobs_per_s": round(2 * jobs / (enqueue_single + enqueue_batched), 1),
    }


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--call-ms", type=float, default=20.0,
                   help="what one handler call costs (an awaited sleep), batched or not")
    p.set_defaults(runs=1)
    args = p.parse_args()
    runs = []
    for _ in range(args.runs):
        with fresh_database(args.store, args.postgres_url) as url:
            runs.append(run(url, jobs=args.jobs, batch_size=args.batch_size,
                            call_ms=args.call_ms))
    with fresh_database(args.store, args.postgres_url) as url:
        commits = commit_rate(url)
    print(json.dumps({
        "bench": "flow_batching", "store": args.store, "jobs": args.jobs,
        "batch_size": args.batch_size, "call_ms": args.call_ms, "runs": args.runs,
        "unbatched_jobs_per_s": median([r["unbatched_jobs_per_s"] for r in runs]),
        "batched_jobs_per_s": median([r["batched_jobs_per_s"] for r in runs]),
        "speedup": median([r["speedup"] for r in runs]),
        "store_commits_per_s": round(commits, 1),
        "all_runs": runs,
    }))


if __name__ == "__main__":
    main()
