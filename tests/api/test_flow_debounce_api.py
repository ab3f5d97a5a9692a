"""``POST /v1/jobs`` of a debounced or throttled task, on both stores (issue #12 item 3),
against a plain ``hora serve`` that knows the tasks only from the registry: a folded enqueue
answers 201 with the same job (the last payload), a throttled one 201 with the job recorded
as cancelled and the reason; a payload without the key's field is a 422 naming it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hora import Hora
from hora.flow import Debounce, Throttle
from tests.api.conftest import Api


@pytest.fixture
def tenant(api: Api) -> Iterator[tuple[str, str, httpx.Client]]:
    tid, key, http = api.tenant()
    worker = Hora(api.server.database_url, tenant_id=tid)

    @worker.task(name="notify", debounce=Debounce(timedelta(hours=1), key="meta.user"))
    def notify(meta: dict[str, Any], n: int = 0) -> None:
        return None

    @worker.task(name="push", throttle=Throttle(timedelta(hours=1), key="meta.user"))
    def push(meta: dict[str, Any], n: int = 0) -> None:
        return None

    worker.register_tasks(all_tenants=False)
    worker.close()
    yield tid, key, http


def test_debounced_enqueues_answer_the_same_job(
        tenant: tuple[str, str, httpx.Client]) -> None:
    _, _, http = tenant
    a = http.post("/v1/jobs", json={"task": "notify", "payload": {"meta": {"user": "u1"}}})
    assert a.status_code == 201, a.text
    b = http.post("/v1/jobs", json={"task": "notify",
                                    "payload": {"meta": {"user": "u1"}, "n": 2}})
    assert b.status_code == 201, b.text
    assert b.json()["id"] == a.json()["id"] and b.json()["payload"]["n"] == 2
    assert b.json()["state"] == "scheduled"
    assert b.json()["state_reason"].startswith("debounced: 2 enqueues")
    assert b.json()["due_at"] > a.json()["due_at"]
    history = http.get(f"/v1/jobs/{a.json()['id']}").json()["events"]
    assert any((e.get("reason") or "").startswith("debounced:") for e in history), history
    # an Idempotency-Key retry of the fold gets the job back, unchanged
    retry = http.post("/v1/jobs", json={"task": "notify", "idempotency_key": "k",
                                        "payload": {"meta": {"user": "u1"}, "n": 3}})
    again = http.post("/v1/jobs", json={"task": "notify", "idempotency_key": "k",
                                        "payload": {"meta": {"user": "u1"}, "n": 3}})
    assert again.json()["id"] == retry.json()["id"] == a.json()["id"]
    assert again.json()["due_at"] == retry.json()["due_at"]
    assert len(http.get("/v1/jobs", params={"task": "notify"}).json()["items"]) == 1


def test_a_throttled_enqueue_is_recorded_as_cancelled(
        tenant: tuple[str, str, httpx.Client]) -> None:
    _, _, http = tenant
    a = http.post("/v1/jobs", json={"task": "push", "payload": {"meta": {"user": "u1"}}})
    assert a.status_code == 201 and a.json()["state"] == "scheduled", a.text
    b = http.post("/v1/jobs", json={"task": "push", "payload": {"meta": {"user": "u1"}}})
    assert b.status_code == 201, b.text
    assert b.json()["id"] != a.json()["id"] and b.json()["state"] == "cancelled"
    assert b.json()["state_reason"] == f"throttled: within 3600s of job {a.json()['id']}"
    c = http.post("/v1/jobs", json={"task": "push", "payload": {"meta": {"user": "u2"}}})
    assert c.json()["state"] == "scheduled"


def test_a_payload_without_the_key_field_is_422(
        tenant: tuple[str, str, httpx.Client]) -> None:
    _, _, http = tenant
    for task in ("push", "notify"):
        r = http.post("/v1/jobs", json={"task": task, "payload": {"meta": {}}})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "payload.meta.user"
    assert http.get("/v1/jobs").json()["items"] == []
