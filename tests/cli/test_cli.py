"""The ``hora`` command, end to end: the real console script against a temp SQLite file.

Workers run with ``--until-idle``, so no test waits on the wall clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hora.cli import BadInput, cli, parse_duration, parse_instant

REPO = Path(__file__).resolve().parents[2]
HORA = str(Path(sys.executable).with_name("hora"))


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


class Hora:
    """Runs ``hora`` against one database: in-process through typer's CliRunner (fast), or
    with ``real=True`` as the installed console script in a subprocess."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "x.db"
        self.url = f"sqlite:///{self.path}"
        self.cwd = tmp_path
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        self.env.pop("HORA_DATABASE_URL", None)

    def __call__(self, *args: str, db: bool = True, real: bool = False) -> Ran:
        argv = [*args, *(["--database-url", self.url] if db else [])]
        if real:
            proc = subprocess.run([HORA, *argv], capture_output=True, text=True, cwd=self.cwd,
                                  env=self.env, timeout=60, check=False)
            return Ran(proc.returncode, proc.stdout, proc.stderr)
        result = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, db: bool = True, real: bool = False) -> Ran:
        ran = self(*args, db=db, real=real)
        assert ran.code == 0, ran.stderr
        return ran

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def jobs(self, *args: str) -> list[dict[str, Any]]:
        return list(self.json("jobs", "list", "--limit", "1000", *args)["items"])


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def assert_one_line_error(proc: Ran, *needles: str) -> None:
    assert proc.code == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]
    assert proc.stdout == ""


def parse(ts: str) -> datetime:
    dt = datetime.fromisoformat(ts)
    assert dt.utcoffset() == timedelta(0), ts
    return dt


# -- enqueue, list, show, cancel --------------------------------------------------------------


def test_enqueue_then_list_and_show_as_json(hora: Hora) -> None:
    job = hora.json("enqueue", "billing.charge", "--payload", '{"order": "A-1", "cents": 1250}',
                    "--at", "2030-01-31T09:00:00+01:00", "--key", "charge-A-1",
                    "--queue", "billing", "--priority", "3", "--correlation-id", "corr-1",
                    "--max-attempts", "4")
    assert job["task"] == "billing.charge"
    assert job["state"] == "scheduled"
    assert job["payload"] == {"order": "A-1", "cents": 1250}
    assert parse(job["due_at"]) == datetime(2030, 1, 31, 8, 0, tzinfo=UTC)
    assert (job["queue"], job["priority"], job["max_attempts"]) == ("billing", 3, 4)
    assert (job["idempotency_key"], job["correlation_id"]) == ("charge-A-1", "corr-1")

    listed = hora.json("jobs", "list")
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    assert listed["next_cursor"] is None

    shown = hora.json("jobs", "show", job["id"])
    assert shown["id"] == job["id"]
    assert shown["attempts"] == []
    assert [(e["from_state"], e["to_state"]) for e in shown["events"]] == [(None, "scheduled")]
    parse(shown["created_at"])

    human = hora.ok("jobs", "show", job["id"]).stdout
    assert job["id"] in human and "billing.charge" in human and "charge-A-1" in human


def test_enqueue_delay_forms(hora: Hora) -> None:
    before = datetime.now(UTC)
    job = hora.json("enqueue", "t", "--in", "2h")
    due = parse(job["due_at"]) - before
    assert timedelta(hours=2) <= due < timedelta(hours=2, minutes=1)
    now_job = hora.json("enqueue", "t")
    assert parse(now_job["due_at"]) - before < timedelta(minutes=1)


