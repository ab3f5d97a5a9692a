"""Workers and queues over HTTP, on both stores (a real ``hora serve``, whose own worker
registers itself): the operator lists workers, a tenant its own queues; pause and resume;
a due job no live worker serves says so, in its JSON and in /metrics."""

from __future__ import annotations

import uuid

from tests.api.conftest import Api
from tests.api.test_api import assert_problem


def test_the_operator_lists_workers_a_tenant_may_not(api: Api) -> None:
    r = api.admin.get("/v1/workers")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and all(w["status"] == "live" for w in items)
    w = items[0]
    assert w["host"] and w["pid"] > 0 and w["version"] and "default" in w["queues"]
    assert w["last_seen_at"] and w["stopped_at"] is None and w["concurrency"] >= 1
    everyone = api.admin.get("/v1/workers", params={"all": "true"}).json()["items"]
    assert {x["id"] for x in items} <= {x["id"] for x in everyone}
    _, _, admin_of_tenant = api.tenant(scopes=("admin",))
    assert_problem(admin_of_tenant.get("/v1/workers"), 403, "forbidden", says="operator")


def test_queues_are_the_tenants_own(api: Api) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    _, _, a = api.tenant()
    _, _, b = api.tenant()
    for _ in range(2):
        assert a.post("/v1/jobs", json={"task": "t.nowhere", "payload": {},
                                        "queue": queue}).status_code == 201
    assert a.post("/v1/jobs", json={"task": "t.nowhere", "payload": {}, "queue": queue,
                                    "delay": 3600}).status_code == 201
    mine = {q["name"]: q for q in a.get("/v1/queues").json()["items"]}
    q = mine[queue]
    assert (q["scheduled"], q["due"], q["running"], q["dead"], q["paused"], q["workers"]) == (
        3, 2, 0, 0, False, 0)
    assert q["oldest_due_age"] is not None and q["oldest_due_age"] >= 0
    assert mine["default"]["workers"] >= 1  # the server's own worker serves it
    theirs = {q["name"] for q in b.get("/v1/queues").json()["items"]}
    assert queue not in theirs


def test_unrunnable_and_paused_jobs_say_why_they_wait(api: Api) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    _, _, c = api.tenant()
    job = c.post("/v1/jobs", json={"task": "t.nowhere", "payload": {}, "queue": queue}).json()
    got = c.get(f"/v1/jobs/{job['id']}").json()
    assert got["waiting_reason"] == f"no live worker serves task t.nowhere on queue {queue}"
    [listed] = c.get("/v1/jobs", params={"queue": queue}).json()["items"]
    assert listed["waiting_reason"] == got["waiting_reason"]
    metrics = api.admin.get("/metrics").text
    assert f'hora_jobs_unrunnable{{queue="{queue}",task="t.nowhere"}} 1.0' in metrics
    paused = c.post(f"/v1/queues/{queue}/pause", json={"reason": "deploy"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True and paused.json()["reason"] == "deploy"
    assert c.get(f"/v1/jobs/{job['id']}").json()["waiting_reason"] == f"queue {queue} is paused"
    q = next(q for q in c.get("/v1/queues").json()["items"] if q["name"] == queue)
    assert q["paused"] is True and q["paused_at"]
    resumed = c.post(f"/v1/queues/{queue}/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert "waiting_reason" in c.get(f"/v1/jobs/{job['id']}").json()
    # once cancelled it waits for nothing
    c.post(f"/v1/jobs/{job['id']}/cancel")
    assert "waiting_reason" not in c.get(f"/v1/jobs/{job['id']}").json()


def test_pausing_needs_write_and_a_sane_name(api: Api) -> None:
    _, _, reader = api.tenant(scopes=("read",))
    _, _, writer = api.tenant()
    assert_problem(reader.post("/v1/queues/default/pause"), 403, "forbidden")
    assert reader.get("/v1/queues").status_code == 200
    assert_problem(writer.post("/v1/queues/default/pause", json={"reason": "x" * 501}), 422,
                   "invalid-request", says="reason")
    assert_problem(writer.post("/v1/queues/default/pause", json={"nope": 1}), 422,
                   "invalid-request")


def test_the_client_sync_and_async(api: Api) -> None:
    import asyncio

    from hora import AsyncClient, Client, InvalidPayload
    from hora.errors import HoraError

    queue = f"q-{uuid.uuid4().hex[:8]}"
    tid, key, c = api.tenant()
    c.post("/v1/jobs", json={"task": "t.nowhere", "payload": {}, "queue": queue})
    with Client(api.server.url, key) as client, \
            Client(api.server.url, api.server.admin_key) as operator:
        mine = {q.name: q for q in client.queues()}
        assert mine[queue].due == 1 and mine[queue].workers == 0
        state = client.pause_queue(queue, reason="deploy")
        assert (state.tenant_id, state.name, state.paused, state.reason) == (
            tid, queue, True, "deploy")
        assert {q.name: q for q in client.queues()}[queue].paused
        assert client.resume_queue(queue).paused is False
        workers = operator.workers()
        assert workers and workers[0].status == "live" and workers[0].pid > 0
        assert len(operator.workers(all=True)) >= len(workers)
        try:
            client.workers()
        except HoraError as e:
            assert "operator" in str(e)
        else:
            raise AssertionError("a tenant's key listed workers")
        try:
            client.pause_queue("a/b")
        except InvalidPayload:
            pass
        else:
            raise AssertionError("a queue name with '/' was sent")

    async def main() -> None:
        async with AsyncClient(api.server.url, key) as aclient:
            assert queue in {q.name for q in await aclient.queues()}
            assert (await aclient.pause_queue(queue)).paused
            assert not (await aclient.resume_queue(queue)).paused

    asyncio.run(main())
