"""Schedules through the real scheduler and worker, on both stores, on the fake clock."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from hora import FakeClock, Hora, InvalidTrigger, JobState
from hora.errors import Conflict, NotFound
from hora.testing import run_until_idle

T0 = datetime(2030, 1, 1, tzinfo=UTC)
# The full-length simulations (a year on PostgreSQL, a week of two racing schedulers) take
# minutes there; CI runs them on SQLite and shorter on PostgreSQL unless this is set.
LONG = bool(os.environ.get("HORA_LONG_TESTS"))


def _postgres(url: str) -> bool:
    return url.startswith("postgres")


def _tasks(app: Hora) -> list[str]:
    ran: list[str] = []

    @app.task(name="report")
    def report(kind: str = "daily") -> None:
        ran.append(kind)

    return ran


def _ticks(app: Hora, schedule_id: str) -> list[tuple[datetime, str, str | None, str | None]]:
    out = []
    page = app.schedule_ticks(schedule_id, limit=1000)
    while True:
        out += [(t.nominal, t.outcome, t.reason, t.job_id) for t in page.items]
        if page.next_cursor is None:
            break
        page = app.schedule_ticks(schedule_id, limit=1000, cursor=page.next_cursor)
    return sorted(out)


def test_each_occurrence_becomes_one_job_and_one_tick(app: Hora) -> None:
    ran = _tasks(app)
    s = app.create_schedule("report", {"kind": "hourly"},
                            trigger={"cron": "0 * * * *", "timezone": "UTC"},
                            correlation_id="reports")
    assert s.next_fire_at == T0 + timedelta(hours=1) and s.state == "active"
    run_until_idle(app, until=T0 + timedelta(days=2))
    assert len(ran) == 48 and set(ran) == {"hourly"}
    ticks = _ticks(app, s.id)
    assert [t[0] for t in ticks] == [T0 + timedelta(hours=h) for h in range(1, 49)]
    assert {t[1] for t in ticks} == {"fired"}
    jobs = app.list_jobs(correlation_id="reports", limit=100).items
    assert len(jobs) == 48 and {j.schedule_id for j in jobs} == {s.id}
    assert {j.id for j in jobs} == {t[3] for t in ticks}
    assert all(j.idempotency_key == f"schedule:{s.id}:{j.due_at.isoformat()}" for j in jobs)


@pytest.mark.timeout(900)
def test_a_year_of_hourly_and_business_day_schedules_is_fully_accounted_for(
        app: Hora, database_url: str) -> None:
    """A simulated year (a quarter on PostgreSQL unless HORA_LONG_TESTS) through the real
    scheduler and worker: every nominal occurrence has its tick, every fired tick its job."""
    days = 91 if _postgres(database_url) and not LONG else 365
    ran = _tasks(app)
    hourly = app.create_schedule("report", {"kind": "hourly"},
                                 trigger={"cron": "0 * * * *", "timezone": "Europe/London"})
    s = app.create_schedule("report", trigger={
        "cron": "0 9 * * *", "timezone": "America/New_York",
        "calendar": {"holidays": "US", "business_day": "skip"}})
    run_until_idle(app, until=T0 + timedelta(days=days))
    hourly_ticks = _ticks(app, hourly.id)
    assert len(hourly_ticks) == days * 24  # London's DST changes neither adds nor drops one
    assert {t[1] for t in hourly_ticks} == {"fired"} and ran.count("hourly") == days * 24
    ticks = _ticks(app, s.id)
    assert len(ticks) == days  # every nominal day: fired or skipped, with the reason
    fired = [t for t in ticks if t[1] == "fired"]
    skipped = [t for t in ticks if t[1] == "skipped"]
    assert len(fired) == ran.count("daily") == days - len(skipped)
    assert all(t[2] and "calendar" in t[2] for t in skipped)
    new_year = datetime(2030, 1, 1, 14, 0, tzinfo=UTC)  # 09:00 EST on a holiday
    assert next(t for t in ticks if t[0] == new_year)[1] == "skipped"
    if days == 365:
        christmas = datetime(2030, 12, 25, 14, 0, tzinfo=UTC)
        assert next(t for t in ticks if t[0] == christmas)[1] == "skipped"
        assert 245 <= len(fired) <= 255


def test_dst_gap_moves_the_run_and_says_so(app: Hora, clock: FakeClock) -> None:
    _tasks(app)
    clock.set(datetime(2030, 3, 9, tzinfo=UTC))
    s = app.create_schedule("report", trigger={"cron": "30 2 * * *",
                                               "timezone": "America/New_York"})
    run_until_idle(app, until=datetime(2030, 3, 12, tzinfo=UTC))
    ticks = _ticks(app, s.id)
    # 2030-03-10 is spring-forward day in New York: 02:30 does not exist; cron's default
    # moves it to 03:00 EDT (07:00Z)
    by_day = {t[0].date(): t for t in ticks}
    gap_day = by_day[datetime(2030, 3, 10).date()]
    assert gap_day[0] == datetime(2030, 3, 10, 7, 0, tzinfo=UTC)
    assert gap_day[1] == "fired" and gap_day[2] and "dst_gap" in gap_day[2]


@pytest.mark.parametrize("policy,fired,skipped", [
    ("skip", 0, 5), ("run_once", 1, 4), ("run_all", 3, 2),
])
def test_misfire_policies_after_downtime(app: Hora, clock: FakeClock, policy: str, fired: int,
                                         skipped: int) -> None:
    _tasks(app)
    s = app.create_schedule("report", trigger={"cron": "0 * * * *", "timezone": "UTC"},
                            misfire=policy, misfire_grace=60, catchup_limit=3)
    clock.advance(timedelta(hours=5, minutes=30))  # nobody ran the scheduler meanwhile
    app.schedules.process_due()
    ticks = _ticks(app, s.id)
    assert len(ticks) == 5
    assert sum(t[1] == "fired" for t in ticks) == fired
    assert sum(t[1] == "skipped" for t in ticks) == skipped
    assert all("misfire" in (t[2] or "") for t in ticks if t[1] == "skipped")
    if policy == "run_once":
        assert ticks[-1][1] == "fired"  # the newest one runs
    assert app.get_schedule(s.id).next_fire_at == T0 + timedelta(hours=6)


@pytest.mark.parametrize("policy,expect", [
    ("allow", ["fired", "fired"]),
    ("skip", ["fired", "skipped"]),
    ("queue", ["fired", "skipped"]),
    ("cancel_previous", ["fired", "fired"]),
])
def test_overlap_policies(app: Hora, clock: FakeClock, policy: str, expect: list[str]) -> None:
    _tasks(app)
    s = app.create_schedule("report", trigger={"cron": "0 * * * *", "timezone": "UTC"},
                            overlap=policy)
    for _ in range(2):  # no worker runs: the first job is still waiting at the second tick
        clock.advance(timedelta(hours=1))
        app.schedules.process_due()
    ticks = _ticks(app, s.id)
    assert [t[1] for t in ticks] == expect
    first_job = app.get_job(ticks[0][3]) if ticks[0][3] else None
    assert first_job is not None
    if policy == "cancel_previous":
        assert first_job.state is JobState.CANCELLED
    else:
        assert first_job.state is JobState.SCHEDULED


def test_queue_allows_one_waiting_behind_a_running_one(app: Hora, clock: FakeClock) -> None:
    _tasks(app)
    s = app.create_schedule("report", trigger={"cron": "0 * * * *", "timezone": "UTC"},
                            overlap="queue")
    clock.advance(timedelta(hours=1))
    app.schedules.process_due()
    (_first,), _ = app.store.claim_jobs(owner="w", queues=["default"], tasks=None,
                                       now=clock.now(), lease_until=clock.now() + timedelta(
                                           hours=9), limit=1)
    for _ in range(2):
        clock.advance(timedelta(hours=1))
        app.schedules.process_due()
    assert [t[1] for t in _ticks(app, s.id)] == ["fired", "fired", "skipped"]


def test_pause_and_resume_record_what_was_skipped(app: Hora, clock: FakeClock) -> None:
    ran = _tasks(app)
    s = app.create_schedule("report", trigger={"cron": "0 * * * *", "timezone": "UTC"})
    run_until_idle(app, until=T0 + timedelta(hours=2))
    app.pause_schedule(s.id)
    run_until_idle(app, until=T0 + timedelta(hours=5))
    assert len(ran) == 2
    resumed = app.resume_schedule(s.id)
    assert resumed.state == "active" and resumed.next_fire_at == T0 + timedelta(hours=6)
    run_until_idle(app, until=T0 + timedelta(hours=7))
    ticks = _ticks(app, s.id)
    assert [t[1] for t in ticks] == ["fired", "fired", "skipped", "skipped", "skipped",
                                     "fired", "fired"]
    assert ticks[2][2] == "paused"


def test_editing_recomputes_the_future(app: Hora, clock: FakeClock) -> None:
    _tasks(app)
    s = app.create_schedule("report", trigger={"cron": "0 12 * * *", "timezone": "UTC"},
                            name="noon")
    assert s.next_fire_at == T0 + timedelta(hours=12)
    changed = app.update_schedule(s.id, trigger={"cron": "0 6 * * *", "timezone": "UTC"})
    assert changed.next_fire_at == T0 + timedelta(hours=6)
    assert changed.trigger == {"cron": "0 6 * * *", "timezone": "UTC"}
    assert app.list_schedules().items[0].id == s.id
    with pytest.raises(Conflict):
        app.create_schedule("report", trigger="0 1 * * *", name="noon")


def test_bad_triggers_are_refused_and_nothing_is_stored(app: Hora) -> None:
    for spec, message in [
        ({"cron": "0 0 32 * *", "timezone": "UTC"}, "day-of-month 32"),
        ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"at": "2020-01-01T00:00:00Z"}, "never fires"),
    ]:
        with pytest.raises(InvalidTrigger, match=message):
            app.create_schedule("report", trigger=spec)
    assert app.list_schedules().items == []


def test_trigger_now_and_delete(app: Hora) -> None:
    ran = _tasks(app)
    s = app.create_schedule("report", {"kind": "manual"}, trigger="0 0 1 1 *")
    job = app.trigger_schedule(s.id)
    assert job.schedule_id == s.id
    run_until_idle(app, until=T0 + timedelta(hours=1))
    assert ran == ["manual"]
    app.delete_schedule(s.id)
    with pytest.raises(NotFound):
        app.get_schedule(s.id)


@pytest.mark.timeout(600)
def test_two_schedulers_fire_every_occurrence_exactly_once(database_url: str,
                                                          clock: FakeClock) -> None:
    """Two scheduler instances (separate connections) race over a simulated day (a week on
    PostgreSQL with HORA_LONG_TESTS) of a minutely schedule: every minute fires once."""
    minutes = (7 if _postgres(database_url) and LONG else 1) * 24 * 60
    a, b = Hora(database_url, clock=clock), Hora(database_url, clock=clock)
    s = a.create_schedule("report", trigger={"cron": "* * * * *", "timezone": "UTC"})
    errors: list[BaseException] = []
    for _ in range(minutes):
        clock.advance(timedelta(minutes=1))
        threads = [threading.Thread(target=lambda h=h: _safe(h, errors)) for h in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    ticks = _ticks(a, s.id)
    assert [t[0] for t in ticks] == [T0 + timedelta(minutes=m) for m in range(1, minutes + 1)]
    assert {t[1] for t in ticks} == {"fired"}
    assert a.count_jobs() == {"scheduled": minutes}
    a.close()
    b.close()


def _safe(app: Hora, errors: list[BaseException]) -> None:
    try:
        app.schedules.process_due()
    except BaseException as e:
        errors.append(e)


def test_cancel_previous_catch_up_runs_only_the_newest(app: Hora, clock: FakeClock) -> None:
    _tasks(app)
    s = app.create_schedule("report", trigger={"cron": "0 * * * *", "timezone": "UTC"},
                            overlap="cancel_previous", misfire="run_all", catchup_limit=3)
    clock.advance(timedelta(hours=1))
    app.schedules.process_due()
    clock.advance(timedelta(hours=3, minutes=5))  # three more occurrences, all late
    app.schedules.process_due()
    ticks = _ticks(app, s.id)
    assert [t[1] for t in ticks] == ["fired", "skipped", "skipped", "fired"]
    assert "superseded" in (ticks[1][2] or "")
    assert app.get_job(ticks[0][3] or "").state is JobState.CANCELLED
    assert app.get_job(ticks[3][3] or "").state is JobState.SCHEDULED


def test_a_standalone_scheduler_fires_without_a_worker(app: Hora, clock: FakeClock) -> None:
    from hora.scheduler import Scheduler

    _tasks(app)
    app.create_schedule("report", trigger={"cron": "*/15 * * * *", "timezone": "UTC"},
                        misfire="run_all")  # all four fall due before the first pass
    app.create_schedule("report", trigger={"cron": "0 0 1 1 *", "timezone": "UTC"})
    scheduler = Scheduler(app, batch_size=1)
    clock.advance(timedelta(hours=1))
    assert scheduler.tick() == 4 and scheduler.fired == 4
    assert scheduler.tick() == 0
    assert app.count_jobs() == {"scheduled": 4}
