"""Real worker processes (``tests/integration/worker_proc.py``), killed and stopped for real.

A worker that dies mid-job loses its lease, and another worker finishes the job; two workers
on one database run each job exactly once; SIGTERM lets in-flight work finish. Every wait is
on a condition with a deadline, never on a bare sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hora import Hora, JobState
from tests.integration.worker_proc import build_app, ensure_tables, rows

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
POLL = 0.05


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             *, alive: tuple[WorkerProcess, ...] = ()) -> None:
    """Poll ``predicate`` every 50 ms until it is truthy; fail after ``timeout`` seconds, or
    as soon as one of the ``alive`` workers exits."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for w in alive:
            if w.proc.poll() is not None:
                pytest.fail(f"worker {w.worker_id} exited ({w.proc.returncode}) while waiting "
                            f"for {what}\n{w.log()}")
        if time.monotonic() > deadline:
            logs = "\n".join(w.log() for w in alive)
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(POLL)


class WorkerProcess:
    """``python -m tests.integration.worker_proc`` with its output in files under tmp_path."""

    def __init__(self, tmp_path: Path, database_url: str, worker_id: str, *modes: str,
                 **options: float) -> None:
        self.worker_id = worker_id
        self.stdout = tmp_path / f"{worker_id}.out"
        self.stderr = tmp_path / f"{worker_id}.err"
        argv = [sys.executable, "-m", "tests.integration.worker_proc",
                "--database-url", database_url, "--worker-id", worker_id]
        argv += [arg for mode in modes for arg in ("--mode", mode)]
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
        env.pop("HORA_DATABASE_URL", None)
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)

    def log(self) -> str:
        text = self.stderr.read_text(errors="replace") if self.stderr.exists() else ""
        return f"--- {self.worker_id} stderr (last 4000 chars) ---\n{text[-4000:]}"

    def is_ready(self) -> bool:
        return "ready" in self.stdout.read_text(errors="replace").split()

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_for(self.is_ready, timeout, f"worker {self.worker_id} to be ready", alive=(self,))

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.worker_id} still running {timeout}s later\n{self.log()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def spawn(tmp_path: Path, database_url: str) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes on this test's database; whatever is left is killed."""
    ensure_tables(database_url)
    started: list[WorkerProcess] = []

    def start(worker_id: str, *modes: str, **options: float) -> WorkerProcess:
        w = WorkerProcess(tmp_path, database_url, worker_id, *modes, **options)
        started.append(w)
        return w

    try:
        yield start
    finally:
        for w in started:
            w.kill()


@pytest.fixture
def app(database_url: str) -> Iterator[Hora]:
    """The test's own handle on the database: it enqueues and inspects, it never works."""
    a, recorder = build_app(database_url)
    try:
        yield a
    finally:
        a.close()
        recorder.close()


def side_effects(url: str) -> list[tuple[str, int, str]]:
    return [(str(j), int(n), str(w))
            for j, n, w in rows(url, "SELECT job_id, n, worker_id FROM side_effects")]


def starts(url: str, job_id: str) -> list[tuple[int, str]]:
    return [(int(a), str(w)) for a, w in rows(
        url, "SELECT attempt, worker_id FROM starts WHERE job_id = ? ORDER BY attempt",
        (job_id,))]


# A short lease, so a dead worker's jobs come back within seconds, and a lookahead longer
# than the lease, so a worker holds reservations that can outlive it.
LEASE = 3.0
SHORT_LEASE = {"lease": LEASE, "heartbeat": 0.5, "rescue_interval": 0.5, "lookahead": 8.0}
# Reserved by A, due while A's reservations still hold (B must claim them once they expire):
DUE_SOON = 2.4  # seconds after enqueue; < LEASE - heartbeat, so before A's leases expire
# Reserved by A, due after A's reservations expired (B reserves them anew):
DUE_LATER = 6.0  # > DUE_SOON + LEASE: A is killed before DUE_SOON, its leases end by then


def test_sigkill_mid_job_is_recovered_after_lease_expiry(
        app: Hora, spawn: Callable[..., WorkerProcess], database_url: str) -> None:
    a = spawn("A", "slow", "count", **SHORT_LEASE)
    a.wait_ready()
    count = app.tasks["proc.count"]
    slow = app.tasks["proc.slow"].enqueue(n=-1)
    reserved = app.enqueue_many(
        [count.request(n=i, delay=DUE_SOON) for i in range(10)]
        + [count.request(n=i, delay=DUE_LATER) for i in range(10, 20)])
    reserved_ids = {j.id for j in reserved}

    def a_is_mid_job() -> bool:
        # Until DUE_SOON, A can only hold the count jobs, not start them: if it started one,
        # this never holds and the test fails instead of proving less than it claims.
        job = app.get_job(slow.id, history=False)
        held = [app.get_job(j, history=False) for j in reserved_ids]
        return (starts(database_url, slow.id) == [(1, "A")] and job.state is JobState.RUNNING
                and job.lease_owner == "A"
                and all(j.state is JobState.SCHEDULED and j.lease_owner == "A" for j in held))

    wait_for(a_is_mid_job, DUE_SOON, "A to run the slow job and reserve the others",
             alive=(a,))
    a.signal(signal.SIGKILL)
    assert a.wait(10) == -signal.SIGKILL

    b = spawn("B", "slow", "count", **SHORT_LEASE)
    b.wait_ready()
    all_ids = {slow.id, *reserved_ids}

    def all_succeeded() -> bool:
        return app.count_jobs() == {"succeeded": len(all_ids)}

    wait_for(all_succeeded, 30, "B to finish every job", alive=(b,))

    job = app.get_job(slow.id)
    assert job.state is JobState.SUCCEEDED
    assert job.result == -1
    assert [(t.number, t.worker_id, t.outcome) for t in job.attempts] == [
        (1, "A", "lost"), (2, "B", "succeeded")]
    lost = job.attempts[0]
    assert lost.error is not None and lost.error.type == "hora.LeaseExpired"
    assert lost.ended_at is not None and lost.ended_at >= lost.started_at
    assert starts(database_url, slow.id) == [(1, "A"), (2, "B")]

    # Nothing lost, nothing done twice: each body ran once, on B.
    effects = side_effects(database_url)
    assert sorted(e[0] for e in effects) == sorted(all_ids)
    assert {e[2] for e in effects} == {"B"}
    for job_id in reserved_ids:
        got = app.get_job(job_id)
        assert [(t.number, t.worker_id, t.outcome) for t in got.attempts] == [
            (1, "B", "succeeded")], job_id

    b.signal(signal.SIGTERM)
    assert b.wait(15) == 0, b.log()


JOBS = 5_000


def test_two_workers_run_each_job_exactly_once(
        app: Hora, spawn: Callable[..., WorkerProcess], database_url: str) -> None:
    workers = (spawn("W1", "count"), spawn("W2", "count"))
    for w in workers:
        w.wait_ready()
    # Both are polling before the jobs arrive, so each gets a fair share to race for.
    count = app.tasks["proc.count"]
    jobs = app.enqueue_many([count.request(n=i) for i in range(JOBS)])
    assert len({j.id for j in jobs}) == JOBS

    def all_succeeded() -> bool:
        return app.count_jobs().get("succeeded", 0) == JOBS

    started = time.monotonic()
    wait_for(all_succeeded, 120, f"{JOBS} jobs to succeed", alive=workers)
    elapsed = time.monotonic() - started

    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        assert w.wait(30) == 0, w.log()
    assert app.count_jobs() == {"succeeded": JOBS}

    effects = side_effects(database_url)
    assert len(effects) == JOBS, f"{len(effects) - JOBS:+d} side effects"
    assert {e[0] for e in effects} == {j.id for j in jobs}
    assert sorted(e[1] for e in effects) == list(range(JOBS))

    # Exactly one attempt per job, ended by the worker whose handler left the side effect.
    ran_on = {job_id: worker_id for job_id, _n, worker_id in effects}
    per_worker: dict[str, int] = {}
    for j in jobs:
        got = app.get_job(j.id)
        assert [(t.number, t.outcome) for t in got.attempts] == [(1, "succeeded")], got.id
        assert got.attempts[0].worker_id == ran_on[j.id]
        per_worker[ran_on[j.id]] = per_worker.get(ran_on[j.id], 0) + 1
    assert set(per_worker) == {"W1", "W2"}, per_worker
    print(f"{JOBS} jobs in {elapsed:.1f}s on two workers: {per_worker}")


def test_sigterm_finishes_in_flight_job_then_exits(
        app: Hora, spawn: Callable[..., WorkerProcess], database_url: str) -> None:
    grace = 10.0
    w = spawn("N", "nap", concurrency=1, grace_period=grace)
    w.wait_ready()
    nap = app.tasks["proc.nap"]
    first = nap.enqueue(seconds=1.5)
    wait_for(lambda: starts(database_url, first.id) == [(1, "N")], 10,
             "the nap to start", alive=(w,))
    assert app.get_job(first.id, history=False).state is JobState.RUNNING
    # No free slot for this one; after SIGTERM the worker must not start it.
    second = nap.enqueue(seconds=1.5)

    signalled_at = datetime.now(UTC)
    w.signal(signal.SIGTERM)
    assert w.wait(grace) == 0, w.log()

    job = app.get_job(first.id)
    assert job.state is JobState.SUCCEEDED
    assert job.result == 1.5
    assert [(t.number, t.worker_id, t.outcome) for t in job.attempts] == [(1, "N", "succeeded")]
    ended = job.attempts[0].ended_at
    assert ended is not None and ended > signalled_at, "the job ended before the signal"
    assert [e[0] for e in side_effects(database_url)] == [first.id]

    waiting = app.get_job(second.id)
    assert waiting.state is JobState.SCHEDULED
    assert (waiting.attempt, waiting.lease_owner, waiting.attempts) == (0, None, ())
    assert starts(database_url, second.id) == []
