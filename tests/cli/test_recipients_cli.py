"""``hora recipients`` on a SQLite file: upsert, get, list, delete, import JSON lines and
unsubscribe links, per tenant; bad input is one line naming the field and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import Hora, assert_one_line_error


@pytest.fixture
def hora(tmp_path: Path) -> Hora:
    return Hora(tmp_path)


def test_upsert_get_list_delete(hora: Hora) -> None:
    hora.ok("migrate")
    assert "no recipients" in hora.ok("recipients", "list").stdout
    out = hora.ok("recipients", "upsert", "u42", "--timezone", "Europe/Paris",
                  "--quiet-hours", "21:00-08:00", "--holidays", "fr", "--business-days-only",
                  "--email", "ada@example.com", "--data", '{"name": "Ada"}').stdout
    assert "u42" in out and "21:00-08:00" in out and "business days (FR holidays)" in out
    got = hora.json("recipients", "get", "u42")
    assert (got["timezone"], got["quiet_hours"], got["holidays"], got["addresses"],
            got["data"]) == ("Europe/Paris", {"start": "21:00", "end": "08:00"}, "FR",
                             {"email": "ada@example.com"}, {"name": "Ada"})
    shown = hora.ok("recipients", "get", "u42").stdout
    assert "Europe/Paris" in shown and "ada@example.com" in shown
    table = hora.ok("recipients", "list").stdout
    assert "u42" in table and "email: ada@example.com" in table
    assert hora.json("recipients", "list", "--tenant", "other")["items"] == []
    assert "deleted recipient u42" in hora.ok("recipients", "delete", "u42").stdout
    assert "there was no recipient u42" in hora.ok("recipients", "delete", "u42").stdout
    assert_one_line_error(hora("recipients", "get", "u42"), "no recipient 'u42'")


def test_bad_input_is_one_line_and_exit_2(hora: Hora) -> None:
    hora.ok("migrate")
    assert_one_line_error(hora("recipients", "upsert", "u1", "--timezone", "Mars/Olympus"),
                          "timezone", "Mars/Olympus")
    assert_one_line_error(hora("recipients", "upsert", "u1", "--quiet-hours", "25:00-08:00"),
                          "quiet_hours.start")
    assert_one_line_error(hora("recipients", "upsert", "u1", "--email", "ada.example.com"),
                          "addresses.email")
    assert_one_line_error(hora("recipients", "upsert", "u1", "--data", "[1]"), "--data")
    assert hora.json("recipients", "list")["items"] == []


def test_import_checks_every_line_first(hora: Hora, tmp_path: Path) -> None:
    hora.ok("migrate")
    good = tmp_path / "people.jsonl"
    good.write_text("".join(json.dumps({"id": f"p{i:03d}", "timezone": "Asia/Tokyo"}) + "\n"
                            for i in range(250)) + "\n")
    assert "imported 250 recipients" in hora.ok("recipients", "import", str(good)).stdout
    page = hora.json("recipients", "list", "--limit", "1000")["items"]
    assert len(page) == 250 and page[-1]["timezone"] == "Asia/Tokyo"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "new-1"}\n{"id": "new-2", "timezone": "Nowhere/Else"}\n')
    assert_one_line_error(hora("recipients", "import", str(bad)), "bad.jsonl:2",
                          "timezone")
    assert_one_line_error(hora("recipients", "get", "new-1"), "no recipient")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x"\n')
    assert_one_line_error(hora("recipients", "import", str(broken)), "broken.jsonl:1")
    assert_one_line_error(hora("recipients", "import", str(tmp_path / "missing.jsonl")),
                          "cannot read")


def test_unsubscribe_link(hora: Hora) -> None:
    hora.ok("migrate")
    hora.ok("recipients", "upsert", "u1", "--email", "ada@example.com")
    url = hora.ok("recipients", "unsubscribe-link", "u1", "--base-url",
                  "https://hora.example.com").stdout.strip()
    assert url.startswith("https://hora.example.com/v1/unsubscribe/") and len(url) > 80
    again = hora.json("recipients", "unsubscribe-link", "u1", "--base-url",
                      "https://hora.example.com")["url"]
    assert again != url  # a new token each time
    assert_one_line_error(hora("recipients", "unsubscribe-link", "u1", "--base-url",
                               "not a url"), "base_url")
