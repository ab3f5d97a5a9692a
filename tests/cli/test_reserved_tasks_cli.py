"""hora's own task names (``hora.http``, ``hora.workflow:<name>``) are not enqueued by name
from the CLI; the in-process SDK, which runs them, still can."""

from __future__ import annotations

from pathlib import Path

import pytest

from hora import Hora as App
from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


@pytest.mark.parametrize("task", ["hora.workflow:charge", "hora.http", "hora.other"])
def test_enqueue_and_schedules_create_refuse_reserved_names(hora: Hora, task: str) -> None:
    hora.ok("migrate")  # the listings below only read: they need a database to exist
    assert_one_line_error(hora("enqueue", task), "task:", "reserved")
    assert_one_line_error(hora("schedules", "create", task, "--cron", "0 * * * *"),
                          "task:", "reserved")
    assert hora.jobs() == []
    assert hora.json("schedules", "list")["items"] == []


def test_the_sdk_itself_still_enqueues_them(hora: Hora) -> None:
    app = App(hora.url)
    try:
        job = app.enqueue("hora.workflow:charge", {"workflow_id": "w1"})
        assert app.get_job(job.id).task == "hora.workflow:charge"
    finally:
        app.close()
