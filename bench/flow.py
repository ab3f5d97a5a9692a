"""Flow control: how exactly and how cheaply shared rate limits hold (docs/flow.md).

Sections (``--section``, default all), one JSON line each, with the store's raw commit rate
for scale:

* ``accuracy``: ``--workers`` asyncio workers (one process, each its own claims), one limit
  of ``--rate`` per second, ``--jobs`` jobs: achieved start rate, and the most starts in
  any 1 s window against the documented bound (ceil(1 s / interval) + burst - 1).
* ``fairness``: ``--keys`` keys at ``--key-rate`` each, ``--per-key`` jobs per key: the
  most starts of one key in any 1 s window, and the p99 of each start's lateness beyond
  what its key's limit allows (the later of its due time and the key's previous start
  plus one interval; a key's first job from when the workers began).
* ``overhead``: processed jobs/s with a limit that never binds vs without a limit.
* ``batching``: ``bench/flow_batching.py``'s ``run(store_url)``, when that file exists.

Starts are the attempts' ``started_at`` (the claim's instant, the one the limit counted).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from _common import fresh_database, parser
from hora import Hora, JobRequest, RateLimit
from hora.flow import parse_rate, window_bound
from throughput import commit_rate

US = 1_000_000


def started_at(url: str) -> list[tuple[str, float]]:
    """(job payload key, start instant in seconds) of every first attempt."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///"):])
        rows = conn.execute(
            "SELECT coalesce(json_extract(j.payload, '$.key'), ''), a.started_at "
            "FROM hora_job_attempts a JOIN hora_jobs j ON j.id = a.job_id "
            "WHERE a.attempt = 1").fetchall()
        conn.close()
        return [(str(k), int(t) / US) for k, t in rows]
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT coalesce(j.payload ->> 'key', ''), a.started_at "
            "FROM hora_job_attempts a JOIN hora_jobs j ON j.id = a.job_id "
            "WHERE a.attempt = 1").fetchall()
    return [(str(k), t.timestamp()) for k, t in rows]


def max_window(starts: list[float], window: float = 1.0) -> int:
    """The most starts in any half-open window [t, t + window)."""
    s = sorted(starts)
    return max((bisect.bisect_left(s, t + window) - i for i, t in enumerate(s)), default=0)


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, math.ceil(0.99 * len(s)) - 1)]


#: Handlers count their calls here: the drain loop watches this number instead of counting
#: the store's jobs, a query that took a tenth of the CPU the workers under test need.
calls = [0]


async def drain(app: Hora, workers: int, total: int, **options: Any) -> float:
    """Run ``workers`` workers until ``calls`` reaches ``total`` (every job's handler has
    run once), then until the store has every job succeeded; wall seconds."""
    calls[0] = 0
    ws = [app.worker(**options) for _ in range(workers)]
    t0 = time.perf_counter()
    runs = [asyncio.ensure_future(w.run()) for w in ws]
    while True:
        if calls[0] >= total or any(r.done() for r in runs):
            break
        await asyncio.sleep(0.01)
    while not any(r.done() for r in runs):
        counts = await asyncio.to_thread(app.count_jobs)
        if counts.get("succeeded", 0) >= total:
            break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    for w in ws:
        w.stop()
    await asyncio.gather(*runs)
    return elapsed


def enqueue(app: Hora, requests: list[JobRequest]) -> None:
    for i in range(0, len(requests), 1000):
        app.enqueue_many(requests[i:i + 1000])


def accuracy(url: str, args: Any) -> dict[str, Any]:
    app = Hora(url)
    limit = RateLimit(args.rate, name="accuracy", burst=args.burst)

    @app.task(name="acc", rate_limit=limit)
    async def acc(n: int) -> None:
        calls[0] += 1

    enqueue(app, [acc.request(n=n) for n in range(args.jobs)])
    asyncio.run(drain(app, args.workers, args.jobs))
    app.close()
    starts = [t for _, t in started_at(url)]
    rate = parse_rate(args.rate)
    span = max(starts) - min(starts)
    achieved = (len(starts) - 1) / span if span > 0 else float("inf")
    return {"section": "accuracy", "jobs": len(starts), "workers": args.workers,
            "limit": str(rate), "burst": args.burst,
            "achieved_per_s": round(achieved, 1),
            "achieved_of_limit": round(achieved / rate.per_second, 3),
            "max_starts_in_1s": max_window(starts),
            "bound_1s": window_bound(rate, args.burst, 1.0)}


