"""``hora jobs reschedule``, ``hora jobs run-now`` and bulk ``hora jobs cancel``: what they
change, and bad input as one line with exit 2 and nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.test_cli import Hora, assert_one_line_error, parse


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def test_reschedule_then_run_now(hora: Hora) -> None:
    job_id = hora.json("enqueue", "t", "--in", "1d")["id"]
    moved = hora.json("jobs", "reschedule", job_id, "--at", "2031-01-31T09:00:00+01:00")
    assert parse(moved["due_at"]) == datetime(2031, 1, 31, 8, tzinfo=UTC)
    assert moved["state_reason"] == "rescheduled to 2031-01-31T08:00:00.000Z by request"
    before = datetime.now(UTC)
    later = hora.json("jobs", "reschedule", job_id, "--in", "2h")
    assert parse(later["due_at"]) >= before + timedelta(hours=2)
    ran = hora.ok("jobs", "reschedule", job_id, "--delay", "90s")
    assert ran.stdout.startswith(f"rescheduled job {job_id}: scheduled for ")
    now = hora.ok("jobs", "run-now", job_id)
    assert now.stdout.strip() == f"job {job_id} is due now"
    shown = hora.json("jobs", "show", job_id)
    assert parse(shown["due_at"]) <= datetime.now(UTC)
    assert [e["reason"] for e in shown["events"]][-1] == "run now by request"
    hora.ok("jobs", "cancel", job_id)
    assert_one_line_error(hora("jobs", "run-now", job_id), job_id, "cancelled")
    assert_one_line_error(hora("jobs", "reschedule", job_id, "--in", "1h"), job_id,
                          "cancelled")


@pytest.mark.parametrize(("args", "needle"), [
    ([], "--at or --in"),
    (["--at", "2031-01-01T00:00:00Z", "--in", "1h"], "--at or --in"),
    (["--at", "2031-01-01T00:00:00"], "time zone"),
    (["--at", "soon"], "ISO-8601"),
    (["--in", "-5"], "duration"),
    (["--in", "9999999d"], "delay"),
])
def test_reschedule_bad_input_changes_nothing(hora: Hora, args: list[str],
                                              needle: str) -> None:
    job = hora.json("enqueue", "t", "--in", "1d")
    assert_one_line_error(hora("jobs", "reschedule", job["id"], *args), needle)
    assert hora.json("jobs", "show", job["id"])["due_at"] == job["due_at"]


def test_unknown_ids(hora: Hora) -> None:
    missing = "01890000-0000-7000-8000-000000000000"
    assert_one_line_error(hora("jobs", "run-now", missing), missing, "not found")
    assert_one_line_error(hora("jobs", "reschedule", missing, "--in", "1h"), missing,
                          "not found")


def test_bulk_cancel_by_filter(hora: Hora) -> None:
    mine = [hora.json("enqueue", "t.step", "--correlation-id", "onboarding-u42", "--in",
                      f"{d}d")["id"] for d in (1, 2, 3)]
    other = hora.json("enqueue", "t.step", "--correlation-id", "onboarding-u43")["id"]
    queued = hora.json("enqueue", "t.other", "--queue", "mail")["id"]
    ran = hora.ok("jobs", "cancel", "--correlation-id", "onboarding-u42",
                  "--reason", "user opted out")
    assert ran.stdout.strip() == "cancelled 3 jobs"
    states = {j["id"]: (j["state"], j["state_reason"]) for j in hora.jobs()}
    assert all(states[i] == ("cancelled", "user opted out") for i in mine)
    assert states[other][0] == states[queued][0] == "scheduled"
    assert hora.json("jobs", "cancel", "--queue", "mail", "--task", "t.step") == {
        "cancelled": 0}
    assert hora.json("jobs", "cancel", "--queue", "mail") == {"cancelled": 1}
    assert_one_line_error(hora("jobs", "cancel", "--all"), "add --yes", "1 waiting job")
    assert hora.ok("jobs", "cancel", "--all", "--yes").stdout.strip() == "cancelled 1 job"
    assert hora.ok("jobs", "cancel", "--all").stdout.strip() == "cancelled 0 jobs"
    assert {j["state"] for j in hora.jobs()} == {"cancelled"}


@pytest.mark.parametrize(("args", "needle"), [
    ([], "give a job id, or filters"),
    (["--include-running"], "give a job id, or filters"),
    (["JOB", "--queue", "mail"], "not both"),
    (["JOB", "--include-running"], "not both"),
    (["--created-before", "2031-01-01"], "time zone"),
    (["--queue", ""], "queue"),
])
def test_bulk_cancel_bad_input_cancels_nothing(hora: Hora, args: list[str],
                                               needle: str) -> None:
    job_id = hora.json("enqueue", "t", "--queue", "mail")["id"]
    argv = [job_id if a == "JOB" else a for a in args]
    assert_one_line_error(hora("jobs", "cancel", *argv), needle)
    assert hora.json("jobs", "show", job_id)["state"] == "scheduled"
