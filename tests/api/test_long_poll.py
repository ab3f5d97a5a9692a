"""The long-poll (issue #11 item 3): ``GET /v1/jobs/{id}?wait=`` and
``GET /v1/workflows/{id}?wait=`` against a real ``hora serve`` on each store; the client's
``wait_for_job`` / ``wait_for_workflow`` loop it."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from hora import Client, Hora, JobState
from hora.errors import WaitTimeout
from hora.waiting import LISTEN_POLL
from tests.api.conftest import Api


def _scheduled(http: httpx.Client) -> str:
    r = http.post("/v1/jobs", json={"task": "t", "payload": {}, "delay": 3600})
    assert r.status_code == 201, r.text
    job_id: str = r.json()["id"]
    return job_id


def test_wait_is_validated(api: Api) -> None:
    _, _, http = api.tenant()
    job_id = _scheduled(http)
    for bad in ("61", "-1", "soon"):
        r = http.get(f"/v1/jobs/{job_id}", params={"wait": bad})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    r = http.get("/v1/workflows/nope", params={"wait": "61"})
    assert r.status_code == 422


def test_a_wait_that_runs_out_answers_200_with_the_current_state(api: Api) -> None:
    _, _, http = api.tenant()
    job_id = _scheduled(http)
    began = time.monotonic()
    r = http.get(f"/v1/jobs/{job_id}", params={"wait": "0.5"})
    took = time.monotonic() - began
    assert r.status_code == 200 and r.json()["state"] == "scheduled"
    assert r.headers["Hora-Done"] == "false"
    assert 0.5 <= took < 5
    plain = http.get(f"/v1/jobs/{job_id}")
    assert plain.status_code == 200 and plain.headers["Hora-Done"] == "false"
    strict = http.get(f"/v1/jobs/{job_id}", params={"wait": "0.2", "strict": "true"})
    assert strict.status_code == 409
    assert strict.json()["type"].endswith(":wait-timeout")
    assert r.json()["attempts"] == []
    with pytest.raises(httpx.HTTPStatusError):
        http.get(f"/v1/jobs/{job_id}", params={"wait": "0.1", "strict": "true"}
                 ).raise_for_status()


def test_cancel_through_the_api_wakes_a_waiting_request(api: Api) -> None:
    _, key, http = api.tenant()
    job_id = _scheduled(http)
    got: list[httpx.Response] = []
    with Client(api.server.url, key, retries=0) as client:
        t = threading.Thread(target=lambda: got.append(
            http.get(f"/v1/jobs/{job_id}", params={"wait": "30"})))
        t.start()
        time.sleep(0.3)  # let the request reach the server and start waiting
        began = time.monotonic()
        client.cancel_job(job_id)
        t.join(30)
        took = time.monotonic() - began
        assert got and got[0].status_code == 200
        assert got[0].json()["state"] == "cancelled" and got[0].headers["Hora-Done"] == "true"
        assert took < 5
        assert client.wait_for_job(job_id, timeout=5).state is JobState.CANCELLED


def test_an_end_written_by_another_process_wakes_the_server(api: Api) -> None:
    """The job is cancelled by another app on the same database, not through the server:
    on PostgreSQL its NOTIFY wakes the long-poll (the server's safety poll is 10 s apart
    while it listens); on SQLite the server's bounded poll (<= 1 s) sees it."""
    tid, _, http = api.tenant()
    job_id = _scheduled(http)
    other = Hora(api.server.database_url, tenant_id=tid)
    try:
        got: list[httpx.Response] = []
        t = threading.Thread(target=lambda: got.append(
            http.get(f"/v1/jobs/{job_id}", params={"wait": "40"})))
        t.start()
        time.sleep(1.5)  # the request is waiting and (PostgreSQL) the listener is up
        began = time.monotonic()
        other.cancel_job(job_id)
        t.join(45)
        took = time.monotonic() - began
    finally:
        other.close()
    assert got and got[0].json()["state"] == "cancelled"
    assert got[0].headers["Hora-Done"] == "true"
    assert took < LISTEN_POLL / 2, took


def test_many_waiting_requests_at_once(api: Api) -> None:
    """Waiting requests hold no thread: more of them than the server's thread pool (40)
    all wait, and all answer when their jobs end."""
    _, key, http = api.tenant()
    ids = [_scheduled(http) for _ in range(50)]
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def wait_one(job_id: str) -> None:
        with httpx.Client(base_url=api.server.url, timeout=60,
                          headers={"Authorization": f"Bearer {key}"}) as c:
            r = c.get(f"/v1/jobs/{job_id}", params={"wait": "30"})
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=wait_one, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    time.sleep(1.0)
    # A plain read is still served at once while 50 requests wait.
    began = time.monotonic()
    assert http.get(f"/v1/jobs/{ids[0]}").status_code == 200
    assert time.monotonic() - began < 2
    for job_id in ids:
        assert http.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    for t in threads:
        t.join(40)
    assert len(answers) == 50
    assert all(r.status_code == 200 and r.json()["state"] == "cancelled" for r in answers)


def test_client_wait_for_job_times_out(api: Api) -> None:
    _, key, http = api.tenant()
    job_id = _scheduled(http)
    with Client(api.server.url, key, retries=0) as client, pytest.raises(WaitTimeout) as err:
        client.wait_for_job(job_id, timeout=0.5)
    assert err.value.record_id == job_id and err.value.state == "scheduled"


def test_workflow_long_poll_and_client_wait(wf_api: Api) -> None:
    _, key, http = wf_api.tenant()
    r = http.post("/v1/workflows", json={"workflow": "api.quick", "args": {"seconds": 1.0}})
    assert r.status_code == 201, r.text
    wf_id = r.json()["id"]
    first = http.get(f"/v1/workflows/{wf_id}", params={"wait": "0.2"})
    assert first.status_code == 200 and first.headers["Hora-Done"] == "false"
    began = time.monotonic()
    done = http.get(f"/v1/workflows/{wf_id}", params={"wait": "30"})
    assert done.status_code == 200 and done.headers["Hora-Done"] == "true", done.text
    assert done.json()["state"] == "completed" and done.json()["result"] == "expired"
    assert time.monotonic() - began < 20
    with Client(wf_api.server.url, key, retries=0) as client:
        wf: Any = client.wait_for_workflow(wf_id, timeout=5)
    assert wf.state == "completed"
