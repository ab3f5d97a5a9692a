"""``hora limits list | set | delete`` on a SQLite file: overrides by name over what the
registered tasks declare, per tenant; bad input is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hora.app import Hora as App
from hora.flow import RateLimit
from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def _register(url: str) -> None:
    """What a worker of an app declaring a limit writes as it starts."""
    app = App(url)
    try:
        @app.task(name="mail.send", rate_limit=RateLimit("10/s", name="smtp"))
        def send(to: str) -> None: ...

        app.register_tasks()
    finally:
        app.close()


def test_set_list_and_delete(hora: Hora) -> None:
    hora.ok("migrate")
    assert hora.json("limits", "list") == {"items": []}
    assert "no rate limits" in hora.ok("limits", "list").stdout
    _register(hora.url)
    [declared] = hora.json("limits", "list")["items"]
    assert (declared["name"], declared["rate"], declared["source"], declared["tasks"]) == (
        "smtp", "10/s", "declared", ["mail.send"])
    out = hora.ok("limits", "set", "smtp", "2/s", "--burst", "3").stdout
    assert "smtp" in out and "2/s" in out and "burst 3" in out
    hora.ok("limits", "set", "queue:emails", "100/15m")
    items = {i["name"]: i for i in hora.json("limits", "list")["items"]}
    assert (items["smtp"]["rate"], items["smtp"]["burst"], items["smtp"]["source"],
            items["smtp"]["declared_rate"]) == ("2/s", 3, "override", "10/s")
    assert items["queue:emails"]["rate"] == "100/15m"
    text = hora.ok("limits", "list").stdout
    assert "override" in text and "10/s (burst 1)" in text
    # another tenant's limits are its own
    assert [i["source"] for i in hora.json("limits", "list", "--tenant", "other")["items"]
            ] == []
    assert "deleted the run-time rate limit smtp of tenant default; the declared 10/s " \
        "applies" in hora.ok("limits", "delete", "smtp").stdout
    assert "no limit applies" in hora.ok("limits", "delete", "queue:emails").stdout
    # again: nothing to delete is said, not an error (a script may delete blindly)
    assert "there was no run-time rate limit smtp" in hora.ok("limits", "delete", "smtp").stdout
    assert hora.json("limits", "delete", "smtp") == {
        "name": "smtp", "deleted": False, "in_force": {**hora.json("limits", "list")[
            "items"][0]}}
    [back] = hora.json("limits", "list")["items"]
    assert (back["name"], back["source"]) == ("smtp", "declared")


@pytest.mark.parametrize(("args", "needle"), [
    (("set", "smtp", "10/parsec"), "rate"),
    (("set", "smtp", "0/s"), "at least 1"),
    (("set", "smtp", "-5/s"), "not a rate"),
    (("set", "smtp", "5/s", "--burst", "0"), "burst"),
    (("set", "smtp", "5/s", "--burst", "-2"), "burst"),
    (("set", "x" * 201, "5/s"), "name"),
    (("set", "hora.api", "5/s"), "reserved"),
    (("delete", "hora.api"), "reserved"),
])
def test_bad_input_is_one_line_and_exit_2(hora: Hora, args: tuple[str, ...],
                                          needle: str) -> None:
    hora.ok("migrate")
    assert_one_line_error(hora("limits", *args), needle)
    assert hora.json("limits", "list") == {"items": []}
