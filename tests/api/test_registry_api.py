"""The task registry over HTTP, on both stores (issue #11): a plain ``hora serve`` (no
``--app``) checks names and payloads against what workers registered for the tenant, applies
registered defaults, lists them at ``GET /v1/tasks``, and terminates workflows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hora import Client, Hora
from hora.errors import UnknownTask
from hora.retry import RetryPolicy
from hora.workflows import WorkflowContext
from tests.api.conftest import Api


@pytest.fixture
def tenant(api: Api) -> Iterator[tuple[str, str, httpx.Client]]:
    """A new tenant for which a worker's app registered its tasks (as a worker does on the
    same database at start-up)."""
    tid, key, http = api.tenant()
    worker = Hora(api.server.database_url, tenant_id=tid)

    @worker.task(name="mail.send", queue="mail", priority=3,
                 retry=RetryPolicy(max_attempts=6))
    def send(to: str, subject: str = "") -> None:
        return None

    @worker.workflow(name="orders.fulfil")
    async def fulfil(ctx: WorkflowContext, order: str) -> str:
        return order

    worker.register_tasks(all_tenants=False)
    worker.close()
    yield tid, key, http


def test_unknown_task_is_422_with_suggestions(tenant: tuple[str, str, httpx.Client]) -> None:
    _, _, http = tenant
    r = http.post("/v1/jobs", json={"task": "mail.sned", "payload": {"to": "a"}})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == "urn:hora:problem:unknown-task"
    assert problem["name"] == "mail.sned" and problem["suggestions"] == ["mail.send"]
    assert problem["field"] == "task" and "did you mean 'mail.send'" in problem["detail"]
    assert http.get("/v1/jobs").json()["items"] == []
    ok = http.post("/v1/jobs", json={"task": "mail.sned", "allow_unregistered": True})
    assert ok.status_code == 201, ok.text


def test_unknown_schedule_task_and_workflow_are_refused(
        tenant: tuple[str, str, httpx.Client]) -> None:
    _, _, http = tenant
    r = http.post("/v1/schedules", json={"task": "mail.sned", "payload": {"to": "a"},
                                         "trigger": {"cron": "0 9 * * *"}})
    assert r.status_code == 422 and r.json()["suggestions"] == ["mail.send"], r.text
    r = http.put("/v1/schedules/by-name/x", json={"task": "mail.sned",
                                                  "trigger": {"cron": "0 9 * * *"}})
    assert r.status_code == 422, r.text
    assert http.get("/v1/schedules").json()["items"] == []
    r = http.post("/v1/workflows", json={"workflow": "orders.fulfill", "args": {"order": "A"}})
    assert r.status_code == 422 and r.json()["suggestions"] == ["orders.fulfil"], r.text
    assert r.json()["kind"] == "workflow"
    assert http.get("/v1/workflows").json()["items"] == []
    ok = http.post("/v1/schedules", json={"task": "mail.sned", "allow_unregistered": True,
                                          "trigger": {"cron": "0 9 * * *"}})
    assert ok.status_code == 201, ok.text


def test_registered_defaults_apply(tenant: tuple[str, str, httpx.Client]) -> None:
    _, _, http = tenant
    r = http.post("/v1/jobs", json={"task": "mail.send", "payload": {"to": "a@b"}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["queue"], job["priority"], job["max_attempts"]) == ("mail", 3, 6)
    r = http.post("/v1/schedules", json={"task": "mail.send", "payload": {"to": "a@b"},
                                         "trigger": {"cron": "0 9 * * *"}})
    assert r.status_code == 201, r.text
    assert (r.json()["queue"], r.json()["priority"]) == ("mail", 3)


@pytest.mark.parametrize(("payload", "field"), [
    ({"to": 5}, "payload.to"),
    ({}, "payload.to"),
    ({"to": "a", "cc": "b"}, "payload.cc"),
])
def test_a_bad_payload_is_422_naming_the_field_and_writes_nothing(
        tenant: tuple[str, str, httpx.Client], payload: dict[str, Any], field: str) -> None:
    _, _, http = tenant
    r = http.post("/v1/jobs", json={"task": "mail.send", "payload": payload})
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:hora:problem:invalid-request"
    assert r.json()["field"] == field
    assert http.get("/v1/jobs").json()["items"] == []
    r = http.post("/v1/workflows", json={"workflow": "orders.fulfil", "args": {"order": 1}})
    assert r.status_code == 422 and r.json()["field"] == "args.order", r.text


def test_tasks_are_listed_with_schema_and_defaults(
        tenant: tuple[str, str, httpx.Client]) -> None:
    tid, _, http = tenant
    items = http.get("/v1/tasks").json()["items"]
    names = [(t["kind"], t["name"]) for t in items]
    assert names == [("task", "mail.send"), ("task", "workflow:orders.fulfil"),
                     ("workflow", "orders.fulfil")]
    send = items[0]
    assert send["tenant_id"] == tid
    assert (send["queue"], send["priority"], send["max_attempts"]) == ("mail", 3, 6)
    assert send["payload_schema"]["required"] == ["to"]
    only = http.get("/v1/tasks", params={"kind": "workflow"}).json()["items"]
    assert [t["name"] for t in only] == ["orders.fulfil"]
    assert http.get("/v1/tasks", params={"kind": "nope"}).status_code == 422


def test_terminate_ends_a_workflow_no_worker_knows(
        tenant: tuple[str, str, httpx.Client]) -> None:
    _, _, http = tenant
    r = http.post("/v1/workflows", json={"workflow": "invoise", "allow_unregistered": True})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    r = http.post(f"/v1/workflows/{wid}/terminate", json={"reason": "typo"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled" and r.json()["error"]["type"] == "Terminated"
    jobs = http.get("/v1/jobs", params={"task": "hora.workflow:invoise"}).json()["items"]
    assert jobs and {j["state"] for j in jobs} == {"cancelled"}
    again = http.post(f"/v1/workflows/{wid}/terminate")
    assert again.status_code == 409, again.text


def test_the_client_round_trips(api: Api, tenant: tuple[str, str, httpx.Client]) -> None:
    _, key, _ = tenant
    with Client(api.server.url, key, retries=0) as client:
        with pytest.raises(UnknownTask) as caught:
            client.enqueue("mail.sned", {"to": "a"})
        err = caught.value
        assert (err.name, err.kind, err.suggestions) == ("mail.sned", "task", ("mail.send",))
        assert err.field == "task"
        assert client.enqueue("mail.sned", {}, allow_unregistered=True).task == "mail.sned"
        tasks = client.registered_tasks(kind="task")
        assert [t.name for t in tasks] == ["mail.send", "workflow:orders.fulfil"]
        assert tasks[0].payload_schema["required"] == ["to"]
        wf = client.start_workflow("invoise", allow_unregistered=True)
        ended = client.terminate_workflow(wf.id, "typo")
        assert ended.state == "cancelled"


def test_serve_with_an_app_registers_it_and_refuses_unknown_names(wf_api: Api) -> None:
    # The operator key's tenant existed when the server started: its registry holds the app.
    names = [(t["kind"], t["name"]) for t in wf_api.admin.get("/v1/tasks").json()["items"]]
    assert ("workflow", "api.order") in names and ("task", "workflow:api.order") in names
    # A tenant made later is checked against the app the server runs.
    _, _, http = wf_api.tenant()
    r = http.post("/v1/workflows", json={"workflow": "api.ordr", "args": {"order": "A"}})
    assert r.status_code == 422 and r.json()["suggestions"][0] == "api.order", r.text
    r = http.post("/v1/workflows", json={"workflow": "api.order", "args": {"order": 7}})
    assert r.status_code == 422 and r.json()["field"] == "args.order", r.text
