"""The task registry from the CLI, on both stores (issue #11): ``hora enqueue`` and
``hora schedules create`` / ``hora workflows start`` refuse unknown names (exit 2, one line,
"did you mean") and payloads that do not fit; ``--allow-unregistered``; ``hora tasks list``;
``hora workflows terminate``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from hora import Hora
from hora.retry import RetryPolicy
from hora.workflows import WorkflowContext
from tests.cli.test_cli import Ran, assert_one_line_error


class Cli:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, *args: str) -> Ran:
        from hora.cli import cli

        result = CliRunner().invoke(cli, [*args, "--database-url", self.url],
                                    env={"COLUMNS": "200"})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    def json(self, *args: str) -> Any:
        ran = self(*args, "--json")
        assert ran.code == 0, ran.stderr
        return json.loads(ran.stdout)


@pytest.fixture
def hora(database_url: str) -> Iterator[Cli]:
    worker = Hora(database_url)

    @worker.task(name="mail.send", queue="mail", priority=3,
                 retry=RetryPolicy(max_attempts=6), timeout=20)
    def send(to: str, subject: str = "") -> None:
        return None

    @worker.workflow(name="orders.fulfil")
    async def fulfil(ctx: WorkflowContext, order: str) -> str:
        return order

    worker.register_tasks()
    worker.close()
    yield Cli(database_url)


def test_enqueue_an_unknown_task_is_refused_with_a_suggestion(hora: Cli) -> None:
    assert_one_line_error(hora("enqueue", "mail.sned", "--payload", '{"to": "a"}'),
                          "mail.sned", "did you mean 'mail.send'")
    assert hora.json("jobs", "list")["items"] == []
    job = hora.json("enqueue", "mail.sned", "--allow-unregistered")
    assert job["task"] == "mail.sned"


def test_enqueue_applies_the_registered_defaults(hora: Cli) -> None:
    job = hora.json("enqueue", "mail.send", "--payload", '{"to": "a@b"}')
    assert (job["queue"], job["priority"], job["max_attempts"]) == ("mail", 3, 6)


@pytest.mark.parametrize(("payload", "needle"), [
    ('{"to": 5}', "payload.to"),
    ("{}", "payload.to"),
    ('{"to": "a", "bcc": "x"}', "payload.bcc"),
])
def test_enqueue_a_bad_payload_is_refused_and_nothing_written(hora: Cli, payload: str,
                                                              needle: str) -> None:
    assert_one_line_error(hora("enqueue", "mail.send", "--payload", payload), needle)
    assert hora.json("jobs", "list")["items"] == []


def test_schedules_and_workflows_refuse_unknown_names(hora: Cli) -> None:
    assert_one_line_error(hora("schedules", "create", "mail.sned", "--cron", "0 9 * * *"),
                          "did you mean 'mail.send'")
    assert_one_line_error(hora("workflows", "start", "orders.fulfill", "--args",
                               '{"order": "A"}'), "did you mean 'orders.fulfil'")
    assert_one_line_error(hora("workflows", "start", "orders.fulfil", "--args",
                               '{"order": 1}'), "args.order")
    s = hora.json("schedules", "create", "mail.sned", "--cron", "0 9 * * *",
                  "--allow-unregistered")
    assert s["task"] == "mail.sned"


def test_tasks_list(hora: Cli) -> None:
    items = hora.json("tasks", "list")["items"]
    assert [(t["kind"], t["name"]) for t in items] == [
        ("task", "mail.send"), ("task", "workflow:orders.fulfil"),
        ("workflow", "orders.fulfil")]
    assert items[0]["timeout"] == 20.0
    only = hora.json("tasks", "list", "--kind", "workflow")["items"]
    assert [t["name"] for t in only] == ["orders.fulfil"]
    table = hora("tasks", "list")
    assert table.code == 0 and "mail.send" in table.stdout and "subject?" in table.stdout
    assert_one_line_error(hora("tasks", "list", "--kind", "job"), "--kind")


def test_workflows_terminate_ends_an_unknown_workflow(hora: Cli) -> None:
    wf = hora.json("workflows", "start", "invoise", "--allow-unregistered")
    ended = hora.json("workflows", "terminate", wf["id"], "--reason", "typo")
    assert ended["state"] == "cancelled" and ended["error"]["type"] == "Terminated"
    assert_one_line_error(hora("workflows", "terminate", wf["id"]), "cancelled")
