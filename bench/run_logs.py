"""The cost of keeping each attempt's log lines: drain N jobs whose handler logs --lines INFO
lines, with the worker's log capture off and on, the two runs interleaved in one session.
Prints one JSON line: processed jobs/s for each (median of --runs) and the store's raw commit
rate on this machine, for scale."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from _common import fresh_database, median, parser
from hora import Hora, JobRequest
from throughput import commit_rate

log = logging.getLogger("bench.run_logs")


def one_run(url: str, jobs: int, lines: int, capture: bool) -> float:
    app = Hora(url)

    @app.task(name="chatty")
    async def chatty(n: int) -> None:
        for i in range(lines):
            log.info("job %d line %d", n, i)

    for start in range(0, jobs, 1000):
        app.enqueue_many([JobRequest(task="chatty", payload={"n": start + i})
                          for i in range(min(1000, jobs - start))])
    worker = app.worker(capture_logs=capture)
    t0 = time.perf_counter()
    asyncio.run(worker.run(until_idle=True))
    rate = jobs / (time.perf_counter() - t0)
    assert worker.stats["succeeded"] == jobs, worker.stats
    app.close()
    return rate


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--jobs", type=int, default=5_000)
    p.add_argument("--lines", type=int, default=1, help="INFO lines each handler logs")
    args = p.parse_args()
    log.setLevel(logging.INFO)  # records are created (and captured) but printed nowhere
    log.propagate = False
    off: list[float] = []
    on: list[float] = []
    for run in range(args.runs):
        # Alternate which goes first, so a warm-up or drift favours neither.
        order = ((False, off), (True, on)) if run % 2 == 0 else ((True, on), (False, off))
        for capture, out in order:
            with fresh_database(args.store, args.postgres_url) as url:
                out.append(one_run(url, args.jobs, args.lines, capture))
    with fresh_database(args.store, args.postgres_url) as url:
        commits = commit_rate(url)
    print(json.dumps({
        "bench": "run_logs", "store": args.store, "jobs": args.jobs, "lines": args.lines,
        "runs": args.runs,
        "processed_jobs_per_s_capture_off": median(off),
        "processed_jobs_per_s_capture_on": median(on),
        "store_commits_per_s": round(commits, 1),
        "all_runs": {"off": [round(r, 1) for r in off], "on": [round(r, 1) for r in on]},
    }))


if __name__ == "__main__":
    main()
