"""Job control over HTTP, on both stores (a real ``hora serve``): reschedule, run now, bulk
cancel by filter; scopes, tenant isolation, bad input; the sync and async clients."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.api.conftest import Api
from tests.api.test_api import assert_problem


def _job(c: httpx.Client, **fields: object) -> dict[str, object]:
    r = c.post("/v1/jobs", json={"task": "t.nowhere", "payload": {}, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_reschedule_and_run_now(api: Api) -> None:
    _, _, c = api.tenant()
    job = _job(c, delay=3600)
    at = "2031-06-01T08:00:00+02:00"
    r = c.post(f"/v1/jobs/{job['id']}/reschedule", json={"at": at})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert datetime.fromisoformat(moved["due_at"]) == datetime(2031, 6, 1, 6, tzinfo=UTC)
    assert moved["state"] == "scheduled"
    assert moved["state_reason"] == "rescheduled to 2031-06-01T06:00:00.000Z by request"
    before = datetime.now(UTC)
    r = c.post(f"/v1/jobs/{job['id']}/reschedule", json={"delay": 7200})
    assert r.status_code == 200, r.text
    delayed = r.json()["state_reason"]
    due = datetime.fromisoformat(r.json()["due_at"])
    assert before + timedelta(seconds=7199) <= due <= datetime.now(UTC) + timedelta(hours=2)
    r = c.post(f"/v1/jobs/{job['id']}/run-now")
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["due_at"]) <= datetime.now(UTC)
    events = c.get(f"/v1/jobs/{job['id']}").json()["events"]
    assert [e["reason"] for e in events][-3:] == [
        "rescheduled to 2031-06-01T06:00:00.000Z by request",
        delayed,
        "run now by request"]
    assert all(e["from_state"] == e["to_state"] == "scheduled" for e in events[-3:])
    # over: a 409 problem, as a second cancel is
    c.post(f"/v1/jobs/{job['id']}/cancel")
    assert_problem(c.post(f"/v1/jobs/{job['id']}/run-now"), 409, "state-conflict",
                   says="cancelled")
    assert_problem(c.post(f"/v1/jobs/{job['id']}/reschedule", json={"delay": 1}), 409,
                   "state-conflict")


def test_reschedule_refuses_bad_times(api: Api) -> None:
    _, _, c = api.tenant()
    job = _job(c, delay=3600)
    path = f"/v1/jobs/{job['id']}/reschedule"
    for body, says in (({}, "at"), ({"at": "2031-01-01T00:00:00Z", "delay": 1}, "at"),
                       ({"at": "2031-01-01T00:00:00"}, ""), ({"delay": -1}, ""),
                       ({"delay": 1e12}, ""), ({"at": "soon"}, ""), ({"when": 1}, "")):
        assert_problem(c.post(path, json=body), 422, "invalid-request", says=says)
    assert_problem(c.post(path), 422, "invalid-request")
    assert c.get(f"/v1/jobs/{job['id']}").json()["due_at"] == job["due_at"]
    assert_problem(c.post("/v1/jobs/job_nope/reschedule", json={"delay": 1}), 404,
                   "not-found")
    assert_problem(c.post("/v1/jobs/job_nope/run-now"), 404, "not-found")


def test_bulk_cancel_by_correlation_id(api: Api) -> None:
    _, _, a = api.tenant()
    _, _, b = api.tenant()
    mine = [_job(a, delay=3600 * i, correlation_id="onboarding-u42") for i in range(1, 4)]
    other = _job(a, correlation_id="onboarding-u43", delay=60)
    theirs = _job(b, correlation_id="onboarding-u42", delay=60)
    r = a.post("/v1/jobs/cancel", json={"correlation_id": "onboarding-u42",
                                        "reason": "user opted out"})
    assert r.status_code == 200, r.text
    assert r.json() == {"cancelled": 3}
    for j in mine:
        got = a.get(f"/v1/jobs/{j['id']}").json()
        assert (got["state"], got["state_reason"]) == ("cancelled", "user opted out")
    assert a.get(f"/v1/jobs/{other['id']}").json()["state"] == "scheduled"
    assert b.get(f"/v1/jobs/{theirs['id']}").json()["state"] == "scheduled"
    # b's bulk cancel touches only b's jobs; b cannot act on a's one by one either
    assert b.post("/v1/jobs/cancel", json={"all": True}).json() == {"cancelled": 1}
    assert a.get(f"/v1/jobs/{other['id']}").json()["state"] == "scheduled"
    for path, body in ((f"/v1/jobs/{other['id']}/reschedule", {"delay": 1}),
                       (f"/v1/jobs/{other['id']}/run-now", None)):
        assert_problem(b.post(path, json=body), 404, "not-found")
    assert a.get(f"/v1/jobs/{other['id']}").json()["due_at"] == other["due_at"]


def test_bulk_cancel_filters_and_bad_input(api: Api) -> None:
    _, _, c = api.tenant()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    in_queue = [_job(c, queue=queue) for _ in range(2)]
    kept = _job(c, delay=60)
    assert_problem(c.post("/v1/jobs/cancel", json={}), 422, "invalid-request", says="all")
    assert_problem(c.post("/v1/jobs/cancel", json={"include_running": True}), 422,
                   "invalid-request", says="filter")
    assert_problem(c.post("/v1/jobs/cancel", json={"queue": ""}), 422, "invalid-request")
    assert_problem(c.post("/v1/jobs/cancel", json={"colour": "red"}), 422, "invalid-request")
    assert_problem(c.post("/v1/jobs/cancel", json={"created_before": "yesterday"}), 422,
                   "invalid-request")
    assert c.post("/v1/jobs/cancel", json={"queue": queue, "task": "t.other"}).json() == {
        "cancelled": 0}
    assert c.post("/v1/jobs/cancel", json={"queue": queue}).json() == {"cancelled": 2}
    assert all(c.get(f"/v1/jobs/{j['id']}").json()["state"] == "cancelled" for j in in_queue)
    assert c.get(f"/v1/jobs/{kept['id']}").json()["state"] == "scheduled"
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert c.post("/v1/jobs/cancel", json={"created_before": later}).json() == {
        "cancelled": 1}


def test_control_needs_the_write_scope(api: Api) -> None:
    _, _, writer = api.tenant()
    job = _job(writer, delay=60)
    tid = writer.get("/v1/jobs").json()["items"][0]["tenant_id"]
    r = api.admin.post("/v1/keys", json={"tenant_id": tid, "scopes": ["read"]})
    reader = api.client(r.json()["key"])
    for path, body in ((f"/v1/jobs/{job['id']}/reschedule", {"delay": 1}),
                       (f"/v1/jobs/{job['id']}/run-now", None),
                       ("/v1/jobs/cancel", {"all": True})):
        assert_problem(reader.post(path, json=body), 403, "forbidden")
    assert writer.get(f"/v1/jobs/{job['id']}").json()["state"] == "scheduled"


def test_the_client_sync_and_async(api: Api) -> None:
    from hora import AsyncClient, Client, InvalidPayload
    from hora.errors import TransitionConflict

    _, key, c = api.tenant()
    job = _job(c, delay=3600, correlation_id="cl")
    with Client(api.server.url, key) as client:
        moved = client.reschedule_job(str(job["id"]), delay=timedelta(hours=2))
        assert moved.due_at > datetime.now(UTC) + timedelta(minutes=119)
        at = datetime(2031, 1, 1, tzinfo=UTC)
        assert client.reschedule_job(str(job["id"]), at=at).due_at == at
        assert client.run_job_now(str(job["id"])).due_at <= datetime.now(UTC)
        try:
            client.cancel_jobs()
        except InvalidPayload as e:
            assert "filter" in str(e)
        else:
            raise AssertionError("an empty bulk cancel was accepted")
        assert client.cancel_jobs(correlation_id="cl") == 1
        try:
            client.run_job_now(str(job["id"]))
        except TransitionConflict:
            pass
        else:
            raise AssertionError("a cancelled job was made due")

    second = _job(c, delay=3600, correlation_id="acl")

    async def main() -> None:
        async with AsyncClient(api.server.url, key) as aclient:
            assert (await aclient.reschedule_job(str(second["id"]), delay=10)).state == \
                "scheduled"
            assert (await aclient.run_job_now(str(second["id"]))).id == second["id"]
            assert await aclient.cancel_jobs(correlation_id="acl", include_running=True) == 1

    asyncio.run(main())
    assert c.get(f"/v1/jobs/{second['id']}").json()["state"] == "cancelled"