def test_list_filters_and_cursor(hora: Hora) -> None:
    ids = [hora.json("enqueue", "a.task", "-p", json.dumps({"n": n}))["id"] for n in range(3)]
    other = hora.json("enqueue", "b.task", "--correlation-id", "c-9")["id"]
    hora.ok("jobs", "cancel", ids[0])

    assert [j["id"] for j in hora.jobs("--task", "a.task")] == ids[::-1]
    assert [j["id"] for j in hora.jobs("--correlation-id", "c-9")] == [other]
    assert [j["id"] for j in hora.jobs("--state", "cancelled")] == [ids[0]]
    both = hora.jobs("--state", "cancelled", "--state", "scheduled")
    assert len(both) == 4
    assert hora.jobs("--since", "2999-01-01T00:00:00Z") == []
    assert len(hora.jobs("--until", "2999-01-01T00:00:00+02:00")) == 4

    first = hora.json("jobs", "list", "--limit", "3")
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = hora.json("jobs", "list", "--limit", "3", "--cursor", first["next_cursor"])
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert "--cursor" in hora.ok("jobs", "list", "--limit", "3").stdout


def test_cancel(hora: Hora) -> None:
    job_id = hora.json("enqueue", "t", "--in", "1d")["id"]
    cancelled = hora.json("jobs", "cancel", job_id, "--reason", "customer left")
    assert cancelled["state"] == "cancelled"
    assert cancelled["state_reason"] == "customer left"
    assert hora.json("jobs", "show", job_id)["state"] == "cancelled"
    # a second cancel is a conflict, not a silent success
    assert_one_line_error(hora("jobs", "cancel", job_id), job_id, "cancelled")


# -- errors: one line, exit 2, nothing written ------------------------------------------------


@pytest.mark.parametrize(("args", "needle"), [
    (["--payload", "{not json"], "not valid JSON"),
    (["--payload", "[1, 2]"], "JSON object"),
    (["--at", "2030-01-31T09:00:00"], "time zone"),
    (["--at", "next tuesday"], "ISO-8601"),
    (["--in", "5 fortnights"], "duration"),
    (["--in", "-5"], "duration"),
    (["--in", "5m", "--at", "2030-01-31T09:00:00Z"], "not both"),
    (["--max-attempts", "0"], "max_attempts"),
])
def test_bad_enqueue_input_writes_nothing(hora: Hora, args: list[str], needle: str) -> None:
    assert_one_line_error(hora("enqueue", "t", *args, real=True), needle)
    # Refused before the database was opened: the file does not even exist.
    assert not hora.path.exists()


def test_unknown_state_and_naive_since_are_errors(hora: Hora) -> None:
    hora.ok("enqueue", "t")
    assert_one_line_error(hora("jobs", "list", "--state", "bogus"), "bogus", "scheduled")
    assert_one_line_error(hora("jobs", "list", "--since", "2030-01-01"), "time zone")
    assert_one_line_error(hora("jobs", "list", "--limit", "0"), "limit")


@pytest.mark.parametrize("command", [
    ["jobs", "show"], ["jobs", "cancel"], ["dlq", "show"], ["dlq", "replay"], ["dlq", "discard"],
])
def test_unknown_job_id(hora: Hora, command: list[str]) -> None:
    job_id = hora.json("enqueue", "t")["id"]
    missing = "01890000-0000-7000-8000-000000000000"
    assert_one_line_error(hora(*command, missing), missing, "not found")
    assert [(j["id"], j["state"]) for j in hora.jobs()] == [(job_id, "scheduled")]


def test_idempotency_key(hora: Hora) -> None:
    first = hora.json("enqueue", "t", "-p", '{"a": 1}', "--key", "k1")
    again = hora.json("enqueue", "t", "-p", '{"a": 1}', "--key", "k1")
    assert again["id"] == first["id"]
    assert_one_line_error(hora("enqueue", "t", "-p", '{"a": 2}', "--key", "k1", real=True),
                          "k1", first["id"])
    jobs = hora.jobs()
    assert [(j["id"], j["payload"]) for j in jobs] == [(first["id"], {"a": 1})]


def test_usage_errors_exit_2(hora: Hora) -> None:
    proc = hora("jobs", "list", "--no-such-option", real=True)
    assert proc.code == 2
    assert "No such option" in proc.stderr
    assert hora("enqueue", db=False).code == 2  # missing TASK


# -- worker, DLQ ------------------------------------------------------------------------------


