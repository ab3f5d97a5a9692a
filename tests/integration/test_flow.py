"""Flow control end to end: workers on a FakeClock and real worker processes sharing one
limit through the store (docs/flow.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hora import Concurrency, FakeClock, Hora, InvalidPayload, RateLimit
from hora.flow import parse_rate, window_bound
from hora.models import JobFilter
from hora.states import JobState
from hora.testing import run_until_idle
from tests.integration.flow_proc import BURST, RATE
from tests.integration.flow_proc import build_app as build_proc_app

T0 = datetime(2030, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def test_three_per_hour_per_user_over_a_simulated_day(app: Hora, clock: FakeClock) -> None:
    @app.task(rate_limit=RateLimit("3/h", key="user_id"))
    def push(user_id: str, n: int) -> None: ...

    for user in ("u1", "u2", "u3"):
        for n in range(12):  # a burst at midnight, then a few through the day
            push.enqueue(user_id=user, n=n)
        for hour in (5, 9, 13):
            push.enqueue(user_id=user, n=100 + hour, delay=timedelta(hours=hour))
    run_until_idle(app, until=T0 + timedelta(days=1))
    jobs = app.store.list_jobs(JobFilter(tenant_id="default"), limit=500).items
    assert len(jobs) == 45
    assert {j.state for j in jobs} == {JobState.SUCCEEDED}  # every job ran, none dropped
    starts: dict[str, list[datetime]] = defaultdict(list)
    for j in jobs:
        assert j.started_at is not None and j.started_at >= j.created_at
        starts[j.payload["user_id"]].append(j.started_at)
    for user, at in starts.items():
        at.sort()
        # no one-hour window [t, t+1h) holds a fourth start for one user
        assert all(at[i + 3] - at[i] >= timedelta(hours=1) for i in range(len(at) - 3)), user
        assert at[-1] < T0 + timedelta(days=1)


def test_waiting_jobs_say_which_gate_holds_them(app: Hora, clock: FakeClock) -> None:
    @app.task(name="mail", rate_limit=RateLimit("1/h", name="smtp"),
              concurrency=Concurrency(1, key="account"))
    def mail(account: str) -> None: ...

    a = mail.enqueue(account="a1")
    b = mail.enqueue(account="a1")
    c = mail.enqueue(account="a2", delay=timedelta(hours=1))
    started, _ = app.store.claim_jobs(owner="w", queues=["default"], tasks=None, now=T0,
                                      lease_until=T0 + timedelta(minutes=5), limit=10)
    assert [j.id for j in started] == [a.id]
    reasons = app.fleet.waiting_reasons(
        [app.store.get_job(i, tenant_id="default", history=False) for i in (b.id, c.id)])
    assert reasons == {b.id: "rate_limited: smtp"}
    clock.advance(timedelta(hours=1))
    started, _ = app.store.claim_jobs(owner="w", queues=["default"], tasks=None,
                                      now=clock.now(), lease_until=clock.now()
                                      + timedelta(minutes=5), limit=10)
    # b's slot came; a still runs on key a1, so b waits for it; c (a2) runs
    assert [j.id for j in started] == [c.id]
    job_b = app.store.get_job(b.id, tenant_id="default", history=False)
    assert app.fleet.waiting_reasons([job_b]) == {b.id: "concurrency: mail:account=a1"}


def test_three_worker_processes_share_one_limit(pg_schema_url: str, tmp_path: Path) -> None:
    app = build_proc_app(pg_schema_url)
    app.store.migrate()
    total = 120  # six seconds at 20/s
    app.enqueue_many([app.tasks["send"].request(n=n) for n in range(total)])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    procs = []
    for i in range(3):
        with (tmp_path / f"w{i}.err").open("wb") as err:
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.integration.flow_proc",
                                           pg_schema_url, "40"], cwd=REPO, env=env,
                                          stderr=err))
    try:
        for p in procs:
            assert p.wait(60) == 0, (tmp_path / "w0.err").read_text()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    counts = app.store.count_jobs(tenant_id="default")
    assert counts == {"succeeded": total}
    import psycopg

    with psycopg.connect(pg_schema_url) as conn:
        rows = conn.execute("SELECT started_at, worker_id FROM hora_job_attempts "
                            "ORDER BY started_at").fetchall()
    app.close()
    assert len(rows) == total
    assert len({w for _, w in rows}) >= 2  # the processes really shared the work
    at = [r[0] for r in rows]
    bound = window_bound(parse_rate(RATE), BURST, 1.0)
    worst = max(sum(1 for t in at[i:] if t - at[i] < timedelta(seconds=1))
                for i in range(len(at)))
    assert worst <= bound
    # and the limit was used, not merely respected: 120 starts at 20/s take about 6 s
    assert at[-1] - at[0] < timedelta(seconds=8)


def test_jobs_a_schedule_fires_are_gated_like_enqueued_ones(app: Hora, clock: FakeClock,
                                                             ) -> None:
    """A schedule firing a rate-limited task makes gated jobs (the limit holds whoever
    creates the job), and a schedule whose payload lacks a limit's key field is refused."""
    @app.task(name="digest", rate_limit=RateLimit("1/h", key="team"))
    def digest(team: str) -> None: ...

    app.create_schedule("digest", trigger={"every": "PT1M"}, payload={"team": "a"},
                        catchup_limit=100)
    clock.advance(timedelta(minutes=3))
    fired, _ = app.schedules.process_due(100)
    assert fired >= 2
    started, _ = app.store.claim_jobs(owner="w", queues=["default"], tasks=None,
                                      now=clock.now(), lease_until=clock.now()
                                      + timedelta(minutes=5), limit=10)
    assert len(started) == 1  # one start per hour for team a: the rest wait their slots
    waiting = app.list_jobs(state="scheduled").items
    assert waiting and all(j.state_reason == "rate_limited: digest[team] (a)"
                           for j in waiting if j.due_at > clock.now())
    with pytest.raises(InvalidPayload) as refused:
        app.create_schedule("digest", trigger={"every": "PT1M"}, payload={})
    assert refused.value.field in ("payload.team", "payload")


def test_a_scheduler_without_the_code_gates_by_the_registry(database_url: str,
                                                           clock: FakeClock) -> None:
    """The process that fires a schedule need not define its task: the limits come from the
    registry, read inside the scheduler pass's own transaction."""
    worker_app = Hora(database_url, clock=clock)
    worker_app.migrate()

    @worker_app.task(name="report", rate_limit=RateLimit("1/h", name="reports"))
    def report() -> None: ...

    worker_app.registry.register()
    scheduler_app = Hora(database_url, clock=clock)
    try:
        scheduler_app.create_schedule("report", trigger={"every": "PT1M"}, catchup_limit=100)
        clock.advance(timedelta(minutes=3))
        fired, _ = scheduler_app.schedules.process_due(100)
        assert fired >= 2
        started, _ = worker_app.store.claim_jobs(
            owner="w", queues=["default"], tasks=None, now=clock.now(),
            lease_until=clock.now() + timedelta(minutes=5), limit=10)
        assert len(started) == 1
        reasons = {j.state_reason for j in worker_app.list_jobs(state="scheduled").items}
        assert reasons == {"rate_limited: reports"}
    finally:
        scheduler_app.close()
        worker_app.close()
