"""Durable workflows: the per-step overhead and workflows/s, real clock, real worker.

* per step: a 10-step no-op workflow against a 0-step one, each started and run to
  completion by a fresh ``worker.run(until_idle=True)``, one at a time, alternately;
  ms/step = (t10 - t0) / 10 for each pair, p50 over the pairs; for async no-op steps and for
  sync ones (which hop to a thread). Also the store's bare journal write
  (``record_history`` of one entry, the write each step adds), p50.
* throughput: start 1,000 five-step no-op workflows one by one, then one default worker
  runs them all; workflows/s of the drain, and of the whole, first start to last finish.

Prints one JSON line: medians of --runs, every run, and the targets (<= 1 ms/step on SQLite,
<= 2 ms/step on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import timedelta
from typing import Any

from _common import fresh_database, median, parser
from hora import Hora
from hora.models import HistoryEntry
from hora.workflows import WorkflowContext

TARGET_MS_PER_STEP = {"sqlite": 1.0, "postgres": 2.0}
WARMUP = 5


def register(app: Hora) -> None:
    async def anoop() -> None:
        return None

    def noop() -> None:
        return None

    @app.workflow(name="zero")
    async def zero(ctx: WorkflowContext) -> int:
        return 0

    @app.workflow(name="ten_async")
    async def ten_async(ctx: WorkflowContext) -> int:
        for _ in range(10):
            await ctx.step(anoop)
        return 10

    @app.workflow(name="ten_sync")
    async def ten_sync(ctx: WorkflowContext) -> int:
        for _ in range(10):
            await ctx.step(noop)
        return 10

    @app.workflow(name="five")
    async def five(ctx: WorkflowContext) -> int:
        for _ in range(5):
            await ctx.step(anoop)
        return 5


async def run_one(app: Hora, name: str, n: int) -> float:
    """Seconds from start_workflow to the worker returning with the workflow completed."""
    t0 = time.perf_counter()
    wf = app.start_workflow(name, workflow_id=f"{name}-{n}")
    await app.worker(schedules=False).run(until_idle=True)
    elapsed = time.perf_counter() - t0
    done = app.get_workflow(wf.id)
    assert done.state == "completed", (done.state, done.error)
    return elapsed


async def per_step(app: Hora, pairs: int) -> dict[str, float]:
    """p50 ms/step of async and sync no-op steps, from alternating (10-step, 0-step) runs."""
    for i in range(WARMUP):
        for name in ("zero", "ten_async", "ten_sync"):
            await run_one(app, name, -1 - i)
    async_ms: list[float] = []
    sync_ms: list[float] = []
    zero_ms: list[float] = []
    for i in range(pairs):
        t0 = await run_one(app, "zero", i)
        ta = await run_one(app, "ten_async", i)
        ts = await run_one(app, "ten_sync", i)
        zero_ms.append(t0 * 1000)
        async_ms.append((ta - t0) * 1000 / 10)
        sync_ms.append((ts - t0) * 1000 / 10)
    return {"ms_per_step_async_p50": statistics.median(async_ms),
            "ms_per_step_sync_p50": statistics.median(sync_ms),
            "ms_zero_step_workflow_p50": statistics.median(zero_ms)}


def journal_write(app: Hora, writes: int) -> float:
    """p50 ms of ``record_history`` with one done step entry, under a held run lease."""
    wf = app.start_workflow("zero", workflow_id="journal-probe")
    now = app.clock.now()
    owner = "bench:journal"
    held = app.store.acquire_workflow(wf.id, tenant_id=wf.tenant_id, owner=owner, now=now,
                                      until=now + timedelta(hours=1))
    assert held is not None
    times: list[float] = []
    for seq in range(1, writes + WARMUP + 1):
        at = app.clock.now()
        entry = HistoryEntry(tenant_id=wf.tenant_id, workflow_id=wf.id, seq=seq, kind="step",
                             name="noop", input=None, output=None, error=None, status="done",
                             attempts=1, started_at=at, finished_at=at, deadline=None)
        t0 = time.perf_counter()
        app.store.record_history([entry], owner=owner)
        if seq > WARMUP:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def workflow_states(app: Hora, name: str) -> dict[str, int]:
    states: dict[str, int] = {}
    cursor = None
    while True:
        page = app.list_workflows(name=name, limit=500, cursor=cursor)
        for w in page.items:
            states[w.state] = states.get(w.state, 0) + 1
        cursor = page.next_cursor
        if cursor is None:
            return states


async def throughput(app: Hora, count: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for i in range(count):
        app.start_workflow("five", workflow_id=f"five-{i}")
    started = time.perf_counter()
    worker = app.worker(schedules=False)
    await worker.run(until_idle=True)
    finished = time.perf_counter()
    states = workflow_states(app, "five")
    assert states == {"completed": count}, states
    return {"starts_per_s": count / (started - t0),
            "drain_workflows_per_s": count / (finished - started),
            "end_to_end_workflows_per_s": count / (finished - t0)}


def one_run(url: str, pairs: int, writes: int, count: int) -> dict[str, float]:
    app = Hora(url)
    register(app)
    try:
        out = asyncio.run(per_step(app, pairs))
        out.update(asyncio.run(throughput(app, count)))
        out["ms_journal_write_p50"] = journal_write(app, writes)  # last: it holds a lease
    finally:
        app.close()
    return out


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--pairs", type=int, default=100,
                   help="(0-step, 10-step async, 10-step sync) runs timed for the per-step cost")
    p.add_argument("--writes", type=int, default=500, help="bare journal writes timed")
    p.add_argument("--workflows", type=int, default=1000,
                   help="five-step workflows started, then drained, for workflows/s")
    p.add_argument("--quick", action="store_true", help="20 pairs, 100 writes, 200 workflows")
    args = p.parse_args()
    if args.quick:
        args.pairs, args.writes, args.workflows = 20, 100, 200
    runs: list[dict[str, float]] = []
    for _ in range(args.runs):
        with fresh_database(args.store, args.postgres_url) as url:
            runs.append(one_run(url, args.pairs, args.writes, args.workflows))

    def med(key: str, digits: int = 3) -> float:
        return round(statistics.median(r[key] for r in runs), digits)

    target = TARGET_MS_PER_STEP[args.store]
    result: dict[str, Any] = {
        "bench": "workflows", "store": args.store, "runs": args.runs, "pairs": args.pairs,
        "workflows": args.workflows,
        "ms_per_step_async_p50": med("ms_per_step_async_p50"),
        "ms_per_step_sync_p50": med("ms_per_step_sync_p50"),
        "ms_zero_step_workflow_p50": med("ms_zero_step_workflow_p50"),
        "ms_journal_write_p50": med("ms_journal_write_p50"),
        "target_ms_per_step": target,
        "meets_target": max(med("ms_per_step_async_p50"), med("ms_per_step_sync_p50"))
        <= target,
        "starts_per_s": median([r["starts_per_s"] for r in runs]),
        "drain_workflows_per_s": median([r["drain_workflows_per_s"] for r in runs]),
        "end_to_end_workflows_per_s": median([r["end_to_end_workflows_per_s"] for r in runs]),
        "all_runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