def run_worker(hora: Hora) -> None:
    proc = hora.ok("worker", "--app", "tests.cli.failing_app:app", "--until-idle",
                   "--poll-interval", "0.05", real=True)
    assert "worker" in proc.stderr and "stopped" in proc.stderr  # INFO logs on stderr


def test_worker_runs_jobs_and_buries_failures(hora: Hora) -> None:
    ok = hora.json("enqueue", "cli.ok", "-p", '{"n": 21}')["id"]
    boom = hora.json("enqueue", "cli.boom", "-p", '{"n": 1}', "--max-attempts", "2")["id"]
    run_worker(hora)

    done = hora.json("jobs", "show", ok)
    assert (done["state"], done["result"], done["attempt"]) == ("succeeded", 42, 1)

    dead = hora.json("dlq", "show", boom)
    assert dead["state"] == "dead" and dead["attempt"] == 2
    assert [a["outcome"] for a in dead["attempts"]] == ["failed", "failed"]
    for attempt in dead["attempts"]:
        assert attempt["error"]["type"] == "RuntimeError"
        assert attempt["error"]["message"] == "boom 1"
        assert "RuntimeError: boom 1" in attempt["error"]["traceback"]
    assert [e["to_state"] for e in dead["events"]] == [
        "scheduled", "running", "retrying", "running", "dead"]
    assert dead["last_error"]["message"] == "boom 1"

    human = hora.ok("dlq", "show", boom).stdout
    assert "Traceback" in human and "boom 1" in human
    assert_one_line_error(hora("dlq", "show", ok), ok, "succeeded")


def test_worker_settings_from_the_environment(hora: Hora) -> None:
    elsewhere = hora.json("enqueue", "cli.ok", "-p", '{"n": 2}', "--queue", "other")["id"]
    hora.env.update(HORA_APP="tests.cli.failing_app:app", HORA_QUEUES="other",
                    HORA_CONCURRENCY="3", HORA_POLL_INTERVAL="0.05", HORA_LOG_LEVEL="DEBUG")
    proc = hora.ok("worker", "--until-idle", real=True)
    assert "concurrency=3" in proc.stderr and "('other',)" in proc.stderr
    assert hora.json("jobs", "show", elsewhere)["state"] == "succeeded"


def test_dlq_list_replay_discard(hora: Hora) -> None:
    ids = [hora.json("enqueue", "cli.boom", "-p", json.dumps({"n": n}),
                     "--max-attempts", "2")["id"] for n in range(4)]
    other = hora.json("enqueue", "cli.boom", "-p", '{"n": 9}', "--max-attempts", "1",
                      "--queue", "other")["id"]
    run_worker(hora)  # only the default queue: `other` stays scheduled
    assert hora.json("jobs", "show", other)["state"] == "scheduled"

    listed = hora.json("dlq", "list")
    assert sorted(j["id"] for j in listed["items"]) == sorted(ids)
    assert all(j["last_error"]["type"] == "RuntimeError" for j in listed["items"])
    page = hora.json("dlq", "list", "--limit", "3")
    assert len(page["items"]) == 3 and page["next_cursor"]
    assert "RuntimeError: boom" in hora.ok("dlq", "list").stdout

    replayed = hora.json("dlq", "replay", ids[0])
    assert replayed["replayed"] == 1 and replayed["ids"] == [ids[0]]
    new_id = replayed["new_ids"][0]
    old = hora.json("jobs", "show", ids[0])
    assert (old["state"], old["replayed_as"]) == ("replayed", new_id)
    new = hora.json("jobs", "show", new_id)
    assert (new["state"], new["replay_of"], new["attempt"]) == ("scheduled", ids[0], 0)
    # replaying it again is a conflict, and changes nothing
    assert_one_line_error(hora("dlq", "replay", ids[0]), ids[0])

    discarded = hora.json("dlq", "discard", ids[1])
    assert discarded == {"discarded": 1, "skipped": 0, "ids": [ids[1]]}
    assert hora.json("jobs", "show", ids[1])["state"] == "discarded"

    assert_one_line_error(hora("dlq", "replay"), "--all")
    assert_one_line_error(hora("dlq", "replay", ids[2], "--all"), "not both")
    assert_one_line_error(hora("dlq", "discard", ids[2], "--task", "cli.boom"), "--all")
    # --all with a filter that matches nothing is not an error
    assert hora.json("dlq", "discard", "--all", "--task", "no.such")["discarded"] == 0

    out = hora.ok("dlq", "replay", "--all", "--task", "cli.boom", "--yes").stdout
    assert "replayed 2 job(s)" in out
    states = {j["id"]: j["state"] for j in hora.jobs()}
    assert states[ids[2]] == states[ids[3]] == "replayed"

    run_worker(hora)  # the three replays die again
    assert len(hora.json("dlq", "list")["items"]) == 3
    gone = hora.json("dlq", "discard", "--all", "--yes")
    assert gone["discarded"] == 3 and len(gone["ids"]) == 3
    assert hora.json("dlq", "list")["items"] == []
    assert "no dead jobs" in hora.ok("dlq", "list").stdout