def fairness(url: str, args: Any) -> dict[str, Any]:
    app = Hora(url)
    rate = parse_rate(args.key_rate)
    called: list[tuple[str, float]] = []

    @app.task(name="fair", rate_limit=RateLimit(rate, key="key"))
    async def fair(key: str, n: int) -> None:
        calls[0] += 1
        called.append((key, time.time()))

    created = datetime.now(UTC).timestamp()
    enqueue(app, [fair.request(key=f"k{k}", n=n) for n in range(args.per_key)
                  for k in range(args.keys)])
    total = args.keys * args.per_key
    asyncio.run(drain(app, args.workers, total, concurrency=args.worker_concurrency,
                      batch_size=args.worker_concurrency, gate_ahead=args.gate_ahead))
    app.close()
    interval = rate.interval_us / US

    def lateness(instants: list[tuple[str, float]]) -> tuple[int, list[float]]:
        per_key: dict[str, list[float]] = defaultdict(list)
        for key, t in instants:
            per_key[key].append(t)
        late: list[float] = []
        worst = 0
        # A key's first job may start once the workers are up (not the limit's delay)
        first = max(created, min(min(v) for v in per_key.values()))
        for starts in per_key.values():
            starts.sort()
            worst = max(worst, max_window(starts))
            allowed = first
            for t in starts:
                late.append(max(0.0, t - allowed))
                allowed = t + interval
        late.sort()
        return worst, late

    # The recorded starts (what the limit counts) and the handlers' calls (which a worker
    # may make a moment after the recorded instant, never before).
    worst, late = lateness(started_at(url))
    worst_called, late_called = lateness(called)
    return {"section": "fairness", "keys": args.keys, "jobs": total,
            "workers": args.workers, "worker_concurrency": args.worker_concurrency,
            "gate_ahead_s": args.gate_ahead, "limit_per_key": str(rate),
            "max_per_key_starts_in_1s": worst, "bound_1s": window_bound(rate, 1, 1.0),
            "p99_wait_beyond_limit_ms": round(p99(late) * 1000, 1),
            "p50_wait_beyond_limit_ms": round(late[len(late) // 2] * 1000, 1),
            "max_per_key_calls_in_1s": worst_called,
            "p99_call_wait_beyond_limit_ms": round(p99(late_called) * 1000, 1),
            "p50_call_wait_beyond_limit_ms": round(late_called[len(late_called) // 2] * 1000,
                                                   1)}


def overhead(url_plain: str, url_limited: str, args: Any) -> dict[str, Any]:
    out: dict[str, float] = {}
    for label, url, rl in (("unlimited", url_plain, None),
                           ("non_binding_limit", url_limited,
                            RateLimit("1000000/s", name="loose", burst=100_000))):
        app = Hora(url)

        @app.task(name="noop", rate_limit=rl)
        async def noop(n: int) -> None:
            calls[0] += 1

        enqueue(app, [noop.request(n=n) for n in range(args.overhead_jobs)])
        elapsed = asyncio.run(drain(app, 1, args.overhead_jobs))
        app.close()
        out[label] = args.overhead_jobs / elapsed
    return {"section": "overhead", "jobs": args.overhead_jobs,
            "unlimited_jobs_per_s": round(out["unlimited"], 1),
            "non_binding_limit_jobs_per_s": round(out["non_binding_limit"], 1),
            "ratio": round(out["non_binding_limit"] / out["unlimited"], 3)}


def batching(url: str) -> dict[str, Any]:
    try:
        import flow_batching  # type: ignore[import-not-found]
    except ImportError:
        return {"section": "batching", "skipped": "bench/flow_batching.py is not here"}
    result: dict[str, Any] = flow_batching.run(url)
    return {"section": "batching", **result}


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--section", action="append",
                   choices=["accuracy", "fairness", "overhead", "batching"])
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--rate", default="500/s")
    p.add_argument("--burst", type=int, default=50,
                   help="the accuracy limit's burst (0.1 s of 500/s: see docs/flow.md)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--worker-concurrency", type=int, default=100,
                   help="each worker's concurrency and claim size (the fairness section "
                        "starts a thousand keys' jobs at once every 1/rate)")
    p.add_argument("--keys", type=int, default=1_000)
    p.add_argument("--per-key", type=int, default=50)
    p.add_argument("--gate-ahead", type=float, default=0.25,
                   help="the workers' gate_ahead (s): how far ahead a claim starts a job "
                        "its rate gates admit a little later")
    p.add_argument("--key-rate", default="5/s")
    p.add_argument("--overhead-jobs", type=int, default=20_000)
    args = p.parse_args()
    sections = args.section or ["accuracy", "fairness", "overhead", "batching"]
    with fresh_database(args.store, args.postgres_url) as url:
        commits = round(commit_rate(url), 1)
    for section in sections:
        with fresh_database(args.store, args.postgres_url) as url:
            if section == "accuracy":
                result = accuracy(url, args)
            elif section == "fairness":
                result = fairness(url, args)
            elif section == "batching":
                result = batching(url)
            else:
                with fresh_database(args.store, args.postgres_url) as other:
                    result = overhead(url, other, args)
        print(json.dumps({"bench": "flow", "store": args.store,
                          "store_commits_per_s": commits, **result}), flush=True)


if __name__ == "__main__":
    main()
