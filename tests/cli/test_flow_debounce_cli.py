"""``hora enqueue`` of a debounced or throttled task, on both stores (issue #12 item 3): the
task's options come from the registry (the CLI never imports the code); a folded enqueue
prints the same job id, a throttled one is recorded as cancelled with the reason (exit 0),
and a payload without the key's field is exit 2 with one line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from hora import Hora
from hora.flow import Debounce, Throttle
from tests.cli.test_cli import assert_one_line_error
from tests.cli.test_registry_cli import Cli


@pytest.fixture
def hora(database_url: str) -> Iterator[Cli]:
    worker = Hora(database_url)

    @worker.task(name="notify", debounce=Debounce(timedelta(hours=1), key="meta.user"))
    def notify(meta: dict[str, Any], n: int = 0) -> None:
        return None

    @worker.task(name="push", throttle=Throttle(timedelta(hours=1), key="meta.user"))
    def push(meta: dict[str, Any], n: int = 0) -> None:
        return None

    worker.register_tasks()
    worker.close()
    yield Cli(database_url)


def test_enqueue_a_debounced_task_folds_into_one_job(hora: Cli) -> None:
    first = hora.json("enqueue", "notify", "--payload", '{"meta": {"user": "u1"}, "n": 1}')
    second = hora.json("enqueue", "notify", "--payload", '{"meta": {"user": "u1"}, "n": 2}')
    assert first["id"] == second["id"] and first["state"] == "scheduled"
    assert second["payload"]["n"] == 2
    assert second["state_reason"].startswith("debounced: 2 enqueues")
    other = hora.json("enqueue", "notify", "--payload", '{"meta": {"user": "u2"}}')
    assert other["id"] != first["id"]
    ran = hora("enqueue", "notify", "--payload", '{"meta": {"user": "u1"}, "n": 3}')
    assert ran.code == 0 and f"enqueued {first['id']}" in ran.stdout
    assert "debounced: 3 enqueues" in ran.stdout


def test_enqueue_a_throttled_task_records_the_rest_as_cancelled(hora: Cli) -> None:
    first = hora.json("enqueue", "push", "--payload", '{"meta": {"user": "u1"}}')
    assert first["state"] == "scheduled"
    ran = hora("enqueue", "push", "--payload", '{"meta": {"user": "u1"}, "n": 2}')
    assert ran.code == 0, ran.stderr
    assert "cancelled" in ran.stdout
    assert f"throttled: within 3600s of job {first['id']}" in ran.stdout
    listed = hora.json("jobs", "list", "--task", "push")
    assert sorted(j["state"] for j in listed["items"]) == ["cancelled", "scheduled"]


def test_enqueue_without_the_key_field_is_exit_2(hora: Cli) -> None:
    assert_one_line_error(hora("enqueue", "push", "--payload", '{"meta": {}}'),
                          "payload.meta.user")
    assert_one_line_error(hora("enqueue", "notify", "--payload", '{"meta": {"u": 1}}'),
                          "meta.user")
    assert hora.json("jobs", "list", "--task", "push")["items"] == []
