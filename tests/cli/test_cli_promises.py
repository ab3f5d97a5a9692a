"""What the README promises of the ``hora`` command (issue #11, item 7): read commands never
create a database, an unreachable PostgreSQL fails fast in one line, ``hora serve`` checks
its port first, ``--version``, shell completion, bad cursors, confirmation of bulk
destructive commands, ``hora tenants show``. Each promise runs the real console script once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hora import __version__
from hora.cli import cli, dlq
from tests.cli.test_cli import HORA, Hora, assert_one_line_error, run_worker

READ_COMMANDS = [
    ["jobs", "list"], ["jobs", "show", "j1"], ["dlq", "list"], ["dlq", "show", "j1"],
    ["schedules", "list"], ["schedules", "show", "s1"], ["schedules", "ticks", "s1"],
    ["workflows", "list"], ["workflows", "show", "w1"], ["workflows", "approvals"],
    ["tenants", "list"], ["tenants", "show", "t1"], ["keys", "list"],
]


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


# -- read commands never create a database -------------------------------------------------


def test_jobs_list_in_the_wrong_directory_names_the_missing_file(hora: Hora) -> None:
    proc = hora("jobs", "list", db=False, real=True)  # the default: ./hora.db
    assert_one_line_error(proc, str(hora.cwd / "hora.db"), "no database")
    assert list(hora.cwd.iterdir()) == []


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_read_commands_refuse_a_missing_sqlite_file(hora: Hora, args: list[str]) -> None:
    assert_one_line_error(hora(*args), str(hora.path))
    assert not hora.path.exists()


def test_write_commands_still_create_the_database(hora: Hora) -> None:
    hora.ok("enqueue", "cli.ok", "-p", '{"n": 1}')
    assert hora.path.exists()
    assert len(hora.jobs()) == 1
    other = Hora(hora.cwd / "m")
    other.cwd.mkdir()
    hora.ok("migrate", "--database-url", other.url, db=False)
    assert other.path.exists()


# -- an unreachable PostgreSQL fails fast, in one line ------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_with_url(hora: Hora, url: str, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                                float]:
    start = time.monotonic()
    proc = subprocess.run([HORA, *args, "--database-url", url], capture_output=True, text=True,
                          cwd=hora.cwd, env=hora.env, timeout=60, check=False)
    return proc, time.monotonic() - start


@pytest.mark.parametrize("args", [["jobs", "list"], ["enqueue", "cli.ok"], ["migrate"],
                                  ["serve", "--port", "0"], ["demo"],
                                  ["worker", "--app", "tests.cli.failing_app:app"]],
                         ids=" ".join)
def test_nothing_listening_fails_within_seconds_in_one_line(hora: Hora,
                                                            args: list[str]) -> None:
    port = closed_port()
    proc, took = run_with_url(hora, f"postgresql://postgres@127.0.0.1:{port}/hora", *args)
    assert took < 5
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: cannot connect to PostgreSQL at "
                                   f"127.0.0.1:{port}/hora: Connection refused")
    assert "admin" not in proc.stdout


def test_a_missing_postgres_database_fails_in_one_line(hora: Hora) -> None:
    url = os.environ.get("HORA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HORA_TEST_POSTGRES_URL is not set")
    base, _, _ = url.rpartition("/")
    proc, took = run_with_url(hora, f"{base}/hora_no_such_db", "jobs", "list")
    assert took < 5
    assert proc.returncode == 2, proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("error: cannot connect to PostgreSQL at ")
    assert line.endswith('/hora_no_such_db: database "hora_no_such_db" does not exist')


def test_a_reachable_postgres_passes_the_check(hora: Hora) -> None:
    url = os.environ.get("HORA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HORA_TEST_POSTGRES_URL is not set")
    proc, _ = run_with_url(hora, url, "jobs", "list", "--limit", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "items" in json.loads(proc.stdout)


def test_an_unknown_host_fails_in_one_line(hora: Hora) -> None:
    proc = hora("jobs", "list", "--database-url", "postgresql://u@no-such-host.invalid/db",
                db=False)
    assert_one_line_error(proc, "cannot connect to PostgreSQL at no-such-host.invalid:5432/db",
                          "no-such-host.invalid")


# -- hora serve checks its port before touching the store ---------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_serve_on_a_taken_port_creates_no_database_and_prints_no_key(
        hora: Hora, taken_port: int) -> None:
    proc = hora("serve", "--port", str(taken_port), real=True)
    assert_one_line_error(proc, f"cannot listen on 127.0.0.1:{taken_port}")
    assert proc.stdout == ""
    assert not hora.path.exists()


# -- --version and shell completion -------------------------------------------------------


def test_version(hora: Hora) -> None:
    assert hora.ok("--version", db=False, real=True).stdout == f"hora {__version__}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_of_each_shell(hora: Hora, shell: str) -> None:
    script = hora.ok("completion", shell, db=False).stdout
    assert "_HORA_COMPLETE" in script and "hora" in script
    assert hora("completion", "tcsh", db=False).code == 2  # a usage error


def test_the_shell_gets_completions_from_the_real_command(hora: Hora) -> None:
    env = {**hora.env, "_HORA_COMPLETE": "complete_bash", "COMP_WORDS": "hora jobs l",
           "COMP_CWORD": "2"}
    proc = subprocess.run([HORA], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["list"]
    env.update(COMP_WORDS="hora sch", COMP_CWORD="1")
    proc = subprocess.run([HORA], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.stdout.split() == ["schedules"]


# -- a bad cursor is an error ---------------------------------------------------------------


@pytest.mark.parametrize("args", [["jobs", "list"], ["dlq", "list"], ["workflows", "list"],
                                  ["workflows", "approvals"], ["schedules", "list"],
                                  ["tenants", "list"], ["keys", "list"]], ids=" ".join)
def test_a_garbage_cursor_is_an_error(hora: Hora, args: list[str]) -> None:
    hora.ok("migrate")
    assert_one_line_error(hora(*args, "--cursor", "Not a cursor!"), "cursor", "Not a cursor!")


def test_every_listing_that_returns_a_next_cursor_takes_it(hora: Hora) -> None:
    for n in range(2):
        hora.ok("tenants", "create", f"t{n}")
        hora.ok("keys", "create", "--name", f"k{n}")
        hora.ok("schedules", "create", "cli.ok", "--cron", "0 * * * *", "-p", "{}")
    for args in (["tenants", "list"], ["keys", "list"], ["schedules", "list"]):
        first = hora.json(*args, "--limit", "1")
        assert first["next_cursor"], args
        second = hora.json(*args, "--limit", "1", "--cursor", first["next_cursor"])
        assert second["items"] and second["items"] != first["items"], args
        assert f"--cursor {first['next_cursor']}" in hora.ok(*args, "--limit", "1").stdout


def test_a_garbage_cursor_is_an_error_from_the_real_command(hora: Hora) -> None:
    hora.ok("enqueue", "cli.ok", "-p", '{"n": 1}')
    assert_one_line_error(hora("jobs", "list", "--cursor", "nope", real=True), "'nope'")


# -- bulk destructive commands confirm unless --yes -----------------------------------------


@pytest.fixture
def two_dead(hora: Hora) -> Hora:
    for n in range(2):
        hora.ok("enqueue", "cli.boom", "-p", json.dumps({"n": n}), "--max-attempts", "1")
    run_worker(hora)
    assert len(hora.json("dlq", "list")["items"]) == 2
    return hora


@pytest.mark.parametrize("action", ["discard", "replay"])
def test_all_without_a_terminal_and_without_yes_is_refused(two_dead: Hora,
                                                          action: str) -> None:
    proc = two_dead("dlq", action, "--all", real=True)
    assert_one_line_error(proc, "--yes", "2 dead job(s)")
    assert len(two_dead.json("dlq", "list")["items"]) == 2


@pytest.mark.parametrize("action", ["discard", "replay"])
def test_all_asks_and_no_aborts(two_dead: Hora, action: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlq, "stdin_is_terminal", lambda: True)
    argv = ["dlq", action, "--all", "--database-url", two_dead.url]
    said_no = CliRunner().invoke(cli, argv, input="n\n")
    assert said_no.exit_code == 1
    assert f"{action} 2 dead job(s)?" in said_no.output
    assert len(two_dead.json("dlq", "list")["items"]) == 2
    said_yes = CliRunner().invoke(cli, argv, input="y\n")
    assert said_yes.exit_code == 0, said_yes.output
    assert two_dead.json("dlq", "list")["items"] == []


def test_yes_skips_the_question(two_dead: Hora) -> None:
    proc = two_dead.ok("dlq", "discard", "--all", "--yes", real=True)
    assert "discarded 2 job(s)" in proc.stdout
    assert two_dead.json("dlq", "list")["items"] == []


# -- hora tenants show ----------------------------------------------------------------------


def test_tenants_show(hora: Hora) -> None:
    hora.ok("tenants", "create", "acme", "--name", "Acme", "--max-pending-jobs", "10")
    shown = json.loads(hora.ok("tenants", "show", "acme", "--json", real=True).stdout)
    assert (shown["id"], shown["name"], shown["max_pending_jobs"]) == ("acme", "Acme", 10)
    assert "webhook_secret" not in shown
    table = hora.ok("tenants", "show", "acme").stdout
    assert "Acme" in table and "unlimited" in table
    assert_one_line_error(hora("tenants", "show", "nope"), "nope")
    assert "show" in hora.ok("tenants", "--help", db=False).stdout


# -- schedules by name, whole ids in narrow tables, --json on delete ------------------------


def test_schedules_are_addressable_by_name(hora: Hora) -> None:
    sid = hora.json("schedules", "create", "cli.ok", "--cron", "0 * * * *", "--name",
                    "hourly", "-p", '{"n": 1}')["id"]
    assert hora.json("schedules", "show", "hourly")["id"] == sid
    assert hora.json("schedules", "pause", "hourly")["state"] == "paused"
    assert hora.json("schedules", "resume", "hourly")["state"] == "active"
    assert hora.json("schedules", "ticks", "hourly")["items"] == []
    assert hora.json("schedules", "update", "hourly", "-p", '{"n": 2}')["payload"] == {"n": 2}
    assert hora.json("schedules", "trigger", "hourly")["job_id"]
    assert_one_line_error(hora("schedules", "show", "daily"), "'daily'", "not found")
    assert hora.json("schedules", "delete", "hourly") == {"deleted": sid}
    assert hora.json("schedules", "list")["items"] == []


def test_ids_are_whole_in_a_narrow_terminal(hora: Hora) -> None:
    sid = hora.json("schedules", "create", "cli.ok", "--cron", "0 * * * *", "--name",
                    "a-rather-long-schedule-name", "-p", '{"n": 1}')["id"]
    kid = hora.json("keys", "create", "--name", "ci")["id"]
    hora.env["COLUMNS"] = "60"
    assert sid in hora.ok("schedules", "list", real=True).stdout
    assert kid in hora.ok("keys", "list", real=True).stdout


def test_schedule_tables_show_json_not_python_repr(hora: Hora) -> None:
    hora.ok("schedules", "create", "cli.ok", "--cron", "0 * * * *", "--name", "h", "-p", "{}")
    trigger = '{"cron": "0 * * * *", "timezone": "UTC"}'
    shown = hora.ok("schedules", "show", "h").stdout
    listed = hora.ok("schedules", "list").stdout
    for out in (shown, listed):
        assert trigger in out and "{'cron'" not in out
    assert "None" not in shown
