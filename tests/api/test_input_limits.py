"""No input is a 500 (issue #9): every extreme value is refused naming its field, on every
surface, and nothing of the refused request is written.

``CASES`` is one table of surface-independent cases: an operation (enqueue, schedule,
preview, workflow, tenant, lock), the inputs, and the field the error must name. Each
surface turns a case into its own call (the worker's options are the worker's input):

* SDK: the in-process ``Hora`` on each store, and ``hora.Client`` on a real server; each
  raises an ``InvalidPayload`` (or ``InvalidTrigger``) whose message starts with the field;
* HTTP: a real ``hora serve`` per store; 422 (413 for the body limit) problem+json whose
  ``errors`` name the field;
* CLI: the installed ``hora`` script in a subprocess on each store; exit code 2, one line on
  stderr naming the field (or its ``--option``), no traceback.

A surface that cannot express a case (the CLI has no ``--timeout``) skips it. To add a
case, add a row: every surface picks it up. A schedule or preview case may carry its own
``trigger`` (a spec dict or string) in its inputs; the default is an hourly cron.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hora import Client, Hora, RetryPolicy
from hora.errors import HoraError, NotFound
from hora.limits import MAX_PAYLOAD_BYTES, MAX_RETRY_AFTER
from tests.api.conftest import Api

HORA = str(Path(sys.executable).with_name("hora"))
CRON = "0 * * * *"


class Bomb:
    """Lists nested ``depth`` deep: built and written iteratively (json.dumps would recurse)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def value(self) -> list[Any]:
        v: list[Any] = []
        for _ in range(self.depth - 1):
            v = [v]
        return v

    def text(self) -> str:
        return "[" * self.depth + "]" * self.depth


def to_python(v: Any) -> Any:
    if isinstance(v, Bomb):
        return v.value()
    if isinstance(v, dict):
        return {k: to_python(x) for k, x in v.items()}
    return v


def to_json(v: Any) -> str:
    """JSON text of a case's value, bombs included (spliced in as text)."""
    bombs: dict[str, str] = {}

    def swap(x: Any) -> Any:
        if isinstance(x, Bomb):
            token = f"@@bomb{len(bombs)}@@"
            bombs[token] = x.text()
            return token
        if isinstance(x, dict):
            return {k: swap(y) for k, y in x.items()}
        return x

    text = json.dumps(swap(v))
    for token, bomb in bombs.items():
        text = text.replace(json.dumps(token), bomb)
    return text


@dataclass(frozen=True)
class Case:
    id: str
    operation: str  # enqueue | schedule | preview | workflow | tenant | lock | worker
    inputs: dict[str, Any]
    field: str  # the field every surface's error must name
    #: Per surface, another name for the field where that surface must say it otherwise.
    named: dict[str, str] = field(default_factory=dict)


LATE = "9999-12-31T23:59:59-01:00"
EARLY = "0001-01-01T00:00:00+14:00"
BIG = 1e308
HUGE_INT = 2**63
TOO_BIG_PAYLOAD = {"blob": "x" * (MAX_PAYLOAD_BYTES + 1)}

