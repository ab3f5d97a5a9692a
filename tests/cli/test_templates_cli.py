"""``hora templates list | put | show | delete | preview`` on a SQLite file: versions per
name and channel, files for bodies, a preview naming the missing variable, per tenant; bad
input is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def test_put_show_list_preview_and_delete(hora: Hora, tmp_path: Path) -> None:
    hora.ok("migrate")
    assert hora.json("templates", "list") == {"items": []}
    assert "no templates" in hora.ok("templates", "list").stdout
    text = tmp_path / "welcome.txt"
    text.write_text("Hello {{ recipient.data.name }}, your {{ data.plan }} plan is ready.\n")
    html = tmp_path / "welcome.html"
    html.write_text("<p>Hello {{ recipient.data.name }}</p>")
    out = hora.ok("templates", "put", "welcome", "--channel", "email", "--subject",
                  "Welcome {{ recipient.data.name }}", "--text-file", str(text),
                  "--html-file", str(html)).stdout
    assert "version 1" in out
    assert hora.json("templates", "put", "welcome", "--text", "any channel") == {
        "name": "welcome", "channel": "*", "version": 1}
    shown = hora.json("templates", "show", "welcome", "--channel", "email")
    assert (shown["version"], shown["html"]) == (1, "<p>Hello {{ recipient.data.name }}</p>")
    assert "--- html" in hora.ok("templates", "show", "welcome", "--channel", "email").stdout
    listed = hora.json("templates", "list")["items"]
    assert [(t["name"], t["channel"]) for t in listed] == [("welcome", "*"),
                                                           ("welcome", "email")]
    preview = hora.json("templates", "preview", "welcome", "--channel", "email", "--data",
                        '{"plan": "pro"}', "--recipient", '{"data": {"name": "<Ada>"}}')
    assert preview["subject"] == "Welcome <Ada>"
    assert preview["text"] == "Hello <Ada>, your pro plan is ready.\n"
    assert preview["html"] == "<p>Hello &lt;Ada&gt;</p>"
    assert preview["template"]["channel"] == "email"
    # inapp has no template of its own: the * one
    assert hora.json("templates", "preview", "welcome", "--channel", "inapp")["text"] == (
        "any channel")
    assert hora.json("templates", "list", "--tenant", "other") == {"items": []}
    assert "2 version(s)" in hora.ok("templates", "delete", "welcome").stdout
    assert_one_line_error(hora("templates", "show", "welcome"), "no template")


def test_bad_input_is_one_line_naming_the_field(hora: Hora, tmp_path: Path) -> None:
    hora.ok("migrate")
    assert_one_line_error(hora("templates", "put", "w", "--text", "{% for %}"),
                          "template.text", "line 1")
    assert_one_line_error(hora("templates", "put", "w", "--channel", "sms", "--text", "t"),
                          "channel")
    assert_one_line_error(hora("templates", "put", "w", "--text-file",
                               str(tmp_path / "missing.txt")), "--text-file")
    big = tmp_path / "big.txt"
    big.write_text("x" * 70_000)
    assert_one_line_error(hora("templates", "put", "w", "--text-file", str(big)),
                          "template.text")
    hora.ok("templates", "put", "w", "--text", "Hi {{ data.name }}")
    assert_one_line_error(hora("templates", "preview", "w"), "data.name", "name")
    assert_one_line_error(hora("templates", "preview", "w", "--data", "[1]"), "--data")
    assert_one_line_error(hora("templates", "delete", "nope"), "no template")
