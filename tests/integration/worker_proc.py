"""A worker in its own process, for the crash and concurrency tests.

    python -m tests.integration.worker_proc --database-url URL --mode count [--mode slow]
        [--worker-id ID] [--lease S] [--heartbeat S] [--rescue-interval S] [--lookahead S]
        [--poll-interval S] [--concurrency N] [--grace-period S]

It serves the tasks its ``--mode`` flags name (``count``, ``slow``, ``nap``) and prints
``ready`` on stdout once its signal handlers are installed, so a test may SIGTERM it from
then on. Each handler leaves its mark in the same database, outside hora's tables, so a test
can tell how often each job body really ran:

* ``starts(job_id, attempt, worker_id)``: a row as a handler begins (``slow`` and ``nap``);
* ``side_effects(job_id, n, worker_id)``: a row as a handler's work is done.

The test process imports ``build_app`` (to enqueue the same task names), ``ensure_tables``
and ``rows``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
import threading
import time
from typing import Any

import hora
from hora import Hora

TASKS = ("count", "slow", "nap")
SQLITE_PREFIX = "sqlite:///"
SLOW_LIMIT = 60.0  # seconds a first attempt of ``slow`` blocks, waiting to be killed

_TABLES = (
    "CREATE TABLE IF NOT EXISTS side_effects (job_id TEXT NOT NULL, n INTEGER NOT NULL, "
    "worker_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS starts (job_id TEXT NOT NULL, attempt INTEGER NOT NULL, "
    "worker_id TEXT NOT NULL)",
)


# -- the side-effect tables, on either database -----------------------------------------------


def _is_sqlite(url: str) -> bool:
    return not url.startswith(("postgresql://", "postgres://"))


def _connect(url: str) -> Any:
    """A plain autocommit driver connection to the database ``url`` names."""
    if _is_sqlite(url):
        path = url[len(SQLITE_PREFIX):] if url.startswith(SQLITE_PREFIX) else url
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn
    import psycopg

    # The URL carries the test's search_path, so these tables land in the test's schema.
    return psycopg.connect(url, autocommit=True)


def _sql(url: str, statement: str) -> str:
    return statement if _is_sqlite(url) else statement.replace("?", "%s")


def ensure_tables(url: str) -> None:
    conn = _connect(url)
    try:
        for statement in _TABLES:
            conn.execute(statement)
    finally:
        conn.close()


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = _connect(url)
    try:
        return [tuple(r) for r in conn.execute(_sql(url, query), params).fetchall()]
    finally:
        conn.close()


class _Recorder:
    """One connection per handler thread, all closed at exit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def insert(self, statement: str, params: tuple[Any, ...]) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.url)
            with self._lock:
                self._all.append(conn)
        conn.execute(_sql(self.url, statement), params)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


# -- the app ----------------------------------------------------------------------------------


def build_app(url: str, tasks: tuple[str, ...] = TASKS) -> tuple[Hora, _Recorder]:
    """An app whose task names (``proc.count``, ...) match in every process."""
    app = Hora(url)
    recorder = _Recorder(url)

    def started() -> hora.JobContext:
        job = hora.current_job()
        recorder.insert("INSERT INTO starts VALUES (?, ?, ?)",
                        (job.job_id, job.attempt, job.worker_id))
        return job

    def done(n: int) -> None:
        job = hora.current_job()
        recorder.insert("INSERT INTO side_effects VALUES (?, ?, ?)",
                        (job.job_id, n, job.worker_id))

    def count(n: int) -> int:
        done(n)
        return n

    def slow(n: int) -> int:
        """Blocks on its first attempt (to be killed mid-job); later attempts finish at once."""
        job = started()
        if job.attempt == 1:
            deadline = time.monotonic() + SLOW_LIMIT
            while time.monotonic() < deadline and not job.cancelled:
                time.sleep(0.05)
        done(n)
        return n

    def nap(seconds: float) -> float:
        started()
        time.sleep(seconds)
        done(0)
        return seconds

    handlers = {"count": count, "slow": slow, "nap": nap}
    for name in tasks:
        app.task(handlers[name], name=f"proc.{name}")
    return app, recorder


# -- the process ------------------------------------------------------------------------------


async def _serve(app: Hora, options: dict[str, Any]) -> None:
    worker = app.worker(**options)
    running = asyncio.create_task(worker.run(handle_signals=True))
    # run() installs its signal handlers before its first await, so once it has had one turn
    # SIGTERM means "finish and exit"; before that it would kill the process outright.
    await asyncio.sleep(0)
    if not running.done():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            running.cancel()
            raise RuntimeError("the worker did not install its signal handlers")
        print("ready", flush=True)
    await running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mode", action="append", choices=TASKS, required=True,
                        help="a task this worker serves (repeat for several)")
    parser.add_argument("--worker-id")
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--heartbeat", type=float)
    parser.add_argument("--rescue-interval", type=float)
    parser.add_argument("--lookahead", type=float, default=5.0)
    parser.add_argument("--poll-interval", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--grace-period", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")

    ensure_tables(args.database_url)
    app, recorder = build_app(args.database_url, tuple(dict.fromkeys(args.mode)))
    options: dict[str, Any] = {
        "lease": args.lease, "heartbeat": args.heartbeat,
        "rescue_interval": args.rescue_interval, "lookahead": args.lookahead,
        "poll_interval": args.poll_interval,
        "concurrency": args.concurrency, "grace_period": args.grace_period,
    }
    if args.worker_id:
        options["worker_id"] = args.worker_id
    try:
        asyncio.run(_serve(app, options))
    finally:
        app.close()
        recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