CASES = [
    # instants at the ends of datetime's range (overflowed into 500s)
    Case("enqueue-at-late", "enqueue", {"at": LATE}, "at"),
    Case("enqueue-at-early", "enqueue", {"at": EARLY}, "at"),
    Case("preview-after-late", "preview", {"after": LATE}, "after"),
    Case("preview-after-early", "preview", {"after": EARLY}, "after"),
    # durations and floats
    Case("enqueue-delay-huge", "enqueue", {"delay": BIG}, "delay"),
    Case("enqueue-timeout-huge", "enqueue", {"timeout": BIG}, "timeout"),
    Case("enqueue-retry-base-huge", "enqueue", {"retry": {"base": BIG}}, "retry.base"),
    Case("enqueue-retry-max-delay-huge", "enqueue", {"retry": {"max_delay": BIG}},
         "retry.max_delay"),
    Case("enqueue-retry-factor-huge", "enqueue", {"retry": {"factor": BIG}}, "retry.factor"),
    Case("schedule-misfire-grace-huge", "schedule", {"misfire_grace": BIG}, "misfire_grace"),
    Case("schedule-timeout-huge", "schedule", {"timeout": BIG}, "timeout"),
    Case("lock-ttl-huge", "lock", {"ttl": BIG}, "ttl"),
    Case("worker-lease-huge", "worker", {"lease": BIG}, "lease"),
    Case("worker-grace-period-huge", "worker", {"grace_period": BIG}, "grace_period"),
    Case("tenant-rate-limit-tiny", "tenant", {"rate_limit": 5e-324}, "rate_limit",
         {"cli": "--rate-limit"}),
    Case("tenant-rate-limit-huge", "tenant", {"rate_limit": BIG}, "rate_limit",
         {"cli": "--rate-limit"}),
    # integers beyond the database's
    Case("enqueue-priority-huge", "enqueue", {"priority": HUGE_INT}, "priority"),
    Case("enqueue-max-attempts-huge", "enqueue", {"max_attempts": HUGE_INT}, "max_attempts"),
    Case("schedule-catchup-huge", "schedule", {"catchup_limit": HUGE_INT}, "catchup_limit"),
    Case("schedule-priority-huge", "schedule", {"priority": -HUGE_INT}, "priority"),
    Case("tenant-quota-huge", "tenant", {"max_pending_jobs": HUGE_INT}, "max_pending_jobs",
         {"cli": "--max-pending-jobs"}),
    # payloads: nesting bombs and size
    Case("enqueue-payload-deep", "enqueue", {"payload": {"a": Bomb(500)}}, "payload"),
    Case("enqueue-payload-bomb", "enqueue", {"payload": {"a": Bomb(60_000)}}, "payload",
         {"http": "body", "client": "body"}),
    Case("enqueue-payload-nan", "enqueue", {"payload": {"a": float("nan")}}, "payload",
         {"client": "body"}),
    Case("enqueue-payload-too-large", "enqueue", {"payload": TOO_BIG_PAYLOAD}, "payload"),
    Case("schedule-payload-too-large", "schedule", {"payload": TOO_BIG_PAYLOAD}, "payload"),
    Case("workflow-args-deep", "workflow", {"args": {"a": Bomb(500)}}, "args"),
    Case("workflow-args-too-large", "workflow", {"args": TOO_BIG_PAYLOAD}, "args"),
    # triggers at the edges of time (schedules and previews read the same spec)
    *[Case(f"{op}-{name}", op, {"trigger": spec}, named)
      for op in ("schedule", "preview")
      for name, spec, named in [
          ("at-late", {"at": LATE}, "trigger.at"),
          ("at-early", {"at": EARLY}, "trigger.at"),
          ("every-huge", {"every": "P1000000000D", "start": "2026-01-01T00:00:00Z"},
           "trigger.every"),
          ("every-start-late", {"every": "PT1S", "start": "9999-12-31T23:59:59Z"},
           "trigger.start"),
          ("rrule-dtstart-year-1", "DTSTART:00010101T000000Z\nRRULE:FREQ=YEARLY",
           "trigger.rrule"),
          ("rrule-until-year-1", "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY;"
                                 "UNTIL=00010101T000000Z", "trigger.rrule"),
          ("jitter-huge", {"cron": CRON, "jitter": BIG}, "trigger.jitter"),
      ]],
]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


class Unsupported(Exception):
    """This surface has no way to say this case."""


# -- nothing written --------------------------------------------------------------------------


def assert_nothing_stored(app: Hora, case: Case, tenant_id: str) -> None:
    assert app.list_jobs().items == []
    assert app.list_schedules().items == []
    assert app.list_workflows().items == []
    assert app.get_lock("l") is None
    with pytest.raises(NotFound):
        app.store.get_tenant(tenant_id)