def test_worker_stops_on_sigterm(hora: Hora) -> None:
    argv = [HORA, "worker", "--app", "tests.cli.failing_app:app", "--database-url", hora.url]
    with subprocess.Popen(argv, cwd=hora.cwd, env=hora.env, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the worker logs that it started
        assert "started" in first, first
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    assert "SIGTERM" in rest and "stopped" in rest


@pytest.mark.parametrize(("ref", "needle"), [
    ("tests.cli.no_such_module:app", "cannot import"),
    ("tests.cli.failing_app:missing", "no attribute"),
    ("tests.cli.failing_app:not_an_app", "not a hora.Hora"),
    ("tests.cli.failing_app", "module:attr"),
])
def test_worker_app_errors(hora: Hora, ref: str, needle: str) -> None:
    assert_one_line_error(hora("worker", "--app", ref, "--until-idle", real=True), needle)


# -- migrate, demo ----------------------------------------------------------------------------


def test_migrate_twice(hora: Hora) -> None:
    first = hora.ok("migrate", real=True).stdout
    assert "applied migration(s): 0001" in first
    assert "up to date" in hora.ok("migrate").stdout
    assert hora.json("migrate") == {"applied": []}
    assert_one_line_error(hora("migrate", "--database-url", "mysql://nope", db=False), "mysql")


def test_demo(hora: Hora) -> None:
    proc = hora.ok("demo", "--jobs", "2", real=True)
    out = proc.stdout
    assert "dead-letter queue" in out and "demo.always_fails" in out
    assert "succeeded" in out and "dead" in out
    assert f"hora dlq list --database-url {hora.url}" in out

    jobs = hora.jobs()
    states = sorted((j["task"], j["state"], j["attempt"]) for j in jobs)
    assert states == [
        ("demo.always_fails", "dead", 2),
        ("demo.flaky", "succeeded", 2),
        ("demo.greet", "succeeded", 1),
        ("demo.greet", "succeeded", 1),
        ("demo.remind", "succeeded", 1),
    ]
    assert len({j["correlation_id"] for j in jobs}) == 1
    remind = next(j for j in jobs if j["task"] == "demo.remind")
    assert parse(remind["started_at"]) >= parse(remind["due_at"])  # started on time, not early


# -- input parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("1.5", 1.5), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400),
    ("1h30m", 5400), (" 10S ", 10),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "-1", "nan", "inf", "1h 30m", "5m-"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(BadInput):
        parse_duration(text)


def test_parse_instant() -> None:
    assert parse_instant("2030-06-01T12:00:00+02:00", "--at") == datetime(
        2030, 6, 1, 10, tzinfo=UTC)
    assert parse_instant("2030-06-01T12:00:00Z", "--at").tzinfo is UTC
    with pytest.raises(BadInput, match="time zone"):
        parse_instant("2030-06-01T12:00:00", "--at")
