"""Rate limits by name over HTTP (``/v1/rate-limits``) and in the client, against a real
server per store: tenant-scoped, admin to change, bad input a 422 naming the field; the
per-tenant request limit held by two API processes on one store; the waiting gauge."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hora.api.auth import LEASE_SECONDS
from hora.client import AsyncClient
from hora.errors import AuthError, InvalidPayload, NotFound
from tests.api.conftest import Api, Server, start_server
from tests.api.test_api import assert_problem
from tests.api.test_client import Clients


@pytest.fixture
def clients(api: Api) -> Iterator[Clients]:
    cs = Clients(api)
    try:
        yield cs
    finally:
        cs.close()


def test_set_read_list_and_delete_a_limit(api: Api) -> None:
    _, _, admin = api.tenant(("admin",))
    r = admin.put("/v1/rate-limits/smtp", json={"rate": "20/s", "burst": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("name", "rate", "burst", "source", "count", "period",
                                 "declared_rate", "tasks")} == {
        "name": "smtp", "rate": "20/s", "burst": 2, "source": "override", "count": 20,
        "period": 1.0, "declared_rate": None, "tasks": []}
    assert body["updated_at"]
    assert admin.put("/v1/rate-limits/queue:emails", json={"rate": "100/15m"}).json()[
        "burst"] == 1
    assert admin.get("/v1/rate-limits/smtp").json() == body
    assert [i["name"] for i in admin.get("/v1/rate-limits").json()["items"]] == [
        "queue:emails", "smtp"]
    r = admin.delete("/v1/rate-limits/smtp")
    assert r.status_code == 204
    assert_problem(admin.get("/v1/rate-limits/smtp"), 404, "not-found", says="smtp")
    assert_problem(admin.delete("/v1/rate-limits/smtp"), 404, "not-found")


def test_limits_are_the_tenants_own_and_changing_them_needs_admin(api: Api) -> None:
    _, _, admin = api.tenant(("admin",))
    _, _, other = api.tenant(("admin",))
    _, _, writer = api.tenant(("read", "write"))
    assert admin.put("/v1/rate-limits/smtp", json={"rate": "5/s"}).status_code == 200
    assert_problem(other.get("/v1/rate-limits/smtp"), 404, "not-found")
    assert other.get("/v1/rate-limits").json() == {"items": []}
    assert_problem(other.delete("/v1/rate-limits/smtp"), 404, "not-found")
    assert admin.get("/v1/rate-limits/smtp").json()["rate"] == "5/s"  # untouched
    assert_problem(writer.put("/v1/rate-limits/smtp", json={"rate": "5/s"}), 403, "forbidden",
                   says="admin")
    assert_problem(writer.delete("/v1/rate-limits/smtp"), 403, "forbidden")
    assert writer.get("/v1/rate-limits").status_code == 200  # reading needs read only
    assert httpx.get(f"{api.server.url}/v1/rate-limits").status_code == 401


@pytest.mark.parametrize(("name", "body", "field"), [
    ("smtp", {"rate": "10/parsec"}, "rate"),
    ("smtp", {"rate": "0/s"}, "rate"),
    ("smtp", {"rate": "-5/s"}, "rate"),
    ("smtp", {"rate": 10}, "rate"),
    ("smtp", {"rate": "5/s", "burst": 0}, "burst"),
    ("smtp", {"rate": "5/s", "burst": -3}, "burst"),
    ("smtp", {"rate": "5/s", "burst": 10**9}, "burst"),
    ("smtp", {"rate": "5/s", "extra": 1}, "extra"),
    ("smtp", {}, "rate"),
    ("x" * 201, {"rate": "5/s"}, "name"),
    ("hora.api", {"rate": "5/s"}, "name"),
])
def test_bad_input_is_a_422_naming_the_field(api: Api, name: str, body: dict[str, object],
                                             field: str) -> None:
    _, _, admin = api.tenant(("admin",))
    problem = assert_problem(admin.put(f"/v1/rate-limits/{name}", json=body), 422,
                             "invalid-request")
    assert any(e["field"].endswith(field) for e in problem.get("errors", [])) or \
        problem.get("field") == field, problem
    assert admin.get("/v1/rate-limits").json() == {"items": []}


def test_the_client_sets_reads_lists_and_deletes(clients: Clients) -> None:
    _, _, c = clients.tenant(("admin",))
    info = c.set_rate_limit("smtp", "3/h", burst=2)
    assert (info.name, info.rate, info.burst, info.source) == ("smtp", "3/h", 2, "override")
    assert c.get_rate_limit("smtp") == info
    assert c.list_rate_limits() == [info]
    c.delete_rate_limit("smtp")
    with pytest.raises(NotFound):
        c.get_rate_limit("smtp")
    with pytest.raises(InvalidPayload) as e:
        c.set_rate_limit("smtp", "10/parsec")
    assert e.value.field == "rate"
    _, _, reader = clients.tenant(("read",))
    with pytest.raises(AuthError):
        reader.set_rate_limit("smtp", "1/s")


def test_the_async_client(clients: Clients) -> None:
    _, key, _ = clients.tenant(("admin",))

    async def use() -> None:
        async with AsyncClient(clients.url, key) as c:
            assert (await c.set_rate_limit("queue:mail", "5/m")).rate == "5/m"
            assert [r.name for r in await c.list_rate_limits()] == ["queue:mail"]
            await c.delete_rate_limit("queue:mail")
            assert await c.list_rate_limits() == []

    asyncio.run(use())


# -- the per-tenant request limit across API processes ---------------------------------------


def test_two_api_processes_hold_one_tenant_limit(api: Api, server: Server,
                                                 tmp_path: Path) -> None:
    """A second ``hora serve`` on the same store; requests alternate between the two as
    fast as they come: together they admit what the tenant's limit allows (plus one lease
    per process), not twice it as limits kept per process did."""
    second = start_server(server.database_url, tmp_path, args=("--role", "api"))
    try:
        rate = 5
        _, key, first = api.tenant(rate_limit=rate)
        other = httpx.Client(base_url=second.url, timeout=30,
                             headers={"Authorization": f"Bearer {key}"})
        statuses: list[int] = []
        start = time.monotonic()
        with other:
            for i in range(60):
                statuses.append((first if i % 2 == 0 else other).get("/v1/queues").status_code)
        elapsed = time.monotonic() - start
    finally:
        second.stop()
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}
    # burst (one second's worth) + the rate over the time taken (+ a lease per process)
    bound = rate + math.ceil((elapsed + 2 * LEASE_SECONDS) * rate)
    assert rate <= admitted <= bound, (admitted, bound, elapsed)
    assert 429 in statuses


def test_metrics_show_waiting_jobs_by_reason(api: Api) -> None:
    _, _, c = api.tenant()
    queue = f"held-{uuid.uuid4().hex[:8]}"
    assert c.post(f"/v1/queues/{queue}/pause").status_code == 200
    for _ in range(2):
        r = c.post("/v1/jobs", json={"task": "t.held", "payload": {}, "queue": queue,
                                     "allow_unregistered": True})
        assert r.status_code in (200, 201), r.text
    metrics = httpx.get(f"{api.server.url}/metrics").text
    assert f'hora_jobs_waiting{{name="{queue}",reason="queue_paused"}} 2.0' in metrics
    assert c.post(f"/v1/queues/{queue}/resume").status_code == 200
    metrics = httpx.get(f"{api.server.url}/metrics").text
    assert f'hora_jobs_waiting{{name="{queue}",reason="queue_paused"}} 0.0' in metrics
