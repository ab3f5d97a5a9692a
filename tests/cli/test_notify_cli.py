"""``hora notify send | list | show`` on a SQLite file: a notification with each channel's
state; bad input is one line naming the field, exit code 2, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    h = Hora(tmp_path)
    h.ok("recipients", "upsert", "u42", "--timezone", "Asia/Tokyo")
    h.ok("templates", "put", "hello", "--subject", "Hi", "--text", "{{ data.msg }}")
    return h


def test_send_list_and_show(hora: Hora) -> None:
    sent = hora.json("notify", "send", "u42", "--category", "news", "--template", "hello",
                     "--data", '{"msg": "x"}', "--channel", "inapp", "--channel", "email",
                     "--correlation-id", "c1")
    assert [(d["channel"], d["state"]) for d in sent["deliveries"]] == [  # by channel
        ("email", "suppressed"), ("inapp", "scheduled")]
    out = hora.ok("notify", "send", "u42", "--category", "news", "--template", "hello",
                  "--channel", "log").stdout
    assert out.startswith("sent: ") and "log: scheduled" in out
    listed = hora.json("notify", "list", "--correlation-id", "c1")["items"]
    assert [n["id"] for n in listed] == [sent["id"]]
    assert hora.json("notify", "show", sent["id"])["id"] == sent["id"]
    assert "email=suppressed" in hora.ok("notify", "list", "--recipient", "u42").stdout


def test_bad_input_is_one_line_and_writes_nothing(hora: Hora) -> None:
    base = ("notify", "send", "u42", "--category", "news", "--template", "hello")
    assert_one_line_error(hora(*base, "--channel", "pager"), "channels[0]")
    assert_one_line_error(hora(*base, "--data", "[1]"), "data")
    assert_one_line_error(hora(*base, "--at", "2030-01-01T09:00:00"), "at")
    assert_one_line_error(hora("notify", "send", "ghost", "--category", "news",
                               "--template", "hello"), "ghost")
    assert hora.json("notify", "list")["items"] == []
