"""PostgreSQL outages through a TCP proxy the test controls (``tests.pg_proxy``): fast 503s
with Retry-After, /healthz unaffected, /readyz false, recovery within seconds, one warning
per outage, partitions that time out, and a commit whose acknowledgement was lost.

PostgreSQL only: these are the pool's and the network's failures (SQLite has neither).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from hora import Hora, LeaderElection, StoreUnavailable
from hora.client import Client, ServiceUnavailable
from hora.store.pg_connect import StallGuard, connect_params
from hora.testing import ServeProcess, run_until_idle, serve_process, wait_for_condition
from tests.conftest import fresh_pg_schema
from tests.pg_proxy import PgProxy

ADMIN_KEY = "hora_" + "O" * 32
REPO = Path(__file__).resolve().parents[2]

#: Generous bounds (the figures measured are printed and in the report): a refused request
#: within the pool timeout (5 s), recovery within the reconnect window (2 s).
ANSWER_BOUND = 10.0
RECOVERY_BOUND = 5.0
OUTAGE_STARTED = "PostgreSQL unreachable"
OUTAGE_ENDED = "PostgreSQL reachable again"


@pytest.fixture
def proxy() -> Iterator[PgProxy]:
    p = PgProxy().start()
    yield p
    p.close()


@pytest.fixture
def schema_url() -> Iterator[str]:
    with fresh_pg_schema("hora_outage_") as url:
        yield url


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "urn:hora:problem:store-unavailable"
    assert int(r.headers["Retry-After"]) >= 1


def first_success(call: Callable[[], httpx.Response], *, timeout: float) -> float:
    """Seconds until ``call`` answers 2xx (polling without a pause: each refused call takes
    its own time)."""
    began = time.monotonic()
    while True:
        r = call()
        if r.is_success:
            return time.monotonic() - began
        assert r.status_code == 503, r.text
        assert time.monotonic() - began < timeout, "no recovery"


def log_count(server: ServeProcess, text: str) -> int:
    return sum(text in line for line in list(server.log))


class Serve:
    """``hora serve`` (api, scheduler, worker; demo tasks) on PostgreSQL through the proxy."""

    def __init__(self, url: str, cwd: Path) -> None:
        self.server = serve_process(url, cwd, admin_key=ADMIN_KEY,
                                    args=("--app", "hora.demo:app"),
                                    extra_env={"PYTHONPATH": str(REPO)})
        self.admin = httpx.Client(base_url=self.server.url, timeout=60,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        r = self.admin.post("/v1/tenants", json={"id": "outage"})
        assert r.status_code == 201, r.text
        r = self.admin.post("/v1/keys", json={"tenant_id": "outage",
                                              "scopes": ["read", "write"]})
        assert r.status_code == 201, r.text
        self.key = r.json()["key"]
        self.client = httpx.Client(base_url=self.server.url, timeout=60,
                                   headers={"Authorization": f"Bearer {self.key}"})
        self.bare = httpx.Client(base_url=self.server.url, timeout=60)

    def list_jobs(self) -> httpx.Response:
        return self.client.get("/v1/jobs", params={"limit": 1})

    def run_job(self) -> None:
        """A job enqueued now runs to success (the worker works)."""
        r = self.client.post("/v1/jobs", json={"task": "demo.greet",
                                                "payload": {"name": "after"}})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]

        def done() -> bool:
            got = self.client.get(f"/v1/jobs/{job_id}")
            return got.status_code == 200 and got.json()["state"] == "succeeded"

        wait_for_condition(done, timeout=30, message="the job to succeed after recovery")

    def close(self) -> None:
        for c in (self.admin, self.client, self.bare):
            c.close()
        self.server.stop()


@pytest.fixture
def serve(proxy: PgProxy, schema_url: str, tmp_path: Path) -> Iterator[Serve]:
    s = Serve(proxy.url(schema_url), tmp_path)
    yield s
    s.close()


def test_outage_answers_503_fast_keeps_healthz_and_recovers(
        serve: Serve, proxy: PgProxy, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve.list_jobs().status_code == 200
    serve.run_job()
    assert log_count(serve.server, OUTAGE_STARTED) == 0

    proxy.cut()
    r, took = timed(serve.list_jobs)
    assert_unavailable(r)
    assert took < ANSWER_BOUND, took
    # The SDK's HTTP client raises the SDK's own StoreUnavailable, with the server's advice.
    with (Client(serve.server.url, serve.key, retries=0) as sdk,
          pytest.raises(StoreUnavailable) as raised):
        sdk.list_jobs(limit=1)
    assert isinstance(raised.value, ServiceUnavailable) and raised.value.status == 503
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1

    # Many blocked requests at once: each is refused within the bound, and /healthz
    # answers at once all the while (it never waits for the thread pool).
    with ThreadPoolExecutor(48) as pool:
        blocked = [pool.submit(timed, serve.list_jobs) for _ in range(48)]
        health = [timed(lambda: serve.bare.get("/healthz")) for _ in range(5)]
        ready, ready_took = timed(lambda: serve.bare.get("/readyz"))
        answers = [f.result() for f in blocked]
    for h, h_took in health:
        assert h.status_code == 200 and h.json()["status"] == "ok"
        assert h_took < 1.0, h_took
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert ready_took < ANSWER_BOUND, ready_took
    for a, a_took in answers:
        assert_unavailable(a)
        assert a_took < ANSWER_BOUND, a_took
    slowest = max(t for _, t in answers)
    wait_for_condition(lambda: log_count(serve.server, OUTAGE_STARTED) == 1,
                       message="the outage warning")

    proxy.restore()
    recovery = first_success(serve.list_jobs, timeout=30)
    assert recovery <= RECOVERY_BOUND, recovery
    assert serve.bare.get("/readyz").status_code == 200
    serve.run_job()
    wait_for_condition(lambda: log_count(serve.server, OUTAGE_ENDED) >= 1,
                       message="the recovery line")
    assert log_count(serve.server, OUTAGE_STARTED) == 1, serve.server.log
    assert log_count(serve.server, OUTAGE_ENDED) == 1, serve.server.log
    ended = next(line for line in serve.server.log if OUTAGE_ENDED in line)
    assert re.search(r"outage of \d+\.\d s", ended), ended
    # Nothing else about the outage at warning level: no line per request or per retry.
    noisy = [line for line in serve.server.log if " WARNING " in line or " ERROR " in line]
    assert len(noisy) == 2, noisy
    with capsys.disabled():
        print(f"\n[outage/cut] first 503 in {took:.2f}s, slowest of 48 concurrent "
              f"{slowest:.2f}s, /readyz {ready_took:.2f}s, "
              f"/healthz max {max(t for _, t in health) * 1000:.0f}ms, "
              f"recovery {recovery:.2f}s after restore")


def test_partition_times_out_instead_of_hanging(
        serve: Serve, proxy: PgProxy, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve.list_jobs().status_code == 200

    proxy.blackhole()
    # The first calls meet pooled connections that no longer answer: the stall guard ends
    # them; the ones after wait no longer than the checkout bound.
    with ThreadPoolExecutor(8) as pool:
        first = [f.result() for f in [pool.submit(timed, serve.list_jobs) for _ in range(8)]]
    for r, took in first:
        assert_unavailable(r)
        assert took < 2 * ANSWER_BOUND, took
    r, took = timed(serve.list_jobs)
    assert_unavailable(r)
    assert took < ANSWER_BOUND, took
    h, h_took = timed(lambda: serve.bare.get("/healthz"))
    assert h.status_code == 200 and h_took < 1.0
    ready, ready_took = timed(lambda: serve.bare.get("/readyz"))
    assert ready.status_code == 503
    assert ready_took < ANSWER_BOUND, ready_took

    proxy.restore()
    recovery = first_success(serve.list_jobs, timeout=30)
    assert recovery <= RECOVERY_BOUND, recovery
    serve.run_job()
    wait_for_condition(lambda: log_count(serve.server, OUTAGE_ENDED) >= 1,
                       message="the recovery line")
    assert log_count(serve.server, OUTAGE_STARTED) == 1, serve.server.log
    assert log_count(serve.server, OUTAGE_ENDED) == 1, serve.server.log
    with capsys.disabled():
        print(f"\n[outage/partition] first calls {max(t for _, t in first):.2f}s at most, "
              f"then {took:.2f}s, /readyz {ready_took:.2f}s, recovery {recovery:.2f}s")


def test_a_lost_commit_acknowledgement_is_not_reported_as_a_discarded_result(
        proxy: PgProxy, schema_url: str, caplog: pytest.LogCaptureFixture) -> None:
    app = Hora(proxy.url(schema_url))
    try:
        @app.task(name="outage.answer")
        def answer(n: int) -> int:
            # The outcome's write (finish_jobs sets the result) commits, but the client
            # never hears so: the proxy closes the connection right after the COMMIT.
            proxy.drop_after_commit(b"result = o.result")
            return n * 2

        job = app.enqueue("outage.answer", {"n": 21})
        with caplog.at_level(logging.DEBUG, logger="hora"):
            stats = run_until_idle(app)
        assert proxy.commit_dropped.is_set()
        done = app.get_job(job.id)
        assert done.state == "succeeded" and done.result == 42
        assert [a.outcome for a in done.attempts] == ["succeeded"]
        messages = [r.getMessage() for r in caplog.records]
        assert not any("result is discarded" in m for m in messages), messages
        assert any("was written before the connection dropped" in m for m in messages)
        assert stats["lost"] == 0
    finally:
        app.close()


def test_store_unavailable_is_raised_within_the_pool_timeout(
        proxy: PgProxy, schema_url: str) -> None:
    """The SDK's face of an outage: a hora error, in bounded time, and back afterwards."""
    app = Hora(proxy.url(schema_url), store_options={"pool_timeout": 2.0})
    try:
        app.enqueue("outage.any", {})
        proxy.cut()
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            app.enqueue("outage.any", {})
        assert time.monotonic() - began < ANSWER_BOUND
        proxy.restore()
        began = time.monotonic()
        wait_for_condition(lambda: _enqueues(app), timeout=RECOVERY_BOUND + 5,
                           interval=0.01, message="enqueue after restore")
        assert time.monotonic() - began <= RECOVERY_BOUND
    finally:
        app.close()


