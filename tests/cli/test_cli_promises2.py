"""Issue 11, item 7 (the rest): ``schedules create``/``ensure`` take every field of the API's
create body and the same trigger JSON; one default for an ``every`` trigger's start on every
surface; options that would be ignored are errors; a bad cursor is an error everywhere."""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from hora import Hora
from hora.api.app import create_api
from hora.api.schemas import RetryIn, ScheduleEnsureIn, ScheduleIn, SchedulePatch
from hora.cli import cli
from hora.cli import schedules as cli_schedules
from hora.clock import FakeClock
from hora.triggers.spec import COMMON_FIELDS, KIND_FIELDS

if TYPE_CHECKING:
    from starlette.testclient import TestClient

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hora.db'}"


def ok(url: str, *args: str) -> Any:
    code, out, err = run(*args, "--database-url", url, "--json")
    assert code == 0, err
    return json.loads(out)


def refused(url: str | None, *args: str) -> str:
    extra = ("--database-url", url) if url else ()
    code, out, err = run(*args, *extra)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


# -- a. every field of the API's create body ---------------------------------------------------

#: A field of POST /v1/schedules -> the parameter of ``hora schedules create`` that carries it.
CLI_NAME = {"trigger": "trigger_json", "target": "target_json", "retry": "retry_json"}
#: Trigger JSON fields -> their shorthand option; the rest only through --trigger-json.
SHORTHAND = {"timezone": "tz", "dst_gap": "dst_gap", "dst_fold": "dst_fold",
             "calendar": "calendar", "window": "window", "jitter": "jitter",
             "dtstart": "dtstart", "start": "start", "end": "end"}
JSON_ONLY = {"exdates", "rdates"}


@pytest.mark.parametrize("command", [cli_schedules.schedules_create,
                                     cli_schedules.schedules_ensure])
def test_create_and_ensure_take_every_field_of_the_api_body(command: Any) -> None:
    """A field added to ScheduleIn later fails here until the CLI takes it too."""
    params = set(inspect.signature(command).parameters)
    for model in (ScheduleIn, ScheduleEnsureIn):
        for field in model.model_fields:
            assert CLI_NAME.get(field, field) in params, f"--{field} is missing"
    assert {"trigger_file", "cron", "rrule", "at", "every"} <= params
    trigger_fields = {*COMMON_FIELDS, *(f for fs in KIND_FIELDS.values() for f in fs)}
    for field in trigger_fields - JSON_ONLY:
        assert SHORTHAND[field] in params, f"trigger field {field} has no shorthand"


def test_update_takes_every_field_of_the_api_patch() -> None:
    params = set(inspect.signature(cli_schedules.schedules_update).parameters)
    for field in SchedulePatch.model_fields:
        assert CLI_NAME.get(field, field) in params, f"--{field} is missing"


def test_update_an_http_target(url: str) -> None:
    s = ok(url, "schedules", "create", "--cron", "0 9 * * *", "--target-json",
           '{"url": "https://example.com/a"}')
    s = ok(url, "schedules", "update", s["id"], "--target-json",
           '{"url": "https://example.com/b"}')
    assert s["payload"]["url"] == "https://example.com/b"
    assert "calls an HTTP target" in refused(url, "schedules", "update", s["id"], "-p", "{}")
    t = ok(url, "schedules", "create", "report", "--cron", "0 9 * * *")
    assert "runs a task" in refused(url, "schedules", "update", t["id"], "--target-json",
                                    '{"url": "https://example.com/b"}')


def test_retry_json_takes_every_field_of_the_api_retry() -> None:
    policy = cli_schedules.parse_retry(json.dumps(RetryIn(max_attempts=3).model_dump()))
    assert policy.max_attempts == 3


