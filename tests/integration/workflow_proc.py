"""A workflow worker in its own process, for the workflow crash test.

    python -m tests.integration.workflow_proc --database-url URL --worker-id ID
        [--lease S] [--heartbeat S] [--rescue-interval S] [--lookahead S] [--poll-interval S]

It runs the ``crash.five_steps`` workflow (five steps, two durable timers, one signal) and
prints ``ready`` on stdout once it is working. Each step leaves two marks in the same
database, outside hora's tables:

* ``step_runs(key, workflow_id, step, worker_id, started)``: a row every time a step body
  starts,
  so a test can count the steps that ran more than once (at-least-once);
* ``side_effects(key PRIMARY KEY, ...)``: the step's effect, keyed by
  ``current_step().idempotency_key`` and inserted ``ON CONFLICT (key) DO NOTHING``; in the
  same transaction, and only if that row was new, ``totals.amount`` of the workflow grows by
  ``10 ** (step - 1)``: a non-idempotent effect that must come out as 11111 per workflow.

Each step sleeps a little before and after its effect, so a SIGKILL lands inside steps
(before the effect, or after it but before the journal has it) as often as between them.

The test process imports ``build_app`` (to start and signal the same workflow),
``ensure_tables`` and ``rows``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import threading
import time
from typing import Any

from hora import Hora
from hora.workflows import WorkflowContext, current_step
from tests.integration.worker_proc import _connect, _is_sqlite, _sql, rows

__all__ = ["EXPECTED_TOTAL", "SIGNAL", "SLEEP", "STEP_SEQ", "WORKFLOW", "build_app",
           "ensure_tables", "rows"]

WORKFLOW = "crash.five_steps"
SIGNAL = "go"
SLEEP = 0.2  # seconds of each durable timer (real clock)
STEPS = 5
EXPECTED_TOTAL = sum(10 ** (s - 1) for s in range(1, STEPS + 1))  # 11111
#: Where the calls of the workflow fall: step s has journal position STEP_SEQ[s].
STEP_SEQ = {1: 1, 2: 3, 3: 4, 4: 6, 5: 8}

_TABLES = (
    "CREATE TABLE IF NOT EXISTS step_runs (key TEXT NOT NULL, workflow_id TEXT NOT NULL, "
    "step INTEGER NOT NULL, worker_id TEXT NOT NULL, started DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS side_effects (key TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, "
    "step INTEGER NOT NULL, worker_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS totals (workflow_id TEXT PRIMARY KEY, "
    "amount INTEGER NOT NULL)",
)


def ensure_tables(url: str) -> None:
    conn = _connect(url)
    try:
        for statement in _TABLES:
            conn.execute(statement)
    finally:
        conn.close()


class _Effects:
    """One connection per step thread; the effect and its total in one transaction."""

    def __init__(self, url: str, worker_id: str) -> None:
        self.url = url
        self.worker_id = worker_id
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.url)
            with self._lock:
                self._all.append(conn)
        return conn

    def started(self, key: str, workflow_id: str, step: int) -> None:
        self._conn().execute(_sql(self.url, "INSERT INTO step_runs VALUES (?, ?, ?, ?, ?)"),
                             (key, workflow_id, step, self.worker_id, time.time()))

    def apply(self, key: str, workflow_id: str, step: int) -> bool:
        """The side effect, exactly once per key; True if this call applied it."""
        conn = self._conn()
        insert = _sql(self.url, "INSERT INTO side_effects VALUES (?, ?, ?, ?) "
                                "ON CONFLICT (key) DO NOTHING")
        add = _sql(self.url, "INSERT INTO totals VALUES (?, ?) ON CONFLICT (workflow_id) "
                             "DO UPDATE SET amount = totals.amount + excluded.amount")
        params = (key, workflow_id, step, self.worker_id)
        if _is_sqlite(self.url):
            conn.execute("BEGIN IMMEDIATE")
            try:
                applied = conn.execute(insert, params).rowcount == 1
                if applied:
                    conn.execute(add, (workflow_id, 10 ** (step - 1)))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return applied
        with conn.transaction():
            applied = conn.execute(insert, params).rowcount == 1
            if applied:
                conn.execute(add, (workflow_id, 10 ** (step - 1)))
        return applied

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def build_app(url: str, worker_id: str = "test") -> tuple[Hora, _Effects]:
    """An app with ``crash.five_steps`` registered, the same in every process."""
    app = Hora(url)
    effects = _Effects(url, worker_id)
    jitter = random.Random()

    def effect(step: int) -> str:
        s = current_step()
        effects.started(s.idempotency_key, s.workflow_id, step)
        time.sleep(jitter.uniform(0.02, 0.06))  # the work before the effect
        effects.apply(s.idempotency_key, s.workflow_id, step)
        time.sleep(jitter.uniform(0.0, 0.03))  # after it, before the journal has the step
        return s.idempotency_key

    @app.workflow(name=WORKFLOW)
    async def five_steps(ctx: WorkflowContext, n: int) -> dict[str, Any]:
        keys = [await ctx.step(effect, 1, name="effect")]
        await ctx.sleep(SLEEP)
        keys.append(await ctx.step(effect, 2, name="effect"))
        keys.append(await ctx.step(effect, 3, name="effect"))
        got = await ctx.wait_for_signal(SIGNAL)
        keys.append(await ctx.step(effect, 4, name="effect"))
        await ctx.sleep(SLEEP)
        keys.append(await ctx.step(effect, 5, name="effect"))
        return {"n": n, "signal": got, "keys": keys}

    return app, effects


async def _serve(app: Hora, options: dict[str, Any]) -> None:
    worker = app.worker(**options)
    running = asyncio.create_task(worker.run(handle_signals=True))
    await asyncio.sleep(0)  # run() installs its SIGTERM handler before its first await
    if not running.done():
        print("ready", flush=True)
    await running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--rescue-interval", type=float, default=0.5)
    parser.add_argument("--lookahead", type=float, default=1.0)
    parser.add_argument("--poll-interval", type=float, default=0.05)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {os.getpid()} %(name)s %(levelname)s %(message)s")
    app, effects = build_app(args.database_url, args.worker_id)
    options = {"worker_id": args.worker_id, "lease": args.lease, "heartbeat": args.heartbeat,
               "rescue_interval": args.rescue_interval, "lookahead": args.lookahead,
               "poll_interval": args.poll_interval}
    try:
        asyncio.run(_serve(app, options))
    finally:
        app.close()
        effects.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