def test_start_waits_for_a_database_that_comes_up_after_the_reconnect_window(
        proxy: PgProxy, schema_url: str) -> None:
    """The pool retries each lost connection only briefly; a first start still waits for a
    database that comes up a few seconds later (as beside it in a compose file)."""
    proxy.cut()
    # Up once the pool's first window of attempts (0, 1, 2 s) has passed.
    restorer = threading.Thread(target=lambda: (
        wait_for_condition(lambda: proxy.refused >= 4, timeout=30), proxy.restore()))
    restorer.start()
    try:
        app = Hora(proxy.url(schema_url))
        try:
            assert app.enqueue("outage.any", {}).state == "scheduled"
        finally:
            app.close()
    finally:
        restorer.join()
    assert proxy.refused >= 4


def test_the_stall_guard_ends_a_stuck_statement_but_not_a_slow_one(
        proxy: PgProxy, schema_url: str) -> None:
    conninfo = connect_params(proxy.url(schema_url))
    guard = StallGuard(conninfo, after=0.2, interval=0.05)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            with guard.watch(conn):  # slow, but the server is there: left alone
                assert conn.execute("SELECT 1 FROM pg_sleep(0.6)").fetchone() == (1,)
            assert guard.aborted == 0
            proxy.blackhole()
            began = time.monotonic()
            with pytest.raises(psycopg.OperationalError), guard.watch(conn):
                conn.execute("SELECT 1")
            assert guard.aborted == 1
            assert time.monotonic() - began < ANSWER_BOUND
    finally:
        guard.close()
        proxy.restore()


