"""``PUT``/``GET /v1/schedules/by-name/{name}`` and ``Client.ensure_schedule`` against a real
``hora serve``, on both stores: the HTTP face of ``app.schedules.ensure``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hora import Client
from hora.errors import NotFound
from tests.api.conftest import Api

BODY: dict[str, Any] = {"task": "report", "payload": {"kind": "daily"},
                        "trigger": {"cron": "0 9 * * *", "timezone": "UTC"}}


@pytest.fixture
def tenant(api: Api) -> Iterator[tuple[httpx.Client, Client]]:
    _, key, http = api.tenant()
    client = Client(api.server.url, key)
    try:
        yield http, client
    finally:
        client.close()


def _name() -> str:
    return f"nightly-{uuid.uuid4().hex[:8]}"


def test_put_creates_then_leaves_alone_then_updates(
        tenant: tuple[httpx.Client, Client]) -> None:
    http, _ = tenant
    name = _name()
    created = http.put(f"/v1/schedules/by-name/{name}", json=BODY)
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["outcome"] == "created" and first["name"] == name

    same = http.put(f"/v1/schedules/by-name/{name}", json=BODY)
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    assert same.json()["version"] == first["version"]
    assert same.json()["updated_at"] == first["updated_at"]

    changed = http.put(f"/v1/schedules/by-name/{name}",
                       json={**BODY, "trigger": {"cron": "0 10 * * *", "timezone": "UTC"},
                             "priority": 5})
    assert changed.status_code == 200 and changed.json()["outcome"] == "updated"
    assert changed.json()["id"] == first["id"] and changed.json()["priority"] == 5
    assert changed.json()["version"] > first["version"]

    got = http.get(f"/v1/schedules/by-name/{name}")
    assert got.status_code == 200 and got.json()["trigger"]["cron"] == "0 10 * * *"
    assert [s["name"] for s in http.get("/v1/schedules").json()["items"]] == [name]
    assert http.get(f"/v1/schedules/by-name/{_name()}").status_code == 404


def test_invalid_put_is_422_and_writes_nothing(tenant: tuple[httpx.Client, Client]) -> None:
    http, _ = tenant
    name = _name()
    for bad in ({**BODY, "trigger": {"cron": "61 * * * *"}},
                {**BODY, "priority": 10**9},
                {**BODY, "name": "another-name"},
                {"payload": {}, "trigger": BODY["trigger"]}):
        r = http.put(f"/v1/schedules/by-name/{name}", json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert http.get(f"/v1/schedules/by-name/{name}").status_code == 404
    first = http.put(f"/v1/schedules/by-name/{name}", json=BODY).json()
    r = http.put(f"/v1/schedules/by-name/{name}", json={**BODY, "trigger": {"cron": "x"}})
    assert r.status_code == 422
    assert http.get(f"/v1/schedules/by-name/{name}").json()["version"] == first["version"]


def test_put_honours_idempotency_key(tenant: tuple[httpx.Client, Client]) -> None:
    http, _ = tenant
    name = _name()
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = http.put(f"/v1/schedules/by-name/{name}", json=BODY, headers=headers)
    replay = http.put(f"/v1/schedules/by-name/{name}", json=BODY, headers=headers)
    assert first.status_code == replay.status_code == 201  # the stored answer, replayed
    assert replay.json() == first.json()


def test_client_ensure_schedule(tenant: tuple[httpx.Client, Client]) -> None:
    _, client = tenant
    name = _name()
    s, outcome = client.ensure_schedule("report", {"kind": "daily"}, name=name,
                                        trigger="0 9 * * *", queue="reports")
    assert outcome == "created" and s.queue == "reports"
    again = client.ensure_schedule("report", {"kind": "daily"}, name=name,
                                   trigger="0 9 * * *", queue="reports")
    assert again.outcome == "unchanged" and again.schedule.version == s.version
    moved = client.ensure_schedule("report", {"kind": "daily"}, name=name,
                                   trigger="0 9 * * *", queue="other")
    assert moved.outcome == "updated" and moved.schedule.queue == "other"
    assert client.get_schedule_by_name(name).id == s.id
    with pytest.raises(NotFound):
        client.get_schedule_by_name(_name())