def test_create_with_every_option(url: str) -> None:
    s = ok(url, "schedules", "create", "report", "--cron", "0 9 * * *", "--tz", "Europe/Paris",
           "--name", "nightly", "--payload", '{"k": 1}', "--queue", "reports", "--priority",
           "5", "--max-attempts", "4", "--timeout", "5m", "--retry-json",
           '{"backoff": "fixed", "base": 10}', "--correlation-id", "c-1", "--misfire",
           "run_all", "--misfire-grace", "2m", "--catchup-limit", "3", "--overlap", "skip",
           "--paused", "--window", "09:00-18:00", "--window-days", "business", "--jitter",
           "30s", "--calendar", "FR", "--business-day", "next")
    assert s["trigger"] == {"cron": "0 9 * * *", "timezone": "Europe/Paris",
                            "calendar": {"holidays": "FR", "business_day": "next"},
                            "window": {"start": "09:00", "end": "18:00", "days": "business"},
                            "jitter": 30.0}
    assert (s["name"], s["payload"], s["queue"], s["priority"], s["max_attempts"],
            s["timeout"], s["correlation_id"], s["misfire_policy"], s["misfire_grace"],
            s["catchup_limit"], s["overlap_policy"], s["state"]) == (
        "nightly", {"k": 1}, "reports", 5, 4, 300.0, "c-1", "run_all", 120.0, 3, "skip",
        "paused")
    assert s["retry_policy"]["backoff"] == "fixed" and s["retry_policy"]["base"] == 10


def test_trigger_json_and_trigger_file_are_the_api_trigger(url: str, tmp_path: Path) -> None:
    spec = {"rrule": "FREQ=WEEKLY;BYDAY=MO", "dtstart": "2030-01-07T09:00:00",
            "timezone": "Europe/Berlin", "exdates": ["2030-01-14T09:00:00"]}
    s = ok(url, "schedules", "create", "report", "--trigger-json", json.dumps(spec))
    assert s["trigger"] == spec
    path = tmp_path / "t.json"
    path.write_text(json.dumps(spec))
    assert ok(url, "schedules", "create", "report", "--trigger-file", str(path))["trigger"] \
        == spec
    shown = ok(url, "schedules", "show", s["id"], "-n", "2")["occurrences"]
    assert [o["local"][:10] for o in shown][:1] != ["2030-01-14"]


@pytest.mark.parametrize(("args", "says"), [
    (("--trigger-json", '{"cron": "0 9 * * *"}', "--cron", "0 9 * * *"),
     "--cron cannot be combined with --trigger-json"),
    (("--trigger-json", '{"cron": "0 9 * * *"}', "--trigger-file", "x.json"),
     "give --trigger-json or --trigger-file, not both"),
    ((), "give exactly one of --cron, --rrule, --at, --every, --trigger-json"),
    (("--trigger-json", "[1]"), "must be a JSON object"),
    (("--trigger-json", "{"), "--trigger-json is not valid JSON"),
    (("--trigger-file", "/nonexistent/t.json"), "--trigger-file /nonexistent/t.json"),
    (("--trigger-json", '{"cron": "0 9 * * *", "start": "2030-01-01T00:00:00Z"}'),
     "trigger.start: only goes with every, not cron"),
])
def test_trigger_options_are_exclusive(url: str, args: tuple[str, ...], says: str) -> None:
    assert says in refused(url, "schedules", "create", "report", *args)


def test_http_target_schedule(url: str) -> None:
    s = ok(url, "schedules", "create", "--cron", "0 9 * * *", "--target-json",
           '{"url": "https://example.com/hook"}')
    assert s["task"] == "hora.http" and s["payload"]["url"] == "https://example.com/hook"
    assert "loopback" in refused(url, "schedules", "create", "--cron", "0 9 * * *",
                                 "--target-json", '{"url": "http://127.0.0.1/x"}')
    assert "exactly one of TASK" in refused(url, "schedules", "create", "report", "--cron",
                                           "0 9 * * *", "--target-json",
                                           '{"url": "https://example.com/"}')


# -- b. ensure ---------------------------------------------------------------------------------