def _enqueues(app: Hora) -> bool:
    try:
        app.enqueue("outage.any", {})
    except StoreUnavailable:
        return False
    return True



def test_a_leader_election_through_an_outage_warns_once_and_wins_again(
        proxy: PgProxy, schema_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Failed rounds during an outage are the store's one warning, not a traceback each."""
    app = Hora(proxy.url(schema_url), store_options={"pool_timeout": 0.5})
    try:
        election = LeaderElection(app, "outage-leader", ttl=1.0, owner="n1")
        assert election.campaign_once()
        proxy.cut()
        with caplog.at_level(logging.DEBUG, logger="hora"):
            # Leader while the lease lasts, then not: the term ends unrenewed.
            wait_for_condition(lambda: not election.campaign_once(), timeout=10,
                               interval=0.05, message="the term to end during the outage")
            assert election.lease is None
            proxy.restore()
            wait_for_condition(election.campaign_once, timeout=RECOVERY_BOUND + 5,
                               interval=0.05, message="leadership after the outage")
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert all(r.exc_info is None for r in warnings), [r.getMessage() for r in warnings]
        assert sum(OUTAGE_STARTED in r.getMessage() for r in warnings) == 1
        assert any("leader election 'outage-leader'" in r.getMessage()
                   for r in caplog.records if r.levelno == logging.DEBUG)
    finally:
        app.close()
