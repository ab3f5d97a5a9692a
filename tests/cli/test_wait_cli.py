"""``hora jobs wait`` and ``hora workflows wait`` (issue #11 item 3), and the attempt log lines
in ``hora jobs show`` (item 8), on both stores. Exit codes: 0 succeeded/completed, 1 ended
otherwise, 2 bad input, 3 the wait ran out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from hora import Fail, Hora
from hora.cli import cli
from hora.testing import run_until_idle

log = logging.getLogger("tests.wait_cli")


def hora_cli(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--database-url", url], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def sdk(database_url: str) -> Iterator[Hora]:
    app = Hora(database_url)
    log.setLevel(logging.INFO)

    @app.task(name="cli.ok")
    def ok(n: int) -> int:
        log.info("doubling %d", n)
        return n * 2

    @app.task(name="cli.bad")
    def bad() -> None:
        raise Fail("no")

    @app.workflow(name="cli.adds")
    async def adds(ctx: Any, a: int) -> int:
        return a + 1

    try:
        yield app
    finally:
        app.close()


def test_jobs_wait_exit_codes(sdk: Hora, database_url: str) -> None:
    good = sdk.enqueue("cli.ok", {"n": 21})
    dead = sdk.enqueue("cli.bad", {})
    pending = sdk.enqueue("cli.ok", {"n": 1}, delay=3600)
    run_until_idle(sdk, until=good.due_at)
    code, out, _ = hora_cli(database_url, "jobs", "wait", good.id, "--timeout", "5", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["done"] is True and doc["result"] == 42
    assert doc["attempts"][0]["logs"][0]["message"] == "doubling 21"
    code, out, _ = hora_cli(database_url, "jobs", "show", good.id)
    assert code == 0 and "log of attempt 1" in out and "doubling 21" in out
    code, _, _ = hora_cli(database_url, "jobs", "wait", dead.id)
    assert code == 1
    code, out, _ = hora_cli(database_url, "jobs", "wait", pending.id, "--timeout", "0.2")
    assert code == 3 and "still scheduled" in out
    code, out, _ = hora_cli(database_url, "jobs", "wait", pending.id, "-t", "0", "--json")
    assert code == 3 and json.loads(out)["done"] is False
    code, _, err = hora_cli(database_url, "jobs", "wait", pending.id, "--timeout", "-1")
    assert code == 2 and err.startswith("error: ")
    code, _, err = hora_cli(database_url, "jobs", "wait", "no-such-job", "--timeout", "0")
    assert code == 2 and "not found" in err


def test_workflows_wait_exit_codes(sdk: Hora, database_url: str) -> None:
    wf = sdk.start_workflow("cli.adds", {"a": 1})
    code, out, _ = hora_cli(database_url, "workflows", "wait", wf.id, "--timeout", "0.2")
    assert code == 3 and "still running" in out
    run_until_idle(sdk)
    code, out, _ = hora_cli(database_url, "workflows", "wait", wf.id, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["done"] is True and doc["result"] == 2
    code, _, _ = hora_cli(database_url, "workflows", "wait", wf.id, "--timeout", "1e9")
    assert code == 2