# -- SDK --------------------------------------------------------------------------------------


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def sdk_call(app: Any, case: Case) -> None:
    """The case through ``Hora`` or ``hora.Client`` (the same signatures)."""
    i = {k: to_python(v) for k, v in case.inputs.items()}
    payload = i.pop("payload", {})
    trigger = i.pop("trigger", CRON)
    if "retry" in i:
        i["retry"] = RetryPolicy(**i["retry"])
    if "at" in i:
        i["at"] = _instant(i["at"])
    if case.operation == "enqueue":
        app.enqueue("t", payload, **i)
    elif case.operation == "schedule":
        app.create_schedule("t", payload, trigger=trigger, **i)
    elif case.operation == "preview":
        app.preview(trigger, after=None if "after" not in i else _instant(i["after"]))
    elif case.operation == "workflow":
        app.start_workflow("wf", i["args"])
    elif case.operation == "lock" and isinstance(app, Hora):
        app.try_lock("l", ttl=i["ttl"])
    elif case.operation == "worker" and isinstance(app, Hora):
        app.worker(**i)
    else:
        raise Unsupported  # tenants are managed over HTTP and the CLI


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_sdk_refuses_naming_the_field(app: Hora, case: Case) -> None:
    try:
        with pytest.raises(HoraError) as caught:
            sdk_call(app, case)
    except Unsupported:
        pytest.skip(f"the SDK has no {case.operation} call")
    assert isinstance(caught.value, ValueError)  # InvalidPayload and InvalidTrigger are
    name = case.named.get("sdk", case.field)
    assert str(caught.value).startswith(f"{name}:"), caught.value
    assert_nothing_stored(app, case, "t-none")


# -- HTTP -------------------------------------------------------------------------------------


