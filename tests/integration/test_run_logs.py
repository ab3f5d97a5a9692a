"""Per-attempt log lines (issue #11 item 8): what a handler logs while it runs is stored with
the attempt, bounded, never mixed between jobs running at once; async and sync handlers."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from hora import FakeClock, Hora, JobState, RetryPolicy
from hora.context import MAX_LOG_BYTES, MAX_LOG_LINES, TRUNCATED
from hora.testing import run_until_idle
from hora.wire import job_dict, job_from_dict

log = logging.getLogger("tests.run_logs")


@pytest.fixture(autouse=True)
def _info_level() -> Iterator[None]:
    """Capture takes what the logger lets through: INFO needs the logger at INFO."""
    before = log.level
    log.setLevel(logging.INFO)
    yield
    log.setLevel(before)


def test_async_and_sync_handlers_logs_are_kept_per_attempt(app: Hora,
                                                           clock: FakeClock) -> None:
    @app.task(retry=RetryPolicy(max_attempts=2, base=1, jitter="none"))
    async def flaky(order: str) -> str:
        from hora import current_job

        n = current_job().attempt
        log.info("attempt %d for %s", n, order)
        if n == 1:
            log.warning("gateway slow")
            raise ConnectionError("down")
        return "ok"

    @app.task
    def in_thread(x: int) -> int:
        log.info("sync handler sees %d", x)
        logging.getLogger("tests.other").warning("another logger")
        return x

    a = flaky.enqueue(order="o-1")
    b = in_thread.enqueue(x=7)
    run_until_idle(app)
    ja = app.get_job(a.id)
    assert ja.state is JobState.SUCCEEDED and len(ja.attempts) == 2
    first, second = ja.attempts
    assert [(ln.level, ln.message) for ln in first.logs] == [
        ("INFO", "attempt 1 for o-1"), ("WARNING", "gateway slow")]
    assert [(ln.level, ln.message) for ln in second.logs] == [("INFO", "attempt 2 for o-1")]
    jb = app.get_job(b.id)
    assert [(ln.level, ln.message) for ln in jb.attempts[0].logs] == [
        ("INFO", "sync handler sees 7"), ("WARNING", "another logger")]
    # The worker's own lines (hora.worker) are not the handler's.
    assert all(not ln.message.startswith("job ") for ln in first.logs)
    # On the wire, both ways.
    back = job_from_dict(job_dict(ja, history=True))
    assert back.attempts[0].logs == first.logs


def test_logs_are_bounded_with_a_marker(app: Hora) -> None:
    @app.task
    def chatty() -> None:
        for i in range(MAX_LOG_LINES + 50):
            log.info("line %d", i)

    @app.task
    def wordy() -> None:
        for _ in range(40):
            log.info("x" * 10_000)

    j1, j2 = chatty.enqueue(), wordy.enqueue()
    run_until_idle(app)
    lines = app.get_job(j1.id).attempts[0].logs
    assert len(lines) == MAX_LOG_LINES + 1 and lines[-1].level == TRUNCATED
    assert "50 more line(s)" in lines[-1].message
    assert lines[0].message == "line 0"
    lines2 = app.get_job(j2.id).attempts[0].logs
    assert sum(len(ln.message) for ln in lines2 if ln.level != TRUNCATED) <= MAX_LOG_BYTES
    assert lines2[-1].level == TRUNCATED
    assert all(len(ln.message) <= 4096 + 30 for ln in lines2)


def test_concurrent_jobs_do_not_mix_their_lines(app: Hora) -> None:
    barrier = threading.Barrier(4, timeout=20)

    @app.task
    async def interleaved(name: str) -> None:
        for i in range(20):
            log.info("%s %d", name, i)
            await asyncio.sleep(0)

    @app.task
    def threaded(name: str) -> None:
        barrier.wait()  # all four run at once in the handler threads
        for i in range(20):
            log.info("%s %d", name, i)

    jobs = [interleaved.enqueue(name=f"a{i}") for i in range(4)]
    jobs += [threaded.enqueue(name=f"t{i}") for i in range(4)]
    run_until_idle(app)
    for job in jobs:
        got = app.get_job(job.id)
        assert got.state is JobState.SUCCEEDED
        name = got.payload["name"]
        assert [ln.message for ln in got.attempts[0].logs] == [f"{name} {i}"
                                                                 for i in range(20)]


def test_nothing_logged_nothing_stored_and_capture_can_be_off(app: Hora) -> None:
    @app.task
    def quiet() -> None:
        return None

    @app.task
    def loud() -> None:
        log.warning("hello")

    q, loud_job = quiet.enqueue(), loud.enqueue()
    asyncio.run(app.worker(capture_logs=False).run(until_idle=True))
    assert app.get_job(q.id).attempts[0].logs == ()
    assert app.get_job(loud_job.id).attempts[0].logs == ()
