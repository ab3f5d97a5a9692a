"""2,000 jobs, each due at a distinct instant spread over 20 s; the default worker runs them.
Prints one JSON line: p50/p99/max of (start - due) in ms (median of --runs) and how many
started early (must be 0)."""

from __future__ import annotations

import asyncio
import json
import statistics
from datetime import timedelta

from _common import fresh_database, median, parser
from hora import Hora, JobRequest, current_job


def one_run(url: str, jobs: int, spread: float) -> dict[str, float]:
    app = Hora(url)
    lateness_ms: list[float] = []

    @app.task(name="stamp")
    async def stamp() -> None:
        lateness_ms.append((app.clock.now() - current_job().due_at).total_seconds() * 1000)

    start = app.clock.now() + timedelta(seconds=2)
    step = spread / jobs
    app.enqueue_many([JobRequest(task="stamp", at=start + timedelta(seconds=i * step))
                      for i in range(jobs)])
    asyncio.run(app.worker().run(until_idle=True))
    app.close()
    assert len(lateness_ms) == jobs, (len(lateness_ms), jobs)
    q = statistics.quantiles(lateness_ms, n=100)
    return {"p50": statistics.median(lateness_ms), "p99": q[98], "max": max(lateness_ms),
            "early": sum(1 for x in lateness_ms if x < 0)}


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--spread", type=float, default=20.0, help="seconds")
    args = p.parse_args()
    runs = []
    for _ in range(args.runs):
        with fresh_database(args.store, args.postgres_url) as url:
            runs.append(one_run(url, args.jobs, args.spread))
    print(json.dumps({
        "bench": "lateness", "store": args.store, "jobs": args.jobs, "runs": args.runs,
        "p50_ms": median([r["p50"] for r in runs]), "p99_ms": median([r["p99"] for r in runs]),
        "max_ms": median([r["max"] for r in runs]),
        "started_early": max(int(r["early"]) for r in runs),
        "all_runs": [{k: round(v, 2) for k, v in r.items()} for r in runs],
    }))


if __name__ == "__main__":
    main()