def http_call(api: Api, c: httpx.Client, case: Case, tenant_id: str) -> httpx.Response:
    i = dict(case.inputs)
    if case.operation == "enqueue":
        method, path, body = "POST", "/v1/jobs", {"task": "t", **i}
    elif case.operation == "schedule":
        method, path, body = "POST", "/v1/schedules", {"task": "t", "trigger": CRON, **i}
    elif case.operation == "preview":
        method, path, body = "POST", "/v1/triggers/preview", {"trigger": CRON, **i}
    elif case.operation == "workflow":
        method, path, body = "POST", "/v1/workflows", {"workflow": "wf", **i}
    elif case.operation == "lock":
        method, path, body = "POST", "/v1/locks/l/acquire", i
    else:
        c = api.admin
        method, path, body = "POST", "/v1/tenants", {"id": tenant_id, **i}
    return c.request(method, path, content=to_json(body),
                     headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_http_refuses_naming_the_field(api: Api, case: Case) -> None:
    _, _, c = api.tenant()
    new_tenant = f"t-{uuid.uuid4().hex[:10]}"
    r = http_call(api, c, case, new_tenant)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    name = case.named.get("http", case.field)
    assert name in [e["field"] for e in problem["errors"]], problem
    assert_nothing_written(api, c, new_tenant)


def assert_nothing_written(api: Api, c: httpx.Client, tenant_id: str) -> None:
    for path in ("/v1/jobs", "/v1/schedules", "/v1/workflows"):
        assert c.get(path).json()["items"] == [], path
    assert c.get("/v1/locks/l").status_code == 404
    assert api.admin.get(f"/v1/tenants/{tenant_id}").status_code == 404


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_the_python_client_refuses_naming_the_field(api: Api, case: Case) -> None:
    _, key, c = api.tenant()
    with Client(api.server.url, api_key=key, retries=0) as client:
        try:
            with pytest.raises(HoraError) as caught:
                sdk_call(client, case)
        except Unsupported:
            pytest.skip(f"hora.Client has no {case.operation} call")
    assert isinstance(caught.value, ValueError)
    name = case.named.get("client", case.field)
    assert str(caught.value).startswith(f"{name}:"), caught.value
    assert_nothing_written(api, c, "t-none")


# -- CLI --------------------------------------------------------------------------------------


#: The longest argument a command line can carry (Linux: 128 KiB per argument).
MAX_ARGUMENT = 131_000


def cli_args(case: Case, tenant_id: str) -> list[str]:
    """The command for a case (``--database-url`` is added by the caller when it takes one)."""
    argv = _cli_args(case, tenant_id)
    if any(len(a) > MAX_ARGUMENT for a in argv):
        raise Unsupported  # the command line cannot carry it
    return argv


def _cli_args(case: Case, tenant_id: str) -> list[str]:
    i = dict(case.inputs)
    payload = i.pop("payload", None)
    args: list[str] = [] if payload is None else ["--payload", to_json(payload)]
    if case.operation == "enqueue":
        options = {"at": "--at", "delay": "--in", "priority": "--priority",
                   "max_attempts": "--max-attempts"}
        if set(i) - set(options):
            raise Unsupported
        for k, v in i.items():
            args += [options[k], str(v)]
        return ["enqueue", "t", *args]
    trigger = _cli_trigger(i.pop("trigger", {"cron": CRON}))
    if case.operation == "schedule":
        if i:
            raise Unsupported  # no numeric options on the command line
        return ["schedules", "create", "t", *trigger, *args]
    if case.operation == "preview":
        after = ["--after", i.pop("after")] if "after" in i else []
        return ["schedules", "preview", *trigger, *after]
    if case.operation == "workflow":
        return ["workflows", "start", "wf", "--args", to_json(i["args"])]
    if case.operation == "worker":
        return ["worker", "--app", "tests.cli.failing_app:app", "--until-idle",
                *[a for k, v in i.items() for a in (f"--{k.replace('_', '-')}", repr(v))]]
    if case.operation == "tenant":
        options = {"rate_limit": "--rate-limit", "max_pending_jobs": "--max-pending-jobs"}
        for k, v in i.items():
            args += [options[k], repr(v)]
        return ["tenants", "create", tenant_id, *args]
    raise Unsupported


#: Trigger spec keys the CLI has options for.
_TRIGGER_OPTIONS = {"cron": "--cron", "rrule": "--rrule", "at": "--at", "every": "--every",
                    "start": "--start", "dtstart": "--dtstart", "timezone": "--tz"}


def _cli_trigger(spec: Any) -> list[str]:
    if isinstance(spec, str):
        spec = {"rrule" if "RRULE" in spec.upper() else "cron": spec}
    if set(spec) - set(_TRIGGER_OPTIONS):
        raise Unsupported
    return [a for k, v in spec.items() for a in (_TRIGGER_OPTIONS[k], str(v))]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("HORA_DATABASE_URL", None)
    return env


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_cli_refuses_in_one_line_naming_the_field(database_url: str, cli_env: dict[str, str],
                                                 tmp_path: Path, case: Case) -> None:
    tenant_id = "t-cli"
    try:
        argv = cli_args(case, tenant_id)
    except Unsupported:
        pytest.skip(f"the CLI cannot say {case.id}")
    if case.operation != "preview":  # previewing reads no database
        argv += ["--database-url", database_url]
    proc = subprocess.run([HORA, *argv], capture_output=True,
                          text=True, cwd=tmp_path, env=cli_env, timeout=60, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    name = case.named.get("cli", case.field)
    assert name in lines[0], lines[0]
    app = Hora(database_url)
    try:
        assert_nothing_stored(app, case, tenant_id)
    finally:
        app.close()


# -- a rate limit stored before the minimum existed -------------------------------------------


def test_a_tiny_stored_rate_limit_is_a_429_not_a_500_and_can_be_undone(api: Api) -> None:
    tid, _, c = api.tenant()
    r = api.admin.patch(f"/v1/tenants/{tid}", json={"rate_limit": 5e-324})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["rate_limit"]
    # As a store written before the minimum holds it (the server reads it afresh: this
    # tenant's key has not been used yet, so nothing of it is cached).
    app = Hora(api.server.database_url)
    try:
        app.store.update_tenant(replace(app.store.get_tenant(tid), rate_limit=5e-324))
    finally:
        app.close()
    assert c.get("/v1/jobs").status_code == 200  # the bucket starts with one token
    limited = c.get("/v1/jobs")
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= MAX_RETRY_AFTER
    r = api.admin.patch(f"/v1/tenants/{tid}", json={"rate_limit": None})
    assert r.status_code == 200, r.text
    assert c.get("/v1/jobs").status_code == 200


@pytest.mark.parametrize("cursor", [LATE, EARLY, "2026-01-01T00:00:00"])
def test_a_tick_cursor_out_of_range_is_a_422_naming_it(api: Api, cursor: str) -> None:
    _, _, c = api.tenant()
    schedule = c.post("/v1/schedules", json={"task": "t", "trigger": CRON}).json()
    r = c.get(f"/v1/schedules/{schedule['id']}/ticks", params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["cursor"]
