"""Schedules declared in code: ``app.schedules.ensure`` upserts by name, ``@app.schedule``
declares, and worker start-up applies the declarations -- on both stores, on the fake clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from hora import FakeClock, Hora
from hora.errors import InvalidTrigger, NotFound
from hora.testing import run_until_idle

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _report_task(app: Hora) -> list[str]:
    ran: list[str] = []

    @app.task(name="report")
    def report(kind: str = "daily") -> None:
        ran.append(kind)

    return ran


def test_ensure_creates_then_leaves_alone_then_updates(app: Hora, clock: FakeClock) -> None:
    _report_task(app)
    s, outcome = app.schedules.ensure("report", {"kind": "hourly"}, name="reports",
                                      trigger={"cron": "0 * * * *"}, priority=3)
    assert outcome == "created" and s.name == "reports" and s.priority == 3
    assert s.next_fire_at == T0 + timedelta(hours=1)

    clock.advance(timedelta(minutes=10))
    again = app.schedules.ensure("report", {"kind": "hourly"}, name="reports",
                                 trigger={"cron": "0 * * * *"}, priority=3)
    assert again.outcome == "unchanged"
    # Nothing written: the same version and the same updated_at as the first call left.
    assert again.schedule.version == s.version and again.schedule.updated_at == s.updated_at

    changed = app.schedules.ensure("report", {"kind": "hourly"}, name="reports",
                                   trigger={"cron": "30 * * * *"}, priority=3)
    assert changed.outcome == "updated" and changed.schedule.id == s.id
    assert changed.schedule.trigger == {"cron": "30 * * * *"}
    assert changed.schedule.version > s.version
    assert changed.schedule.updated_at == T0 + timedelta(minutes=10)
    # The future is recomputed from now, as an edit does.
    assert changed.schedule.next_fire_at == T0 + timedelta(minutes=30)
    options = app.schedules.ensure("report", {"kind": "weekly"}, name="reports",
                                   trigger={"cron": "30 * * * *"}, priority=3, queue="slow")
    assert options.outcome == "updated"
    assert (options.schedule.payload, options.schedule.queue) == ({"kind": "weekly"}, "slow")
    assert len(app.list_schedules().items) == 1


def test_ensure_keeps_a_pause_made_by_hand(app: Hora) -> None:
    _report_task(app)
    s, _ = app.schedules.ensure("report", name="r", trigger="0 9 * * *")
    app.pause_schedule(s.id)
    after = app.schedules.ensure("report", name="r", trigger="0 9 * * *")
    assert after.outcome == "unchanged" and after.schedule.state == "paused"


def test_invalid_ensure_writes_nothing(app: Hora) -> None:
    _report_task(app)
    s, _ = app.schedules.ensure("report", name="r", trigger="0 9 * * *")
    with pytest.raises(InvalidTrigger):
        app.schedules.ensure("report", name="r", trigger={"cron": "61 * * * *"})
    assert app.get_schedule(s.id).version == s.version
    with pytest.raises(InvalidTrigger):
        app.schedules.ensure("report", name="new", trigger={"cron": "61 * * * *"})
    with pytest.raises(NotFound):
        app.schedules.get_schedule_by_name("new")


def test_concurrent_ensure_ends_with_one_schedule(database_url: str) -> None:
    """Two processes (here threads with their own app) ensure the same name at once."""
    apps = [Hora(database_url, clock=FakeClock(T0)) for _ in range(2)]
    try:
        for a in apps:
            a.migrate()
        barrier = threading.Barrier(2)
        outcomes: list[str] = []
        errors: list[BaseException] = []

        def go(a: Hora) -> None:
            try:
                barrier.wait()
                outcomes.append(a.schedules.ensure("report", name="nightly",
                                                   trigger="0 3 * * *").outcome)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=go, args=(a,)) for a in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert sorted(outcomes) == ["created", "unchanged"]
        assert [s.name for s in apps[0].list_schedules().items] == ["nightly"]
    finally:
        for a in apps:
            a.close()


def test_declared_schedule_is_applied_when_a_worker_starts(app: Hora) -> None:
    ran: list[str] = []

    @app.schedule(cron="0 * * * *", name="hourly-report", payload={"kind": "hourly"})
    @app.task(name="report")
    def report(kind: str) -> None:
        ran.append(kind)

    @app.schedule(every=timedelta(minutes=30))
    def ping() -> None:
        ran.append("ping")

    with pytest.raises(NotFound):  # declaring writes nothing
        app.schedules.get_schedule_by_name("hourly-report")
    run_until_idle(app, until=T0 + timedelta(hours=2))
    assert ran.count("hourly") == 2 and ran.count("ping") == 4
    ping_name = f"{ping.name}"
    assert app.schedules.get_schedule_by_name(ping_name).task == ping.name
    # A second start-up with the same code changes nothing.
    report_again = app.schedules.apply_declared()
    assert sorted(report_again.unchanged) == sorted(["hourly-report", ping_name])
    assert report_again.created == report_again.updated == report_again.removed == []


def test_removed_from_code_is_reported_then_paused(database_url: str) -> None:
    first = Hora(database_url, clock=FakeClock(T0))
    try:
        @first.schedule(cron="0 9 * * *", name="morning")
        @first.task(name="morning")
        def morning() -> None: ...

        @first.schedule(cron="0 18 * * *", name="evening")
        @first.task(name="evening")
        def evening() -> None: ...

        created = first.schedules.apply_declared()
        assert sorted(created.created) == ["evening", "morning"]
        by_hand = first.create_schedule("evening", trigger="0 12 * * *", name="by-hand")
    finally:
        first.close()

    second = Hora(database_url, clock=FakeClock(T0))  # the next deploy: "evening" is gone
    try:
        @second.schedule(cron="0 9 * * *", name="morning")
        @second.task(name="morning")
        def morning2() -> None: ...

        reported = second.schedules.apply_declared()
        assert reported.unchanged == ["morning"] and reported.removed == ["evening"]
        assert reported.paused == []
        assert second.schedules.get_schedule_by_name("evening").state == "active"

        pruned = second.schedules.apply_declared(prune="pause")
        assert pruned.removed == ["evening"] and pruned.paused == ["evening"]
        assert second.schedules.get_schedule_by_name("evening").state == "paused"
        # A schedule made by hand is never the code's to report or pause.
        assert second.get_schedule(by_hand.id).state == "active"
        # Deleting a removed schedule ends the reports about it.
        second.delete_schedule(second.schedules.get_schedule_by_name("evening").id)
        assert second.schedules.apply_declared().removed == []
    finally:
        second.close()


def test_schedule_decorator_refuses_ambiguous_triggers(app: Hora) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        app.schedule(cron="0 * * * *", every="PT1H")
    with pytest.raises(ValueError, match="exactly one"):
        app.schedule(name="x")

    @app.schedule(cron="0 * * * *", name="dup")
    def one() -> None: ...

    with pytest.raises(ValueError, match="already declared"):
        @app.schedule(cron="0 * * * *", name="dup")
        def two() -> None: ...


def test_serve_applies_declared_schedules_at_start(sqlite_url: str) -> None:
    """``hora serve --app`` start-up (here a scheduler-only node, which runs no worker)."""
    import asyncio
    import os
    import signal

    from hora.serve import ServeOptions, serve

    app = Hora(sqlite_url)  # the system clock: serve's loops sleep on it
    try:
        @app.schedule(cron="0 9 * * *", name="morning")
        @app.task(name="morning")
        def morning() -> None: ...

        seen: list[str] = []

        def ready(_port: int) -> None:
            seen.append(app.schedules.get_schedule_by_name("morning").name or "")
            os.kill(os.getpid(), signal.SIGTERM)  # ends serve() through its own handler

        asyncio.run(serve(app, ServeOptions(roles=frozenset({"scheduler"}), on_ready=ready)))
        assert seen == ["morning"]
    finally:
        app.close()
