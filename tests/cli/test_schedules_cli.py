"""``hora schedules``: preview shape, create/list/show/pause/resume/trigger/ticks/delete."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hora import Hora
from hora.cli import cli
from hora.scheduler import SchedulePlan, fire_due_schedules


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ok_json(*args: str) -> Any:
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_preview_json_shape_across_the_spring_gap() -> None:
    data = ok_json("schedules", "preview", "--cron", "30 2 * * *", "--tz", "America/New_York",
                   "--after", "2027-03-13", "-n", "3")
    occ = data["occurrences"]
    assert [o["at"] for o in occ] == ["2027-03-13T07:30:00Z", "2027-03-14T07:00:00Z",
                                      "2027-03-15T06:30:00Z"]
    assert occ[1]["local"] == "2027-03-14T03:00:00-04:00"
    assert "dst_gap" in occ[1]["notes"][0] and occ[0]["skipped"] is None


def test_preview_with_a_holiday_calendar() -> None:
    data = ok_json("schedules", "preview", "--cron", "0 9 * * *", "--tz", "America/New_York",
                   "--after", "2027-11-24T12:00:00", "-n", "2", "--calendar", "US",
                   "--business-day", "next")
    moved, duplicate = data["occurrences"]
    # 2027-11-25 is Thanksgiving: moved to Friday the 26th at 09:00 local, where Friday's
    # own run already is: that one is recorded as skipped, not fired twice
    assert moved["local"] == "2027-11-26T09:00:00-05:00" and "Thanksgiving" in moved["notes"][0]
    assert duplicate["skipped"] and duplicate["at"] == moved["at"]


def test_bad_trigger_is_one_line_and_exit_2() -> None:
    code, _, err = run("schedules", "preview", "--cron", "0 0 32 * *")
    assert code == 2 and err.strip() == "error: trigger.cron: day-of-month 32 is out of range 1-31"
    code, _, err = run("schedules", "preview", "--cron", "* * * * *", "--tz", "Nowhere/City")
    assert code == 2 and "Nowhere/City" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("schedules", "preview")
    assert code == 2 and "exactly one of" in err


def test_schedule_lifecycle(tmp_path: Path) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'x.db'}"]
    s = ok_json("schedules", "create", "report", "--cron", "0 * * * *", "-p", '{"k": 1}',
                "--name", "hourly", *db)
    assert s["state"] == "active" and s["trigger"] == {"cron": "0 * * * *", "timezone": "UTC"}
    assert ok_json("schedules", "list", *db)["items"][0]["id"] == s["id"]
    shown = ok_json("schedules", "show", s["id"], *db)
    assert len(shown["occurrences"]) == 5
    changed = ok_json("schedules", "update", s["id"], "--cron", "30 * * * *", "--overlap",
                      "skip", *db)
    assert changed["trigger"]["cron"] == "30 * * * *" and changed["overlap_policy"] == "skip"
    code, _, err = run("schedules", "update", s["id"], *db)
    assert code == 2 and "nothing to change" in err
    assert ok_json("schedules", "pause", s["id"], *db)["state"] == "paused"
    assert ok_json("schedules", "resume", s["id"], *db)["state"] == "active"
    job = ok_json("schedules", "trigger", s["id"], *db)["job_id"]
    assert ok_json("jobs", "show", job, *db)["payload"] == {"k": 1}
    assert ok_json("schedules", "ticks", s["id"], *db)["items"] == []
    code, _, err = run("schedules", "create", "report", "--cron", "0 * * * *", "--name",
                       "hourly", *db)
    assert code == 2 and "already exists" in err
    code, out, _ = run("schedules", "delete", s["id"], *db)
    assert code == 0 and "deleted" in out
    code, _, err = run("schedules", "show", s["id"], *db)
    assert code == 2 and "not found" in err


def test_show_displays_why_a_schedule_cannot_be_evaluated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    s = ok_json("schedules", "create", "report", "--cron", "* * * * *", "--database-url", url)
    app = Hora(url)
    try:  # a trigger stored by an older hora, which today's checks refuse
        app.store.update_schedule(replace(app.get_schedule(s["id"]), trigger={
            "rrule": "DTSTART:20260101T000000Z\nRRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;"
                     "BYDAY=MO"}))
        _, processed = fire_due_schedules(
            app.store, app.clock.now() + timedelta(minutes=2), 10,
            lambda schedule, active: SchedulePlan(cursor=schedule.cursor,
                                                  error="InvalidTrigger: too sparse"))
        assert processed == 1
    finally:
        app.close()
    shown = ok_json("schedules", "show", s["id"], "--database-url", url)
    assert shown["error"] == "InvalidTrigger: too sparse" and shown["occurrences"] == []
    code, out, _ = run("schedules", "show", s["id"], "--database-url", url)
    assert code == 0 and "too sparse" in out


def test_extreme_trigger_values_are_one_line_and_exit_2() -> None:
    for args, field in ((("--at", "9999-12-31T23:59:59-01:00"), "at"),
                        (("--every", "P1000000000D", "--start", "2026-01-01T00:00:00Z"),
                         "every"),
                        (("--rrule", "DTSTART:00010101T000000Z\nRRULE:FREQ=YEARLY"), "DTSTART")):
        code, _, err = run("schedules", "preview", *args)
        assert code == 2 and field in err and len(err.strip().splitlines()) == 1, err
