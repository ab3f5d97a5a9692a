"""``hora workers list`` and ``hora queues list | pause | resume`` on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hora.app import Hora as App
from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def _register(url: str, worker_id: str) -> None:
    app = App(url)
    try:
        app.store.register_worker(app.worker(worker_id=worker_id, queues=["default", "mail"],
                                             concurrency=4).info())
    finally:
        app.close()


def test_workers_list(hora: Hora) -> None:
    hora.ok("migrate")
    assert hora.json("workers", "list") == {"items": []}
    assert "no live workers" in hora.ok("workers", "list").stdout
    _register(hora.url, "w-cli-1")
    [w] = hora.json("workers", "list")["items"]
    assert w["id"] == "w-cli-1" and w["status"] in ("live", "lost")
    assert w["queues"] == ["default", "mail"] and w["concurrency"] == 4
    assert [x["id"] for x in hora.json("workers", "list", "--all")["items"]] == ["w-cli-1"]
    text = hora.ok("workers", "list", "--all").stdout
    assert "w-cli-1" in text and "default,mail" in text


def test_queues_list_pause_resume(hora: Hora) -> None:
    hora.ok("enqueue", "t.x", "--queue", "mail")
    hora.ok("enqueue", "t.x", "--queue", "mail", "--in", "1h")
    [q] = hora.json("queues", "list")["items"]
    assert (q["name"], q["due"], q["scheduled"], q["paused"], q["workers"]) == (
        "mail", 1, 2, False, 0)
    paused = hora.json("queues", "pause", "mail", "--reason", "deploy")
    assert paused == {**paused, "name": "mail", "paused": True, "reason": "deploy",
                      "tenant_id": "default"}
    [q] = hora.json("queues", "list")["items"]
    assert q["paused"] is True and q["reason"] == "deploy"
    assert "yes (deploy)" in hora.ok("queues", "list").stdout
    assert hora.json("queues", "list", "--tenant", "other") == {"items": []}
    assert "resumed queue mail" in hora.ok("queues", "resume", "mail").stdout
    assert hora.json("queues", "list")["items"][0]["paused"] is False


def test_bad_input_is_one_line(hora: Hora) -> None:
    hora.ok("migrate")
    assert_one_line_error(hora("queues", "pause", "x" * 201), "queue")
    assert_one_line_error(hora("queues", "list", "--database-url",
                               f"sqlite:///{hora.cwd / 'missing.db'}", db=False), "missing.db")