def test_ensure_creates_then_leaves_alone_then_updates(url: str) -> None:
    first = ok(url, "schedules", "ensure", "nightly", "report", "--cron", "0 9 * * *",
               "--paused")
    assert first["outcome"] == "created" and first["state"] == "paused"
    same = ok(url, "schedules", "ensure", "nightly", "report", "--cron", "0 9 * * *",
              "--paused")
    assert same["outcome"] == "unchanged" and same["version"] == first["version"]
    changed = ok(url, "schedules", "ensure", "nightly", "report", "--cron", "0 10 * * *",
                 "--priority", "2")
    assert changed["outcome"] == "updated" and changed["id"] == first["id"]
    assert changed["priority"] == 2 and changed["state"] == "paused"  # state kept


def test_ensure_of_an_every_trigger_without_start_is_idempotent(url: str) -> None:
    first = ok(url, "schedules", "ensure", "poll", "report", "--every", "PT15M")
    again = ok(url, "schedules", "ensure", "poll", "report", "--every", "PT15M")
    assert again["outcome"] == "unchanged"
    assert again["trigger"]["start"] == first["trigger"]["start"]


# -- c. one default for an every trigger's start -----------------------------------------------

def _start(spec: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(spec["start"])


def test_every_start_defaults_to_now_in_the_sdk(url: str) -> None:
    app = Hora(url, clock=FakeClock(NOW + timedelta(microseconds=500)))
    try:
        s = app.create_schedule("report", trigger={"every": "PT15M"})
        assert s.trigger == {"every": "PT15M", "start": "2030-01-01T12:00:00Z"}
        assert s.next_fire_at == NOW + timedelta(minutes=15)
        occ = app.preview({"every": "PT1H"}, count=1)
        assert occ[0].at == NOW + timedelta(hours=1)
        # an edit to an every trigger without start counts from the edit
        app.clock.advance(60)  # type: ignore[attr-defined]
        s = app.update_schedule(s.id, trigger={"every": "PT1H"})
        assert _start(s.trigger) == NOW + timedelta(minutes=1)
    finally:
        app.close()


@pytest.fixture
def http(url: str) -> Iterator[TestClient]:
    key = ok(url, "keys", "create", "--scope", "read", "--scope", "write")["key"]
    with warnings.catch_warnings():
        # starlette asks for httpx2 in its test client; httpx still works.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    app = Hora(url, clock=FakeClock(NOW))
    with TestClient(create_api(app), headers={"Authorization": f"Bearer {key}"}) as client:
        yield client
    app.close()


def test_every_start_defaults_to_now_over_http(http: TestClient) -> None:
    r = http.post("/v1/schedules", json={"task": "report", "trigger": {"every": "PT15M"}})
    assert r.status_code == 201, r.text
    assert r.json()["trigger"] == {"every": "PT15M", "start": "2030-01-01T12:00:00Z"}
    assert r.json()["next_fire_at"] == "2030-01-01T12:15:00Z"
    r = http.post("/v1/triggers/preview", json={"trigger": {"every": "PT1H"}, "count": 1})
    assert r.status_code == 200, r.text
    assert r.json()["occurrences"][0]["at"] == "2030-01-01T13:00:00Z"
    for _ in range(2):
        r = http.put("/v1/schedules/by-name/poll",
                     json={"task": "report", "trigger": {"every": "PT15M"}})
        assert r.status_code in (200, 201), r.text
    assert r.json()["outcome"] == "unchanged"


def test_every_start_defaults_to_now_in_the_cli(url: str) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    s = ok(url, "schedules", "create", "report", "--every", "PT15M")
    assert before <= _start(s["trigger"]) <= datetime.now(UTC)
    code, out, err = run("schedules", "preview", "--every", "PT1H", "-n", "1", "--json")
    assert code == 0, err
    occ = json.loads(out)["occurrences"]
    assert datetime.fromisoformat(occ[0]["at"]) - before <= timedelta(hours=1, seconds=5)


# -- d. an option that would be ignored is an error --------------------------------------------

@pytest.mark.parametrize(("args", "says"), [
    (("--cron", "0 9 * * *", "--business-day", "next"), "--business-day only goes with "
                                                        "--calendar"),
    (("--cron", "0 9 * * *", "--subdivision", "ENG"), "--subdivision only goes with --calendar"),
    (("--cron", "0 9 * * *", "--start", "2030-01-01T00:00:00Z"), "--start only goes with "
                                                                 "--every"),
    (("--cron", "0 9 * * *", "--end", "2030-01-01T00:00:00Z"), "--end only goes with --every"),
    (("--cron", "0 9 * * *", "--dtstart", "2030-01-01T09:00:00"), "--dtstart only goes with "
                                                                  "--rrule"),
    (("--cron", "0 9 * * *", "--window-days", "business"), "--window-days only goes with "
                                                           "--window"),
    (("--tz", "Europe/Paris",), "--tz shape a trigger but name none"),
])
@pytest.mark.parametrize("command", ["preview", "create"])
def test_ignored_options_are_errors(url: str, command: str, args: tuple[str, ...],
                                    says: str) -> None:
    task = ("report",) if command == "create" else ()
    db = url if command == "create" else None
    assert says in refused(db, "schedules", command, *task, *args)


def test_a_catchup_limit_without_run_all_is_refused(url: str, http: TestClient) -> None:
    assert "--catchup-limit only applies with --misfire run_all" in refused(
        url, "schedules", "create", "report", "--cron", "0 9 * * *", "--catchup-limit", "3")
    r = http.post("/v1/schedules", json={"task": "report", "trigger": "0 9 * * *",
                                         "catchup_limit": 3})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "catchup_limit", r.text
    r = http.post("/v1/schedules", json={"task": "report", "trigger": "0 9 * * *",
                                         "catchup_limit": 3, "misfire": "run_all"})
    assert r.status_code == 201, r.text


def test_update_refuses_trigger_modifiers_without_a_trigger(url: str) -> None:
    s = ok(url, "schedules", "create", "report", "--cron", "0 9 * * *")
    assert "--tz shape a trigger but name none" in refused(url, "schedules", "update", s["id"],
                                                          "--tz", "Europe/Paris")


def test_payload_with_an_http_target_is_refused(url: str) -> None:
    assert "--payload belongs to a task" in refused(
        url, "schedules", "create", "--cron", "0 9 * * *", "--payload", "{}",
        "--target-json", '{"url": "https://example.com/"}')


def test_http_refuses_fields_a_trigger_would_ignore(http: TestClient) -> None:
    for trigger, field in (({"cron": "0 9 * * *", "start": "2030-01-01T00:00:00Z"},
                            "trigger.start"),
                           ({"cron": "0 9 * * *", "calendar": {"subdivision": "ENG"}},
                            "trigger.calendar.subdivision")):
        r = http.post("/v1/schedules", json={"task": "report", "trigger": trigger})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, r.text


# -- g. a bad cursor is an error everywhere ----------------------------------------------------

def _cursor_commands() -> list[list[str]]:
    """Every command of the tree that takes --cursor (so a listing added later is checked)."""
    from tests.cli.test_cli_documented import LEAVES

    return [name.split() for name, options in LEAVES if "--cursor" in options]


#: Arguments a --cursor command needs (by name); a new one without an entry fails below.
CURSOR_ARGS: dict[str, list[str]] = {"schedules ticks": ["@schedule"]}


@pytest.mark.parametrize("listing", _cursor_commands(), ids=" ".join)
def test_a_garbage_cursor_is_an_error_on_every_cli_listing(url: str,
                                                           listing: list[str]) -> None:
    s = ok(url, "schedules", "create", "report", "--cron", "0 9 * * *")  # makes the database
    args = [s["id"] if a == "@schedule" else a for a in CURSOR_ARGS.get(" ".join(listing), [])]
    assert "cursor" in refused(url, *listing, *args, "--cursor", "garbage!").lower()


def test_the_cursor_listings_are_found() -> None:
    found = {" ".join(c) for c in _cursor_commands()}
    assert {"jobs list", "dlq list", "schedules list", "schedules ticks", "workflows list",
            "workflows approvals", "tenants list", "keys list"} <= found


def test_a_garbage_cursor_on_ticks(url: str) -> None:
    s = ok(url, "schedules", "create", "report", "--cron", "0 9 * * *")
    assert "cursor" in refused(url, "schedules", "ticks", s["id"], "--cursor", "xx").lower()


HTTP_LISTINGS = ["/v1/jobs", "/v1/dlq", "/v1/schedules", "/v1/workflows", "/v1/approvals"]


@pytest.mark.parametrize("path", HTTP_LISTINGS)
def test_a_garbage_cursor_is_an_error_on_every_http_listing(http: TestClient,
                                                            path: str) -> None:
    r = http.get(path, params={"cursor": "garbage!"})
    assert r.status_code in (400, 422), (path, r.status_code, r.text)


def test_a_garbage_cursor_on_http_ticks(http: TestClient) -> None:
    r = http.post("/v1/schedules", json={"task": "report", "trigger": "0 9 * * *"})
    sid = r.json()["id"]
    r = http.get(f"/v1/schedules/{sid}/ticks", params={"cursor": "garbage!"})
    assert r.status_code in (400, 422), r.text


@pytest.mark.parametrize(("trigger", "field"), [
    ({"cron": "*/15 * * * *", "timezone": "Europe/Paris", "dst_gap": "shift"},
     "trigger.dst_gap"),
    ({"cron": "0 * * * *", "dst_fold": "both"}, "trigger.dst_fold"),
    ({"at": "2030-06-01T09:00:00Z", "dst_gap": "skip"}, "trigger.dst_gap"),
    ({"every": "PT1H", "start": "2030-01-01T00:00:00+01:00", "dst_fold": "last"},
     "trigger.dst_fold"),
    ({"every": "PT1H", "dst_gap": "skip"}, "trigger.dst_gap"),  # start: now, in UTC
])
def test_dst_policies_that_would_be_ignored_are_refused(http: TestClient,
                                                        trigger: dict[str, Any],
                                                        field: str) -> None:
    r = http.post("/v1/schedules", json={"task": "report", "trigger": trigger})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field, r.text


def test_dst_policies_that_apply_are_accepted(http: TestClient) -> None:
    for trigger in ({"cron": "30 2 * * *", "timezone": "Europe/Paris", "dst_gap": "shift"},
                    {"at": "2030-03-31T02:30:00", "timezone": "Europe/Paris",
                     "dst_gap": "shift"},
                    {"cron": "*/15 * * * *", "dst_gap": "shift",
                     "calendar": {"holidays": "FR", "business_day": "next"}}):
        r = http.post("/v1/schedules", json={"task": "report", "trigger": trigger})
        assert r.status_code == 201, (trigger, r.text)


def test_the_cli_refuses_an_ignored_dst_policy(url: str) -> None:
    assert "trigger.dst_gap" in refused(url, "schedules", "create", "report", "--cron",
                                        "*/5 * * * *", "--dst-gap", "shift")


# -- e. --json where it was missing ------------------------------------------------------------

def test_worker_json_prints_what_it_did(url: str) -> None:
    code, out, err = run("worker", "--app", "tests.cli.failing_app:app", "--until-idle",
                         "--database-url", url, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"worker", "stats"} and data["stats"]["started"] == 0


def test_demo_json_is_the_wire_form(tmp_path: Path) -> None:
    code, out, err = run("demo", "--database-url", f"sqlite:///{tmp_path / 'd.db'}", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["jobs"]) >= 3 and data["dead"] and "state" in data["jobs"][0]


def test_every_declared_in_code_counts_from_its_creation_and_keeps_it(url: str) -> None:
    clock = FakeClock(NOW)
    app = Hora(url, clock=clock)
    try:
        @app.schedule(every="PT1H", name="hourly")
        def tick() -> None: ...

        app.schedules.apply_declared()
        first = app.schedules.get_schedule_by_name("hourly")
        assert first.trigger == {"every": "PT1H", "start": "2030-01-01T12:00:00Z"}
        clock.advance(600)
        report = app.schedules.apply_declared()
        assert report.unchanged == ["hourly"]
        assert app.schedules.get_schedule_by_name("hourly").trigger == first.trigger
    finally:
        app.close()
